"""The sections of :class:`citywatch.settings.Settings`, one per component.

Each section is set from the environment as ``CITYWATCH_<SECTION>__<FIELD>``, e.g.
``CITYWATCH_FACES__MATCH_THRESHOLD=0.5``; a component receives its own section
(``SegmentFaces`` gets ``settings.faces``, ``SegmentPlates`` ``settings.plates``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from citywatch.face_rule import FaceRule

if TYPE_CHECKING:
    pass


class Section(BaseModel):
    """A frozen group of settings; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class StorageSettings(Section):
    root: str = Field(
        "./data",
        description="Root URL for footage, thumbnails, reports, exports and the "
        "LanceDB database: a local path or s3://bucket/prefix.",
    )
    cameras_file: str | None = Field(None, description="Camera registry YAML; default <root>/cameras.yaml.")
    users_file: str | None = Field(None, description="Users and roles YAML; default <root>/users.yaml.")
    state_dir: str = Field(
        "./.citywatch",
        description="Local directory for this machine's process state (the local "
        "Prefect server's database and logs). Never shared between workers.",
    )
    analytics_root: str | None = Field(
        None,
        description="Where the derived analyst dataset lives (no embeddings, no thumbnails): a "
        "local folder or s3://bucket/prefix. Unset: <root>/analytics. Set it where "
        "analysts run (with analyst credentials that reach only this location): "
        "citywatch.analytics then reads only here, and checks no role (docs/deploy.md).",
    )
    shard_by_day: bool = Field(
        False,
        description="Write faces and plates rows to one table per UTC day (faces_d20261203, "
        "plates_d20261203) instead of one table each: searches fan out over the days in their "
        "window, retention drops whole expired days, each closed day gets its own vector index. "
        "Rows written before it was turned on stay readable in the unsharded tables. "
        "Turn it on for a city (docs/deploy.md).",
    )

    @field_validator("root")
    @classmethod
    def _root_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("storage_root must not be empty")
        return value.rstrip("/") or "/"


class S3Settings(Section):
    endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, moto, ...).")
    access_key_id: str | None = Field(None, description="S3 access key id.")
    secret_access_key: SecretStr | None = Field(None, description="S3 secret access key.")
    region: str = Field("us-east-1", description="S3 region.")
    allow_http: bool = Field(False, description="Allow plain-http S3 endpoints.")
    session_token: SecretStr | None = Field(
        None,
        description="Session token of temporary S3 credentials (AWS STS). Leave "
        "the keys unset to use the default AWS chain (env, profile, IRSA, instance role).",
    )
    bulk_delete: bool = Field(
        True,
        description="Let LanceDB delete many objects per request (DeleteObjects); "
        "turn off for S3 servers without it (localbucket, some gateways).",
    )


class DecodeSettings(Section):
    sample_fps: float = Field(2.0, gt=0, le=30, description="Frames analysed per second.")
    motion_pixel_delta: int = Field(
        18, ge=1, le=255, description="Grey-level change that counts a pixel as moving."
    )
    motion_min_fraction: float = Field(
        0.002, ge=0, le=1, description="Share of moving pixels that wakes the detectors."
    )

    skip_unsampled: bool = Field(
        True,
        description="Tell the decoder to skip non-reference frames that sampling will not take "
        "(same sampled frames, times and pixels; ~40% fewer frames decoded on B-frame H.264). "
        "Off: decode every frame.",
    )


