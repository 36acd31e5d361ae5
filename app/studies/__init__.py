"""Studies: the container for a protocol, its participants and their data."""
