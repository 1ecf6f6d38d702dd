"""Evidence export manifests: what an export holds, and its Ed25519 signature.

An export is ``<root>/exports/<case>/<export_id>.mp4`` plus ``<export_id>.redactions.json``
(every box obscured or kept clear, per frame) and ``<export_id>.manifest.json``:
source segments with their sha256, the time range and gaps, redaction settings,
model versions, who exported and why, each file's sha256, the signer's key id and
fingerprint, and ``signature = Ed25519(canonical JSON (RFC 8785) of everything but the
signature)``, base64.

The private key stays with the process that exports (:mod:`citywatch.governance.keys`);
anyone with the public key (``citywatch keys public``) can verify an export on any
machine, and no one can re-sign an edited manifest without the private key. The
manifest file is written in one canonical form (sorted keys, 2-space indent, UTF-8,
trailing newline), so any byte changed in it breaks either the JSON, the canonical
form or the signature. :mod:`citywatch.governance.export_verify` checks all of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from citywatch.errors import BadInputError
from citywatch.governance.keys import ALGORITHM, FileKeyStore, Signer, canonical_json, sign_document
from citywatch.settings import Settings
from citywatch.storage import Storage

FORMAT = "citywatch-export/2"
MANIFEST_SUFFIX = ".manifest.json"
EXPORT_KEY_FILE = "keys/export_ed25519.pem"


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
class SignerEntry:
    algorithm: str  # Ed25519
    key_id: str  # first 16 hex digits of the fingerprint
    fingerprint: str  # sha256 of the raw public key


def signer_entry(signer: Signer) -> SignerEntry:
    return SignerEntry(ALGORITHM, signer.key_id, signer.fingerprint)


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
    signer: SignerEntry

    def to_document(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def canonical_bytes(document: dict[str, object]) -> bytes:
    """What is signed: RFC 8785 canonical JSON of everything but ``signature``."""
    return canonical_json({k: v for k, v in document.items() if k != "signature"})


def render_manifest(document: dict[str, object]) -> bytes:
    """The one file form of a manifest (verify insists on it)."""
    return (
        json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    ).encode("utf-8")


# --- the key -----------------------------------------------------------------------------
def export_key_store(settings: Settings) -> FileKeyStore:
    """The export signing key's store (``signing_key_file``, default under ``state_dir``)."""
    path = settings.export.signing_key_file or str(
        Path(settings.storage.state_dir).expanduser() / EXPORT_KEY_FILE
    )
    return FileKeyStore(path, "export")


def export_signer(settings: Settings) -> Signer:
    """The signer of exports: made on first use, refused if its file is not 0600."""
    return export_key_store(settings).ensure()


def sign(document: dict[str, object], signer: Signer) -> dict[str, object]:
    """``document`` with its signer checked and ``signature`` added."""
    claimed = document.get("signer")
    if not isinstance(claimed, dict) or claimed.get("fingerprint") != signer.fingerprint:
        raise BadInputError(f"manifest signer {claimed!r} is not the signing key {signer.key_id!r}")
    body = {k: v for k, v in document.items() if k != "signature"}
    return {**document, "signature": sign_document(body, signer)}


def manifest_url_for(storage: Storage, path: str) -> str:
    """The manifest of an export given its manifest or its clip (path or URL)."""
    url = storage.resolve(path)
    if url.endswith(MANIFEST_SUFFIX):
        return url
    if url.endswith(".mp4"):
        return url[: -len(".mp4")] + MANIFEST_SUFFIX
    raise BadInputError(f"{path}: give an export's {MANIFEST_SUFFIX} file or its .mp4 clip")