class FacesSettings(Section):
    backend: Literal["dlib", "insightface"] = Field(
        "dlib",
        description="dlib: RetinaFace-MobileNet0.25 + dlib ResNet (shipped). "
        "insightface: SCRFD + ArcFace packs the operator provides in insightface_dir "
        "(their weights are non-commercial).",
    )
    insightface_dir: str | None = Field(
        None, description="Directory holding an insightface pack (det_*.onnx, w600k_*.onnx)."
    )
    det_threshold: float = Field(0.6, gt=0, lt=1, description="Face detector score kept while indexing.")
    min_px: int = Field(24, ge=8, description="Smallest face side (px) kept.")
    max_side: int = Field(
        960, ge=160, description="Frames are resized so their long side is at most this before detection."
    )
    match_threshold: float | None = Field(
        None,
        gt=0,
        description="Largest embedding distance that counts as the same "
        "person; default is the backend's calibrated value (0.55 for dlib). Calibrate it on local data.",
    )
    embeds_per_track: int = Field(3, ge=1, le=50, description="Best faces embedded per track.")
    match_min_px: float = Field(
        40,
        ge=0,
        description="Faces whose box is smaller than this (px, smaller side) are indexed but never "
        "reported as a match by search or the watchlist sweep (benchmarks/faces.py: below ~40 px no "
        "one is found and false matches appear). 0 = any size.",
    )
    match_template: bool = Field(
        True,
        description="A track matches only when its best face and its template (quality-weighted mean "
        "of its faces) are both within the threshold; off = the best face alone decides.",
    )
    ann_min_rows: int = Field(
        100_000,
        ge=1,
        description="The daily maintenance (retention flow) builds an IVF_RQ "
        "vector index on faces once the table holds this many rows; below, search is exact.",
    )
    ann_nprobes: int = Field(20, ge=1, description="IVF partitions a face search visits.")
    ann_refine: int = Field(
        5,
        ge=1,
        description="Face search re-ranks this x the candidates by exact distance "
        "(recall@10 0.98 at 1M rows with 20 probes; ~0.64 without refining).",
    )

    def rule(self) -> FaceRule:
        """The face match rule search and the sweep apply (citywatch/face_rule.py)."""
        return FaceRule(min_px=self.match_min_px, use_template=self.match_template)

    @model_validator(mode="after")
    def _insightface_needs_dir(self) -> FacesSettings:
        if self.backend == "insightface" and not self.insightface_dir:
            raise ValueError(
                "face_backend=insightface needs insightface_dir (CITYWATCH_FACES__INSIGHTFACE_DIR) "
                "pointing at a local SCRFD + ArcFace pack"
            )
        return self


class TrackingSettings(Section):
    iou: float = Field(0.3, gt=0, lt=1, description="Box overlap that continues a face or plate track.")
    max_gap_s: float = Field(2.0, gt=0, description="Longest gap (s) a track survives without a detection.")


class DaskSettings(Section):
    address: str | None = Field(
        None,
        description="An existing Dask scheduler (tcp://host:8786); default: a "
        "local cluster started for the run.",
    )
    workers: int = Field(2, ge=1, description="Worker processes of the local cluster.")
    threads_per_worker: int = Field(1, ge=1, description="Threads per worker of the local cluster.")


class IndexSettings(Section):
    lease_s: float = Field(
        45,
        gt=0,
        description="How long a run's claim on a segment lasts unless renewed: a "
        "killed run's segments are free again this long after its last heartbeat.",
    )
    lease_heartbeat_s: float = Field(
        10,
        gt=0,
        description="A running segment renews its claim this often; keep lease_s "
        "a few heartbeats longer, so a slow storage write never loses a live claim.",
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
        description="A fast-ingest run sweeps the watchlist as soon as a segment's rows are "
        "committed (before its report, audit record and analyst dataset), instead of waiting "
        "for the next scheduled sweep.",
    )

    interval_s: float = Field(
        300.0,
        ge=10,
        le=86400,
        description="Seconds between scheduled bulk index runs (the index-footage "
        "deployment's interval, set by `citywatch up`).",
    )
    full_reconcile_every_s: float = Field(
        86400.0,
        ge=0,
        le=30 * 86400,
        description="Index runs find new footage by listing each camera folder from its "
        "newest known segment; this often a run lists all footage instead, and finds "
        "files that landed with an older start time. 0: every run lists everything.",
    )
    notification_queue_url: str = Field(
        "",
        description="SQS queue that receives the footage bucket's object-created "
        "notifications: index runs then plan the files named there instead of listing "
        "camera folders (the periodic full listing still runs). Empty: list from the "
        "discovery marks. S3 footage only.",
    )
    notification_endpoint_url: str | None = Field(
        None, description="SQS endpoint of the notification queue. Unset: the S3 endpoint."
    )
    task_retries: int = Field(
        2, ge=0, le=20, description="Retries of one segment's index task after a transient error."
    )
    task_retry_delay_s: float = Field(
        5.0, ge=0, le=3600, description="Seconds before a segment's index task is retried."
    )
    segments_per_task: int = Field(
        1,
        ge=1,
        le=100,
        description="Consecutive segments of one camera indexed by one task, whose rows are "
        "written in one commit per table: N segments per commit instead of one (a city's "
        "tables take N times fewer commits), each segment still under its own lease and "
        "replaced as a whole. Its rows (and alerts) land when the task's last segment is "
        "done: keep 1 where alert latency matters more than commit rate, or bound the "
        "wait with index.commit_after_s.",
    )
    commit_after_s: float = Field(
        0.0,
        ge=0,
        le=3600,
        description="With index.segments_per_task > 1: a task commits the segments it has "
        "analysed so far once this many seconds have passed since its last commit (or its "
        "start), so no segment's rows wait for a whole slow batch. 0: one commit at the "
        "end of the batch.",
    )

    @model_validator(mode="after")
    def _lease_outlasts_heartbeats(self) -> IndexSettings:
        if self.lease_s < 2 * self.lease_heartbeat_s:
            raise ValueError(
                f"index_lease_s ({self.lease_s:g}) must be at least twice "
                f"index_lease_heartbeat_s ({self.lease_heartbeat_s:g}): a claim must "
                "survive a missed heartbeat"
            )
        return self


