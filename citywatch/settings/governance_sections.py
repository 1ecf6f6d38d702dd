"""Sections of :class:`citywatch.settings.Settings` for governance: sign-in, redaction,
export, audit checkpoints, the watchlist, sweeps and alert delivery."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from citywatch.settings.sections import Section


class AuthSettings(Section):
    session_secret: SecretStr | None = Field(
        None,
        description="Key that signs session cookies. Unset: a random key is made once "
        "under <storage root>/auth/ and shared by every instance on that root.",
    )
    session_idle_s: float = Field(1800, gt=0, description="A session unused this long ends.")
    session_max_s: float = Field(43200, gt=0, description="A session ends this long after sign-in.")
    login_max_failures: int = Field(
        5, ge=1, le=100, description="Failed sign-ins of one account within login_window_s that lock it."
    )
    login_window_s: float = Field(900, gt=0, description="Window over which failed sign-ins count.")
    login_lockout_s: float = Field(900, gt=0, description="How long a locked account stays locked.")
    totp_required: bool = Field(
        False, description="Supervisors and admins must give a TOTP code (pyotp) to sign in."
    )
    api_token_max_days: int = Field(90, ge=1, le=730, description="Longest lifetime of an API token.")


class OidcSettings(Section):
    """OIDC sign-in to the service (citywatch/service/oidc.py, docs/service.md)."""

    issuer: str | None = Field(
        None,
        pattern=r"^https?://[^\s?#]+$",
        max_length=500,
        description="Issuer URL of an OpenID Connect provider; set (with oidc.client_id): the "
        "service offers GET /api/auth/oidc/login. https, except on a loopback address.",
    )
    client_id: str | None = Field(
        None, min_length=1, max_length=200, description="citywatch's client id at the OIDC provider."
    )
    client_secret: SecretStr | None = Field(
        None,
        description="The client secret (CITYWATCH_OIDC__CLIENT_SECRET); prefer oidc.client_secret_file. "
        "Never stored, logged or shown. Neither set: a public client (PKCE only).",
    )
    client_secret_file: str | None = Field(
        None, description="File holding the client secret (mode 0600: group or others may not read it)."
    )
    redirect_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s?#]+$",
        max_length=500,
        description="The callback URL registered at the provider; default "
        "<the URL the browser used>/api/auth/oidc/callback.",
    )
    scope: str = Field(
        "openid", pattern=r"^openid( [A-Za-z0-9_:./-]+)*$", description="Scopes asked for (openid first)."
    )
    roles_claim: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_:./-]{1,100}$",
        description="ID-token claim listing role names. Set: a sign-in keeps only the account's "
        "citywatch roles that the claim also lists (the provider can narrow roles, never grant them).",
    )
    display_name: str | None = Field(
        None,
        pattern=r"^[^<>\x00-\x1f]{1,60}$",
        description="The provider's name on the console's sign-in button (\"Sign in with NAME\"); "
        "default: the issuer's host name.",
    )

    @model_validator(mode="after")
    def _complete(self) -> OidcSettings:
        if bool(self.issuer) != bool(self.client_id):
            raise ValueError("oidc.issuer and oidc.client_id go together: set both or neither")
        if self.client_secret is not None and self.client_secret_file:
            raise ValueError("set oidc.client_secret or oidc.client_secret_file, not both")
        for name in ("issuer", "redirect_url"):
            url = getattr(self, name)
            if url and url.startswith("http://") and not _loopback_url(url):
                raise ValueError(f"oidc.{name} must use https (plain http only on a loopback address)")
        return self


def _loopback_url(url: str) -> bool:
    """Whether ``url`` names this machine (127.0.0.0/8, ::1, localhost): plain http is allowed there."""
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    host = host[1 : host.index("]")] if host.startswith("[") else host.split(":", 1)[0]
    return host == "localhost" or host == "::1" or re.fullmatch(r"127(\.\d{1,3}){3}", host) is not None


class RedactSettings(Section):
    mode: Literal["pixelate", "blur", "fill"] = Field(
        "pixelate",
        description="How masks and bystander faces are obscured: pixelate "
        "(coarse mosaic + noise), blur (downscale + Gaussian + noise) or fill (solid).",
    )
    plates: bool = Field(False, description="Also obscure licence plates in exports.")
    face_margin: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Face boxes are grown by this share of their size "
        "on each side before they are obscured (hair, ears, detector jitter).",
    )
    det_threshold: float = Field(
        0.45,
        gt=0,
        lt=1,
        description="Face detector score for redaction: lower than "
        "indexing's, since a missed face is a leak and an extra blur is not.",
    )
    min_face_px: int = Field(12, ge=4, description="Smallest face (px) redacted.")
    hold_frames: int = Field(
        8,
        ge=0,
        le=300,
        description="A face track's box is held this many frames "
        "before its first and after its last detection (gaps inside are interpolated).",
    )


class ExportSettings(Section):
    pad_s: float = Field(10.0, ge=0, le=600, description="Seconds added before and after a sighting.")
    max_s: float = Field(1800.0, gt=0, le=86400, description="Longest clip one export may cover.")
    crf: int = Field(18, ge=0, le=51, description="x264 quality (lower is better).")
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = Field(
        "veryfast", description="x264 preset."
    )
    signing_key_file: str | None = Field(
        None,
        description="Ed25519 private key (PEM, mode 0600) that signs export manifests; "
        "default <state_dir>/keys/export_ed25519.pem, made on first export. "
        "`citywatch keys public` prints its public keys for verifiers.",
    )
    trusted_keys_file: str | None = Field(
        None,
        description="Public keys (`citywatch keys public` output) that `export verify` "
        "and `audit verify` trust, besides this installation's own keys.",
    )


class AuditSettings(Section):
    key_file: str | None = Field(
        None,
        description="Ed25519 private key (PEM, 0600) that signs audit checkpoints; "
        "default <state_dir>/keys/audit_ed25519.pem.",
    )
    checkpoint_url: str | None = Field(
        None,
        description="Write-once store for signed audit checkpoints: s3://bucket/prefix "
        "(a bucket with Object Lock) or a local folder outside the storage root; default "
        "<state_dir>/audit-checkpoints/<root digest>.",
    )
    checkpoint_every: int = Field(
        100, ge=1, le=1_000_000, description="A checkpoint is written after this many audit records..."
    )
    checkpoint_minutes: float = Field(
        10.0, gt=0, le=1440, description="...or at the first record this many minutes after the last one."
    )
    checkpoint_lock: Literal["compliance", "governance"] = Field(
        "compliance", description="S3 Object Lock mode of checkpoints (compliance: no one can delete them)."
    )
    checkpoint_retain_days: int = Field(
        3650, ge=1, le=36500, description="How long S3 Object Lock keeps each checkpoint."
    )


class WatchlistSettings(Section):
    max_days: int = Field(
        30,
        ge=1,
        le=365,
        description="Longest expiry a watchlist entry may be given "
        "(days from now); every entry must carry an expiry.",
    )
    plate_min_literals: int = Field(
        3,
        ge=1,
        le=8,
        description="A plate pattern on the watchlist needs at least this many letters "
        "or digits besides * and ? (a pattern like ?* would alert on every plate).",
    )


class SweepSettings(Section):
    interval_s: float = Field(
        10.0,
        ge=1,
        le=3600,
        description="Seconds between watchlist sweeps (the "
        "watchlist-sweep deployment's interval and `citywatch sweep --watch`).",
    )
    plate_max_distance: float = Field(
        0.6,
        ge=0,
        le=3,
        description="Largest confusion-aware plate distance that "
        "raises an alert for a plate entry without its own threshold (0.3 per "
        "confusable swap such as O/0, 1.0 per other edit).",
    )
    pass_gap_s: float = Field(
        10.0,
        ge=0,
        le=600,
        description="Tracks of one entry on one camera closer than "
        "this in time are one pass (a split track, a segment boundary): one alert.",
    )


class AlertsSettings(Section):
    webhook_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts alert webhooks may go to (exact names, or *.example.org); "
        "targets are added by an admin with `citywatch webhooks add` (env: a JSON list).",
    )
    webhook_secrets_file: str | None = Field(
        None,
        description="YAML/JSON mapping of webhook target name -> whsec_... signing secret "
        "(mode 0600). CITYWATCH_WEBHOOK_SECRETS (JSON) may hold them instead; neither is "
        "ever stored, logged, printed or passed to Prefect.",
    )
    webhook_timeout_s: float = Field(
        3.0,
        gt=0,
        le=60,
        description="Timeout of one signed webhook POST; a slow receiver "
        "never holds the alert write, only this sweep's delivery step.",
    )
    delivery_max_attempts: int = Field(
        8,
        ge=1,
        le=100,
        description="Attempts per alert and sink before a delivery "
        "is given up (state failed, shown by `citywatch alerts list`).",
    )
    retry_base_s: float = Field(
        2.0,
        gt=0,
        le=600,
        description="First retry delay of a failed delivery; doubles per attempt up to retry_max_s.",
    )
    retry_max_s: float = Field(300.0, gt=0, le=86400, description="Longest retry delay.")

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _hosts_are_names(cls, value: list[str]) -> list[str]:
        for host in value:
            if not re.fullmatch(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,252})", host):
                raise ValueError(f"webhook_allowed_hosts: {host!r} is not a host name (or *.domain)")
        return [h.lower() for h in value]


class CoappearSettings(Section):
    """Co-appearance and recurring unknown faces (tasks/search/coappear.py, recurring.py)."""

    window_s: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Co-appearance: a face track on the subject's camera within this many seconds "
        "of a subject sighting counts as a companion.",
    )
    recurring_max_cameras: int = Field(
        20,
        ge=1,
        description="Recurring faces: cameras one request may cover without a supervisor's approval.",
    )
    recurring_max_days: float = Field(
        7.0,
        gt=0,
        description="Recurring faces: days one request's window may span without a supervisor's approval.",
    )
    recurring_min_count: int = Field(
        3, ge=2, description="Recurring faces: default sightings a group needs to be listed."
    )
    min_track_quality: float = Field(
        0.45,
        ge=0,
        le=1,
        description="Tracks whose best face scores below this (faces.quality: size, sharpness, "
        "pose; e.g. a face cut by the frame edge) are too poor to group: they join no companion or "
        "recurring group (they stay searchable by photo).",
    )
