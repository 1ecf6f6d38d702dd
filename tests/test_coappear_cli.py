"""``citywatch search companions|recurring|recurring-approve`` and their service endpoints.

Real Prefect flow runs (the session's Prefect server), the root of tests/coappear_support.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from citywatch.cli.main import main
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.scope_approvals import ScopeRequestRow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import has_table
from tests import coappear_support as truth
from tests.conftest import settings_for
from tests.service_support import WHY, add_users, service_settings, sign_in

CASE = ["--case", truth.CASE_ID, "--why", WHY]
WINDOW = ["--since", "2026-11-20T07:00:00Z", "--until", "2026-11-20T10:00:00Z"]
CAMERAS = [arg for cam in truth.CAMERAS for arg in ("--camera", cam)]


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[np.ndarray]]:
    tmp = tmp_path_factory.mktemp("coappear-cli-embed")
    return truth.people_embeddings(settings_for(tmp / "data", tmp))


@pytest.fixture(scope="module")
def cli_root(tmp_path_factory: pytest.TempPathFactory, embeddings: dict[str, list[np.ndarray]]) -> Path:
    tmp = tmp_path_factory.mktemp("coappear-cli")
    truth.build_root(settings_for(tmp / "data", tmp), embeddings)
    return tmp / "data"


@pytest.fixture
def cli_env(cli_root: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CITYWATCH_STORAGE__ROOT", str(cli_root))
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(cli_root.parent / "state"))
    monkeypatch.setenv("CITYWATCH_USER", "demo-investigator")
    monkeypatch.delenv("CITYWATCH_API_URL", raising=False)
    return cli_root


def test_companions_json(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "companions", "--json", *CASE]) == 0
    data = json.loads(capsys.readouterr().out)
    top = data["groups"][0]
    assert top["thumb_uri"].startswith(f"thumbs/{truth.COMPANION}/")
    assert top["cameras"] == ["cam-a", "cam-b", "cam-c"] and len(top["accompanies"]) == 3
    faces = {s["face_id"].rsplit("@", 1)[0] for g in data["groups"] for s in g["sightings"]}
    assert not faces & truth.tracks_of(truth.NEVER_NEAR)
    assert main(["search", "companions", *CASE]) == 0
    assert "2 companion groups within ±10 s of 3 subject sightings" in capsys.readouterr().out


def test_coappear_is_search_companions(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's spelling, ``citywatch coappear``, is the same command as ``search companions``."""
    from citywatch.cli.coappear import cmd_companions
    from citywatch.cli.main import build_parser

    for argv in (["coappear", *CASE], ["search", "companions", *CASE]):
        assert build_parser().parse_args(argv).handler is cmd_companions
    assert main(["coappear", "--json", *CASE]) == 0
    top = json.loads(capsys.readouterr().out)["groups"][0]
    assert top["thumb_uri"].startswith(f"thumbs/{truth.COMPANION}/") and len(top["accompanies"]) == 3
    assert main(["coappear", "--window", "-1", *CASE]) == 2
    assert "must be 0 or more" in capsys.readouterr().err


def test_cli_bad_input_exit_2_and_analyst_exit_3(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "companions", "--window", "-5", *CASE]) == 2
    assert "--window -5.0: seconds around each sighting must be 0 or more" in capsys.readouterr().err
    assert main(["search", "companions", "--case", "EMPTY-2", "--why", WHY]) == 2
    assert "keeps no sightings" in capsys.readouterr().err
    assert (
        main(["search", "recurring", *CAMERAS, "--since", "2026-11-01", "--until", "2026-11-20", *CASE]) == 2
    )
    assert "a window of 19 days (the limit is 7)" in capsys.readouterr().err
    assert not has_table(Storage(Settings(storage__root=str(cli_env))).db, ScopeRequestRow.TABLE)
    assert (
        main(["search", "recurring", *CAMERAS, "--since", "2026-12-01", "--until", "2026-12-02", *CASE]) == 2
    )
    assert "no faces on" in capsys.readouterr().err
    assert main(["--user", "demo-analyst", "search", "recurring", *CAMERAS, *WINDOW, *CASE]) == 3
    assert "may not search_recurring" in capsys.readouterr().err