class RetentionSettings(Section):
    faces_days: int = Field(
        31,
        ge=1,
        description="Face rows and thumbnails are deleted after this many days unless a case holds them.",
    )
    plates_days: int = Field(90, ge=1, description="The same for plate rows.")
    footage_days: int | None = Field(
        None,
        ge=1,
        description="Footage files are deleted this many days after they end, unless a "
        "case holds them (every export holds its sources); unset: footage is kept.",
    )


class SearchSettings(Section):
    top_k: int = Field(20, ge=1, le=1000, description="Results a search returns by default.")
    probe_max_pixels: int = Field(
        25_000_000,
        ge=1_000_000,
        le=100_000_000,
        description="Largest probe or enrolment photo (width x height, read from its "
        "header before decoding); larger ones are refused (a 39 MP photo costs ~550 MB).",
    )
    memory_tier_mb: int = Field(
        4096,
        ge=0,
        le=1_048_576,
        description="Memory (MB) the service (`citywatch serve`) may use to hold closed face day "
        "shards (storage.shard_by_day; tasks/search/faces_memory.py) and search them exactly in "
        "memory (~1 KB a face: 4096 MB holds ~4M faces, ~12 days of a 10M-a-month city). The "
        "newest days are loaded at startup, others on first use, in a background thread; the "
        "least recently used are evicted. A shard whose table changed since it was loaded "
        "(re-index, retention) is searched in LanceDB until it is reloaded. 0: off. The CLI "
        "never loads it: a one-shot search would spend more reading whole days than searching.",
    )
    plate_memory_tier_mb: int = Field(
        1024,
        ge=0,
        le=1_048_576,
        description="Memory (MB) the service may use to hold closed plate day shards "
        "(tasks/search/plates_memory.py: every column of a pass, ~160 bytes; 1024 MB holds "
        "~6.5M passes) and rank them in memory, with the same rules as search.memory_tier_mb "
        "(version checked on every search, background loads, LRU). 0: off; the CLI never "
        "loads it.",
    )


class ServiceSettings(Section):
    host: str = Field("127.0.0.1", description="Address `citywatch serve` listens on.")
    port: int = Field(8470, ge=0, le=65535, description="Port `citywatch serve` listens on.")
    tls_cert: str | None = Field(None, description="PEM certificate file: serve HTTPS.")
    tls_key: str | None = Field(None, description="PEM private key of tls_cert.")
    max_upload_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest request body the service accepts (uploads)."
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> ServiceSettings:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("service_tls_cert and service_tls_key go together: set both or neither")
        return self


class OpsSettings(Section):
    """Operations: automations `citywatch up` creates, flow-run retention (citywatch/stack/automations.py)."""

    notify_url: SecretStr | None = Field(
        None,
        description="http(s) webhook (a secret: Slack-style URLs carry their token) the "
        "Prefect automations `citywatch up` creates POST to "
        '(JSON {"text": ...}, as Slack and Mattermost take it) when an index run fails, lag '
        "exceeds ops.lag_alert_s or the sweep stops. Unset: they fire in the Prefect UI only.",
    )
    lag_alert_s: float = Field(
        900.0,
        gt=0,
        description="An index run whose largest camera lag (newest footage minus newest "
        "indexed segment) exceeds this emits citywatch.index.lag-exceeded (an automation notifies).",
    )
    sweep_stall_s: float = Field(
        300.0,
        ge=30,
        description="The sweep-stopped automation fires when no watchlist-sweep run has "
        "completed for this long.",
    )
    flow_run_keep_days: int = Field(
        7,
        ge=1,
        le=3650,
        description="The daily flow-run-retention deployment deletes Prefect flow runs "
        "(with their task runs, logs and artifacts) that finished more than this many days ago.",
    )
