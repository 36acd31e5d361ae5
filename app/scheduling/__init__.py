"""Materialized schedules: EMA prompts and decision points as durable, claimable rows."""
