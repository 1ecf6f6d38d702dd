"""A new password (or a deactivation) ends every session the person had."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from citywatch.governance.users import set_password
from citywatch.service.app import create_app
from citywatch.storage import Storage
from tests.service_support import add_users, service_settings, sign_in

NEW_PASSWORD = "a much better passphrase"


def test_changing_a_password_ends_that_users_sessions(tmp_path: Path) -> None:
    settings = service_settings(tmp_path)
    add_users(settings, {"ivy": ["investigator"], "sam": ["supervisor"], "ada": ["admin"]})
    app = create_app(settings)
    laptop, phone, other, admin = (TestClient(app) for _ in range(4))
    sign_in(laptop, "ivy")
    sign_in(phone, "ivy")
    sign_in(other, "sam")
    headers = sign_in(admin, "ada")
    assert laptop.get("/api/me").json()["user"] == "ivy"

    changed = admin.post("/api/users/ivy/password", json={"password": NEW_PASSWORD}, headers=headers)
    assert changed.status_code == 200, changed.text

    for client in (laptop, phone):
        response = client.get("/api/me")
        assert response.status_code == 401 and "ended" in response.json()["error"]
    assert other.get("/api/me").json()["user"] == "sam"  # someone else's session is untouched
    assert admin.get("/api/me").json()["user"] == "ada"
    sign_in(laptop, "ivy", password=NEW_PASSWORD)
    assert laptop.get("/api/me").json()["user"] == "ivy"


def test_a_password_set_outside_the_service_ends_sessions_too(tmp_path: Path) -> None:
    """`citywatch users passwd` writes the same table: any instance's sessions of that user end."""
    settings = service_settings(tmp_path)
    add_users(settings, {"ivy": ["investigator"]})
    first, second = TestClient(create_app(settings)), TestClient(create_app(settings))
    sign_in(first, "ivy")
    sign_in(second, "ivy")
    set_password(Storage(settings), "ivy", NEW_PASSWORD)
    assert first.get("/api/me").status_code == 401
    assert second.get("/api/me").status_code == 401


def test_deactivating_a_user_ends_their_sessions(tmp_path: Path) -> None:
    settings = service_settings(tmp_path)
    add_users(settings, {"ivy": ["investigator"], "ada": ["admin"]})
    app = create_app(settings)
    ivy, admin = TestClient(app), TestClient(app)
    sign_in(ivy, "ivy")
    headers = sign_in(admin, "ada")
    assert admin.post("/api/users/ivy/deactivate", headers=headers).status_code == 200
    assert ivy.get("/api/me").status_code == 401
    owners = [json.loads(p.read_text())["user"] for p in (tmp_path / "auth" / "sessions").glob("*.json")]
    assert owners == ["ada"]
