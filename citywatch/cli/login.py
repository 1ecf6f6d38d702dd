"""CLI: ``login`` and ``logout`` against a citywatch service (CITYWATCH_API_URL).

``login`` signs in with name and password (and a TOTP code when the service asks),
creates an API token for this CLI and stores it in the user's config dir with mode
0600; the password is never stored. ``logout`` revokes the token and deletes the file.
"""

from __future__ import annotations

import argparse
import getpass
import socket
import sys

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_command
from citywatch.cli.client import (
    ApiClient,
    read_token_file,
    token_id,
    token_path,
    write_token_file,
)
from citywatch.errors import BadInputError, ForbiddenError
from citywatch.settings import Settings


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "login",
        help="sign in to the citywatch service (CITYWATCH_API_URL) and store an API token",
        description="Sign in with your name and password (and a TOTP code if your account has "
        "one); an API token for this CLI is created and stored in "
        "$XDG_CONFIG_HOME/citywatch/token (mode 0600). Governed commands then go through "
        "the service as you.",
        examples=[
            "citywatch login --name ivy  # with CITYWATCH_API_URL=https://citywatch.example:8470",
            'echo "$TOKEN" | citywatch login --token-stdin  # store a token made elsewhere',
        ],
    )
    p.add_argument("--name", help="your user name (prompted for if missing)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password (then a TOTP code) from stdin"
    )
    p.add_argument("--token-stdin", action="store_true", help="store an existing API token read from stdin")
    p.add_argument("--days", type=float, default=30, help="token lifetime in days (default %(default)s)")
    p.set_defaults(handler=cmd_login)
    q = add_command(
        sub, "logout", help="revoke the stored API token and delete it", examples=["citywatch logout"]
    )
    q.set_defaults(handler=cmd_logout)


def _service(settings: Settings) -> str:
    if not settings.api_url:
        raise BadInputError("set CITYWATCH_API_URL to the citywatch service (e.g. http://127.0.0.1:8470)")
    return settings.api_url


def _ask(prompt: str, from_stdin: bool, secret: bool = True) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass(prompt) if secret else input(prompt)


def cmd_login(args: argparse.Namespace, settings: Settings) -> int:
    url = _service(settings)
    if args.token_stdin:
        token = sys.stdin.readline().strip()
        token_id(token)
        with ApiClient(url, token) as client:
            me = client.get("/api/me")
        path = write_token_file(token)
        output.line(f"signed in to {url} as {me['user']} (token stored in {path})")
        return 0
    name = args.name or _ask("name: ", args.password_stdin, secret=False).strip()
    if not name:
        raise BadInputError("no user name given (--name)")
    password = _ask(f"password for {name}: ", args.password_stdin)
    if not password:
        raise BadInputError("no password given")
    with ApiClient(url) as client:
        body = {"name": name, "password": password}
        try:
            session = client.post("/api/auth/login", body)
        except ForbiddenError as exc:
            if "TOTP code is required" not in str(exc):
                raise
            code = _ask("TOTP code: ", args.password_stdin).strip()
            session = client.post("/api/auth/login", {**body, "totp": code})
        client.csrf = session["csrf_token"]
        label = f"citywatch CLI on {socket.gethostname()}"[:200]
        made = client.post("/api/tokens", {"label": label, "days": args.days})
        client.post("/api/auth/logout")  # the CLI keeps the token, not the session
    path = write_token_file(made["token"])
    output.line(
        f"signed in to {url} as {session['user']} ({', '.join(session['roles'])}); "
        f"token {made['id']} stored in {path}, expires {made['expires_at']}"
    )
    return 0


def cmd_logout(args: argparse.Namespace, settings: Settings) -> int:
    url = _service(settings)
    path = token_path()
    token = read_token_file(path)
    if token is None:
        output.line(f"not signed in (no token file {path})")
        return 0
    ident = token_id(token)
    with ApiClient(url, token) as client:
        try:
            client.call("DELETE", f"/api/tokens/{ident}")
        except ForbiddenError:
            pass  # already revoked or expired: the token is useless, delete it all the same
    path.unlink()
    output.line(f"signed out of {url}: token {ident} revoked and {path} deleted")
    return 0
