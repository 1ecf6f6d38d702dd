"""The console's pages through TestClient: sign-in errors and lockout, TOTP, cases, refusals,
headers, time zones. (The browser tests, test_console_browser.py, drive the same pages.)"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pyotp
import pytest
from fastapi.testclient import TestClient

from citywatch.governance.audit_log import AuditLog
from citywatch.governance.totp import enrol_totp
from citywatch.service.app import create_app
from citywatch.service.pages.render import from_local, local_time
from citywatch.settings import Settings
from citywatch.storage import Storage
from tests.console_support import FORM, JS, WHY, message, signed_in
from tests.service_support import PASSWORD, add_users, service_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = service_settings(tmp_path / "root")
    add_users(s)
    return s


def test_a_page_without_sign_in_shows_the_sign_in_form(settings: Settings) -> None:
    r = TestClient(create_app(settings)).get("/case?case=C-1")
    assert r.status_code == 401 and "<h1>Sign in</h1>" in r.text
    assert 'value="/case?case=C-1"' in r.text  # back there after signing in
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'self'" in csp


def test_wrong_password_then_lockout_are_said_in_words(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    for _ in range(3):
        r = client.post("/login", data={"name": "ivy", "password": "nope"}, files=FORM, headers=JS)
        assert r.status_code == 401 and message(r.text) == "Name or password is wrong."
    r = client.post("/login", data={"name": "ivy", "password": PASSWORD}, files=FORM, headers=JS)
    assert r.status_code == 429 and "locked" in message(r.text) and "Try again later" in message(r.text)
    refused = [
        x for x in AuditLog(Storage(settings)).rows() if x.action == "sign_in" and x.outcome == "refused"
    ]
    assert len(refused) == 4


def test_totp_field_appears_when_the_account_needs_a_code(settings: Settings) -> None:
    uri = enrol_totp(Storage(settings), "sam")
    client = TestClient(create_app(settings))
    r = client.post("/login", data={"name": "sam", "password": PASSWORD}, files=FORM, headers=JS)
    assert r.status_code == 401 and "TOTP code is required" in message(r.text)
    assert 'name="totp"' in r.text and "required" in r.text.split('name="totp"', 1)[1].split(">", 1)[0]
    code = pyotp.parse_uri(uri).now()
    r = client.post(
        "/login", data={"name": "sam", "password": PASSWORD, "totp": code}, files=FORM, headers=JS
    )
    assert r.status_code == 200 and r.headers["x-redirect"] == "/cases"


def test_after_sign_in_only_a_path_on_this_service(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    for target, expected in (
        ("//evil.example/x", "/cases"),
        ("https://evil.example", "/cases"),
        ("/case?case=A", "/case?case=A"),
    ):
        data = {"name": "ivy", "password": PASSWORD, "next": target}
        r = client.post("/login", data=data, files=FORM, headers=JS)
        assert r.headers["x-redirect"] == expected


def test_cases_are_created_with_a_legal_basis_and_audited(settings: Settings) -> None:
    client, headers = signed_in(settings, "ivy")
    no_csrf = client.post(
        "/cases", data={"case_id": "C-1", "title": "t", "legal_basis": WHY}, files=FORM, headers=JS
    )
    assert no_csrf.status_code == 403 and "CSRF" in message(no_csrf.text)
    short = client.post(
        "/cases", data={"case_id": "C-1", "title": "t", "legal_basis": "because"}, files=FORM, headers=headers
    )
    assert short.status_code == 400 and "at least 10 characters" in message(short.text)
    bad = client.post(
        "/cases", data={"case_id": "../x", "title": "t", "legal_basis": WHY}, files=FORM, headers=headers
    )
    assert bad.status_code == 400 and "case id" in message(bad.text)
    ok = client.post(
        "/cases", data={"case_id": "C-1", "title": "Robbery", "legal_basis": WHY}, files=FORM, headers=headers
    )
    assert ok.status_code == 200 and ok.headers["x-redirect"] == "/case?case=C-1"
    again = client.post(
        "/cases", data={"case_id": "C-1", "title": "Other", "legal_basis": WHY}, files=FORM, headers=headers
    )
    assert again.status_code == 400 and "exists already" in message(again.text)
    page = client.get("/case?case=C-1")
    assert page.status_code == 200 and "Robbery" in page.text and WHY in page.text
    assert "Nothing kept yet" in page.text and "No searches yet" in page.text
    assert client.get("/cases").text.count("/case?case=C-1") == 1
    missing = client.get("/case?case=C-2")
    assert (
        missing.status_code == 404 and message(missing.text) == "case 'C-2' does not exist: create it first"
    )
    rows = [r for r in AuditLog(Storage(settings)).rows() if r.action == "case_open"]
    assert [(r.outcome, r.case_id) for r in rows if r.outcome == "ok"] == [("ok", "C-1"), ("ok", "C-1")]
    assert all(r.user == "ivy" for r in rows)


@pytest.mark.parametrize(
    "path", ["/cases", "/case?case=C-1", "/search/face?case=C-1", "/media/thumb?case=C-1&kind=face&id=f"]
)
def test_an_analyst_gets_a_403_page(settings: Settings, path: str) -> None:
    client, _ = signed_in(settings, "ann")
    r = client.get(path)
    assert r.status_code == 403 and "<h1>Not allowed</h1>" in r.text
    assert "user 'ann' (role analyst) may not" in message(r.text)


def test_an_admin_cannot_search_people_from_the_console(settings: Settings) -> None:
    client, _ = signed_in(settings, "ada")
    assert client.get("/search/face?case=C-1").status_code == 403


def test_sign_out_ends_the_session(settings: Settings) -> None:
    client, headers = signed_in(settings, "ivy")
    r = client.post("/logout", headers=headers)
    assert r.headers["x-redirect"] == "/login?signed_out=1"
    assert client.get("/cases").status_code == 401
    assert "You are signed out." in client.get("/login?signed_out=1").text


def test_assets_are_served_by_the_service_and_nothing_else_is() -> None:
    client = TestClient(
        create_app(Settings(storage__root="/nonexistent-root", storage__state_dir="/tmp/x-state")),
        raise_server_exceptions=False,
    )
    assert client.get("/static/console.js").status_code == 200
    assert client.get("/static/console.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/..%2Frender.py").status_code == 404
    assert client.get("/static/render.py").status_code == 404


def test_times_are_read_and_shown_in_the_users_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert from_local("2026-11-20T14:00", paris, "from") == dt.datetime(2026, 11, 20, 13, 0, tzinfo=dt.UTC)
    assert from_local("", paris, "from") is None
    moment = dt.datetime(2026, 7, 1, 12, 0, 5, tzinfo=dt.UTC)
    assert local_time(moment, paris) == "2026-07-01 14:00:05 UTC+02:00"
    from citywatch.errors import BadInputError

    with pytest.raises(BadInputError, match="from 'yesterday' is not a date and time"):
        from_local("yesterday", paris, "from")


def test_a_supervisor_reads_and_verifies_the_audit_log_an_investigator_cannot(settings: Settings) -> None:
    ivy, ivy_headers = signed_in(settings, "ivy")
    ivy.post(
        "/cases", data={"case_id": "C-9", "title": "t", "legal_basis": WHY}, files=FORM, headers=ivy_headers
    )
    assert ivy.get("/audit").status_code == 403
    sam, headers = signed_in(settings, "sam")
    page = sam.get("/audit?user=ivy&action=case_open")
    assert page.status_code == 200
    rows = re.findall(r"<tr><td>(\d+)</td>.*?</tr>", page.text, re.S)
    assert len(rows) == 1 and "C-9" in page.text and WHY in page.text
    verdict = sam.post("/audit/verify", headers=headers)
    assert verdict.status_code == 200 and "The chain is intact" in verdict.text
    assert any(r.action == "audit_read" and r.user == "sam" for r in AuditLog(Storage(settings)).rows())


def test_bad_search_input_is_said_before_anything_runs(settings: Settings) -> None:
    client, headers = signed_in(settings, "ivy")
    client.post(
        "/cases", data={"case_id": "C-1", "title": "t", "legal_basis": WHY}, files=FORM, headers=headers
    )
    junk = {"probe": ("p.png", b"not an image", "image/png")}
    r = client.post("/search/face", data={"case_id": "C-1"}, files=junk, headers=headers)
    assert r.status_code == 400 and "photo p.png is not a readable JPEG or PNG image" in message(r.text)
    window = {
        "case_id": "C-1",
        "since": "2026-11-20T10:00",
        "until": "2026-11-20T09:00",
        "tz": "Europe/Paris",
    }
    r = client.post("/search/face", data=window, files=junk, headers=headers)
    assert r.status_code == 400 and message(r.text) == "the time window's end must be after its start"
    r = client.post(
        "/search/plate",
        data={"case_id": "C-1", "text": "AB12", "near_lat": "22.3"},
        files=FORM,
        headers=headers,
    )
    assert r.status_code == 400 and "latitude, longitude and a radius" in message(r.text)
    r = client.post(
        "/alerts/review", data={"alert_id": "a", "decision": "confirm"}, files=FORM, headers=headers
    )
    assert r.status_code == 403  # an investigator does not review alerts
    sam, sam_headers = signed_in(settings, "sam")
    r = sam.post(
        "/alerts/review", data={"alert_id": "a", "decision": "confirm"}, files=FORM, headers=sam_headers
    )
    assert r.status_code == 400 and "write a note" in message(r.text)
    r = client.get("/exports/file?case=C-1&export=../../etc&part=mp4")
    assert r.status_code == 400 and "is not an export id" in message(r.text)
    assert not [
        x for x in AuditLog(Storage(settings)).rows() if x.action == "search_face" and x.outcome == "ok"
    ]


def test_watchlist_request_and_four_eyes_approval(settings: Settings) -> None:
    ivy, ivy_h = signed_in(settings, "ivy")
    ivy.post("/cases", data={"case_id": "C-1", "title": "t", "legal_basis": WHY}, files=FORM, headers=ivy_h)
    entry = {
        "case_id": "C-1",
        "kind": "plate",
        "plate": "AB1234",
        "label": "blue van",
        "reason": "stolen_vehicle",
    }
    r = ivy.post("/watchlist/request", data={**entry, "reason": "curiosity"}, files=FORM, headers=ivy_h)
    assert r.status_code == 400 and "reason must be one of" in message(r.text)
    r = ivy.post("/watchlist/request", data=entry, files=FORM, headers=ivy_h)
    assert r.status_code == 200 and "a supervisor other than ivy must approve it" in r.text
    queue = ivy.get("/watchlist").text
    entry_id = re.search(r'data-entry="([^"]+)"', queue).group(1)
    assert "needs another supervisor" in queue and "Approve</button>" not in queue
    sam, sam_h = signed_in(settings, "sam")
    own = sam.post("/watchlist/request", data={**entry, "plate": "XY99"}, files=FORM, headers=sam_h)
    assert own.status_code == 200
    own_id = next(e for e in re.findall(r'data-entry="([^"]+)"', sam.get("/watchlist").text) if e != entry_id)
    refused = sam.post(
        "/watchlist/approve", data={"entry_id": own_id, "justification": WHY}, files=FORM, headers=sam_h
    )
    assert refused.status_code == 403 and "four-eyes" in message(refused.text)
    ok = sam.post(
        "/watchlist/approve", data={"entry_id": entry_id, "justification": WHY}, files=FORM, headers=sam_h
    )
    assert ok.status_code == 200 and ok.headers["x-redirect"] == "/watchlist"
    assert "approved by sam" in sam.get("/watchlist").text
    case_page = ivy.get("/case?case=C-1").text
    assert "blue van" in case_page and "active" in case_page


def test_oidc_button_and_callback_land_a_browser_on_the_console(tmp_path: Path) -> None:
    from urllib.parse import urlsplit

    import httpx

    from citywatch.governance.oidc_links import link_identity
    from tests.oidc_provider import running_provider

    plain = service_settings(tmp_path / "plain")
    assert "Sign in with" not in TestClient(create_app(plain)).get("/login").text
    with running_provider("console-test", "console-test-secret") as provider:
        secret_file = tmp_path / "oidc-secret"
        secret_file.write_text("console-test-secret\n")
        secret_file.chmod(0o600)
        settings = service_settings(
            tmp_path / "root",
            oidc__issuer=provider.issuer,
            oidc__client_id="console-test",
            oidc__client_secret_file=str(secret_file),
            oidc__display_name="City SSO",
        )
        add_users(settings)
        link_identity(Storage(settings), provider.issuer, "idp-ivy-0001", "ivy", "ada")
        browser = TestClient(create_app(settings), follow_redirects=False)
        html_accept = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        page = browser.get("/login", headers=html_accept).text
        assert 'href="/api/auth/oidc/login">Sign in with City SSO</a>' in page
        # the 401 sign-in page a signed-out visitor gets offers the button too
        assert "Sign in with City SSO" in browser.get("/cases", headers=html_accept).text

        def callback(subject: str) -> str:
            provider.signed_in = subject
            to_provider = browser.get("/api/auth/oidc/login", headers=html_accept)
            assert to_provider.status_code == 302
            back = httpx.get(to_provider.headers["location"])
            assert back.status_code == 302
            parts = urlsplit(back.headers["location"])
            return f"{parts.path}?{parts.query}"

        refused = browser.get(callback("idp-nobody-9"), headers=html_accept)
        assert refused.status_code == 401 and "<h1>Sign in</h1>" in refused.text
        assert "No citywatch account is linked to the OIDC subject 'idp-nobody-9'" in message(refused.text)
        landed = browser.get(callback("idp-ivy-0001"), headers=html_accept)
        assert landed.status_code == 303 and landed.headers["location"] == "/cases"
        cases = browser.get("/cases", headers=html_accept)
        assert cases.status_code == 200 and "ivy" in cases.text and "<h1>Sign in</h1>" not in cases.text


def test_governance_messages_are_worded_for_the_web_not_the_cli() -> None:
    from citywatch.errors import BadInputError
    from citywatch.governance.alerts import AlertState, review
    from citywatch.governance.auth import Action, check_case
    from citywatch.service.pages.render import refusal_page
    from citywatch.service.pages.wording import web_wording

    with pytest.raises(BadInputError) as short:
        check_case(Action.SEARCH_FACE, "C-1", "because")
    with pytest.raises(BadInputError) as no_note:
        review(None, "a-1", AlertState.DISMISSED, "sam", "")  # type: ignore[arg-type] - fails first
    cli_short, cli_note = str(short.value), str(no_note.value)
    assert "(--why)" in cli_short and "--note" in cli_note  # the CLI's wording is unchanged
    for fragment in (False, True):
        page = refusal_page(400, cli_short, "/search/face", fragment).decode()
        assert message(page) == (
            "search_face needs a justification of at least 10 characters saying why this is necessary; got 7"
        )
        page = refusal_page(400, cli_note, "/alerts/review", fragment).decode()
        assert message(page) == "dismissing an alert needs a note saying why"
    assert web_wording("--since 2026-11-20 is after --until 2026-11-19") == (
        "Start 2026-11-20 is after end 2026-11-19"
    )
    assert web_wording("pass --trusted-keys FILE") == "pass --trusted-keys FILE"  # no web field: as is
