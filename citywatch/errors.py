"""One exception tree for the whole project.

- ``BadInputError``: the input is wrong; retrying will not help. The message names
  the input and what is wrong with it.
- ``TransientError``: I/O or a service hiccup; safe to retry.
- ``ForbiddenError``: the acting user may not do this.
"""

from __future__ import annotations

from typing import TypeVar

_E = TypeVar("_E", bound=BaseException)
_AUDITED = "citywatch_audited"


class CitywatchError(Exception):
    """Base of every error citywatch raises on purpose."""


class BadInputError(CitywatchError):
    """An input (file, value, config) is malformed; do not retry."""


class TransientError(CitywatchError):
    """A temporary failure (storage, network, commit conflict); retry."""


class NotFoundError(BadInputError):
    """A named thing (camera, segment, alert, table) does not exist."""


class ForbiddenError(CitywatchError):
    """The acting user's role does not allow the action."""


def mark_audited(exc: _E) -> _E:
    """Mark ``exc`` as already in the audit log, so no outer layer records it twice."""
    try:
        setattr(exc, _AUDITED, True)
    except AttributeError:  # an exception type without a __dict__
        pass
    return exc


def was_audited(exc: BaseException) -> bool:
    return bool(getattr(exc, _AUDITED, False))
