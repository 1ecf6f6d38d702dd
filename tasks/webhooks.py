"""Signed alert webhooks (Standard Webhooks): one POST per alert and target.

Each POST carries ``webhook-id`` (the delivery id: the same on every retry, so receivers
deduplicate), ``webhook-timestamp`` (unix seconds) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with the target's secret), made
by the ``standardwebhooks`` package; docs/webhook_receiver.py verifies them.
Redirects are refused, not followed (a redirect could carry the alert elsewhere). The
secret is resolved here, inside the delivery task, from the secrets file or
environment; it never leaves this function.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from email.message import Message
from typing import IO

from standardwebhooks import Webhook

from citywatch.errors import BadInputError
from citywatch.governance.webhooks import WebhookTargetRow, check_url, webhook_secret
from citywatch.settings import Settings


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(  # noqa: PLR0913 - urllib's signature
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        raise urllib.error.HTTPError(req.full_url, code, "redirect refused (not followed)", headers, fp)


_OPENER = urllib.request.build_opener(_RefuseRedirects())


def signature_headers(secret: str, msg_id: str, body: bytes, at: dt.datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``."""
    stamp = dt.datetime.fromtimestamp(int(at.timestamp()), dt.UTC)
    signature = Webhook(secret).sign(msg_id, stamp, body.decode("utf-8"))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
    }


def post_signed(
    target: WebhookTargetRow,
    settings: Settings,
    msg_id: str,
    payload: dict[str, object],
    idempotency_key: str,
) -> str:
    """POST ``payload`` to ``target``, signed; '' on a 2xx answer, else the reason (never the secret)."""
    try:
        url = check_url(target.url, settings)  # the allow-list may have changed since it was added
        secret = webhook_secret(settings, target.id)
    except BadInputError as exc:
        return f"not sent: {exc}"
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": idempotency_key,
        "User-Agent": "citywatch-alerts",
        **signature_headers(secret.get_secret_value(), msg_id, body, dt.datetime.now(dt.UTC)),
    }
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=settings.alerts.webhook_timeout_s) as response:
            return "" if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{type(reason).__name__}: {reason}"
