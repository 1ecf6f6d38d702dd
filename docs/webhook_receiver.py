"""A minimal receiver of citywatch alert webhooks that checks every signature.

citywatch signs each POST the Standard Webhooks way (https://www.standardwebhooks.com):
headers ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` =
``v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>``. Anything altered
(body, timestamp, signature), older or newer than five minutes, or signed with another
secret is refused with 401. Deduplicate on ``webhook-id``: a retry repeats it.

    pip install standardwebhooks
    WEBHOOK_SECRET=whsec_... python docs/webhook_receiver.py 8080

The secret is the target's entry in citywatch's webhook secrets file.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


def verify(secret: str, headers: dict[str, str], body: bytes) -> dict[str, object]:
    """The alert, if ``body`` and ``headers`` carry a valid signature; raises otherwise."""
    return Webhook(secret).verify(body, headers)  # type: ignore[no-any-return]


def handler_for(secret: str, seen: set[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                alert = verify(secret, dict(self.headers.items()), body)
            except WebhookVerificationError:
                self.send_response(401)
                self.end_headers()
                return
            if self.headers["webhook-id"] not in seen:  # at least once: drop repeats
                seen.add(self.headers["webhook-id"])
                sys.stdout.write(json.dumps(alert) + "\n")  # a person must review it before acting
            self.send_response(204)
            self.end_headers()

    return Handler


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    ThreadingHTTPServer(("127.0.0.1", port), handler_for(os.environ["WEBHOOK_SECRET"], set())).serve_forever()
