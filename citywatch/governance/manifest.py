"""Evidence export manifests: what an export holds, signed, and how to verify it.

An export is ``<root>/exports/<case>/<export_id>.mp4`` plus ``<export_id>.redactions.json``
(every box obscured or kept clear, per frame) and ``<export_id>.manifest.json``:
source segments with their sha256, the time range and gaps, redaction settings,
model versions, who exported and why, each file's sha256, and
``signature = HMAC-SHA256(key, canonical JSON of everything but the signature)``.

The manifest file is written in one canonical form (sorted keys, 2-space indent,
UTF-8, trailing newline), so any byte changed in it breaks either the JSON, the
canonical form or the signature. ``verify_export`` re-checks all of it and names
the check that failed; a source segment that no longer exists (retention) is
reported as ``gone``, which is not tampering.

The key is ``Settings.export_signing_key``; if unset, a random key is made once in
``<state_dir>/export_signing.key`` (mode 0600). ``key_id`` (sha256 of the key, 16
hex digits) is in every manifest, so a verifier can tell which key signed it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
import posixpath
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from citywatch.errors import BadInputError, NotFoundError
from citywatch.settings import Settings
from citywatch.storage import Storage

FORMAT = "citywatch-export/1"
KEY_FILE = "export_signing.key"
MANIFEST_SUFFIX = ".manifest.json"


# --- the document ----------------------------------------------------------------------
@dataclass(frozen=True)
class FileEntry:
    name: str  # relative to the manifest's folder
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class SourceEntry:
    segment_id: str
    uri: str
    sha256: str
    size_bytes: int
    segment_start: str
    segment_end: str
    used_from: str  # first frame taken (UTC)
    used_to: str  # last frame taken (UTC)
    clip_first_frame: int
    clip_frames: int


@dataclass(frozen=True)
class GapEntry:
    start: str
    end: str
    reason: str


@dataclass(frozen=True)
class RequestEntry:
    kind: str  # sighting | alert | range | probe
    sighting_id: str | None
    alert_id: str | None
    probe_sha256: str | None
    camera_id: str
    start: str
    end: str
    pad_s: float | None


@dataclass(frozen=True)
class SubjectEntry:
    matched_by: str  # embedding | position | none | no-subject
    tracks: list[int]
    distance: float | None
    threshold: float | None
    face_id: str | None
    track_id: str | None
    frames_detected: int


@dataclass(frozen=True)
class RedactionEntry:
    mode: str
    face_margin: float
    det_threshold: float
    min_face_px: int
    hold_frames: int
    plates: bool
    privacy_masks: list[list[list[float]]]
    tracks_obscured: int
    tracks_kept: int


@dataclass(frozen=True)
class EncodingEntry:
    codec: str
    crf: int
    preset: str
    width: int
    height: int
    frames: int
    fps: float
    first_frame: str
    last_frame: str
    audio: str


@dataclass(frozen=True)
class ExportManifest:
    format: str
    export_id: str
    case_id: str
    justification: str
    exported_by: str
    created: str
    camera_id: str
    camera_name: str
    request: RequestEntry
    time_range: dict[str, str]  # requested start/end, actual first/last frame
    sources: list[SourceEntry]
    gaps: list[GapEntry]
    subject: SubjectEntry
    redaction: RedactionEntry
    models: dict[str, str]  # role -> "name version"
    encoding: EncodingEntry
    software: dict[str, str]
    files: dict[str, FileEntry]  # clip, redaction_log
    key_id: str

    def to_document(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def canonical_bytes(document: dict[str, object]) -> bytes:
    """What is signed: compact, key-sorted JSON of everything but ``signature``."""
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def render_manifest(document: dict[str, object]) -> bytes:
    """The one file form of a manifest (verify insists on it)."""
    return (
        json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    ).encode("utf-8")


# --- the key -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SigningKey:
    key: bytes
    key_id: str
    source: str  # settings | <path of the key file>


def signing_key(settings: Settings) -> SigningKey:
    """The HMAC key: from settings, else the state dir's key file (made once, 0600)."""
    if settings.export_signing_key is not None:
        key = settings.export_signing_key.get_secret_value().encode("utf-8")
        if len(key) < 16:
            raise BadInputError("export_signing_key must be at least 16 characters")
        return SigningKey(key, key_id(key), "settings (CITYWATCH_EXPORT_SIGNING_KEY)")
    path = Path(settings.state_dir).expanduser().resolve() / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BadInputError(
            f"signing key {path} is readable by others (mode {stat.filemode(mode)}): chmod 600 it"
        )
    text = path.read_text().strip()
    if len(text) < 32:
        raise BadInputError(f"signing key file {path} is empty or truncated")
    key = text.encode("ascii")
    return SigningKey(key, key_id(key), str(path))


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def sign(document: dict[str, object], key: SigningKey) -> dict[str, object]:
    """``document`` with ``key_id`` checked and ``signature`` added."""
    if document.get("key_id") != key.key_id:
        raise BadInputError(
            f"manifest key_id {document.get('key_id')!r} is not the signing key's id {key.key_id!r}"
        )
    signature = hmac.new(key.key, canonical_bytes(document), hashlib.sha256).hexdigest()
    return {**document, "signature": signature}


