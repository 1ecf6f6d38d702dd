"""OIDC sign-in against a real provider on a loopback port (tests/oidc_provider.py).

The "browser" is an httpx client that follows every redirect by hand: service ->
provider's authorize endpoint -> back to the service's callback, which exchanges the
code (PKCE, client secret) and verifies the ID token before opening a session.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from citywatch.errors import BadInputError
from citywatch.governance.audit_log import AuditLog
from citywatch.service.app import create_app
from citywatch.settings import Settings
from citywatch.storage import Storage
from tests.oidc_provider import Provider, running_provider
from tests.service_support import PASSWORD, add_users, running_service, service_settings

CLIENT_ID = "citywatch-test"
SECRET = "s3cret-for-the-test-provider-only"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(CLIENT_ID, SECRET) as running:
        yield running


def oidc_settings(root: Path, provider: Provider, **extra: object) -> Settings:
    secret_file = root.parent / f"{root.name}-oidc-secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    return service_settings(
        root,
        oidc__issuer=provider.issuer,
        oidc__client_id=CLIENT_ID,
        oidc__client_secret_file=str(secret_file),
        **extra,
    )


@pytest.fixture(scope="module")
def service(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    root = tmp_path_factory.mktemp("oidc-root")
    settings = oidc_settings(root, provider)
    add_users(settings)
    with running_service(settings) as base:
        with httpx.Client(base_url=base) as admin:
            signed = admin.post("/api/auth/login", json={"name": "ada", "password": PASSWORD})
            headers = {"X-CSRF-Token": signed.json()["csrf_token"]}
            for name, subject in (("ivy", "idp-ivy-0001"), ("sam", "idp-sam-0002")):
                done = admin.post(f"/api/users/{name}/oidc", json={"subject": subject}, headers=headers)
                assert done.status_code == 200, done.text
        yield base, settings


@pytest.fixture(autouse=True)
def _fresh_provider(provider: Provider) -> None:
    provider.reset()


def start(browser: httpx.Client, provider: Provider, subject: str) -> str:
    """Sign-in up to the provider's redirect back: the callback URL (code and state)."""
    provider.signed_in = subject
    to_provider = browser.get("/api/auth/oidc/login")
    assert to_provider.status_code == 302, to_provider.text
    authorize = to_provider.headers["location"]
    assert authorize.startswith(provider.issuer + "/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    back = httpx.get(authorize)  # the provider is another site: the browser's cookies do not go there
    assert back.status_code == 302, back.text
    callback = back.headers["location"]
    assert callback.startswith(str(browser.base_url).rstrip("/") + "/api/auth/oidc/callback?")
    return callback


def sign_in(browser: httpx.Client, provider: Provider, subject: str) -> httpx.Response:
    return browser.get(start(browser, provider, subject))


def refusals(settings: Settings) -> list:  # noqa: ANN201 - list[AuditRow]
    return [r for r in AuditLog(Storage(settings)).rows() if r.action == "sign_in" and r.outcome == "refused"]


def test_code_flow_signs_in_the_linked_account(provider: Provider, service: tuple[str, Settings]) -> None:
    base, settings = service
    with httpx.Client(base_url=base) as browser:
        done = sign_in(browser, provider, "idp-ivy-0001")
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["user"] == "ivy" and body["roles"] == ["investigator"] and body["auth"] == "oidc"
        cookie = done.headers["set-cookie"]
        assert "citywatch_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        me = browser.get("/api/me").json()
        assert me["user"] == "ivy" and me["auth"] == "oidc" and me["oidc_subject"] == "idp-ivy-0001"
        # a governed call is audited as ivy, signed in by OIDC
        assert browser.get("/api/watchlist").status_code == 200
        # roles are citywatch's: an investigator may not manage users, whatever the provider says
        assert browser.get("/api/users").status_code == 403
        # an OIDC session is a cookie session: its writes need the CSRF token the callback returned
        token = {"label": "laptop", "days": 1}
        assert browser.post("/api/tokens", json=token).status_code == 403
        made = browser.post("/api/tokens", json=token, headers={"X-CSRF-Token": body["csrf_token"]})
        assert made.status_code == 200 and made.json()["roles"] == ["investigator"]
    # PKCE: the service sent a verifier, and the provider checked it against the challenge
    assert provider.token_requests[-1]["code_verifier"]
    rows = AuditLog(Storage(settings)).rows()
    ok = [r for r in rows if r.action == "sign_in" and r.outcome == "ok" and r.user == "ivy"]
    params = json.loads(ok[-1].params)
    assert (
        params["auth"] == "oidc"
        and params["subject"] == "idp-ivy-0001"
        and params["issuer"] == provider.issuer
    )
    read = [r for r in rows if r.action == "watchlist_read" and r.user == "ivy"]
    assert json.loads(read[-1].params)["via"] == {
        "auth": "oidc",
        "client": "127.0.0.1",
        "subject": "idp-ivy-0001",
    }
    everything = json.dumps([r.params for r in rows]) + json.dumps([r.detail for r in rows])
    assert SECRET not in everything


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"aud": "someone-else"}, "not valid for citywatch: Invalid claim: 'aud'"),
        ({"exp": int(time.time()) - 3600}, "not valid for citywatch: The token is expired"),
        ({"iss": "https://idp.example.org"}, "not valid for citywatch: Invalid claim: 'iss'"),
        ({"nonce": "not-the-one-we-sent"}, "not valid for citywatch: Invalid claim: 'nonce'"),
        ({"aud": [CLIENT_ID, "other-app"]}, "several audiences"),
    ],
)
def test_invalid_id_tokens_are_refused(
    provider: Provider, service: tuple[str, Settings], tamper: dict[str, object], reason: str
) -> None:
    base, settings = service
    provider.tamper = tamper
    with httpx.Client(base_url=base) as browser:
        done = sign_in(browser, provider, "idp-ivy-0001")
        assert done.status_code == 401, done.text
        assert reason in done.json()["error"]
        assert "citywatch_session" not in browser.cookies
        assert browser.get("/api/me").status_code == 401
    assert reason in refusals(settings)[-1].detail


