"""Each connection's semantic layer: the business's own words for its data."""
