"""Operability: Prometheus metrics (process events and database state) and structured logs."""
