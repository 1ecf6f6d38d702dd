"""Governance: users and roles (``auth``), the audit log, watchlist entries with four-eyes
approval, alert review, and signed evidence manifests."""
