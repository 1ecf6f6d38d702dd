"""citywatch flows."""
