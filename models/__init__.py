"""citywatch models."""
