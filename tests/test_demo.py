"""`citywatch demo` signs its people in: random passwords printed once, steps through the service.

Runs the real demo (in-process CLI, real Prefect server, the service on a loopback
port) on a copy of the session's indexed sample, so its index step has little to do.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from citywatch.cli.main import main
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.users import list_users
from citywatch.service.app import create_app
from citywatch.settings import Settings
from citywatch.storage import Storage
from tests.conftest import Indexed

pytestmark = pytest.mark.slow

PEOPLE = ("demo-admin", "demo-investigator", "demo-supervisor", "demo-supervisor-2", "demo-analyst")


def _passwords(out: str) -> dict[str, str]:
    found = dict(re.findall(r"^(demo-[a-z0-9-]+)\s+[a-z,]+\s+(\S+)\s*$", out, flags=re.MULTILINE))
    assert sorted(found) == sorted(PEOPLE), out
    return found


def _files_containing(folder: Path, secret: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and secret in p.read_bytes()]


def test_demo_signs_its_people_in(
    indexed: Indexed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    shutil.copytree(indexed.root, root)
    state = tmp_path / "state"
    for key in ("CITYWATCH_USER", "CITYWATCH_API_URL", "CITYWATCH_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(state))
    monkeypatch.setenv("CITYWATCH_DASK__WORKERS", "2")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))

    # the copied sample already holds other tests' searches: look only at what the demo adds
    before = len(AuditLog(Storage(Settings(storage__root=str(root), storage__state_dir=str(state)))).rows())
    assert main(["--root", str(root), "demo"]) == 0
    out = capsys.readouterr().out
    passwords = _passwords(out)
    assert len(set(passwords.values())) == len(PEOPLE)
    for password in passwords.values():
        assert out.count(password) == 1  # printed once
        assert not _files_containing(root, password.encode())  # never stored in plain text
        assert not _files_containing(state, password.encode())
    assert not (tmp_path / "config").exists()  # no token file written for the demo's people

    settings = Settings(storage__root=str(root), storage__state_dir=str(state))
    storage = Storage(settings)
    accounts = {u.id: u for u in list_users(storage)}
    assert set(PEOPLE) <= set(accounts)
    assert all(accounts[n].password_hash.startswith("$argon2id$") for n in PEOPLE)

    rows = AuditLog(storage).rows()[before:]
    searches = [r for r in rows if r.action in ("search_face", "search_plate") and r.outcome == "ok"]
    assert searches and {r.user for r in searches} == {"demo-investigator"}
    assert all(json.loads(r.params)["via"]["auth"] == "token" for r in searches)
    approvals = [r for r in rows if r.action == "watchlist_approve" and r.outcome == "ok"]
    assert approvals and {r.user for r in approvals} == {"demo-supervisor"}
    assert all(json.loads(r.params)["via"]["auth"] == "token" for r in approvals)
    signed_in = [r for r in rows if r.action == "sign_in" and r.outcome == "ok"]
    assert {r.user for r in signed_in} == {"demo-investigator", "demo-supervisor"}
    revoked = [r for r in rows if r.action == "token_revoke"]
    assert {r.user for r in revoked} == {"demo-investigator", "demo-supervisor"}

    # the printed passwords are the accounts' real ones
    client = TestClient(create_app(settings))
    for name in ("demo-analyst", "demo-supervisor-2"):
        login = client.post("/api/auth/login", json={"name": name, "password": passwords[name]})
        assert login.status_code == 200, login.text
    assert client.post("/api/auth/login", json={"name": "demo-admin", "password": "guess"}).status_code == 401
    assert json.loads((root / "reports" / "demo-summary.json").read_text())["searched"]
