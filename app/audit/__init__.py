"""The audit log: every staff action and every staff read of participant data."""
