"""Index runs in the audit log: a start record before any work, an end record after.

An index run writes ``index_start`` (who, what footage, how many segments) before it
claims its first segment, and ``index_end`` (indexed, failed, faces, plates; outcome
``failed`` if the run itself raised) when it is over. Both carry the run's id. A run
killed half-way (the machine lost, the process OOM-killed) leaves a start with no end:
:func:`index_runs` pairs them, and ``citywatch audit runs`` shows the unfinished ones.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from citywatch.governance.audit_log import AuditLog, AuditRow, Outcome

INDEX_START = "index_start"
INDEX_END = "index_end"
RUN_ACTIONS = (INDEX_START, INDEX_END)
"""Audit actions that record a run, not a guarded action of a person."""


@dataclass(frozen=True, slots=True)
class IndexRunCounts:
    """What an index run did, for its end record."""

    indexed: int
    failed: int
    faces: int
    plates: int
    skipped_leased: int


class IndexRunAudit:
    """The start and end records of one index run (``run_id``: its Prefect flow run id)."""

    def __init__(self, log: AuditLog, *, user: str, role: str, footage: str, run_id: str) -> None:
        self.log = log
        self.user, self.role = user, role
        self.params = {"footage": footage, "run": run_id}

    def start(self, pending: int) -> AuditRow:
        return self.log.record(
            user=self.user,
            role=self.role,
            action=INDEX_START,
            outcome="ok",
            params=self.params,
            result_count=pending,
            detail=f"{pending} segments to index",
        )

    def end(self, counts: IndexRunCounts, error: str = "") -> AuditRow:
        outcome: Outcome = "failed" if error else "ok"
        detail = (
            f"{counts.indexed} indexed, {counts.failed} failed, {counts.faces} faces, "
            f"{counts.plates} plates, {counts.skipped_leased} left to other runs"
        )
        return self.log.record(
            user=self.user,
            role=self.role,
            action=INDEX_END,
            outcome=outcome,
            params={**self.params, "failed": counts.failed, "faces": counts.faces, "plates": counts.plates},
            result_count=counts.indexed,
            detail=f"{detail}; the run failed: {error}" if error else detail,
        )


@dataclass(frozen=True, slots=True)
class IndexRun:
    """One run as the audit log tells it: its start and, unless it never finished, its end."""

    run_id: str
    footage: str
    user: str
    started: dt.datetime
    start_seq: int
    end: AuditRow | None

    @property
    def state(self) -> str:
        if self.end is None:
            return "no end record (crashed, or still running)"
        return "finished" if self.end.outcome == "ok" else "failed"


def index_runs(log: AuditLog) -> list[IndexRun]:
    """Every index run recorded, oldest first, each start paired with its end (if any)."""
    rows = [r for r in log.rows() if r.action in RUN_ACTIONS]
    ends = {_param(r, "run"): r for r in rows if r.action == INDEX_END}
    return [
        IndexRun(
            run_id=_param(r, "run"),
            footage=_param(r, "footage"),
            user=r.user,
            started=r.ts,
            start_seq=r.seq,
            end=ends.get(_param(r, "run")),
        )
        for r in rows
        if r.action == INDEX_START
    ]


def _param(row: AuditRow, name: str) -> str:
    params = json.loads(row.params) if row.params else {}
    return str(params.get(name, "")) if isinstance(params, dict) else ""
