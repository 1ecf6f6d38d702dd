"""Users (admin): list, add, set a password, deactivate, enrol a TOTP second factor."""

from __future__ import annotations

from fastapi import APIRouter, Request

from citywatch.governance.auth import Action, governed
from citywatch.governance.totp import enrol_totp
from citywatch.governance.users import add_user, get_user, list_users, set_active, set_password
from citywatch.service.deps import acting
from citywatch.service.models import NewPassword, NewUser

router = APIRouter(prefix="/api/users")


@router.get("")
def users(request: Request) -> list[dict[str, object]]:
    with acting(request) as (settings, storage):
        with governed(settings, storage, Action.USERS_MANAGE, None, None, {"command": "users list"}) as run:
            rows = list_users(storage)
            run.result_count = len(rows)
    return [r.public() for r in rows]


@router.post("")
def new_user(body: NewUser, request: Request) -> dict[str, object]:
    with acting(request) as (settings, storage):
        params = {"command": "users add", "name": body.name, "roles": list(body.roles)}
        with governed(settings, storage, Action.USERS_MANAGE, None, None, params) as run:
            row = add_user(storage, body.name, body.roles, body.password, run.actor.user)
            run.result_count = 1
    return row.public()


@router.post("/{name}/password")
def new_password(name: str, body: NewPassword, request: Request) -> dict[str, object]:
    with acting(request) as (settings, storage):
        params = {"command": "users passwd", "name": name[:64]}
        with governed(settings, storage, Action.USERS_MANAGE, None, None, params) as run:
            row = set_password(storage, name, body.password)
            run.result_count = 1
    return row.public()


@router.post("/{name}/deactivate")
def deactivate(name: str, request: Request) -> dict[str, object]:
    with acting(request) as (settings, storage):
        params = {"command": "users deactivate", "name": name[:64]}
        with governed(settings, storage, Action.USERS_MANAGE, None, None, params) as run:
            row = set_active(storage, name, False)
            run.result_count = 1
    return row.public()


@router.post("/{name}/totp")
def totp(name: str, request: Request) -> dict[str, object]:
    """A new TOTP secret for ``name``: the otpauth URI is shown once, to hand to them."""
    with acting(request) as (settings, storage):
        params = {"command": "users totp", "name": name[:64]}
        with governed(settings, storage, Action.USERS_MANAGE, None, None, params) as run:
            user = get_user(storage, name)
            uri = enrol_totp(storage, user.id)
            run.result_count = 1
    return {"user": user.id, "otpauth_uri": uri, "note": "shown once"}