def test_cli_request_approve_run(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    month = ["--since", "2026-11-01T00:00:00Z", "--until", "2026-11-30T00:00:00Z"]
    assert main(["search", "recurring", *CAMERAS, *month, "--request-approval", "--json", *CASE]) == 0
    request_id = json.loads(capsys.readouterr().out)["pending_request"]
    approve = [
        "search",
        "recurring-approve",
        request_id,
        "--case",
        truth.CASE_ID,
        "--why",
        "month is proportionate",
    ]
    assert main(approve) == 3  # an investigator may not approve
    assert main(["--user", "demo-supervisor", *approve]) == 0
    assert f"approved {request_id} of demo-investigator" in capsys.readouterr().out
    assert (
        main(["search", "recurring", *CAMERAS, *month, "--approval", request_id, "--min-count", "4", *CASE])
        == 0
    )
    out = capsys.readouterr().out
    assert "groups seen at least 4 times on 4 cameras" in out and f"thumbs/{truth.RECURRING}/" in out
    records = AuditLog(Storage(Settings(storage__root=str(cli_env)))).list(case_id=truth.CASE_ID, limit=50)
    assert {"search_recurring", "recurring_approve", "search_coappear"} <= {r.action for r in records}
    assert all(r.justification for r in records)


@pytest.fixture(scope="module")
def service_root(
    tmp_path_factory: pytest.TempPathFactory, embeddings: dict[str, list[np.ndarray]]
) -> Settings:
    root = tmp_path_factory.mktemp("coappear-service") / "data"
    settings = service_settings(root)
    truth.build_root(settings, embeddings)
    add_users(settings)
    return settings


def test_service_endpoints(service_root: Settings, prefect_api: str) -> None:
    from citywatch.service.app import create_app

    body = {"case_id": truth.CASE_ID, "justification": WHY}
    with TestClient(create_app(service_root)) as ivy, TestClient(create_app(service_root)) as sam:
        headers = sign_in(ivy, "ivy")
        found = ivy.post("/api/search/companions", json=body, headers=headers)
        assert found.status_code == 200, found.text
        assert found.json()["groups"][0]["thumb_uri"].startswith(f"thumbs/{truth.COMPANION}/")
        bad = ivy.post("/api/search/companions", json={**body, "window_s": -1}, headers=headers)
        assert bad.status_code == 400 and "must be 0 or more" in bad.json()["error"]

        month = {**body, "cameras": list(truth.CAMERAS), "since": "2026-11-01", "until": "2026-11-30"}
        over = ivy.post("/api/search/recurring", json=month, headers=headers)
        assert over.status_code == 400 and "the limit is 7" in over.json()["error"]
        asked = ivy.post("/api/search/recurring", json={**month, "request_approval": True}, headers=headers)
        request_id = asked.json()["pending_request"]
        path = f"/api/search/recurring/{request_id}/approve"
        assert ivy.post(path, json=body, headers=headers).status_code == 403
        approved = sam.post(path, json=body, headers=sign_in(sam, "sam"))
        assert approved.status_code == 200 and approved.json()["approved_by"] == "sam"
        ran = ivy.post("/api/search/recurring", json={**month, "approval": request_id}, headers=headers)
        assert ran.status_code == 200 and ran.json()["groups"]

        companion = sorted(s["face_id"] for s in found.json()["groups"][0]["sightings"])
        searched = ivy.post("/api/search/group", json={**body, "sightings": companion}, headers=headers)
        assert searched.status_code == 200, searched.text
        searched_tracks = {s["face_id"].rsplit("@", 1)[0] for s in searched.json()["sightings"]}
        assert searched_tracks == truth.tracks_of(truth.COMPANION)
        entry = {**body, "sightings": companion, "label": "companion", "reason": "suspect", "expires": "3d"}
        enrolled = ivy.post("/api/watchlist/group", json=entry, headers=headers)
        assert enrolled.status_code == 200 and enrolled.json()["status"] == "pending"

        ann = TestClient(create_app(service_root))
        refused = ann.post("/api/search/companions", json=body, headers=sign_in(ann, "ann"))
        assert refused.status_code == 403
    records = AuditLog(Storage(service_root)).list(case_id=truth.CASE_ID, limit=50)
    assert {(r.user, r.action, r.outcome) for r in records} >= {
        ("ivy", "search_coappear", "ok"),
        ("sam", "recurring_approve", "ok"),
        ("ivy", "search_recurring", "ok"),
        ("ivy", "search_face", "ok"),
        ("ivy", "watchlist_request", "ok"),
    }
    refusals = AuditLog(Storage(service_root)).list(user="ann", limit=10)
    assert ("search_coappear", "refused") in {(r.action, r.outcome) for r in refusals}  # at the gate


def test_cli_promote(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    group = [arg for t in sorted(truth.tracks_of(truth.RECURRING)) for arg in ("--sighting", f"{t}@1")]
    assert main(["search", "promote", *group, "--json", *CASE]) == 0
    found = {s["face_id"].rsplit("@", 1)[0] for s in json.loads(capsys.readouterr().out)}
    assert found == truth.tracks_of(truth.RECURRING)
    assert main(["search", "promote", *group, "--watchlist", *CASE]) == 2
    assert "--watchlist needs --label and --reason" in capsys.readouterr().err
    entry = ["--watchlist", "--label", "unknown 1", "--reason", "suspect", "--expires", "2d"]
    assert main(["search", "promote", *group, *entry, *CASE]) == 0
    assert "from the group added, pending approval by a second person" in capsys.readouterr().out