def test_a_token_signed_with_another_key_is_refused(
    provider: Provider, service: tuple[str, Settings]
) -> None:
    base, settings = service
    provider.sign_with = RSAKey.generate_key(
        2048, parameters={"kid": "provider-key-1"}
    )  # same kid, wrong key
    with httpx.Client(base_url=base) as browser:
        done = sign_in(browser, provider, "idp-ivy-0001")
    assert done.status_code == 401 and "signature does not verify" in done.json()["error"]


def test_tampered_or_foreign_state_is_refused(provider: Provider, service: tuple[str, Settings]) -> None:
    base, settings = service
    with httpx.Client(base_url=base) as browser:
        callback = start(browser, provider, "idp-ivy-0001")
        parts = urlsplit(callback)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        forged = browser.get(f"{parts.path}?{urlencode({**query, 'state': query['state'][:-2] + 'xx'})}")
        assert forged.status_code == 401
        assert "state does not match" in forged.json()["error"]
    # login CSRF: a callback URL started in one browser, opened in another (the victim's)
    with httpx.Client(base_url=base) as attacker, httpx.Client(base_url=base) as victim:
        planted = victim.get(start(attacker, provider, "idp-ivy-0001"))
        assert planted.status_code == 401 and "state does not match" in planted.json()["error"]
        assert victim.get("/api/me").status_code == 401
    assert "state does not match" in refusals(settings)[-1].detail


def test_a_callback_works_once(provider: Provider, service: tuple[str, Settings]) -> None:
    base, _ = service
    with httpx.Client(base_url=base) as browser:
        callback = start(browser, provider, "idp-sam-0002")
        assert browser.get(callback).status_code == 200
        assert browser.get("/api/me").json()["user"] == "sam"
        replay = browser.get(callback)  # the state cookie is gone, and so is the pending sign-in
        assert replay.status_code == 401


def test_an_unknown_identity_is_refused_and_audited(
    provider: Provider, service: tuple[str, Settings]
) -> None:
    base, settings = service
    with httpx.Client(base_url=base) as browser:
        done = sign_in(browser, provider, "idp-stranger-9")
        assert done.status_code == 401
        assert "no citywatch account is linked to the OIDC subject 'idp-stranger-9'" in done.json()["error"]
        assert browser.get("/api/me").status_code == 401
    last = refusals(settings)[-1]
    assert last.user == "oidc:idp-stranger-9" and json.loads(last.params)["subject"] == "idp-stranger-9"


def test_provider_claims_never_pick_an_account(provider: Provider, service: tuple[str, Settings]) -> None:
    """An identity the provider names 'ada' (name, e-mail) is still nobody until an admin links it."""
    base, _ = service
    provider.extra_claims = {"preferred_username": "ada", "email": "ada@city.example", "name": "ada"}
    with httpx.Client(base_url=base) as browser:
        assert sign_in(browser, provider, "idp-new-person").status_code == 401


