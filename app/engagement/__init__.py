"""Engagement: what the participant did with prompts and exercises."""
