"""Alert webhook targets (configured by an admin, audited) and their signing secrets.

A target is a name and an http(s) URL in the table ``webhook_targets``; the URL must
carry no credentials (no user:password, no query string) and its host must match
``Settings.alerts.webhook_allowed_hosts`` (exact, or ``*.example.org``), checked when the
target is added and again before every delivery. Deliveries name the target
(``webhook:<name>``), never its URL or secret.

Each target's Standard Webhooks secret (``whsec_`` + base64 of 24-64 random bytes) lives
only in the secrets file (``Settings.alerts.webhook_secrets_file``: YAML/JSON mapping of name
to secret, mode 0600) or in ``CITYWATCH_WEBHOOK_SECRETS`` (JSON). It is read by
:func:`webhook_secret` at the moment a delivery is signed, inside the task: it is never
a Settings field (Settings travel as Prefect parameters), a table column, a log line or
CLI output.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import pyarrow as pa
import yaml
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from citywatch.errors import BadInputError, NotFoundError
from citywatch.filters import eq
from citywatch.schemas import TS, arrow_to_rows, rows_to_arrow, utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import has_table, open_table, upsert

TARGET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
SECRET_PREFIX = "whsec_"


@dataclass(frozen=True, slots=True)
class WebhookTargetRow:
    id: str  # the target's name, as deliveries name it (webhook:<name>)
    url: str
    created_by: str
    created_at: dt.datetime

    TABLE: ClassVar[str] = "webhook_targets"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("url", pa.string()),
            pa.field("created_by", pa.string()),
            pa.field("created_at", TS),
        ]
    )


def check_name(name: str) -> str:
    if not isinstance(name, str) or not TARGET_NAME.fullmatch(name):
        raise BadInputError(f"webhook name {name!r}: 1-32 lowercase letters, digits or '-'")
    return name


def host_allowed(host: str, allowed: list[str]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in allowed:
        if pattern.startswith("*.") and host.endswith(pattern[1:]) and host != pattern[2:]:
            return True
        if host == pattern:
            return True
    return False


def check_url(url: str, settings: Settings) -> str:
    """``url`` if it may receive alerts; otherwise a BadInputError saying why."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError as exc:
        raise BadInputError(f"webhook URL {url!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise BadInputError(f"webhook URL {url!r} must be http:// or https:// with a host")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise BadInputError(
            "a webhook URL must not carry credentials, a query or a fragment: receivers "
            "authenticate citywatch by the webhook signature (its secret goes in the secrets file)"
        )
    if not host_allowed(host, settings.alerts.webhook_allowed_hosts):
        allowed = ", ".join(settings.alerts.webhook_allowed_hosts) or "none"
        raise BadInputError(
            f"webhook host {host!r} is not in webhook_allowed_hosts ({allowed}); "
            "an admin allows hosts in the settings (CITYWATCH_ALERTS__WEBHOOK_ALLOWED_HOSTS)"
        )
    return url


def _table(storage: Storage):  # noqa: ANN202 - lancedb Table
    return open_table(storage.db, WebhookTargetRow.TABLE, WebhookTargetRow.SCHEMA)


def add_target(storage: Storage, name: str, url: str, by: str) -> WebhookTargetRow:
    row = WebhookTargetRow(check_name(name), check_url(url, storage.settings), by, utcnow())
    upsert(_table(storage), rows_to_arrow([row], WebhookTargetRow.SCHEMA))
    return row


def remove_target(storage: Storage, name: str) -> None:
    check_name(name)
    if name not in {t.id for t in list_targets(storage)}:
        raise NotFoundError(f"webhook {name!r} does not exist (see `citywatch webhooks list`)")
    _table(storage).delete(eq("id", name))


def list_targets(storage: Storage) -> list[WebhookTargetRow]:
    if not has_table(storage.db, WebhookTargetRow.TABLE):
        return []
    rows = arrow_to_rows(_table(storage).to_arrow(), WebhookTargetRow)
    return sorted(rows, key=lambda r: r.id)


# --- secrets -----------------------------------------------------------------------------------
class WebhookSecretsEnv(BaseSettings):
    """Webhook secrets from ``CITYWATCH_WEBHOOK_SECRETS`` (JSON name -> whsec_...), read
    only where a delivery is signed; deliberately not part of :class:`Settings`."""

    model_config = SettingsConfigDict(env_prefix="CITYWATCH_", extra="ignore", frozen=True)

    webhook_secrets: dict[str, SecretStr] = Field(default_factory=dict)


def _check_secret(name: str, secret: object, source: str) -> SecretStr:
    text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not isinstance(text, str) or not text.startswith(SECRET_PREFIX):
        raise BadInputError(f"webhook {name!r}: its secret in {source} must start with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(text[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInputError(f"webhook {name!r}: its secret in {source} is not base64 after whsec_") from exc
    if not 24 <= len(key) <= 64:
        raise BadInputError(f"webhook {name!r}: its secret in {source} must hold 24-64 random bytes")
    return SecretStr(text)


def file_secrets(path: str) -> dict[str, object]:
    file = Path(path).expanduser()
    try:
        mode = file.stat().st_mode
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"webhook secrets file {file} cannot be read: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BadInputError(f"webhook secrets file {file} is open to group or others: chmod 600 {file}")
    try:
        found = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise BadInputError(f"webhook secrets file {file} is not YAML or JSON") from exc
    if not isinstance(found, dict):
        raise BadInputError(f"webhook secrets file {file} must map target names to secrets")
    return found


def webhook_secret(settings: Settings, name: str) -> SecretStr:
    """The signing secret of target ``name``: the secrets file first, then the environment."""
    if settings.alerts.webhook_secrets_file:
        found = file_secrets(settings.alerts.webhook_secrets_file)
        if name in found:
            return _check_secret(name, found[name], "the secrets file")
    try:
        env = WebhookSecretsEnv().webhook_secrets
    except ValidationError as exc:
        raise BadInputError("CITYWATCH_WEBHOOK_SECRETS must be a JSON object of name -> secret") from exc
    if name in env:
        return _check_secret(name, env[name], "CITYWATCH_WEBHOOK_SECRETS")
    raise BadInputError(
        f"webhook {name!r} has no secret: add it to the webhook secrets file or CITYWATCH_WEBHOOK_SECRETS"
    )


def has_secret(settings: Settings, name: str) -> bool:
    try:
        webhook_secret(settings, name)
    except BadInputError:
        return False
    return True


def new_secret() -> str:
    """A fresh Standard Webhooks secret (32 random bytes)."""
    import secrets

    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secrets_file_text(secrets: dict[str, str]) -> str:
    return json.dumps(secrets, indent=2) + "\n"
