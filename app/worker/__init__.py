"""The background worker: an APScheduler clock that ticks durable, row-based work."""
