"""Who is acting in a service request, how they signed in, and from where.

The citywatch service sets a :class:`RequestContext` around each governed call (a
context variable, so it follows the call into a flow run in the same thread);
:func:`citywatch.governance.auth.governed` adds it to every audit record's
parameters under ``"via"`` and narrows the actor's roles to an API token's scope.
Direct CLI calls have none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from citywatch.governance.roles import Role

AuthMethod = Literal["session", "token", "oidc"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The authenticated person behind one service request."""

    user: str  # canonical user name (users table)
    method: AuthMethod
    client: str  # the client's address as the service saw it
    token_id: str = ""  # API token id (never the token)
    subject: str = ""  # OIDC subject
    roles: tuple[Role, ...] | None = None  # an API token's scope; None: the user's roles

    def audit_params(self) -> dict[str, object]:
        out: dict[str, object] = {"auth": self.method, "client": self.client}
        if self.token_id:
            out["token_id"] = self.token_id
        if self.subject:
            out["subject"] = self.subject
        return out


_CURRENT: ContextVar[RequestContext | None] = ContextVar("citywatch_request", default=None)


def current_request() -> RequestContext | None:
    return _CURRENT.get()


@contextmanager
def acting_for(context: RequestContext) -> Iterator[RequestContext]:
    """Run the body on behalf of ``context``'s person."""
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def with_request(params: Mapping[str, object] | None) -> Mapping[str, object] | None:
    """``params`` plus ``via`` (how the acting person signed in) under a service request."""
    context = current_request()
    if context is None:
        return params
    return {**(params or {}), "via": context.audit_params()}
