"""Two real service instances (uvicorn) on one storage root, with a real Prefect server.

Sign in on one, act on the other; four-eyes compares signed-in people; searches are
Prefect flow runs tagged with the caller and the case; audit records carry how the
caller signed in, from where, and the case.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from citywatch.governance.audit_log import AuditLog
from citywatch.stack.prefect_server import start_prefect_server
from citywatch.storage import Storage
from tests.service_support import WHY, add_users, running_service, service_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server, given up to 5 minutes to start on a busy machine."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api_url, pid = start_prefect_server(tmp_path_factory.mktemp("prefect"), wait_s=300)
    os.environ["PREFECT_API_URL"] = api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            yield api_url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        os.killpg(pid, signal.SIGTERM)


PLATE = {"label": "stolen van", "reason": "stolen_vehicle", "expires": "7d", "case_id": "CASE-9"}


def signed_in(base: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=120)
    response = client.post("/api/auth/login", json={"name": name, "password": "correct horse battery"})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def on_other(client: httpx.Client, base: str) -> httpx.Client:
    """The same browser (cookie and CSRF token) talking to the other instance."""
    return httpx.Client(base_url=base, cookies=client.cookies, headers=client.headers, timeout=120)


def test_two_instances_one_root(tmp_path: Path, prefect_server: str) -> None:
    settings = service_settings(tmp_path)
    add_users(settings)
    with running_service(settings) as a, running_service(settings) as b:
        # sign in on A, act on B
        ivy_a = signed_in(a, "ivy")
        ivy_b = on_other(ivy_a, b)
        assert ivy_b.get("/api/me").json()["user"] == "ivy"
        made = ivy_b.post("/api/watchlist/plate", json={**PLATE, "plate": "AB1234", "justification": WHY})
        assert made.status_code == 200, made.text
        entry = made.json()
        assert entry["requested_by"] == "ivy" and entry["state"] == "pending"

        # four eyes across sign-in: a supervisor cannot approve their own request on any instance
        sam_a = signed_in(a, "sam")
        own = sam_a.post("/api/watchlist/plate", json={**PLATE, "plate": "XY99", "justification": WHY}).json()
        refused = on_other(sam_a, b).post(f"/api/watchlist/{own['id']}/approve", json={"justification": WHY})
        assert refused.status_code == 403 and "four-eyes" in refused.json()["error"]
        sue_b = signed_in(b, "sue")
        approved = sue_b.post(f"/api/watchlist/{own['id']}/approve", json={"justification": WHY})
        assert approved.status_code == 200 and approved.json()["approved_by"] == "sue"
        second = sue_b.post(f"/api/watchlist/{entry['id']}/approve", json={"justification": WHY})
        assert second.json()["state"] == "active"

        # sign out on B ends the session on A too
        assert on_other(sam_a, b).post("/api/auth/logout").status_code == 200
        assert sam_a.get("/api/me").status_code == 401

        # a plate search on A is a Prefect flow run tagged with the caller and the case
        found = ivy_a.post(
            "/api/search/plate", json={"text": "AB1234", "case_id": "CASE-9", "justification": WHY}
        )
        assert found.status_code == 200, found.text
        assert found.json()["sightings"] == []

        # an API token made on B works on A, and its uses are audited with its id
        token = ivy_b.post("/api/tokens", json={"label": "script", "days": 1}).json()
        bearer = httpx.Client(base_url=a, headers={"Authorization": f"Bearer {token['token']}"}, timeout=120)
        assert bearer.get("/api/watchlist").status_code == 200

    rows = AuditLog(Storage(settings)).rows()
    search = next(r for r in rows if r.action == "search_plate")
    via = json.loads(search.params)["via"]
    assert (search.user, search.case_id, search.outcome) == ("ivy", "CASE-9", "ok")
    assert via == {"auth": "session", "client": "127.0.0.1"}
    read = next(r for r in rows if r.action == "watchlist_read")
    assert json.loads(read.params)["via"] == {"auth": "token", "client": "127.0.0.1", "token_id": token["id"]}
    approvals = [r for r in rows if r.action == "watchlist_approve"]
    assert [(r.user, r.outcome) for r in approvals] == [("sam", "refused"), ("sue", "ok"), ("sue", "ok")]
    assert AuditLog(Storage(settings)).verify().ok

    runs = asyncio.run(_flow_runs_tagged("user:ivy"))
    assert any({"case:CASE-9", "citywatch-service"} <= set(tags) for tags in runs)


async def _flow_runs_tagged(tag: str) -> list[list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))
    return [list(r.tags) for r in runs]
