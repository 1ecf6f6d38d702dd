"""The CLI as a client of `citywatch serve`: the HTTP client and the stored API token.

With the ``api_url`` setting (``CITYWATCH_API_URL``), governed commands go through the
service's JSON API with an API token: ``CITYWATCH_API_TOKEN``, else the token file that
``citywatch login`` writes (``$XDG_CONFIG_HOME/citywatch/token``, mode 0600). Refusals
map to the CLI's exit codes: 401/403 -> :class:`ForbiddenError` (3), other 4xx ->
:class:`BadInputError` (2), no connection or 5xx -> :class:`CitywatchError` (1).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx

from citywatch.errors import BadInputError, CitywatchError, ForbiddenError
from citywatch.governance.tokens import TOKEN
from citywatch.settings import Settings

TOKEN_ENV = "CITYWATCH_API_TOKEN"
TIMEOUT_S = 600.0  # searches and exports run as flow runs: allow them time


def client_mode(settings: Settings) -> bool:
    """The one switch: a service URL makes the CLI a client; without one it acts directly."""
    return bool(settings.api_url)


def token_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "citywatch" / "token"


def token_id(token: str) -> str:
    match = TOKEN.fullmatch(token)
    if match is None:
        raise BadInputError("the API token is malformed: expected cwt_<id>_<secret>")
    return match.group(1)


def read_token_file(path: Path | None = None) -> str | None:
    """The stored token, or None; refuses a file that group or others may read or write."""
    path = path or token_path()
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ForbiddenError(
            f"refusing the token file {path}: group or others may access it "
            f"(mode {stat.S_IMODE(info.st_mode):o}); run `chmod 600 {path}` or `citywatch login` again"
        )
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ForbiddenError(f"refusing the token file {path}: it belongs to another OS account")
    return path.read_text(encoding="utf-8").strip() or None


def write_token_file(token: str, path: Path | None = None) -> Path:
    """Store ``token`` with mode 0600 (created so, never readable by others in between)."""
    token_id(token)
    path = path or token_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    os.replace(tmp, path)
    return path


def current_token() -> str | None:
    return os.environ.get(TOKEN_ENV, "").strip() or read_token_file()


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return str(body)[:500]


class ApiClient:
    """A small JSON client of the service; every call raises the CLI's errors on refusal."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=TIMEOUT_S)
        self.csrf: str | None = None

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self.csrf:
            kwargs.setdefault("headers", {})["X-CSRF-Token"] = self.csrf
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CitywatchError(
                f"cannot reach the citywatch service at {self.base_url} (CITYWATCH_API_URL): {exc}"
            ) from exc
        if response.status_code in (401, 403, 429):
            raise ForbiddenError(f"the service refused: {_message(response)}")
        if 400 <= response.status_code < 500:
            raise BadInputError(_message(response))
        if response.status_code >= 400:
            raise CitywatchError(f"the service failed ({response.status_code}): {_message(response)}")
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call("POST", path, json={k: v for k, v in (body or {}).items() if v is not None})


def api_client(settings: Settings) -> ApiClient:
    """A client for the service at ``settings.api_url`` carrying the user's API token."""
    if not settings.api_url:
        raise BadInputError("no service: set CITYWATCH_API_URL")
    token = current_token()
    if not token:
        raise ForbiddenError(f"not signed in to {settings.api_url}: run `citywatch login` or set {TOKEN_ENV}")
    token_id(token)
    return ApiClient(settings.api_url, token)
