"""Kairos: a backend for just-in-time adaptive interventions in chronic-pain care."""

__version__ = "0.1.0"
