"""The one settings object. Read once at the edge (CLI, flow entry) and passed down.

Every field can be set from the environment with the ``CITYWATCH_`` prefix, e.g.
``CITYWATCH_STORAGE_ROOT=s3://bucket/city``. Nothing else in citywatch reads
``os.environ``.
"""

from __future__ import annotations

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
        "dlib", description="dlib: RetinaFace-MobileNet0.25 + dlib ResNet (shipped). "
        "insightface: SCRFD + ArcFace packs the operator provides."
    )
    insightface_dir: str | None = Field(
        None, description="Directory holding an insightface pack (det_*.onnx, w600k_*.onnx)."
    )
    face_det_threshold: float = Field(0.6, gt=0, lt=1)
    face_min_px: int = Field(24, ge=8, description="Smallest face side (px) kept.")
    face_max_side: int = Field(
        960, ge=160, description="Frames are resized so their long side is at most this "
        "before detection."
    )
    face_match_threshold: float | None = Field(
        None, gt=0, description="Largest embedding distance that counts as the same "
        "person; default is the backend's calibrated value."
    )
    embeds_per_track: int = Field(3, ge=1, le=50, description="Best faces embedded per track.")
    track_iou: float = Field(0.3, gt=0, lt=1)
    track_max_gap_s: float = Field(2.0, gt=0)

    # --- compute -------------------------------------------------------------------
    dask_address: str | None = Field(
        None, description="An existing Dask scheduler (tcp://host:8786); default: a "
        "local cluster started for the run."
    )
    dask_workers: int = Field(2, ge=1, description="Worker processes of the local cluster.")
    dask_threads_per_worker: int = Field(1, ge=1)

    # --- search ----------------------------------------------------------------------
    search_top_k: int = Field(20, ge=1, le=1000)

    @field_validator("storage_root")
    @classmethod
    def _root_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("storage_root must not be empty")
        return value.rstrip("/") or "/"

    @model_validator(mode="after")
    def _insightface_needs_dir(self) -> "Settings":
        if self.face_backend == "insightface" and not self.insightface_dir:
            raise ValueError(
                "face_backend=insightface needs insightface_dir (CITYWATCH_INSIGHTFACE_DIR) "
                "pointing at a local SCRFD + ArcFace pack"
            )
        return self
