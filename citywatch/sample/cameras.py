"""The sample's cameras: Hong Kong street sites, their backgrounds and ``cameras.yaml``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from citywatch.geometry import PixelBox
from citywatch.sample.media import opencv_doc_file
from citywatch.sample.scene import (
    Background,
    PanningBackground,
    StillBackground,
    VideoBackground,
    osd_box,
)

Point = tuple[int, int]


@dataclass(frozen=True)
class CameraSite:
    """A camera of the sample and how people and cars appear in its view.

    Geometry is given for a 1280x720 frame and scaled to the frame size asked for:
    a face of height ``s`` px is centred ``horizon_px + rise * s`` px from the top
    (nearer people are bigger and lower), within ``face_px`` sizes; a car whose plate
    is ``p`` px wide stands with its wheels ``road[0] + road[1] * p`` px from the top.
    A mobile camera (``kind="mobile"``, no lat/lon) pans over its background photos
    at ``pan_px_per_s`` as the car it is in drives.
    """

    camera_id: str
    name: str
    district: str
    lat: float | None
    lon: float | None
    height_m: float
    background: str  # opencv-doc data file(s): a still photo, a video, or photos joined by +
    crop_top: float  # which band of the source survives the crop to 16:9 (0 top, 1 bottom)
    offset_s: int  # this camera's segments start this much after the base time
    horizon_px: float
    rise: float
    face_px: tuple[int, int]
    privacy_masks: tuple[tuple[Point, ...], ...] = ()
    kind: str = "fixed"
    road: tuple[float, float] = (600.0, 0.6)
    pan_px_per_s: float = 0.0

    def masks_for(self, size: tuple[int, int]) -> list[list[Point]]:
        """The privacy masks in pixels of a ``size`` frame."""
        width, height = size
        return [
            [
                (min(width - 1, round(x * width / 1280)), min(height - 1, round(y * height / 720)))
                for x, y in polygon
            ]
            for polygon in self.privacy_masks
        ]

    def mask_boxes(self, size: tuple[int, int]) -> list[PixelBox]:
        boxes = []
        for polygon in self.masks_for(size):
            xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
            boxes.append((min(xs), min(ys), max(xs) + 1, max(ys) + 1))
        return boxes

    def open_background(self, size: tuple[int, int]) -> Background:
        if self.kind == "mobile":
            paths = [opencv_doc_file(name) for name in self.background.split("+")]
            return PanningBackground(paths, size, self.pan_px_per_s)
        path = opencv_doc_file(self.background)
        if path.suffix == ".avi":
            return VideoBackground(path, size, self.crop_top)
        return StillBackground(path, size, self.crop_top)


SITES: tuple[CameraSite, ...] = (
    CameraSite(
        "cam-queens-rd",
        "Queen's Road Central / Pottinger St",
        "Central",
        22.2829,
        114.1553,
        4.5,
        "leuvenA.jpg",
        0.55,
        0,
        255.0,
        1.45,
        (44, 190),
        road=(480.0, 1.2),
    ),
    CameraSite(
        "cam-nathan-rd",
        "Nathan Road / Argyle St",
        "Mong Kok",
        22.3186,
        114.1694,
        6.0,
        "vtest.avi",
        0.35,
        2,
        230.0,
        1.9,
        (40, 120),
        road=(330.0, 1.7),
    ),
    CameraSite(
        "cam-hennessy-rd",
        "Hennessy Road / Percival St",
        "Causeway Bay",
        22.2800,
        114.1833,
        5.0,
        "building.jpg",
        0.6,
        5,
        330.0,
        1.3,
        (44, 180),
        privacy_masks=(((600, 0), (1279, 0), (1279, 250), (600, 250)),),
        road=(560.0, 0.8),
    ),
    CameraSite(
        "cam-shatin-centre",
        "Sha Tin Centre St / New Town Plaza",
        "Sha Tin",
        22.3817,
        114.1887,
        3.8,
        "leuvenB.jpg",
        0.5,
        9,
        265.0,
        1.4,
        (44, 200),
        road=(560.0, 0.85),
    ),
)


def cameras_yaml(sites: tuple[CameraSite, ...], size: tuple[int, int]) -> str:
    """``cameras.yaml`` text in the registry's format (strings JSON-quoted, valid YAML)."""
    lines = ["# Sample cameras written by citywatch.sample.dataset; positions in frame pixels.", "cameras:"]
    for site in sites:
        lines += [
            f"  - id: {site.camera_id}",
            f"    name: {json.dumps(site.name)}",
            f"    district: {json.dumps(site.district)}",
            *([f"    lat: {site.lat}", f"    lon: {site.lon}"] if site.lat is not None else []),
            f"    kind: {site.kind}",
            f"    height_m: {site.height_m}",
            f"    frame_size: [{size[0]}, {size[1]}]",
        ]
        masks = site.masks_for(size)
        lines.append("    privacy_masks:" if masks else "    privacy_masks: []")
        for polygon in masks:
            points = ", ".join(f"[{x}, {y}]" for x, y in polygon)
            lines.append(f"      - [{points}]")
        x1, y1, x2, y2 = osd_box(size)
        lines.append(f"    overlay_regions: [[{x1}, {y1}, {x2}, {y2}]]  # the burned-in clock")
    return "\n".join(lines) + "\n"


def write_cameras_yaml(path: Path, sites: tuple[CameraSite, ...], size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cameras_yaml(sites, size), encoding="utf-8")
