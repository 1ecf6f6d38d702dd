"""Bad input refused before the governance check is on the record too.

:func:`citywatch.governance.auth.governed` audits what happens inside it; a malformed
plate query, time, export path or probe URL is found before it runs, and such refusals
used to leave no record. Wrap that parsing in :func:`refusals_on_record`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from citywatch.errors import BadInputError, CitywatchError, mark_audited, was_audited
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import Action, load_actor, printable
from citywatch.settings import Settings
from citywatch.storage import Storage


@contextmanager
def refusals_on_record(
    settings: Settings,
    storage: Storage,
    action: Action,
    case_id: str | None,
    justification: str | None,
    params: Mapping[str, object] | None,
) -> Iterator[None]:
    """Audit a ``BadInputError`` raised in the body as a refusal of ``action``, then re-raise.

    Errors already recorded (by ``governed`` or ``authorized``) are not recorded twice.
    """
    try:
        yield
    except BadInputError as exc:
        if not was_audited(exc):
            try:
                role = load_actor(settings, storage).role_text
            except CitywatchError:
                role = ""
            AuditLog(storage).record(
                user=printable(settings.user),
                role=role,
                action=Action(action).value,
                outcome="refused",
                case_id=printable(case_id),
                justification=printable(justification),
                params=params,
                detail=str(exc),
            )
            mark_audited(exc)
        raise
