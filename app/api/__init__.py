"""The HTTP edge: routers, request/response schemas and auth dependencies. No business rules."""
