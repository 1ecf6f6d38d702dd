"""A small but real OpenID Connect provider for the tests, on a loopback port.

Discovery document, JWKS, authorization endpoint (code flow, PKCE S256 required) and
token endpoint (client_secret_basic, one use per code, redirect_uri and PKCE verifier
checked), issuing RS256-signed ID tokens with joserfc. The "person signed in at the
provider" is :attr:`Provider.signed_in`; :attr:`Provider.tamper` overrides ID-token
claims (a wrong audience, an expired token, ...) and :attr:`Provider.sign_with`
signs with a key that is not in the JWKS.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Header, Query
from fastapi.responses import JSONResponse, RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class Provider:
    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.key = RSAKey.generate_key(
            2048, parameters={"kid": "provider-key-1", "use": "sig", "alg": "RS256"}
        )
        self.sign_with: RSAKey | None = None  # a key the JWKS does not publish
        self.signed_in = ""  # the subject of the person signed in at the provider
        self.amr: list[str] = ["pwd"]
        self.extra_claims: dict[str, Any] = {}
        self.tamper: dict[str, Any] = {}  # claims replaced in the next ID tokens
        self.codes: dict[str, dict[str, str]] = {}
        self.token_requests: list[dict[str, str]] = []
        self.issuer = ""  # set when it runs
        self.app = self._app()

    def reset(self) -> None:
        self.sign_with, self.signed_in, self.amr = None, "", ["pwd"]
        self.tamper, self.extra_claims = {}, {}

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict[str, object]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "scopes_supported": ["openid"],
            }

        @app.get("/jwks")
        def jwks() -> dict[str, object]:
            return {"keys": [self.key.as_dict(private=False)]}

        @app.get("/authorize", response_model=None)
        def authorize(
            client_id: str,
            redirect_uri: str,
            response_type: str,
            scope: str,
            state: str,
            nonce: str,
            code_challenge: str,
            code_challenge_method: Annotated[str, Query()],
        ) -> RedirectResponse | JSONResponse:
            problem = (
                "unauthorized_client"
                if client_id != self.client_id
                else "unsupported_response_type"
                if response_type != "code"
                else "invalid_scope"
                if "openid" not in scope.split()
                else "invalid_request"
                if code_challenge_method != "S256" or not code_challenge
                else "login_required"
                if not self.signed_in
                else ""
            )
            if problem:
                return JSONResponse({"error": problem}, status_code=400)
            code = secrets.token_urlsafe(24)
            self.codes[code] = {
                "subject": self.signed_in,
                "nonce": nonce,
                "challenge": code_challenge,
                "redirect_uri": redirect_uri,
            }
            return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", 302)

        @app.post("/token")
        def token(
            grant_type: Annotated[str, Form()],
            code: Annotated[str, Form()],
            redirect_uri: Annotated[str, Form()],
            code_verifier: Annotated[str, Form()],
            authorization: Annotated[str, Header()] = "",
        ) -> JSONResponse:
            self.token_requests.append({"grant_type": grant_type, "code_verifier": code_verifier})
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if authorization != f"Basic {expected}":
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            grant = self.codes.pop(code, None)  # a code works once
            if grant_type != "authorization_code" or grant is None:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            if redirect_uri != grant["redirect_uri"] or _s256(code_verifier) != grant["challenge"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            now = int(time.time())
            claims: dict[str, Any] = {
                "iss": self.issuer,
                "sub": grant["subject"],
                "aud": self.client_id,
                "iat": now,
                "exp": now + 300,
                "nonce": grant["nonce"],
                "amr": self.amr,
                **self.extra_claims,
                **self.tamper,
            }
            key = self.sign_with or self.key
            id_token = jwt.encode({"alg": "RS256", "kid": "provider-key-1"}, claims, key)
            return JSONResponse(
                {
                    "access_token": secrets.token_urlsafe(16),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": id_token,
                }
            )

        return app


@contextmanager
def running_provider(client_id: str, client_secret: str) -> Iterator[Provider]:
    """The provider served by uvicorn on 127.0.0.1, on a port the OS picks."""
    import uvicorn

    provider = Provider(client_id, client_secret)
    server = uvicorn.Server(uvicorn.Config(provider.app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=contextvars.copy_context().run, args=(server.run,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the OIDC provider did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    provider.issuer = f"http://127.0.0.1:{port}"
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(10)
