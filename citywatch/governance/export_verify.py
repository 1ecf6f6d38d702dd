"""Verifying an evidence export: its manifest, signature, files and source segments.

``verify_export`` needs only the manifest, the clip (and redaction log) beside it, and
trusted public keys: it works on any machine and never writes a key. The checks, each
named in the report:

- ``manifest``: valid JSON of this format, byte for byte in its canonical file form;
- ``signature``: an Ed25519 signature by a trusted key over the canonical JSON;
- ``clip``, ``redaction_log``: each file's sha256 and size as recorded;
- ``source <segment id>``: each source segment still has its recorded sha256. A source
  that is gone (deleted) fails unless ``allow_missing_source``; sources are fetched only
  once the signature holds (a forged manifest could name any URL).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass

from citywatch.errors import NotFoundError
from citywatch.governance.keys import TrustedKeys, trusted_keys
from citywatch.governance.manifest import (
    FORMAT,
    canonical_bytes,
    export_key_store,
    manifest_url_for,
    render_manifest,
)
from citywatch.settings import Settings
from citywatch.storage import Storage


@dataclass(frozen=True)
class Check:
    name: str  # manifest | signature | clip | redaction_log | source <segment id> | sources
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


def export_trusted_keys(settings: Settings, key_files: list[str]) -> TrustedKeys:
    """``key_files`` + ``settings.export.trusted_keys_file`` + this installation's export keys (read only)."""
    files = [*key_files, *([settings.export.trusted_keys_file] if settings.export.trusted_keys_file else [])]
    return trusted_keys(files, export_key_store(settings))


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
        found = document.get("format") if isinstance(document, dict) else None
        return None, Check("manifest", "failed", f"not a {FORMAT} manifest (format {found!r})")
    if render_manifest(document) != raw:
        return document, Check(
            "manifest",
            "failed",
            "the file differs from its canonical form: it was edited after it was written",
        )
    return document, Check("manifest", "ok", f"{FORMAT}, export {document.get('export_id')}")


def _check_signature(document: dict[str, object], trusted: TrustedKeys) -> Check:
    signer = document.get("signer")
    if not isinstance(signer, dict):
        return Check("signature", "failed", "the manifest names no signer")
    if not trusted:
        return Check(
            "signature",
            "failed",
            f"no trusted public key to check key {signer.get('key_id')!r} with: pass --public-key "
            "FILE or --trusted-keys FILE (`citywatch keys public` on the exporting installation)",
        )
    try:
        body = canonical_bytes(document)
    except ValueError as exc:  # BadInputError: not canonicalisable
        return Check("signature", "failed", str(exc))
    problem = trusted.verify(signer.get("key_id"), signer.get("fingerprint"), body, document.get("signature"))
    if problem:
        return Check("signature", "failed", problem)
    return Check("signature", "ok", f"Ed25519, key {signer.get('key_id')}")


def _check_file(storage: Storage, folder: str, role: str, entry: object) -> Check:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        return Check(role, "failed", "the manifest's entry for this file is malformed")
    name = entry["name"]
    if "/" in name or "\\" in name or name in ("", ".", ".."):
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


def _check_source(storage: Storage, entry: object, allow_missing: bool) -> Check:
    if not isinstance(entry, dict) or not isinstance(entry.get("uri"), str):
        return Check("source", "failed", "a source entry is malformed")
    name = f"source {entry.get('segment_id')}"
    uri = entry["uri"]
    if not storage.exists(uri):
        recorded = f"its recorded sha256 is {entry.get('sha256')}"
        if allow_missing:
            return Check(
                name, "gone", f"{uri} no longer exists (accepted: --allow-missing-source); {recorded}"
            )
        return Check(
            name,
            "failed",
            f"{uri} no longer exists, so the chain of custody cannot be checked ({recorded}); "
            "pass --allow-missing-source to accept that",
        )
    digest, _ = _sha256_of(storage, uri)
    if digest != entry.get("sha256"):
        return Check(
            name, "failed", f"{uri} changed since the export: sha256 {digest}, recorded {entry.get('sha256')}"
        )
    return Check(name, "ok", f"sha256 {digest[:16]}... unchanged")


def verify_export(
    storage: Storage, trusted: TrustedKeys, path: str, *, allow_missing_source: bool = False
) -> VerifyReport:
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
    signature = _check_signature(document, trusted)
    checks.append(signature)
    folder = posixpath.dirname(url)
    files = document.get("files")
    if not isinstance(files, dict) or "clip" not in files:
        checks.append(Check("clip", "failed", "the manifest lists no clip"))
    else:
        checks += [_check_file(storage, folder, role, entry) for role, entry in sorted(files.items())]
    sources = document.get("sources")
    if signature.status != "ok":
        checks.append(Check("sources", "skipped", "not fetched: the signature did not verify"))
    elif not isinstance(sources, list) or not sources:
        checks.append(Check("source", "failed", "the manifest lists no source segment"))
    else:
        checks += [_check_source(storage, entry, allow_missing_source) for entry in sources]
    return VerifyReport(url, checks)
