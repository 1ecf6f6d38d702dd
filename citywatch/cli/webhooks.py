"""CLI: ``webhooks add|remove|list|new-secret``: alert webhook targets (admin, audited).

Secrets are never printed: ``new-secret`` writes one into the secrets file (0600) for
the receiver's operator to copy from there.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_command, add_json_argument, add_subcommands
from citywatch.errors import BadInputError
from citywatch.governance.auth import Action, governed
from citywatch.governance.webhooks import (
    add_target,
    check_name,
    file_secrets,
    has_secret,
    list_targets,
    new_secret,
    remove_target,
    secrets_file_text,
)
from citywatch.settings import Settings
from citywatch.storage import Storage


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "webhooks",
        help="alert webhook targets: signed POSTs to allowed hosts (admin)",
        description="Targets get every new alert as a Standard Webhooks-signed JSON POST. Their "
        "host must be in webhook_allowed_hosts; their secret lives in the webhook secrets file "
        "or CITYWATCH_WEBHOOK_SECRETS, never in a table, a log or this command's output.",
        examples=["citywatch --user demo-admin webhooks add ops-room https://alerts.example.org/citywatch"],
    )
    hooks = add_subcommands(p, "webhooks_command", "what to do with webhook targets")
    name_help = "target name (lowercase letters, digits, '-')"
    add = add_command(
        hooks,
        "add",
        help="add or change a target",
        examples=["citywatch --user demo-admin webhooks add ops-room https://alerts.example.org/citywatch"],
    )
    add.add_argument("name", help=name_help)
    add.add_argument("url", help="https://host/path (no credentials, no query)")
    add.set_defaults(handler=cmd_webhooks_add)
    rm = add_command(
        hooks,
        "remove",
        help="remove a target",
        examples=["citywatch --user demo-admin webhooks remove ops-room"],
    )
    rm.add_argument("name", help=name_help)
    rm.set_defaults(handler=cmd_webhooks_remove)
    ls = add_command(
        hooks,
        "list",
        help="targets, and whether each has a secret (never the secret)",
        examples=["citywatch --user demo-admin webhooks list --json"],
    )
    add_json_argument(ls)
    ls.set_defaults(handler=cmd_webhooks_list)
    sec = add_command(
        hooks,
        "new-secret",
        help="write a new signing secret for a target into the secrets file",
        examples=["citywatch --user demo-admin webhooks new-secret ops-room"],
    )
    sec.add_argument("name", help=name_help)
    sec.set_defaults(handler=cmd_webhooks_new_secret)


def cmd_webhooks_add(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    params = {"command": "webhooks add", "name": args.name, "url": args.url}
    with governed(settings, storage, Action.WEBHOOKS_MANAGE, None, None, params) as run:
        row = add_target(storage, args.name, args.url, run.actor.user)
        run.result_count = 1
    output.line(f"webhook {row.id} -> {row.url}")
    if not has_secret(settings, row.id):
        output.line(
            f"  no secret yet: `citywatch webhooks new-secret {row.id}` (alerts wait until it has one)"
        )
    return 0


def cmd_webhooks_remove(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    with governed(
        settings,
        storage,
        Action.WEBHOOKS_MANAGE,
        None,
        None,
        {"command": "webhooks remove", "name": args.name},
    ) as run:
        remove_target(storage, args.name)
        run.result_count = 1
    output.line(f"webhook {args.name} removed")
    return 0


def cmd_webhooks_list(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    with governed(settings, storage, Action.WEBHOOKS_MANAGE, None, None, {"command": "webhooks list"}) as run:
        targets = list_targets(storage)
        run.result_count = len(targets)
    rows = [
        {"name": t.id, "url": t.url, "has_secret": has_secret(settings, t.id), "created_by": t.created_by}
        for t in targets
    ]
    if args.json:
        output.as_json(rows)
        return 0
    output.table(
        ["name", "url", "secret", "added by"],
        [[r["name"], r["url"], r["has_secret"], r["created_by"]] for r in rows],
    )
    return 0


def cmd_webhooks_new_secret(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.alerts.webhook_secrets_file:
        raise BadInputError(
            "set webhook_secrets_file (CITYWATCH_ALERTS__WEBHOOK_SECRETS_FILE) to where secrets are kept"
        )
    name = check_name(args.name)
    path = Path(settings.alerts.webhook_secrets_file).expanduser()
    storage = Storage(settings)
    params = {"command": "webhooks new-secret", "name": name, "file": str(path)}
    with governed(settings, storage, Action.WEBHOOKS_MANAGE, None, None, params) as run:
        secrets = {k: str(v) for k, v in file_secrets(str(path)).items()} if path.exists() else {}
        secrets[name] = new_secret()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets_file_text(secrets))
        os.replace(tmp, path)
        run.result_count = 1
    output.line(
        f"a new secret for webhook {name} is in {path}: give it to the receiver's operator from there"
    )
    return 0
