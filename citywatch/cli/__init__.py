"""The ``citywatch`` command line: entry point (``main``), one module per command group,
output formatting, and the end-to-end demo. Only the CLI (and the service) import flows."""
