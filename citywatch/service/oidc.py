"""OpenID Connect sign-in: authorization code flow with PKCE, with Authlib and joserfc.

``GET /api/auth/oidc/login`` stores a pending sign-in (state, nonce, PKCE verifier)
in storage under the sha256 of its state (any instance can finish it), binds the
state to the browser with a signed cookie, and redirects to the provider.
``GET /api/auth/oidc/callback`` then checks, in order: the state is this browser's and
pending (used once, ten minutes at most); the provider gives an ID token for the
code (with the PKCE verifier and the client secret); the token's signature verifies
with a key of the provider's JWKS (asymmetric algorithms only); ``iss`` is the
configured issuer, ``aud`` holds the client id (``azp`` too when there are several),
``exp``/``iat`` are current, ``nonce`` is the pending one. Only then is the identity
(issuer, subject) looked up among the admin-made links
(:mod:`citywatch.governance.oidc_links`). Every refusal names its reason.

The client secret comes from ``oidc.client_secret_file`` (mode 0600) or
``CITYWATCH_OIDC__CLIENT_SECRET``; it is sent only to the token endpoint and never
stored, logged or shown.
"""

from __future__ import annotations

import hashlib
import json
import stat
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from citywatch.errors import BadInputError, NotFoundError
from citywatch.settings import Settings
from citywatch.storage import Storage

PENDING_DIR = "auth/oidc_pending"
PENDING_MAX_S = 600.0
CALLBACK_PATH = "/api/auth/oidc/callback"
STATE_COOKIE = "citywatch_oidc"
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_S = 30
_METADATA_TTL_S = 300.0
_HTTP_TIMEOUT_S = 10.0
_KEYS_MIN_REFRESH_S = 30.0


class OidcRefused(Exception):
    """The sign-in is refused for this reason (-> 401 and an audit record)."""


@dataclass(frozen=True, slots=True)
class Pending:
    nonce: str
    verifier: str
    redirect_uri: str
    created: float  # time.time()


@dataclass(frozen=True, slots=True)
class Verified:
    """What a verified ID token says."""

    issuer: str
    subject: str
    claims: dict[str, Any]


def client_secret(settings: Settings) -> str | None:
    """The client secret: the 0600 file, else the setting; None = a public client (PKCE only)."""
    if settings.oidc.client_secret_file:
        path = Path(settings.oidc.client_secret_file)
        try:
            info = path.stat()
        except OSError as exc:
            raise BadInputError(f"oidc.client_secret_file {path} cannot be read: {exc.strerror}") from exc
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise BadInputError(
                f"oidc.client_secret_file {path}: group or others may access it "
                f"(mode {stat.S_IMODE(info.st_mode):o}); run `chmod 600 {path}`"
            )
        secret = path.read_text(encoding="utf-8").strip()
        if not secret:
            raise BadInputError(f"oidc.client_secret_file {path} is empty")
        return secret
    if settings.oidc.client_secret is not None:
        return settings.oidc.client_secret.get_secret_value() or None
    return None


def _pending_key(state: str) -> str:
    """``<started, unix s>_<sha256(state)>.json``: the start time (the state's prefix) lets
    abandoned sign-ins be swept by name."""
    started = state.split(".", 1)[0]
    if not started.isdigit() or len(started) > 12:
        raise OidcRefused("the state is malformed")
    return f"{PENDING_DIR}/{started}_{hashlib.sha256(state.encode()).hexdigest()}.json"


