"""Staff: API keys with roles (admin, coordinator, researcher)."""
