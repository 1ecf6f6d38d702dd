"""citywatch: index city CCTV footage and answer questions about it."""

__version__ = "0.1.0"
