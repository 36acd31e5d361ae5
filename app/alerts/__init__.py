"""Escalation alerts for the care team, raised by EMA answers, and their webhook delivery."""
