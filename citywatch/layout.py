"""What lives where under the storage root, and which component may touch it.

The prefixes below are the ones the code writes (``tests/test_infra_policies.py``
checks them against the code and against the bucket policies in ``infra/s3/``).
``BIOMETRIC`` prefixes hold people's faces, plates, the watchlist, alerts and the
audit log: only the service and the index/sweep workers get credentials for them.
Analysts get the derived dataset (``ANALYTICS``) and nothing else.
"""

from __future__ import annotations

DB = "db/"  # LanceDB: faces (embeddings), plates, segments, cameras, watchlist, alerts, audit, users, ...
FOOTAGE = "footage/"  # the recorded segments and GPS sidecars
THUMBS = "thumbs/"  # face and plate crops
REPORTS = "reports/"  # search reports (with thumbnails)
EXPORTS = "exports/"  # case exports: redacted clips and signed manifests
AUDIT = "audit/"  # the audit journal (hash chain) and hints
AUTH = "auth/"  # sessions, login failures, TOTP secrets
KEYS = "keys/"  # signing keys (single-machine installs; mounted files elsewhere)
LEASES = "leases/"  # index leases: which worker indexes which segment
SERVICE = "service/"  # probes uploaded to the service
ANALYTICS = "analytics/"  # the derived analyst dataset (default location)
CONFIG = ("cameras.yaml", "users.yaml")  # files at the root

BIOMETRIC: tuple[str, ...] = (DB, FOOTAGE, THUMBS, REPORTS, EXPORTS, AUDIT, AUTH, KEYS, SERVICE)
"""Prefixes with people's data or the governance records: never readable by analysts."""

ROOT_PREFIXES: tuple[str, ...] = (*BIOMETRIC, LEASES, ANALYTICS)
"""Every prefix the code writes under the storage root."""
