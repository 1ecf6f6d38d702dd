"""The demo's people: accounts with random passwords, signed in to a local citywatch service.

``citywatch demo`` makes one account per demo person in the users table, each with a
fresh random password that it prints once (the table keeps only the argon2id hash; a
re-run gives the demo's own accounts new passwords and ends their old sessions). It
then starts the service on a loopback port inside the demo's process, signs each
person in with that password, and has them create a short-lived API token, so the
people's steps (searches, watchlist requests and approvals, alert review) go through
the service exactly as the CLI in client mode does, audited as the signed-in person.
The tokens are revoked when the demo ends; nothing of them is written to disk.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from citywatch.cli import output
from citywatch.cli.client import TOKEN_ENV
from citywatch.errors import BadInputError, ForbiddenError
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.roles import Action
from citywatch.governance.users import add_user, find_user, set_password
from citywatch.storage import Storage

DEMO_CREATOR = "citywatch-demo"
API_URL_ENV = "CITYWATCH_API_URL"
DEMO_PEOPLE: dict[str, list[str]] = {
    "demo-admin": ["admin"],
    "demo-investigator": ["investigator"],
    "demo-supervisor": ["supervisor"],
    "demo-supervisor-2": ["supervisor"],
    "demo-analyst": ["analyst"],
}


@dataclass(frozen=True, slots=True)
class SignedIn:
    name: str
    token: str  # an API token, only in this process's memory
    token_id: str


def demo_accounts(storage: Storage) -> dict[str, str]:
    """Make (or re-key) the demo accounts and print their passwords once: name -> password.

    An account of that name made by anyone but the demo is left alone and refused:
    its password is not the demo's to change.
    """
    passwords: dict[str, str] = {}
    for name, roles in DEMO_PEOPLE.items():
        password = secrets.token_urlsafe(12)
        existing = find_user(storage, name)
        if existing is None:
            add_user(storage, name, roles, password, DEMO_CREATOR)
        elif existing.created_by == DEMO_CREATOR:
            set_password(storage, name, password)  # also ends the account's older sessions
        else:
            raise BadInputError(
                f"the account {name!r} exists and was not made by the demo (created by "
                f"{existing.created_by!r}); run the demo on its own --root"
            )
        passwords[name] = password
    AuditLog(storage).record(
        user="bootstrap",
        role="",
        action=Action.USERS_MANAGE.value,
        outcome="ok",
        params={"command": "demo accounts", "names": sorted(passwords)},
        result_count=len(passwords),
        detail="demo accounts with random passwords (printed once, stored as argon2id hashes)",
    )
    output.line("\ndemo accounts (passwords shown only now; the users table keeps argon2id hashes):")
    output.table(
        ["account", "role", "password"],
        [[name, ",".join(DEMO_PEOPLE[name]), pw] for name, pw in passwords.items()],
    )
    return passwords


def sign_in(base_url: str, name: str, password: str) -> SignedIn:
    """Sign ``name`` in with their password and make a one-day API token for the demo's steps."""
    with httpx.Client(base_url=base_url, timeout=60) as http:
        login = http.post("/api/auth/login", json={"name": name, "password": password})
        if login.status_code != 200:
            raise ForbiddenError(f"demo: {name} could not sign in: {login.text[:300]}")
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        made = http.post("/api/tokens", json={"label": "citywatch demo", "days": 1}, headers=csrf)
        if made.status_code != 200:
            raise ForbiddenError(f"demo: {name} could not get an API token: {made.text[:300]}")
        http.post("/api/auth/logout", headers=csrf)
    body = made.json()
    return SignedIn(name, str(body["token"]), str(body["id"]))


def sign_out(base_url: str, person: SignedIn) -> None:
    """Revoke the person's demo token (best effort: the service may be gone)."""
    try:
        httpx.delete(
            f"{base_url}/api/tokens/{person.token_id}",
            headers={"Authorization": f"Bearer {person.token}"},
            timeout=30,
        )
    except httpx.HTTPError:
        output.error(f"demo: could not revoke the API token of {person.name}; it expires in a day")


@contextmanager
def acting_as(base_url: str, person: SignedIn) -> Iterator[None]:
    """CLI calls inside run in client mode, as ``person`` (their token, in the environment only)."""
    saved = {key: os.environ.get(key) for key in (API_URL_ENV, TOKEN_ENV)}
    os.environ[API_URL_ENV] = base_url
    os.environ[TOKEN_ENV] = person.token
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
