"""What endpoint code uses: the caller, the service, and acting on the caller's behalf."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, Request

from citywatch.governance.audit_log import AuditLog
from citywatch.governance.request_context import acting_for
from citywatch.service.identity import Identity, Service
from citywatch.settings import Settings
from citywatch.storage import Storage


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def identity_of(request: Request) -> Identity:
    identity = getattr(request.state, "identity", None)
    if not isinstance(identity, Identity):  # the gate lets no such request through; belt and braces
        raise HTTPException(401, "sign in first")
    return identity


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


@contextmanager
def acting(request: Request) -> Iterator[tuple[Settings, Storage]]:
    """(settings acting as the caller, storage), with the caller's request context set.

    Run governed code inside: its audit records name the caller, how they signed in
    and from where, and an API token's scope narrows their roles.
    """
    identity = identity_of(request)
    service = service_of(request)
    settings = service.settings.model_copy(update={"user": identity.user})
    with acting_for(identity.context()):
        yield settings, service.storage


def audit_event(
    request: Request,
    action: str,
    outcome: str,
    *,
    user: str,
    role: str = "",
    detail: str = "",
    **params: object,
) -> None:
    """An audit record for a sign-in event (sign_in, sign_out, token_create, ...)."""
    identity = getattr(request.state, "identity", None)
    via: dict[str, object] = (
        identity.context().audit_params()
        if isinstance(identity, Identity)
        else {"client": client_of(request)}
    )
    AuditLog(service_of(request).storage).record(
        user=user,
        role=role,
        action=action,
        outcome=outcome,  # type: ignore[arg-type]
        params={**params, "via": via},
        detail=detail,
    )
