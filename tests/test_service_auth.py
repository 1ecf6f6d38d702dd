"""The service's door: rules for every endpoint, sessions, lockout, TOTP, names, API tokens."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient

from citywatch.governance.audit_log import AuditLog
from citywatch.governance.roles import PERMISSIONS, Role
from citywatch.governance.users import add_user
from citywatch.service.app import create_app, endpoints
from citywatch.service.rules import RULES
from citywatch.storage import Storage
from tests.service_support import PASSWORD, USERS, add_users, service_settings, sign_in


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("service")
    add_users(service_settings(path))
    return path


@pytest.fixture()
def client(root: Path) -> TestClient:
    return TestClient(create_app(service_settings(root)))


def audit(root: Path) -> list:  # noqa: ANN201 - list[AuditRow]
    return AuditLog(Storage(service_settings(root))).rows()


# --- every endpoint has a rule; deny by default ---------------------------------------
def test_every_endpoint_has_exactly_one_rule(client: TestClient) -> None:
    assert set(endpoints(client.app)) == set(RULES)


def test_an_endpoint_without_a_rule_is_refused(root: Path) -> None:
    app = create_app(service_settings(root), check=False)

    @app.get("/api/forgotten")
    def forgotten() -> dict[str, str]:
        return {"secret": "x"}

    with pytest.raises(RuntimeError, match=r"without an access rule.*/api/forgotten"):
        from citywatch.service.app import check_rules

        check_rules(app)
    response = TestClient(app).get("/api/forgotten")
    assert response.status_code == 403
    assert "no access rule" in response.json()["error"]


def _path(template: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "x1", template)


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]):  # noqa: ANN202
    rule = RULES[(method, path)]
    url = _path(path)
    if rule.body == "json":
        return client.request(method, url, json={}, headers=headers)
    if rule.body == "multipart":
        return client.request(method, url, files={"probe": ("p.png", b"x")}, headers=headers)
    return client.request(method, url, headers=headers, follow_redirects=False)


@pytest.mark.parametrize(("method", "path"), sorted(RULES))
def test_anonymous_callers_get_401_except_on_public_endpoints(
    client: TestClient, method: str, path: str
) -> None:
    response = _call(client, method, path, {})
    if RULES[(method, path)].access == "public":
        assert response.status_code != 401
    else:
        assert response.status_code == 401, response.text


@pytest.mark.parametrize("role", list(Role))
def test_role_endpoint_matrix(root: Path, role: Role) -> None:
    """Every endpoint refuses (403) every role its rule does not allow, before it runs."""
    name = next(n for n, roles in USERS.items() if roles == [role.value])
    client = TestClient(create_app(service_settings(root)))
    headers = sign_in(client, name)
    refused = []
    for method, path in sorted(RULES):
        rule = RULES[(method, path)]
        if rule.access != "action" or role in PERMISSIONS[rule.action]:
            continue
        response = _call(client, method, path, headers)
        assert response.status_code == 403, (method, path, response.text)
        message = response.json()["error"] if path.startswith("/api/") else response.text  # pages: HTML
        assert f"may not {rule.action.value}" in message
        refused.append(path)
    assert refused or role == Role.SUPERVISOR  # a supervisor is refused only the admin's endpoints
    records = [r for r in audit(root) if r.user == name and r.outcome == "refused"]
    assert len(records) >= len(refused)
    assert all(json.loads(r.params)["via"]["auth"] == "session" for r in records)


# --- sessions -------------------------------------------------------------------------
def test_cookie_is_httponly_strict_and_secure_only_with_tls(root: Path) -> None:
    plain = TestClient(create_app(service_settings(root)))
    cookie = plain.post("/api/auth/login", json={"name": "ivy", "password": PASSWORD}).headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    tls = TestClient(create_app(service_settings(root, service__tls_cert="c.pem", service__tls_key="k.pem")))
    cookie = tls.post("/api/auth/login", json={"name": "ivy", "password": PASSWORD}).headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie


def test_sign_in_rotates_the_session_and_sign_out_ends_it(client: TestClient) -> None:
    sign_in(client, "ivy")
    first = client.cookies["citywatch_session"]
    headers = sign_in(client, "ivy")  # signing in again (or after a planted cookie) gives a new id
    second = client.cookies["citywatch_session"]
    assert first != second
    other = TestClient(client.app, cookies={"citywatch_session": first})
    assert other.get("/api/me").status_code == 401  # the old id is gone
    assert client.get("/api/me").json()["user"] == "ivy"
    assert client.post("/api/auth/logout", headers=headers).status_code == 200
    again = TestClient(client.app, cookies={"citywatch_session": second})
    assert again.get("/api/me").status_code == 401


def test_forged_cookie_is_refused(client: TestClient) -> None:
    client.cookies.set("citywatch_session", "made-up.signature")
    assert client.get("/api/me").status_code == 401


def test_cookie_writes_need_the_csrf_token_and_form_posts_are_refused(client: TestClient) -> None:
    headers = sign_in(client, "ada")
    assert client.post("/api/users/ivy/deactivate").status_code == 403  # no X-CSRF-Token
    form = client.post("/api/users", data={"name": "eve", "roles": "admin"}, headers=headers)
    assert form.status_code == 415
    assert client.get("/api/users").status_code == 200  # reads need no token
    assert client.post("/api/auth/logout", headers=headers).status_code == 200


def test_sessions_expire_when_idle(root: Path) -> None:
    client = TestClient(create_app(service_settings(root, auth__session_idle_s=1)))
    sign_in(client, "ivy")
    assert client.get("/api/me").status_code == 200
    time.sleep(1.3)
    response = client.get("/api/me")
    assert response.status_code == 401 and "ended" in response.json()["error"]


# --- failed sign-ins ----------------------------------------------------------------------
def test_lockout_after_repeated_failures(tmp_path: Path) -> None:
    settings = service_settings(tmp_path, auth__login_max_failures=3, auth__login_lockout_s=60)
    add_users(settings, {"ivy": ["investigator"]})
    client = TestClient(create_app(settings))
    for _ in range(3):
        response = client.post("/api/auth/login", json={"name": "ivy", "password": "wrong password!"})
        assert response.status_code == 401
        assert response.json()["error"] == "name or password is wrong"
    locked = client.post("/api/auth/login", json={"name": "ivy", "password": PASSWORD})
    assert locked.status_code == 429 and "locked until" in locked.json()["error"]
    # a second instance on the same root sees the same counters
    other = TestClient(create_app(settings))
    assert other.post("/api/auth/login", json={"name": "ivy", "password": PASSWORD}).status_code == 429
    refused = [r for r in AuditLog(Storage(settings)).rows() if r.action == "sign_in"]
    assert [r.outcome for r in refused] == ["refused"] * 5


def test_totp_required_for_supervisors_when_set(tmp_path: Path) -> None:
    settings = service_settings(tmp_path, auth__totp_required=True)
    add_users(settings, {"sam": ["supervisor"], "ada": ["admin"], "ivy": ["investigator"]})
    client = TestClient(create_app(settings))
    sign_in(client, "ivy")  # investigators need no second factor
    refused = client.post("/api/auth/login", json={"name": "ada", "password": PASSWORD})
    assert refused.status_code == 401 and "TOTP" in refused.json()["error"]
    from citywatch.governance.totp import enrol_totp

    uri = enrol_totp(Storage(settings), "sam")
    totp = pyotp.parse_uri(uri)
    no_code = client.post("/api/auth/login", json={"name": "sam", "password": PASSWORD})
    assert no_code.status_code == 401 and "TOTP code" in no_code.json()["error"]
    code = totp.now()
    sign_in(client, "sam", totp=code)
    replay = client.post("/api/auth/login", json={"name": "sam", "password": PASSWORD, "totp": code})
    assert replay.status_code == 401  # each code works once


# --- names ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("Sam", "only by case or look-alike"),
        ("5am", "only by case or look-alike"),
        ("sam", "already exists"),
        ("ſam", "already exists"),  # long s: NFKC makes it "sam"
        ("s\u0430m", "is invalid"),  # Cyrillic a
        ("x" * 65, "is invalid"),
    ],
)
def test_look_alike_names_are_refused(root: Path, name: str, error: str) -> None:
    with pytest.raises(Exception, match=error):
        add_user(Storage(service_settings(root)), name, ["supervisor"], PASSWORD, "test")


def test_names_are_compared_exactly_after_nfkc(client: TestClient) -> None:
    assert client.post("/api/auth/login", json={"name": "SAM", "password": PASSWORD}).status_code == 401
    sign_in(client, "ſam")  # the same name as "sam" after NFKC
    assert client.get("/api/me").json()["user"] == "sam"


# --- API tokens -------------------------------------------------------------------------
def test_api_tokens_shown_once_scoped_audited_revocable(tmp_path: Path) -> None:
    settings = service_settings(tmp_path)
    add_users(settings, {"ida": ["investigator", "admin"]})
    client = TestClient(create_app(settings))
    headers = sign_in(client, "ida")
    made = client.post(
        "/api/tokens", json={"label": "laptop", "days": 7, "roles": ["investigator"]}, headers=headers
    )
    assert made.status_code == 200, made.text
    token, token_id = made.json()["token"], made.json()["id"]
    assert token.startswith(f"cwt_{token_id}_")
    listed = client.get("/api/tokens").json()
    assert [t["id"] for t in listed] == [token_id] and token not in json.dumps(listed)
    secret = token.removeprefix(f"cwt_{token_id}_").encode()  # the secret may hold "_" itself
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and secret in p.read_bytes()]  # stored hashed
    bearer = TestClient(client.app, headers={"Authorization": f"Bearer {token}"})
    me = bearer.get("/api/me").json()
    assert me == {"user": "ida", "roles": ["investigator"], "auth": "token", "token_id": token_id}
    assert bearer.get("/api/users").status_code == 403  # the token carries only investigator
    assert bearer.post("/api/tokens", json={"label": "more"}).status_code == 403  # tokens cannot mint tokens
    uses = [
        r for r in AuditLog(Storage(settings)).rows() if json.loads(r.params).get("via", {}).get("token_id")
    ]
    assert {r.action for r in uses} >= {"token_use", "users_manage"}
    assert all(json.loads(r.params)["via"]["token_id"] == token_id for r in uses)
    assert client.delete(f"/api/tokens/{token_id}", headers=headers).status_code == 200
    revoked = bearer.get("/api/me")
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]
    assert (
        client.post("/api/tokens", json={"label": "x", "roles": ["supervisor"]}, headers=headers).status_code
        == 403
    )


def test_expired_and_malformed_tokens_are_refused(tmp_path: Path) -> None:
    settings = service_settings(tmp_path)
    add_users(settings, {"ivy": ["investigator"]})
    client = TestClient(create_app(settings))
    headers = sign_in(client, "ivy")
    token = client.post("/api/tokens", json={"label": "short", "days": 0.00001}, headers=headers).json()[
        "token"
    ]
    time.sleep(1.0)
    expired = TestClient(client.app, headers={"Authorization": f"Bearer {token}"}).get("/api/me")
    assert expired.status_code == 401 and "expired" in expired.json()["error"]
    for bad in ("Bearer nonsense", "Basic abc", f"Bearer {token[:-2]}xx"):
        response = TestClient(client.app, headers={"Authorization": bad}).get("/api/me")
        assert response.status_code == 401
        assert token not in response.text
