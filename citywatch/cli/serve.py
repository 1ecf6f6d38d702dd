"""CLI: ``serve`` (the citywatch service) and ``users add|list|import|passwd|deactivate|totp|link-oidc``."""

from __future__ import annotations

import argparse
import getpass
import sys

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_command, add_json_argument, add_subcommands
from citywatch.errors import BadInputError, ForbiddenError
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import Action, governed
from citywatch.governance.roles import Role
from citywatch.governance.totp import enrol_totp
from citywatch.governance.users import (
    add_user,
    get_user,
    import_users,
    list_users,
    set_active,
    set_password,
    users_in_table,
)
from citywatch.governance.users_file import parse_users
from citywatch.settings import Settings
from citywatch.storage import Storage


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "serve",
        help="run the citywatch service (sign-in + JSON API)",
        examples=[
            "citywatch serve  # on 127.0.0.1:8470",
            "citywatch serve --host 0.0.0.0 --port 443 --tls-cert cert.pem --tls-key key.pem",
        ],
    )
    p.add_argument("--host", help="listen address (default service.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default service.port, 8470)")
    p.add_argument("--tls-cert", help="PEM certificate: serve HTTPS (with --tls-key)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.set_defaults(handler=cmd_serve)

    p = add_command(
        sub,
        "users",
        help="sign-in accounts (admin)",
        examples=["citywatch --user demo-admin users add alice --role investigator", "citywatch users list"],
    )
    us = add_subcommands(p, "users_command", "what to do with accounts")
    name_help = "account name (compared exactly after Unicode NFKC)"
    stdin_help = "read the password from stdin's first line instead of prompting"
    add = add_command(
        us,
        "add",
        help="add an account; the password is prompted for (or read from stdin)",
        examples=["citywatch users add alice --role investigator --role analyst"],
    )
    add.add_argument("name", help=name_help)
    add.add_argument(
        "--role",
        action="append",
        required=True,
        choices=[r.value for r in Role],
        help="a role of the account; repeat for several (required)",
    )
    add.add_argument("--password-stdin", action="store_true", help=stdin_help)
    add.add_argument(
        "--os-account",
        default="",
        help="OS login this account is bound to for direct CLI use on this machine (once any "
        "account has one, direct use acts only as the account of the current OS login)",
    )
    add.set_defaults(handler=cmd_users_add)
    ls = add_command(us, "list", help="accounts and their roles", examples=["citywatch users list --json"])
    add_json_argument(ls)
    ls.set_defaults(handler=cmd_users_list)
    imp = add_command(
        us,
        "import",
        help="copy a users YAML file into the users table (no passwords)",
        examples=["citywatch users import data/users.yaml"],
    )
    imp.add_argument("file", help="users YAML file (name: roles)")
    imp.set_defaults(handler=cmd_users_import)
    pw = add_command(
        us,
        "passwd",
        help="set an account's password (prompted, or --password-stdin)",
        examples=["citywatch users passwd alice"],
    )
    pw.add_argument("name", help=name_help)
    pw.add_argument("--password-stdin", action="store_true", help=stdin_help)
    pw.set_defaults(handler=cmd_users_passwd)
    de = add_command(
        us,
        "deactivate",
        help="stop an account signing in (kept for the audit trail)",
        examples=["citywatch users deactivate alice"],
    )
    de.add_argument("name", help=name_help)
    de.set_defaults(handler=cmd_users_deactivate)
    to = add_command(
        us,
        "totp",
        help="enrol a TOTP second factor; prints the otpauth URI once",
        examples=["citywatch users totp alice"],
    )
    to.add_argument("name", help=name_help)
    to.set_defaults(handler=cmd_users_totp)
    li = add_command(
        us,
        "link-oidc",
        help="let an OIDC identity (a subject of oidc.issuer) sign in as this account",
        description="OIDC sign-in accepts only identities an admin linked to an account; the "
        "provider's name or e-mail claims never pick one, and roles stay citywatch's. The "
        "subject is the provider's stable id of the person (its 'sub' claim).",
        examples=[
            "citywatch users link-oidc alice 248289761001",
            "citywatch users link-oidc alice 248289761001 --unlink",
        ],
    )
    li.add_argument("name", help=name_help)
    li.add_argument("subject", help="the person's subject ('sub') at the oidc.issuer provider")
    li.add_argument("--unlink", action="store_true", help="remove the link instead")
    li.set_defaults(handler=cmd_users_link_oidc)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from citywatch.service.server import serve

    overrides = {
        key: value
        for key, value in (
            ("service__host", args.host),
            ("service__port", args.port),
            ("service__tls_cert", args.tls_cert),
            ("service__tls_key", args.tls_key),
        )
        if value is not None
    }
    settings = settings.updated(**overrides)
    scheme = "https" if settings.service.tls_cert else "http"
    output.line(f"citywatch service on {scheme}://{settings.service.host}:{settings.service.port}/api")
    serve(settings)
    return 0


def read_password(from_stdin: bool, who: str) -> str:
    """The new password: stdin's first line, or typed twice at a prompt (never an argument)."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise BadInputError("--password-stdin: stdin gave no password")
        return line
    first = getpass.getpass(f"password for {who}: ")
    if getpass.getpass("again: ") != first:
        raise BadInputError("the two passwords differ")
    return first


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    """Authorise first, then ask for the password (a refused caller is never prompted)."""
    storage = Storage(settings)
    params = {"command": "users add", "name": args.name, "roles": args.role, "os_account": args.os_account}
    if not users_in_table(storage) and not settings.user:
        # the first account of a root: it must be an admin, and is recorded as a bootstrap
        if Role.ADMIN.value not in args.role:
            raise ForbiddenError("the users table is empty: the first account must have --role admin")
        password = read_password(args.password_stdin, args.name)
        row = add_user(storage, args.name, args.role, password, "bootstrap", os_account=args.os_account)
        AuditLog(storage).record(
            user="bootstrap",
            role="",
            action=Action.USERS_MANAGE.value,
            outcome="ok",
            params=params,
            result_count=1,
        )
    else:
        with governed(settings, storage, Action.USERS_MANAGE, None, None, params) as run:
            password = read_password(args.password_stdin, args.name)
            row = add_user(
                storage, args.name, args.role, password, run.actor.user, os_account=args.os_account
            )
            run.result_count = 1
    output.line(f"user {row.id} added with roles {', '.join(row.roles)}")
    return 0


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    with governed(settings, storage, Action.USERS_MANAGE, None, None, {"command": "users list"}) as run:
        rows = list_users(storage)
        run.result_count = len(rows)
    if args.json:
        output.as_json([r.public() for r in rows])
        return 0
    output.table(
        ["name", "roles", "active", "password"],
        [[r.id, ",".join(r.roles), r.active, "set" if r.password_hash else "-"] for r in rows],
    )
    return 0


def cmd_users_import(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    url = storage.resolve(args.file)
    users = parse_users(storage.read_bytes(url).decode("utf-8", errors="replace"), url)
    with governed(
        settings, storage, Action.USERS_MANAGE, None, None, {"command": "users import", "file": url}
    ) as run:
        results = import_users(storage, users, run.actor.user)
        run.result_count = sum(1 for _, what in results if what.startswith("imported"))
    for name, what in results:
        output.line(f"{name}: {what}")
    return 0


def cmd_users_passwd(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password(args.password_stdin, args.name)
    storage = Storage(settings)
    with governed(
        settings, storage, Action.USERS_MANAGE, None, None, {"command": "users passwd", "name": args.name}
    ) as run:
        row = set_password(storage, args.name, password)
        run.result_count = 1
    output.line(f"password of {row.id} set; their sessions have ended")
    return 0


def cmd_users_deactivate(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    params = {"command": "users deactivate", "name": args.name}
    with governed(settings, storage, Action.USERS_MANAGE, None, None, params) as run:
        row = set_active(storage, args.name, False)
        run.result_count = 1
    output.line(f"user {row.id} deactivated: may no longer sign in or act")
    return 0


def cmd_users_totp(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    with governed(
        settings, storage, Action.USERS_MANAGE, None, None, {"command": "users totp", "name": args.name}
    ) as run:
        user = get_user(storage, args.name)
        uri = enrol_totp(storage, user.id)
        run.result_count = 1
    output.line(f"TOTP for {user.id} (shown once; add it to their authenticator app):")
    output.line(uri)
    return 0


def cmd_users_link_oidc(args: argparse.Namespace, settings: Settings) -> int:
    from citywatch.governance.oidc_links import check_subject, link_identity, linked_account, unlink_identity

    if not settings.oidc.issuer:
        raise BadInputError(
            "OIDC is not configured: set CITYWATCH_OIDC__ISSUER (and CITYWATCH_OIDC__CLIENT_ID)"
        )
    check_subject(args.subject)
    storage = Storage(settings)
    command = "users link-oidc --unlink" if args.unlink else "users link-oidc"
    params = {"command": command, "name": args.name, "subject": args.subject}
    with governed(settings, storage, Action.USERS_MANAGE, None, None, params) as run:
        user = get_user(storage, args.name)
        if args.unlink:
            existing = linked_account(storage, settings.oidc.issuer, args.subject)
            if existing is None or existing.user != user.id:
                raise BadInputError(f"OIDC subject {args.subject!r} is not linked to {user.id!r}")
            unlink_identity(storage, settings.oidc.issuer, args.subject)
        else:
            link_identity(storage, settings.oidc.issuer, args.subject, user.id, run.actor.user)
        run.result_count = 1
    what = "unlinked from" if args.unlink else "linked to"
    output.line(f"OIDC subject {args.subject} of {settings.oidc.issuer} {what} {user.id}")
    return 0
