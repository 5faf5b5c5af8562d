"""Background jobs: asks, exports, schema refreshes and scheduled pruning on procrastinate."""