class OidcClient:
    """citywatch as a relying party of one provider (metadata and keys cached a few minutes)."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        if not settings.oidc.issuer or not settings.oidc.client_id:
            raise BadInputError("OIDC sign-in is not configured (oidc.issuer, oidc.client_id)")
        self.issuer = settings.oidc.issuer
        self.client_id = settings.oidc.client_id
        self.settings = settings
        self.storage = storage
        self.secret = client_secret(settings)  # read (and checked) once, at start
        self._lock = threading.Lock()
        self._metadata: tuple[float, OpenIDProviderMetadata] | None = None
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._swept_at = 0.0

    # --- the provider ----------------------------------------------------------------
    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = httpx.get(url, timeout=_HTTP_TIMEOUT_S, follow_redirects=False)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcRefused(f"the identity provider's {what} ({url}) could not be read: {exc}") from exc
        if not isinstance(data, dict):
            raise OidcRefused(f"the identity provider's {what} ({url}) is not a JSON object")
        return data

    def metadata(self) -> OpenIDProviderMetadata:
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._metadata[0] < _METADATA_TTL_S:
                return self._metadata[1]
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        data = OpenIDProviderMetadata(self._get_json(url, "discovery document"))
        try:
            data.validate()
        except (ValueError, KeyError) as exc:
            raise OidcRefused(f"the identity provider's discovery document is invalid: {exc}") from exc
        if data["issuer"] != self.issuer:
            raise OidcRefused(f"the discovery document names issuer {data['issuer']!r}, not {self.issuer!r}")
        with self._lock:
            self._metadata = (time.monotonic(), data)
            self._keys = None
        return data

    def keys(self, refresh: bool = False) -> KeySet:
        """The provider's keys; ``refresh`` fetches them again (at most every 30 s, so bad
        tokens cannot make citywatch hammer the provider)."""
        with self._lock:
            fresh = time.monotonic() - self._keys_at < _KEYS_MIN_REFRESH_S
            if self._keys is not None and (not refresh or fresh):
                return self._keys
        data = self._get_json(str(self.metadata()["jwks_uri"]), "key set (JWKS)")
        try:
            keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise OidcRefused(f"the identity provider's key set is invalid: {exc}") from exc
        with self._lock:
            self._keys, self._keys_at = keys, time.monotonic()
        return keys

    # --- the flow ----------------------------------------------------------------------
    def start(self, redirect_uri: str) -> tuple[str, str]:
        """(the provider's authorization URL, the state to bind to the browser)."""
        metadata = self.metadata()
        now = time.time()
        self._sweep(now)
        state = f"{int(now)}.{generate_token(43)}"
        nonce, verifier = generate_token(43), generate_token(64)
        pending = Pending(nonce, verifier, redirect_uri, now)
        self.storage.write_bytes(_pending_key(state), json.dumps(asdict(pending)).encode())
        url = prepare_grant_uri(
            str(metadata["authorization_endpoint"]),
            client_id=self.client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=self.settings.oidc.scope,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return url, state

    def _sweep(self, now: float) -> None:
        """Delete abandoned sign-ins (older than 10 minutes), at most once a minute per instance."""
        with self._lock:
            if now - self._swept_at < 60:
                return
            self._swept_at = now
        try:
            found = self.storage.list_files(self.storage.url(PENDING_DIR))
        except NotFoundError:
            return
        for info in found:
            started = info.key.split("_", 1)[0]
            if started.isdigit() and now - int(started) > PENDING_MAX_S:
                self.storage.delete(info.url)

    def claim_pending(self, state: str) -> Pending:
        """The pending sign-in of ``state``, removed (a state works once); refused when unknown or old."""
        url = self.storage.url(_pending_key(state))
        try:
            data = json.loads(self.storage.read_bytes(url))
            pending = Pending(**data)
        except (NotFoundError, ValueError, TypeError) as exc:
            raise OidcRefused("this sign-in is unknown or was already used; start again") from exc
        self.storage.delete(url)
        if time.time() - pending.created > PENDING_MAX_S:
            raise OidcRefused("this sign-in took longer than 10 minutes; start again")
        return pending

    def exchange(self, code: str, pending: Pending) -> str:
        """The ID token the provider gives for ``code`` (PKCE verifier and client secret sent)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.verifier,
        }
        auth: tuple[str, str] | None = None
        if self.secret is None:
            form["client_id"] = self.client_id
        else:
            auth = (self.client_id, self.secret)
        try:
            response = httpx.post(
                str(self.metadata()["token_endpoint"]),
                data=form,
                auth=auth,
                headers={"Accept": "application/json"},
                timeout=_HTTP_TIMEOUT_S,
            )
        except httpx.HTTPError as exc:
            raise OidcRefused(f"the identity provider's token endpoint could not be reached: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            reason = (
                body.get("error", response.status_code) if isinstance(body, dict) else response.status_code
            )
            raise OidcRefused(f"the identity provider refused the code ({str(reason)[:100]})")
        token = body.get("id_token")
        if not isinstance(token, str) or not token:
            raise OidcRefused("the identity provider returned no ID token (is 'openid' in oidc.scope?)")
        return token

    def verify(self, id_token: str, nonce: str) -> Verified:
        """The ID token's claims, once its signature, issuer, audience, times and nonce check out."""
        try:
            decoded = self._decode(id_token)
        except (JoseError, ValueError) as exc:
            reason = exc.error if isinstance(exc, JoseError) else str(exc)[:200]
            raise OidcRefused(f"the ID token's signature does not verify ({reason})") from exc
        claims = dict(decoded.claims)
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_S,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise OidcRefused(
                f"the ID token is not valid for citywatch: {exc.description or exc.error}"
            ) from exc
        audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audience) > 1 and claims.get("azp") != self.client_id:
            raise OidcRefused("the ID token has several audiences and its azp is not citywatch's client id")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise OidcRefused("the ID token has no subject")
        return Verified(self.issuer, subject, claims)

    def _decode(self, id_token: str) -> jwt.Token:
        try:
            return jwt.decode(id_token, self.keys(), algorithms=list(ALGORITHMS))
        except (JoseError, ValueError):
            # perhaps the provider rotated its keys: fetch them once more and try again
            return jwt.decode(id_token, self.keys(refresh=True), algorithms=list(ALGORITHMS))
