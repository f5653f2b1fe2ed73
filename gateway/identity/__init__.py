"""Identity: customers, users, roles, API tokens and the authenticated principal."""
