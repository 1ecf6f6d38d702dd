"""Indexing one footage segment: catalog, decode, faces, plates, tracking, leases."""
