"""The shared kernel: settings, database, errors, security primitives. Imports no domain."""
