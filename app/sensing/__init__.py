"""Wearable summaries: passive data aggregated on the phone (steps, sleep, heart rate)."""
