"""Signed alert webhooks: the receiver example, targets an admin configures, secrets, redirects.

Real HTTP servers on loopback, the real ``standardwebhooks`` signing, real LanceDB;
the end-to-end leak check after a real sweep is in tests/test_sweep_e2e.py.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks import WebhookVerificationError

from citywatch.cli.main import main
from citywatch.errors import BadInputError
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import write_demo_users
from citywatch.governance.webhooks import WebhookTargetRow, add_target, check_url, webhook_secret
from citywatch.settings import value_at, variable
from citywatch.stack.prefect_server import free_port
from citywatch.storage import Storage
from citywatch.tasks.webhooks import post_signed, signature_headers
from tests.watchlist_support import HOOK, HOOK_SECRET, Receiver, make_settings, verify, webhook_settings

BODY = json.dumps({"id": "al-1", "label": "Person A"}).encode()


def _signed(at: dt.datetime | None = None) -> dict[str, str]:
    return signature_headers(HOOK_SECRET, "dl-1", BODY, at or dt.datetime.now(dt.UTC))


def test_the_receiver_example_accepts_a_genuine_webhook() -> None:
    assert verify(HOOK_SECRET, _signed(), BODY) == {"id": "al-1", "label": "Person A"}


def _flip(text: str) -> str:
    return text[:-3] + ("A" if text[-3] != "A" else "B") + text[-2:]


@pytest.mark.parametrize(
    "alter",
    [
        lambda h, b: ({**h, "webhook-signature": _flip(h["webhook-signature"])}, b),
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 1)}, b),
        lambda h, b: (h, b.replace(b"Person A", b"Person B")),
        lambda h, b: ({**h, "webhook-id": "dl-2"}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b),
        lambda h, b: (_signed(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)), b),
        lambda h, b: (
            signature_headers(
                "whsec_" + "Zm9yZ2VyLXNlY3JldC1mb3JnZXItc2VjcmV0", "dl-1", b, dt.datetime.now(dt.UTC)
            ),
            b,
        ),
    ],
    ids=["signature", "timestamp", "body", "id", "unsigned", "replayed-late", "other-secret"],
)
def test_the_receiver_example_rejects_altered_webhooks(alter) -> None:  # noqa: ANN001
    headers, body = alter(_signed(), BODY)
    with pytest.raises(WebhookVerificationError):
        verify(HOOK_SECRET, headers, body)


# --- delivering over real HTTP ------------------------------------------------------------------
@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = Receiver(free_port())
    yield server
    server.close()


def _target(receiver: Receiver, path: str = "/alerts") -> WebhookTargetRow:
    port = receiver.server.server_address[1]
    return WebhookTargetRow(HOOK, f"http://127.0.0.1:{port}{path}", "demo-admin", dt.datetime.now(dt.UTC))


def test_a_signed_post_verifies_at_the_receiver(tmp_path: Path, receiver: Receiver) -> None:
    settings = webhook_settings(tmp_path)
    assert post_signed(_target(receiver), settings, "dl-1", {"id": "al-1"}, "al-1") == ""
    assert receiver.received == [("al-1", {"id": "al-1"})] and receiver.rejected == []


def test_a_post_signed_with_another_secret_is_refused(tmp_path: Path) -> None:
    other = Receiver(free_port(), secret="whsec_" + "b3RoZXItcmVjZWl2ZXItc2VjcmV0LTMyYnl0ZXM=")
    try:
        error = post_signed(_target(other), webhook_settings(tmp_path), "dl-1", {"id": "al-1"}, "al-1")
    finally:
        other.close()
    assert error == "HTTP 401 Unauthorized" and other.received == [] and len(other.rejected) == 1


def test_redirects_are_refused_not_followed(tmp_path: Path, receiver: Receiver) -> None:
    where = _target(receiver).url

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.send_response(307)
            self.send_header("Location", where)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = WebhookTargetRow(
            HOOK, f"http://127.0.0.1:{server.server_address[1]}/a", "x", dt.datetime.now(dt.UTC)
        )
        error = post_signed(target, webhook_settings(tmp_path), "dl-1", {"id": "al-1"}, "al-1")
    finally:
        server.shutdown()
        server.server_close()
    assert error.startswith("HTTP 307") and "redirect refused" in error
    assert receiver.received == []


def test_a_target_without_a_secret_is_not_sent_and_no_secret_is_named(
    tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, alerts__webhook_allowed_hosts=["127.0.0.1"])
    error = post_signed(_target(receiver), settings, "dl-1", {"id": "al-1"}, "al-1")
    assert error.startswith("not sent: webhook 'ops-room' has no secret") and receiver.received == []


# --- targets and secrets ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/a", "must be http"),
        ("https://user:pw@127.0.0.1/a", "must not carry credentials"),
        ("https://127.0.0.1/a?token=abc", "must not carry credentials"),
        ("https://evil.example.net/a", "not in webhook_allowed_hosts"),
        ("https://127.0.0.1.evil.net/a", "not in webhook_allowed_hosts"),
        ("https://example.org/a", "not in webhook_allowed_hosts"),  # *.example.org is not example.org
    ],
)
def test_target_urls_must_be_plain_and_allowed(tmp_path: Path, url: str, message: str) -> None:
    settings = make_settings(tmp_path, alerts__webhook_allowed_hosts=["127.0.0.1", "*.example.org"])
    with pytest.raises(BadInputError, match=message):
        check_url(url, settings)
    assert check_url("https://alerts.example.org/citywatch", settings)


def test_secrets_come_from_a_private_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = webhook_settings(tmp_path)
    assert webhook_secret(settings, HOOK).get_secret_value() == HOOK_SECRET
    assert HOOK_SECRET not in repr(webhook_secret(settings, HOOK))
    Path(settings.alerts.webhook_secrets_file).chmod(0o644)
    with pytest.raises(BadInputError, match="chmod 600"):
        webhook_secret(settings, HOOK)
    monkeypatch.setenv("CITYWATCH_WEBHOOK_SECRETS", json.dumps({"other": HOOK_SECRET, "bad": "plain"}))
    plain = make_settings(tmp_path)
    assert webhook_secret(plain, "other").get_secret_value() == HOOK_SECRET
    with pytest.raises(BadInputError, match="must start with whsec_"):
        webhook_secret(plain, "bad")


def test_only_an_admin_configures_targets_and_it_is_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = webhook_settings(tmp_path)
    storage = Storage(settings)
    write_demo_users(storage)
    for name in ("storage.state_dir", "alerts.webhook_secrets_file"):
        monkeypatch.setenv(variable(name), str(value_at(settings, name)))
    monkeypatch.setenv("CITYWATCH_ALERTS__WEBHOOK_ALLOWED_HOSTS", '["127.0.0.1"]')
    base = ["--root", settings.storage.root]
    add = ["webhooks", "add", "ops-room", "http://127.0.0.1:9/alerts"]
    assert main([*base, "--user", "demo-supervisor", *add]) == 3
    assert main([*base, "--user", "demo-admin", *add]) == 0
    assert main([*base, "--user", "demo-admin", "webhooks", "list", "--json"]) == 0
    out = capsys.readouterr().out
    listed = json.loads(out[out.index("[") :])
    assert listed == [
        {"name": HOOK, "url": "http://127.0.0.1:9/alerts", "has_secret": True, "created_by": "demo-admin"}
    ]
    assert HOOK_SECRET not in out
    actions = [(r.user, r.action, r.outcome) for r in AuditLog(storage).rows()]
    assert actions[:2] == [
        ("demo-supervisor", "webhooks_manage", "refused"),
        ("demo-admin", "webhooks_manage", "ok"),
    ]
    add_target(storage, "second", "http://127.0.0.1:10/b", "demo-admin")
    assert main([*base, "--user", "demo-admin", "webhooks", "add", "x", "https://a:b@127.0.0.1/"]) == 2
