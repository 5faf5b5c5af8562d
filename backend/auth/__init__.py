"""Authentication and access: users, passwords, tokens, API keys, user sessions, roles."""
