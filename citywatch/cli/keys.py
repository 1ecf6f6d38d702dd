"""CLI: ``keys public`` (publish the signing keys) and ``keys rotate`` (admin, audited)."""

from __future__ import annotations

import argparse
import sys

from citywatch.cli import output
from citywatch.governance.auth import Action, governed
from citywatch.governance.checkpoints import audit_key_store
from citywatch.governance.keys import FileKeyStore
from citywatch.governance.manifest import export_key_store
from citywatch.settings import Settings
from citywatch.storage import Storage


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keys",
        help="publish or rotate the Ed25519 keys that sign exports and audit checkpoints",
        description="Exports and audit checkpoints are signed with Ed25519 keys kept by this "
        "installation (0600 files). `keys public` prints their public keys as a trusted keys "
        "file for verifiers (`export verify --trusted-keys`, `audit verify --trusted-keys`).",
    )
    keys_sub = p.add_subparsers(dest="keys_command", required=True)
    pub = keys_sub.add_parser("public", help="print every public key (current and retired), one a line")
    pub.add_argument(
        "--audit", action="store_true", help="the audit checkpoint key instead of the export key"
    )
    pub.set_defaults(handler=cmd_keys_public)
    rot = keys_sub.add_parser(
        "rotate", help="replace the signing key; what the old key signed still verifies (admin)"
    )
    rot.add_argument(
        "--audit", action="store_true", help="the audit checkpoint key instead of the export key"
    )
    rot.set_defaults(handler=cmd_keys_rotate)


def _store(args: argparse.Namespace, settings: Settings) -> FileKeyStore:
    return audit_key_store(settings) if args.audit else export_key_store(settings)


def cmd_keys_public(args: argparse.Namespace, settings: Settings) -> int:
    text = _store(args, settings).public_keys_text()
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(args, settings)
    storage = Storage(settings)
    params = {"key": store.purpose, "path": str(store.path)}
    with governed(settings, storage, Action.KEYS_MANAGE, None, None, params) as run:
        old, new = store.rotate()
        run.result_count = 1
        run.detail = f"{store.purpose} key {old} retired, {new} is current"
    output.line(f"{store.purpose} signing key rotated: {old} retired (its public key stays published), {new}")
    output.line("publish the new key: citywatch keys public" + (" --audit" if args.audit else ""))
    return 0
