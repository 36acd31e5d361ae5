"""EMA: questionnaires, prompts and responses (arrives with the study protocol and ingestion)."""
