"""Users' database connections: encrypted credentials, dialects, introspection, execution."""
