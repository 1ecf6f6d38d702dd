"""The camera registry: ``cameras.yaml`` validated into typed camera records."""

from __future__ import annotations

import logging
import re

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from citywatch.errors import BadInputError
from citywatch.schemas import CameraRow

log = logging.getLogger(__name__)

CAMERA_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def check_camera_id(value: str) -> str:
    """Camera ids are lowercase letters, digits, '-' and '_' (safe in paths and filters)."""
    if not isinstance(value, str) or not CAMERA_ID.fullmatch(value):
        raise BadInputError(f"camera id {value!r} is invalid: use 1-64 lowercase letters, digits, '-' or '_'")
    return value


class CameraConfig(BaseModel):
    """One camera of ``cameras.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Unique id; also the footage folder name.")
    name: str = Field(min_length=1)
    district: str = ""
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    kind: str = Field("fixed", pattern="^(fixed|mobile)$")
    height_m: float | None = Field(None, ge=0, le=500)
    frame_size: tuple[int, int] | None = Field(None, description="[width, height] in px")
    privacy_masks: list[list[tuple[float, float]]] = Field(default_factory=list)
    overlay_regions: list[tuple[int, int, int, int]] = Field(
        default_factory=list,
        description="[x1, y1, x2, y2] boxes of burned-in on-screen text (clock, camera "
        "name): ignored by motion gating and plate reading.",
    )

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not CAMERA_ID.fullmatch(value):
            raise ValueError("use 1-64 lowercase letters, digits, '-' or '_'")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> CameraConfig:
        if self.kind == "fixed" and (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        for i, polygon in enumerate(self.privacy_masks):
            if len(polygon) < 3:
                raise ValueError(f"privacy_masks[{i}] has {len(polygon)} points; a mask needs >= 3")
            if self.frame_size is not None:
                width, height = self.frame_size
                for x, y in polygon:
                    if not (0 <= x <= width and 0 <= y <= height):
                        raise ValueError(
                            f"privacy_masks[{i}] point ({x}, {y}) is outside the {width}x{height} frame"
                        )
        for i, (x1, y1, x2, y2) in enumerate(self.overlay_regions):
            if x2 <= x1 or y2 <= y1 or min(x1, y1) < 0:
                raise ValueError(f"overlay_regions[{i}] must be [x1, y1, x2, y2] with x1 < x2, y1 < y2")
        return self

    def to_row(self) -> CameraRow:
        return CameraRow(
            id=self.id,
            name=self.name,
            district=self.district,
            lat=self.lat,
            lon=self.lon,
            kind=self.kind,
            height_m=self.height_m,
            frame_w=self.frame_size[0] if self.frame_size else None,
            frame_h=self.frame_size[1] if self.frame_size else None,
            privacy_masks=[[list(p) for p in poly] for poly in self.privacy_masks],
            overlay_regions=[list(r) for r in self.overlay_regions],
            registered=True,
        )


class CameraRegistry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cameras: list[CameraConfig]

    @model_validator(mode="after")
    def _unique(self) -> CameraRegistry:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.id in seen:
                raise ValueError(f"duplicate camera id {cam.id!r}")
            seen.add(cam.id)
        return self


def parse_cameras(text: str, source: str) -> list[CameraConfig]:
    """Parse and validate a registry; errors name ``source`` and the bad field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadInputError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise BadInputError(f"{source}: expected a mapping with a 'cameras' list")
    try:
        return list(CameraRegistry.model_validate(data).cameras)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"{where}: {err['msg']}")
        raise BadInputError(f"{source}: invalid camera registry: " + "; ".join(problems)) from exc


def unlocated_camera(camera_id: str) -> CameraRow:
    """A camera seen in footage but missing from the registry: kept, without location."""
    return CameraRow(
        id=camera_id,
        name=camera_id,
        district="",
        lat=None,
        lon=None,
        kind="fixed",
        height_m=None,
        frame_w=None,
        frame_h=None,
        privacy_masks=[],
        overlay_regions=[],
        registered=False,
    )