def test_one_identity_links_to_one_account(provider: Provider, service: tuple[str, Settings]) -> None:
    base, _ = service
    with httpx.Client(base_url=base) as admin:
        headers = {
            "X-CSRF-Token": admin.post("/api/auth/login", json={"name": "ada", "password": PASSWORD}).json()[
                "csrf_token"
            ]
        }
        twice = admin.post("/api/users/sue/oidc", json={"subject": "idp-sam-0002"}, headers=headers)
        assert twice.status_code == 400 and "already linked to 'sam'" in twice.json()["error"]
        bad = admin.post("/api/users/sue/oidc", json={"subject": "has space"}, headers=headers)
        assert bad.status_code == 422
    with httpx.Client(base_url=base) as investigator:
        investigator.post("/api/auth/login", json={"name": "ivy", "password": PASSWORD})
        assert investigator.post("/api/users/ivy/oidc", json={"subject": "x"}).status_code == 403


def test_roles_claim_narrows_and_totp_required_needs_mfa(provider: Provider, tmp_path: Path) -> None:
    settings = oidc_settings(
        tmp_path / "root", provider, oidc__roles_claim="citywatch_roles", auth__totp_required=True
    )
    (tmp_path / "root").mkdir()
    add_users(settings, {"ivy": ["investigator", "analyst"], "sam": ["supervisor"]})
    from citywatch.governance.oidc_links import link_identity

    link_identity(Storage(settings), provider.issuer, "idp-ivy", "ivy", "test")
    link_identity(Storage(settings), provider.issuer, "idp-sam", "sam", "test")
    with running_service(settings) as base, httpx.Client(base_url=base) as browser:
        provider.extra_claims = {"citywatch_roles": ["analyst", "admin"]}  # admin: not ivy's, ignored
        done = sign_in(browser, provider, "idp-ivy")
        assert done.status_code == 200 and done.json()["roles"] == ["analyst"]
        assert browser.get("/api/watchlist").status_code == 403  # the investigator role was narrowed away
        provider.extra_claims = {}
        assert "no list of roles" in sign_in(browser, provider, "idp-ivy").json()["error"]
        provider.extra_claims = {"citywatch_roles": ["supervisor"]}
        refused = sign_in(browser, provider, "idp-sam")
        assert refused.status_code == 401 and "second factor" in refused.json()["error"]
        provider.amr = ["pwd", "otp"]
        assert sign_in(browser, provider, "idp-sam").json()["user"] == "sam"


def test_secret_file_open_to_others_is_refused(provider: Provider, tmp_path: Path) -> None:
    settings = oidc_settings(tmp_path / "root", provider)
    assert settings.oidc.client_secret_file
    Path(settings.oidc.client_secret_file).chmod(0o644)
    with pytest.raises(BadInputError, match="group or others may access it"):
        create_app(settings)


def test_not_configured_is_404(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(create_app(service_settings(tmp_path)))
    response = client.get("/api/auth/oidc/login", follow_redirects=False)
    assert response.status_code == 404 and "not configured" in response.json()["error"]


def test_cli_links_and_unlinks_an_identity(
    provider: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from citywatch.cli.main import main
    from citywatch.governance.oidc_links import linked_account

    root = tmp_path / "root"
    settings = oidc_settings(root, provider)
    add_users(settings, {"ada": ["admin"], "ivy": ["investigator"]})
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", settings.storage.state_dir)
    monkeypatch.setenv("CITYWATCH_OIDC__ISSUER", provider.issuer)
    monkeypatch.setenv("CITYWATCH_OIDC__CLIENT_ID", CLIENT_ID)
    base = ["--root", str(root), "--user", "ada", "users", "link-oidc", "ivy"]
    assert main([*base, "idp-ivy-77"]) == 0
    assert "linked to ivy" in capsys.readouterr().out
    link = linked_account(Storage(settings), provider.issuer, "idp-ivy-77")
    assert link is not None and link.user == "ivy" and link.linked_by == "ada"
    assert main(["--root", str(root), "--user", "ivy", "users", "link-oidc", "ivy", "idp-x"]) == 3
    assert main([*base, "bad subject"]) == 2
    assert main([*base, "idp-ivy-77", "--unlink"]) == 0
    assert linked_account(Storage(settings), provider.issuer, "idp-ivy-77") is None


def test_abandoned_sign_ins_are_swept(provider: Provider, tmp_path: Path) -> None:
    from citywatch.service.oidc import OidcClient

    settings = oidc_settings(tmp_path / "root", provider)
    client = OidcClient(settings, Storage(settings))
    pending = tmp_path / "root" / "auth" / "oidc_pending"
    client.start("http://127.0.0.1:1/api/auth/oidc/callback")
    old = pending / f"{int(time.time()) - 3600}_{'0' * 64}.json"
    old.write_text("{}")
    assert len(list(pending.iterdir())) == 2
    client._swept_at = 0.0  # the once-a-minute limit
    client.start("http://127.0.0.1:1/api/auth/oidc/callback")
    assert not old.exists() and len(list(pending.iterdir())) == 2
