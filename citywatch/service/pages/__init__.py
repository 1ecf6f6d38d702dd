"""The investigator console: server-rendered pages over the governed service functions."""
