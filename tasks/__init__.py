"""citywatch tasks."""
