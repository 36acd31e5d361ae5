"""Participants: pseudonymous enrollment, status, enrollment codes and app tokens."""
