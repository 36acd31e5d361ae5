"""Researcher exports: analysis-ready datasets, streamed, with a data dictionary and provenance."""
