"""Pipeline status for operators: ``/api/status`` (JSON) and ``/metrics`` (Prometheus text).

Both need the ``status_read`` action (admins; the gate checks it before these run).
A Prometheus scraper authenticates with an admin's API token (``citywatch login``,
then ``authorization: {type: Bearer, credentials_file: ...}`` in its scrape config);
figures only, no people. Reads are not audited: they show counts and lags, not data.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from citywatch.service.deps import acting
from citywatch.tasks.status import pipeline_status, status_json
from citywatch.tasks.status_metrics import CONTENT_TYPE, prometheus_text

router = APIRouter()


@router.get("/api/status")
def status(request: Request) -> dict[str, object]:
    with acting(request) as (_, storage):
        return status_json(pipeline_status(storage))


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    with acting(request) as (_, storage):
        text = prometheus_text(pipeline_status(storage))
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
