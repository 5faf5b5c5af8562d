"""Administration: users, system config, review of what the platform recorded."""
