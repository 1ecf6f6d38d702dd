"""Bad input at the service's door: a clear 4xx naming the problem, and nothing written."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from citywatch.governance.audit_log import AuditLog
from citywatch.governance.watchlist import list_entries
from citywatch.service.app import create_app
from citywatch.storage import Storage
from tests.service_support import WHY, add_users, service_settings, sign_in

PLATE = {
    "plate": "AB1234",
    "label": "stolen van",
    "reason": "stolen_vehicle",
    "expires": "7d",
    "case_id": "C-1",
}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 30_000) -> bytes:
    """A small PNG that inflates to side x side 1-bit pixels (~110 MB raw, 900 Mpixel)."""
    row = b"\x00" * (side // 8 + 1)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("service-input")
    add_users(service_settings(path), {"ivy": ["investigator"], "sam": ["supervisor"]})
    return path


@pytest.fixture()
def signed_in(root: Path) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(create_app(service_settings(root, service__max_upload_bytes=200_000)))
    return client, sign_in(client, "ivy")


def nothing_written(root: Path, audit_before: int) -> None:
    storage = Storage(service_settings(root))
    assert list_entries(storage, include_removed=True) == []
    assert not list((root / "service" / "probes").glob("*")) if (root / "service").exists() else True
    assert len(AuditLog(storage).rows()) == audit_before  # refused at the door, before any action


def audit_count(root: Path) -> int:
    return len(AuditLog(Storage(service_settings(root))).rows())


def test_a_10kb_case_id_is_refused(root: Path, signed_in: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = signed_in
    before = audit_count(root)
    response = client.post(
        "/api/watchlist/plate", json={**PLATE, "case_id": "C" * 10_000, "justification": WHY}, headers=headers
    )
    assert response.status_code == 422
    assert "case_id" in response.json()["error"]
    nothing_written(root, before)


def test_non_utf8_json_is_refused(root: Path, signed_in: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = signed_in
    before = audit_count(root)
    body = b'{"plate": "AB\xff\xfe", "label": "x"}'
    response = client.post(
        "/api/watchlist/plate", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid UTF-8" in response.json()["error"]
    nothing_written(root, before)


def test_non_utf8_form_fields_are_refused(root: Path, signed_in: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = signed_in
    before = audit_count(root)
    response = client.post(
        "/api/search/face",
        files={"probe": ("p.png", small_png(), "image/png")},
        data={"case_id": b"C-\xff\xfe", "justification": WHY},
        headers=headers,
    )
    assert 400 <= response.status_code < 500
    assert "case_id" in response.json()["error"]
    nothing_written(root, before)


@pytest.mark.parametrize(
    ("content_type", "path"),
    [("text/plain", "/api/watchlist/plate"), ("application/x-www-form-urlencoded", "/api/search/plate")],
)
def test_wrong_content_types_are_refused(
    root: Path, signed_in: tuple[TestClient, dict[str, str]], content_type: str, path: str
) -> None:
    client, headers = signed_in
    before = audit_count(root)
    response = client.post(path, content=b"plate=AB1234", headers={**headers, "Content-Type": content_type})
    assert response.status_code == 415
    assert content_type in response.json()["error"] and "application/json" in response.json()["error"]
    nothing_written(root, before)


def test_oversized_upload_is_refused(root: Path, signed_in: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = signed_in
    before = audit_count(root)
    response = client.post(
        "/api/search/face",
        files={"probe": ("big.png", b"\x89PNG" + b"\x00" * 300_000, "image/png")},
        data={"case_id": "C-1", "justification": WHY},
        headers=headers,
    )
    assert response.status_code == 413
    assert "limit" in response.json()["error"]
    nothing_written(root, before)


def test_decompression_bomb_png_is_refused(root: Path, signed_in: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = signed_in
    bomb = bomb_png()
    assert len(bomb) < 200_000
    before = audit_count(root)
    response = client.post(
        "/api/search/face",
        files={"probe": ("bomb.png", bomb, "image/png")},
        data={"case_id": "C-1", "justification": WHY},
        headers=headers,
    )
    assert response.status_code == 400
    assert "probe bomb.png" in response.json()["error"]
    nothing_written(root, before)


def test_a_text_file_as_probe_is_refused(root: Path, signed_in: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = signed_in
    before = audit_count(root)
    response = client.post(
        "/api/search/face",
        files={"probe": ("notes.txt", b"not an image at all", "text/plain")},
        data={"case_id": "C-1", "justification": WHY},
        headers=headers,
    )
    assert response.status_code == 400
    assert "not a readable JPEG or PNG" in response.json()["error"]
    nothing_written(root, before)
