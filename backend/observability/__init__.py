"""What the platform records around every call: analytics, audit log, events, metrics."""
