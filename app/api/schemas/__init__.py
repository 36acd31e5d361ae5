"""Request and response bodies, one module per area of the API."""
