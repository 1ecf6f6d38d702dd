"""The one settings object. Read once at the edge (CLI, flow entry) and passed down.

Every field can be set from the environment with the ``CITYWATCH_`` prefix, e.g.
``CITYWATCH_STORAGE_ROOT=s3://bucket/city``. Nothing else in citywatch reads
``os.environ``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All configuration of a citywatch deployment."""

    model_config = SettingsConfigDict(
        env_prefix="CITYWATCH_", extra="forbid", frozen=True, validate_default=True
    )

    # --- storage -------------------------------------------------------------
    storage_root: str = Field(
        "./data",
        description="Root URL for footage, thumbnails, reports, exports and the "
        "LanceDB database: a local path or s3://bucket/prefix.",
    )
    cameras_file: str | None = Field(
        None, description="Camera registry YAML; default <storage_root>/cameras.yaml."
    )
    state_dir: str = Field(
        "./.citywatch",
        description="Local directory for this machine's process state (the local "
        "Prefect server's database and logs). Never shared between workers.",
    )
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, moto, ...).")
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    s3_allow_http: bool = Field(False, description="Allow plain-http S3 endpoints.")

    # --- decoding and gating ---------------------------------------------------
    sample_fps: float = Field(2.0, gt=0, le=30, description="Frames analysed per second.")
    motion_pixel_delta: int = Field(
        18, ge=1, le=255, description="Grey-level change that counts a pixel as moving."
    )
    motion_min_fraction: float = Field(
        0.002, ge=0, le=1, description="Share of moving pixels that wakes the detectors."
    )

    # --- faces ---------------------------------------------------------------------
    face_backend: Literal["dlib", "insightface"] = Field(
        "dlib",
        description="dlib: RetinaFace-MobileNet0.25 + dlib ResNet (shipped). "
        "insightface: SCRFD + ArcFace packs the operator provides.",
    )
    insightface_dir: str | None = Field(
        None, description="Directory holding an insightface pack (det_*.onnx, w600k_*.onnx)."
    )
    face_det_threshold: float = Field(0.6, gt=0, lt=1)
    face_min_px: int = Field(24, ge=8, description="Smallest face side (px) kept.")
    face_max_side: int = Field(
        960, ge=160, description="Frames are resized so their long side is at most this before detection."
    )
    face_match_threshold: float | None = Field(
        None,
        gt=0,
        description="Largest embedding distance that counts as the same "
        "person; default is the backend's calibrated value.",
    )
    embeds_per_track: int = Field(3, ge=1, le=50, description="Best faces embedded per track.")
    face_ann_min_rows: int = Field(
        100_000,
        ge=1,
        description="The daily maintenance (retention flow) builds an IVF_RQ "
        "vector index on faces once the table holds this many rows; below, search is exact.",
    )
    face_ann_nprobes: int = Field(20, ge=1, description="IVF partitions a face search visits.")
    face_ann_refine: int = Field(
        5,
        ge=1,
        description="Face search re-ranks this x the candidates by exact distance "
        "(recall@10 0.98 at 1M rows with 20 probes; ~0.64 without refining).",
    )
    track_iou: float = Field(0.3, gt=0, lt=1)
    track_max_gap_s: float = Field(2.0, gt=0)

    # --- plates -------------------------------------------------------------------
    plates_enabled: bool = Field(True, description="Read licence plates while indexing.")
    plate_grammar: tuple[str, ...] = Field(
        (r"^[A-HJ-NPR-Z]{1,2}[1-9][0-9]{0,3}$", r"^(?=[A-Z0-9]*[A-Z])[A-Z0-9]{2,8}$"),
        description="Regexes over normalised plate text, most preferred first (default: "
        "Hong Kong standard marks, then personalised marks of 2-8 characters).",
    )
    plate_grammar_fix_targets: int | None = Field(
        1, ge=0, description="How many leading grammar patterns confusable fixes may target."
    )
    plate_min_confidence: float = Field(0.5, ge=0, le=1, description="Reads below are dropped.")
    plate_detect_side_px: int = Field(
        480,
        ge=160,
        le=1280,
        description="Small regions are upscaled (at most 8x) until their long "
        "side reaches this before text detection. 640 finds more 40-60 px plates (see "
        "docs/performance.md) at about twice the detection cost.",
    )
    plate_region_min_px: int = Field(
        96,
        ge=0,
        description="Moving regions narrower or lower than this (frame px) are "
        "not read for plates: a car with a 40 px plate is ~140 px wide.",
    )
    plate_region_max_aspect: float = Field(
        1.6,
        ge=0,
        description="Moving regions taller than this x their width (walking "
        "people) are not read for plates; 0 reads every moving region. Regions holding "
        "the sample's plates reach 1.57.",
    )
    plate_settled_confidence: float = Field(
        0.9,
        ge=0,
        le=1,
        description="A plate track whose last two reads agree with every "
        "character at least this sure is settled: its region is re-read only every "
        "plate_settled_reread_s.",
    )
    plate_settled_reread_s: float = Field(
        1.6,
        ge=0,
        description="A moving region that holds a settled plate track (at its "
        "predicted place) is skipped while the track's last read would be at most this "
        "old at the next frame (every third frame at 2 fps); 0 reads every region of "
        "every moving frame. Capped at 0.85 x track_max_gap_s, so the track goes on.",
    )
    plate_full_frame_share: float = Field(
        1.0,
        gt=0,
        description="The whole frame is read once instead of its moving regions "
        "when reading those (upscaled to plate_detect_side_px) would cost at least this "
        "share of reading the frame.",
    )
    plate_low_confidence: float = Field(
        0.8, ge=0, le=1, description="A voted character under this flags the plate low-confidence."
    )

    # --- compute -------------------------------------------------------------------
    dask_address: str | None = Field(
        None,
        description="An existing Dask scheduler (tcp://host:8786); default: a "
        "local cluster started for the run.",
    )
    dask_workers: int = Field(2, ge=1, description="Worker processes of the local cluster.")
    dask_threads_per_worker: int = Field(1, ge=1)
    retention_faces_days: int = Field(
        31,
        ge=1,
        description="Face rows and thumbnails are deleted after this many days unless a case holds them.",
    )
    retention_plates_days: int = Field(90, ge=1, description="The same for plate rows.")
    retention_footage_days: int | None = Field(
        None,
        ge=1,
        description="Footage files are deleted this many days after they end, unless a "
        "case holds them (every export holds its sources); unset: footage is kept.",
    )
    index_lease_s: float = Field(
        45,
        gt=0,
        description="How long a run's claim on a segment lasts unless renewed: a "
        "killed run's segments are free again this long after its last heartbeat.",
    )
    index_lease_heartbeat_s: float = Field(
        10,
        gt=0,
        description="A running segment renews its claim this often; keep index_lease_s "
        "a few heartbeats longer, so a slow storage write never loses a live claim.",
    )

    # --- search ----------------------------------------------------------------------
    search_top_k: int = Field(20, ge=1, le=1000)
    probe_max_pixels: int = Field(
        25_000_000,
        ge=1_000_000,
        le=100_000_000,
        description="Largest probe or enrolment photo (width x height, read from its "
        "header before decoding); larger ones are refused (a 39 MP photo costs ~550 MB).",
    )

    # --- governance: who is acting (citywatch/auth.py, docs/governance.md) ----------
    user: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The acting user (CITYWATCH_USER; the CLI's --user overrides it). "
        "Must be listed in the users file. No default: guarded actions refuse to run "
        "without a named user.",
    )
    users_file: str | None = Field(
        None, description="Users and roles YAML; default <storage_root>/users.yaml."
    )

    # --- the citywatch service (citywatch/service, `citywatch serve`) ----------------
    service_host: str = Field("127.0.0.1", description="Address `citywatch serve` listens on.")
    service_port: int = Field(8470, ge=0, le=65535, description="Port `citywatch serve` listens on.")
    service_tls_cert: str | None = Field(None, description="PEM certificate file: serve HTTPS.")
    service_tls_key: str | None = Field(None, description="PEM private key of service_tls_cert.")
    service_max_upload_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest request body the service accepts (uploads)."
    )
    session_secret: SecretStr | None = Field(
        None,
        description="Key that signs session cookies. Unset: a random key is made once "
        "under <storage_root>/auth/ and shared by every instance on that root.",
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
    api_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        max_length=500,
        description="Base URL of a citywatch service (e.g. http://127.0.0.1:8470). Set: the CLI is "
        "a client and governed commands go through the service with an API token "
        "(CITYWATCH_API_TOKEN or the file `citywatch login` writes).",
    )

    # --- redaction and evidence export (tasks/export/redact.py, flows/redact_export.py) ----
    redact_mode: Literal["pixelate", "blur", "fill"] = Field(
        "pixelate",
        description="How masks and bystander faces are obscured: pixelate "
        "(coarse mosaic + noise), blur (downscale + Gaussian + noise) or fill (solid).",
    )
    redact_plates: bool = Field(False, description="Also obscure licence plates in exports.")
    redact_face_margin: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Face boxes are grown by this share of their size "
        "on each side before they are obscured (hair, ears, detector jitter).",
    )
    redact_det_threshold: float = Field(
        0.45,
        gt=0,
        lt=1,
        description="Face detector score for redaction: lower than "
        "indexing's, since a missed face is a leak and an extra blur is not.",
    )
    redact_min_face_px: int = Field(12, ge=4, description="Smallest face (px) redacted.")
    redact_hold_frames: int = Field(
        8,
        ge=0,
        le=300,
        description="A face track's box is held this many frames "
        "before its first and after its last detection (gaps inside are interpolated).",
    )
    export_pad_s: float = Field(10.0, ge=0, le=600, description="Seconds added before and after a sighting.")
    export_max_s: float = Field(1800.0, gt=0, le=86400, description="Longest clip one export may cover.")
    export_crf: int = Field(18, ge=0, le=51, description="x264 quality (lower is better).")
    export_preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = Field(
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

    # --- audit checkpoints (citywatch/governance/checkpoints.py, docs/governance.md)
    audit_key_file: str | None = Field(
        None,
        description="Ed25519 private key (PEM, 0600) that signs audit checkpoints; "
        "default <state_dir>/keys/audit_ed25519.pem.",
    )
    audit_checkpoint_url: str | None = Field(
        None,
        description="Write-once store for signed audit checkpoints: s3://bucket/prefix "
        "(a bucket with Object Lock) or a local folder outside the storage root; default "
        "<state_dir>/audit-checkpoints/<root digest>.",
    )
    audit_checkpoint_every: int = Field(
        100, ge=1, le=1_000_000, description="A checkpoint is written after this many audit records..."
    )
    audit_checkpoint_minutes: float = Field(
        10.0, gt=0, le=1440, description="...or at the first record this many minutes after the last one."
    )
    audit_checkpoint_lock: Literal["compliance", "governance"] = Field(
        "compliance", description="S3 Object Lock mode of checkpoints (compliance: no one can delete them)."
    )
    audit_checkpoint_retain_days: int = Field(
        3650, ge=1, le=36500, description="How long S3 Object Lock keeps each checkpoint."
    )

    # --- watchlist, sweep and alerts (citywatch/watchlist.py, flows/watchlist_sweep.py)
    watchlist_max_days: int = Field(
        30,
        ge=1,
        le=365,
        description="Longest expiry a watchlist entry may be given "
        "(days from now); every entry must carry an expiry.",
    )
    watchlist_plate_min_literals: int = Field(
        3,
        ge=1,
        le=8,
        description="A plate pattern on the watchlist needs at least this many letters "
        "or digits besides * and ? (a pattern like ?* would alert on every plate).",
    )
    sweep_interval_s: float = Field(
        10.0,
        ge=1,
        le=3600,
        description="Seconds between watchlist sweeps (the "
        "watchlist-sweep deployment's interval and `citywatch sweep --watch`).",
    )
    ingest_interval_s: float = Field(
        5.0,
        ge=1,
        le=3600,
        description="Seconds between fast-ingest runs that index "
        "new segments on their own (flows/ingest_new.py).",
    )
    ingest_sweeps: bool = Field(
        True,
        description="A fast-ingest run that indexed something sweeps the watchlist "
        "right away, instead of waiting for the next scheduled sweep.",
    )
    plate_alert_max_distance: float = Field(
        0.6,
        ge=0,
        le=3,
        description="Largest confusion-aware plate distance that "
        "raises an alert for a plate entry without its own threshold (0.3 per "
        "confusable swap such as O/0, 1.0 per other edit).",
    )
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
    alert_webhook_timeout_s: float = Field(
        3.0,
        gt=0,
        le=60,
        description="Timeout of one signed webhook POST; a slow receiver "
        "never holds the alert write, only this sweep's delivery step.",
    )
    alert_delivery_max_attempts: int = Field(
        8,
        ge=1,
        le=100,
        description="Attempts per alert and sink before a delivery "
        "is given up (state failed, shown by `citywatch alerts list`).",
    )
    alert_retry_base_s: float = Field(
        2.0,
        gt=0,
        le=600,
        description="First retry delay of a failed delivery; doubles per attempt up to alert_retry_max_s.",
    )
    alert_retry_max_s: float = Field(300.0, gt=0, le=86400, description="Longest retry delay.")
    alert_pass_gap_s: float = Field(
        10.0,
        ge=0,
        le=600,
        description="Tracks of one entry on one camera closer than "
        "this in time are one pass (a split track, a segment boundary): one alert.",
    )

    # --- object storage details (citywatch/storage.py, docs/deploy.md) --------------
    s3_session_token: SecretStr | None = Field(
        None,
        description="Session token of temporary S3 credentials (AWS STS). Leave "
        "the s3 keys unset to use the default AWS chain (env, profile, IRSA, instance role).",
    )
    s3_bulk_delete: bool = Field(
        True,
        description="Let LanceDB delete many objects per request (DeleteObjects); "
        "turn off for S3 servers without it (localbucket, some gateways).",
    )

    # --- datasep ---
    analytics_root: str | None = Field(
        None,
        description="Where the derived analyst dataset lives (no embeddings, no thumbnails): a "
        "local folder or s3://bucket/prefix. Unset: <storage_root>/analytics. Set it where "
        "analysts run (with analyst credentials that reach only this location): "
        "citywatch.analytics then reads only here, and checks no role (docs/deploy.md).",
    )

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _hosts_are_names(cls, value: list[str]) -> list[str]:
        for host in value:
            if not re.fullmatch(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,252})", host):
                raise ValueError(f"webhook_allowed_hosts: {host!r} is not a host name (or *.domain)")
        return [h.lower() for h in value]

    @field_validator("storage_root")
    @classmethod
    def _root_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("storage_root must not be empty")
        return value.rstrip("/") or "/"

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if bool(self.service_tls_cert) != bool(self.service_tls_key):
            raise ValueError("service_tls_cert and service_tls_key go together: set both or neither")
        return self

    @model_validator(mode="after")
    def _lease_outlasts_heartbeats(self) -> Settings:
        if self.index_lease_s < 2 * self.index_lease_heartbeat_s:
            raise ValueError(
                f"index_lease_s ({self.index_lease_s:g}) must be at least twice "
                f"index_lease_heartbeat_s ({self.index_lease_heartbeat_s:g}): a claim must "
                "survive a missed heartbeat"
            )
        return self

    @model_validator(mode="after")
    def _insightface_needs_dir(self) -> Settings:
        if self.face_backend == "insightface" and not self.insightface_dir:
            raise ValueError(
                "face_backend=insightface needs insightface_dir (CITYWATCH_INSIGHTFACE_DIR) "
                "pointing at a local SCRFD + ArcFace pack"
            )
        return self
