"""Routine outcome monitoring: weekly trends per participant and flags for the care team."""
