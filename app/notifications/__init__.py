"""Notifications: the participant's devices and push tokens (delivery arrives with the outbox)."""
