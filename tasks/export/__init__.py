"""Redacted, signed evidence export: request, scan, redaction plan, render, manifest."""
