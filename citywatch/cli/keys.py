"""CLI: ``keys public`` (publish the signing keys) and ``keys rotate`` (admin, audited)."""

from __future__ import annotations

import argparse
import sys

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_command, add_subcommands
from citywatch.governance.auth import Action, governed
from citywatch.governance.checkpoints import audit_key_store
from citywatch.governance.keys import FileKeyStore
from citywatch.governance.manifest import export_key_store
from citywatch.settings import Settings
from citywatch.storage import Storage


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "keys",
        help="publish or rotate the Ed25519 keys that sign exports and audit checkpoints",
        description="Exports and audit checkpoints are signed with Ed25519 keys kept by this "
        "installation (0600 files). `keys public` prints their public keys as a trusted keys "
        "file for verifiers (`export verify --trusted-keys`, `audit verify --trusted-keys`).",
        examples=["citywatch keys public > citywatch-keys.txt", "citywatch --user demo-admin keys rotate"],
    )
    keys_sub = add_subcommands(p, "keys_command", "what to do with the keys")
    audit_help = "the audit checkpoint key instead of the export key"
    pub = add_command(
        keys_sub,
        "public",
        help="print every public key (current and retired), one a line",
        examples=["citywatch keys public", "citywatch keys public --audit"],
    )
    pub.add_argument("--audit", action="store_true", help=audit_help)
    pub.set_defaults(handler=cmd_keys_public)
    rot = add_command(
        keys_sub,
        "rotate",
        help="replace the signing key; what the old key signed still verifies (admin)",
        examples=[
            "citywatch --user demo-admin keys rotate",
            "citywatch --user demo-admin keys rotate --audit",
        ],
    )
    rot.add_argument("--audit", action="store_true", help=audit_help)
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
