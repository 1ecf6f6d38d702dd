"""Shared pieces of the watchlist tests.

Real face embeddings, face rows as indexing writes them, a webhook receiver.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import json
import threading
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from standardwebhooks import WebhookVerificationError

from citywatch.governance.watchlist import EntryRequest, approve
from citywatch.governance.watchlist_faces import enrol_face, enrolment_embedding
from citywatch.models.loaders import face_model_for
from citywatch.sample.media import fetch_media
from citywatch.schemas import FaceRow, WatchlistRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import faces_table, upsert

NOW = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)


def _receiver_example():  # noqa: ANN202 - the module docs/webhook_receiver.py
    path = Path(__file__).resolve().parents[1] / "docs" / "webhook_receiver.py"
    spec = importlib.util.spec_from_file_location("webhook_receiver", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


verify = _receiver_example().verify
THRESHOLD = 0.55


@dataclass(frozen=True)
class Faces:
    model: object
    obama_photo: bytes
    obama: np.ndarray  # a different photo of the enrolled person, as footage would show
    biden: np.ndarray


@pytest.fixture(scope="module")
def faces() -> Faces:
    media = fetch_media()
    model = face_model_for(Settings())
    other, _ = enrolment_embedding((media / "obama2.jpg").read_bytes(), "obama2.jpg", model)
    biden, _ = enrolment_embedding((media / "biden.jpg").read_bytes(), "biden.jpg", model)
    return Faces(model, (media / "obama.jpg").read_bytes(), other, biden)


def make_settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(storage__root=str(tmp_path / "data"), storage__state_dir=str(tmp_path / "state"), **extra)


def request(**changes: object) -> EntryRequest:
    base = EntryRequest(
        label="Person A",
        reason="missing",
        case_id="CASE-7",
        justification="reported missing, family worried",
        requested_by="alice",
        expires_at=NOW + dt.timedelta(days=7),
    )
    return replace(base, **changes)


def enrol_active(storage: Storage, faces: Faces, **changes: object) -> WatchlistRow:
    row = enrol_face(
        storage,
        faces.model,
        [(faces.obama_photo, "obama.jpg")],
        request(**changes),
        default_threshold=THRESHOLD,
        max_days=30,
        now=NOW,
    )
    return approve(storage, row.id, "bob", now=NOW)


def face_row(
    faces: Faces,
    vector: np.ndarray,
    *,
    camera: str = "cam-a",
    segment: str = "S1",
    track: int = 1,
    index: int = 0,
    ts: dt.datetime = NOW,
) -> FaceRow:
    seg = f"{camera}/{segment}"
    at = ts + dt.timedelta(seconds=index)
    return FaceRow(
        id=f"{seg}#t{track:04d}@{index:07d}",
        segment_id=seg,
        camera_id=camera,
        ts=at,
        bbox=(10.0, 10.0, 60.0, 60.0),
        det_score=0.9,
        quality=0.5,
        embedding=vector + np.float32(0.002 * index),
        track_id=f"{seg}#t{track:04d}",
        track_start=ts,
        track_end=ts + dt.timedelta(seconds=3),
        thumb_uri=f"thumbs/{seg}/{track}_{index}.jpg",
        lat=22.3,
        lon=114.2,
        model=faces.model.name,
    )


def write_faces(storage: Storage, faces: Faces, rows: list[FaceRow]) -> None:
    dim = faces.model.embedder.dim
    upsert(faces_table(storage.db, dim), rows_to_arrow(rows, FaceRow.schema(dim)))


def a_pass(faces: Faces, vector: np.ndarray, n: int = 3, **where: object) -> list[FaceRow]:
    """One track of ``n`` faces (what indexing writes for one person walking by)."""
    return [face_row(faces, vector, index=i, **where) for i in range(n)]


HOOK = "ops-room"  # the webhook target the tests configure
HOOK_SECRET = "whsec_" + base64.b64encode(b"citywatch-test-webhook-secret-32b").decode()


def webhook_settings(tmp_path: Path, **extra: object) -> Settings:
    """Settings allowing 127.0.0.1 webhooks, the HOOK secret in a 0600 secrets file."""
    secrets = tmp_path / "webhook-secrets.json"
    secrets.write_text(json.dumps({HOOK: HOOK_SECRET}))
    secrets.chmod(0o600)
    return make_settings(
        tmp_path,
        alerts__webhook_allowed_hosts=["127.0.0.1"],
        alerts__webhook_secrets_file=str(secrets),
        **extra,
    )


def add_hook(storage: Storage, url: str) -> None:
    from citywatch.governance.webhooks import add_target

    add_target(storage, HOOK, url, "demo-admin")


class Receiver:
    """A real HTTP server on 127.0.0.1 that records the alert POSTs it gets; with a
    ``secret`` it verifies each signature (docs/webhook_receiver.py) and refuses bad ones."""

    def __init__(self, port: int, secret: str | None = HOOK_SECRET) -> None:
        received = self.received = []
        rejected = self.rejected = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if secret is not None:
                    try:
                        verify(secret, dict(self.headers.items()), body)
                    except WebhookVerificationError as exc:
                        rejected.append(str(exc))
                        self.send_response(401)
                        self.end_headers()
                        return
                received.append((self.headers["Idempotency-Key"], json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
