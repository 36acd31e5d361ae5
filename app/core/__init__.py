"""Cross-cutting infrastructure: settings, database, clock, identifiers, secrets, errors."""
