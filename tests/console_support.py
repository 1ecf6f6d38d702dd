"""Shared by the console page tests: sign in through the login form as console.js does."""

from __future__ import annotations

import html as html_lib
import re

from fastapi.testclient import TestClient

from citywatch.service.app import create_app
from citywatch.settings import Settings
from tests.service_support import PASSWORD

FORM = {"x": ("", b"")}  # console.js sends FormData: multipart
JS = {"X-Console": "1"}
WHY = "suspect in the 2026-11-20 robbery on Main St"


def signed_in(settings: Settings, name: str) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(create_app(settings))
    r = client.post("/login", data={"name": name, "password": PASSWORD}, files=FORM, headers=JS)
    assert r.status_code == 200 and r.headers["x-redirect"] == "/cases", r.text
    page = client.get("/cases").text if name != "ann" else client.get("/login").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    return client, {**JS, "X-CSRF-Token": token.group(1) if token else ""}


def message(html: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)<', html, re.S)
    return html_lib.unescape(found.group(1).strip()) if found else ""
