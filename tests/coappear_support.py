"""A small storage root with known co-appearances, made of real face embeddings.

The sample footage has no people walking together, so this root writes ``cameras`` and
``faces`` rows directly: each sample person's real photos (the composited photo and its
probe) are embedded with the real face model, and every track takes one of them plus a
little noise (a degraded view). Who is where, and when, is the ground truth below.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from citywatch.geometry import iou
from citywatch.governance.auth import write_demo_users
from citywatch.models.base import FaceModel
from citywatch.models.loaders import face_model_for
from citywatch.sample.faces import PEOPLE, PersonSource, read_source, write_probe
from citywatch.sample.media import fetch_media
from citywatch.schemas import CameraRow, FaceRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import cameras_table, faces_table
from citywatch.tasks.retention import add_hold

T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
CAMERAS = ("cam-a", "cam-b", "cam-c", "cam-d")
CASE_ID = "CO-1"
NOISE = 0.012  # per dimension: about 0.14 of distance between two views of one track

SUBJECT = "obama"
COMPANION = "t1-schwimmer"  # walks with the subject past three cameras
BYSTANDER = "t1-perry"  # next to the subject once
NEVER_NEAR = "astronaut"  # on the subject's cameras, but minutes away from the subject
RECURRING = "tom-hanks"  # an unknown face seen on all four cameras, never with the subject


@dataclass(frozen=True)
class Appearance:
    person: str
    camera_id: str
    start_s: float  # seconds after T0
    length_s: float = 8.0


# (camera, subject's start) for the three kept sightings of the subject
SUBJECT_WALKS = (("cam-a", 0.0), ("cam-b", 600.0), ("cam-c", 1200.0))
APPEARANCES: tuple[Appearance, ...] = (
    *(Appearance(SUBJECT, cam, start) for cam, start in SUBJECT_WALKS),
    Appearance(SUBJECT, "cam-a", 30.0),  # the subject again, not kept: never a companion
    *(Appearance(COMPANION, cam, start + 3.0) for cam, start in SUBJECT_WALKS),
    Appearance(BYSTANDER, "cam-a", -6.0),
    Appearance(NEVER_NEAR, "cam-a", 300.0),
    Appearance(NEVER_NEAR, "cam-b", 900.0),
    Appearance(NEVER_NEAR, "cam-d", 60.0),
    Appearance(RECURRING, "cam-a", 1800.0),
    Appearance(RECURRING, "cam-b", 2400.0),
    Appearance(RECURRING, "cam-c", 3000.0),
    Appearance(RECURRING, "cam-d", 3600.0),
)


def track_id(index: int, appearance: Appearance) -> str:
    return f"{appearance.camera_id}/{T0:%Y%m%dT%H%M%SZ}#t{index}"


def person_embeddings(model: FaceModel, person: PersonSource, media: Path) -> list[np.ndarray]:
    """Embeddings of the person's composited photo and of their probe photo (when they have one)."""
    out = [_embed_box(model, read_source(person.source, media), person.face_box)]
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.jpg"
        if write_probe(person, media, probe):
            image = cv2.imread(str(probe), cv2.IMREAD_COLOR)
            faces = model.detector.detect(image)
            if len(faces) == 1:
                out.append(model.embedder.embed(image, faces)[0].astype(np.float32))
    return out


def _embed_box(model: FaceModel, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    faces = model.detector.detect(image)
    target = tuple(float(v) for v in box)
    best = max(faces, key=lambda f: iou(f.bbox, target))  # type: ignore[arg-type]
    return model.embedder.embed(image, [best])[0].astype(np.float32)


def face_rows(
    embeddings: dict[str, list[np.ndarray]], appearances: tuple[Appearance, ...], seed: int = 3
) -> list[FaceRow]:
    """Two embedded faces per appearance (a track), each a real view plus noise."""
    rng = np.random.default_rng(seed)
    rows: list[FaceRow] = []
    for index, app in enumerate(appearances):
        views = embeddings[app.person]
        start = T0 + dt.timedelta(seconds=app.start_s)
        end = start + dt.timedelta(seconds=app.length_s)
        track = track_id(index, app)
        for k in range(2):
            base = views[(index + k) % len(views)]
            vector = (base + rng.normal(0.0, NOISE, base.shape)).astype(np.float32)
            ts = start + dt.timedelta(seconds=app.length_s * (k + 1) / 3)
            rows.append(
                FaceRow(
                    id=f"{track}@{k}",
                    segment_id=f"{app.camera_id}/{T0:%Y%m%dT%H%M%SZ}",
                    camera_id=app.camera_id,
                    ts=ts,
                    bbox=(100.0, 100.0, 180.0, 190.0),
                    det_score=0.9,
                    quality=0.5 + 0.1 * k,
                    embedding=vector,
                    track_id=track,
                    track_start=start,
                    track_end=end,
                    thumb_uri=f"thumbs/{app.person}/{index}-{k}.jpg",
                    lat=None,
                    lon=None,
                    model="test",
                )
            )
    return rows


def people_embeddings(settings: Settings) -> dict[str, list[np.ndarray]]:
    model = face_model_for(settings)
    media = fetch_media()
    return {p.person_id: person_embeddings(model, p, media) for p in PEOPLE}


def build_root(settings: Settings, embeddings: dict[str, list[np.ndarray]]) -> Storage:
    """Cameras, faces, demo users and the case's holds (the subject's three walks)."""
    storage = Storage(settings)
    write_demo_users(storage)
    cameras = [
        CameraRow(c, c.upper(), "north", None, None, "fixed", None, None, None, [], [], True) for c in CAMERAS
    ]
    cameras_table(storage.db).add(rows_to_arrow(cameras, CameraRow.SCHEMA))
    rows = face_rows(embeddings, APPEARANCES)
    faces_table(storage.db, len(rows[0].embedding)).add(
        rows_to_arrow(rows, FaceRow.schema(len(rows[0].embedding)))
    )
    for index, app in enumerate(APPEARANCES[: len(SUBJECT_WALKS)]):
        add_hold(storage, CASE_ID, track_id(index, app), "demo-supervisor", "subject of the case")
    return storage


def tracks_of(person: str) -> set[str]:
    return {track_id(i, a) for i, a in enumerate(APPEARANCES) if a.person == person}