def manifest_url_for(storage: Storage, path: str) -> str:
    """The manifest of an export given its manifest or its clip (path or URL)."""
    url = storage.resolve(path)
    if url.endswith(MANIFEST_SUFFIX):
        return url
    if url.endswith(".mp4"):
        return url[: -len(".mp4")] + MANIFEST_SUFFIX
    raise BadInputError(f"{path}: give an export's {MANIFEST_SUFFIX} file or its .mp4 clip")


# --- verification --------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    name: str  # manifest | signature | clip | redaction_log | source <segment id>
    status: str  # ok | failed | gone | skipped
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    manifest_url: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status != "failed" for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "failed"]


def _sha256_of(storage: Storage, url: str) -> tuple[str, int]:
    fs, path = storage.fs(url)
    digest, size = hashlib.sha256(), 0
    with fs.open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_manifest_form(raw: bytes) -> tuple[dict[str, object] | None, Check]:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, Check("manifest", "failed", f"not valid JSON: {exc}")
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None, Check("manifest", "failed", f"not a {FORMAT} manifest")
    if render_manifest(document) != raw:
        return document, Check(
            "manifest",
            "failed",
            "the file differs from its canonical form: it was edited after it was written",
        )
    return document, Check("manifest", "ok", f"{FORMAT}, export {document.get('export_id')}")


def _check_signature(document: dict[str, object], settings: Settings) -> Check:
    key = signing_key(settings)
    claimed = document.get("signature")
    if not isinstance(claimed, str):
        return Check("signature", "failed", "the manifest has no signature")
    if document.get("key_id") != key.key_id:
        return Check(
            "signature",
            "failed",
            f"signed with key {document.get('key_id')!r}, this installation's key is "
            f"{key.key_id!r}: verify where the export was made, or set "
            "CITYWATCH_EXPORT_SIGNING_KEY to the signing key",
        )
    expected = hmac.new(key.key, canonical_bytes(document), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, claimed):
        return Check("signature", "failed", "HMAC does not match: the manifest was changed after signing")
    return Check("signature", "ok", f"HMAC-SHA256 with key {key.key_id}")


def _check_file(storage: Storage, folder: str, role: str, entry: object) -> Check:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        return Check(role, "failed", "the manifest's entry for this file is malformed")
    name = entry["name"]
    if "/" in name or name in ("", ".", ".."):
        return Check(role, "failed", f"file name {name!r} is not a plain name")
    url = f"{folder}/{name}"
    if not storage.exists(url):
        return Check(role, "failed", f"{url} is missing")
    digest, size = _sha256_of(storage, url)
    if digest != entry.get("sha256") or size != entry.get("size_bytes"):
        return Check(
            role,
            "failed",
            f"{name}: sha256 {digest} ({size} bytes) does not match the "
            f"manifest's {entry.get('sha256')} ({entry.get('size_bytes')} bytes)",
        )
    return Check(role, "ok", f"{name} sha256 {digest[:16]}...")


def _check_source(storage: Storage, entry: object) -> Check:
    if not isinstance(entry, dict) or not isinstance(entry.get("uri"), str):
        return Check("source", "failed", "a source entry is malformed")
    name = f"source {entry.get('segment_id')}"
    uri = entry["uri"]
    if not storage.exists(uri):
        return Check(
            name,
            "gone",
            f"{uri} no longer exists (deleted by retention?); "
            "its recorded sha256 is " + str(entry.get("sha256")),
        )
    digest, _ = _sha256_of(storage, uri)
    if digest != entry.get("sha256"):
        return Check(
            name, "failed", f"{uri} changed since the export: sha256 {digest}, recorded {entry.get('sha256')}"
        )
    return Check(name, "ok", f"sha256 {digest[:16]}... unchanged")


def verify_export(storage: Storage, settings: Settings, path: str) -> VerifyReport:
    """Check an export's manifest, signature, files and sources; never raises on tampering."""
    url = manifest_url_for(storage, path)
    try:
        raw = storage.read_bytes(url)
    except NotFoundError as exc:
        raise NotFoundError(f"no export manifest at {url}") from exc
    document, form = _check_manifest_form(raw)
    checks = [form]
    if document is None:
        return VerifyReport(url, checks + [Check("signature", "skipped", "manifest unreadable")])
    checks.append(_check_signature(document, settings))
    folder = posixpath.dirname(url)
    files = document.get("files")
    if not isinstance(files, dict) or "clip" not in files:
        checks.append(Check("clip", "failed", "the manifest lists no clip"))
    else:
        checks += [_check_file(storage, folder, role, entry) for role, entry in sorted(files.items())]
    sources = document.get("sources")
    if not isinstance(sources, list) or not sources:
        checks.append(Check("source", "failed", "the manifest lists no source segment"))
    else:
        checks += [_check_source(storage, entry) for entry in sources]
    return VerifyReport(url, checks)
