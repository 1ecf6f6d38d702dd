"""Write-once stores for audit checkpoints: S3 Object Lock, or a separate local folder.

A store writes each checkpoint once under its name (create-exclusive) and reads back
everything it holds, with what looks wrong about the stored objects themselves:

- :class:`S3LockedStore`: a bucket with Object Lock; every checkpoint is put with a
  retention (compliance or governance mode) and ``If-None-Match: *``. Reading lists
  every *version*, so a checkpoint hidden by a delete marker or shadowed by a later
  upload is still found (its first, locked version is the one used) and the marker or
  extra version is reported.
- :class:`LocalFolderStore`: a folder outside the storage root (files hard-linked into
  place, mode 0444). Only as strong as that folder's permissions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import fsspec.asyn

from citywatch.errors import BadInputError, TransientError
from citywatch.settings import Settings
from citywatch.storage import STORAGE_IO_ERRORS, Storage, is_remote

NAME = re.compile(r"\d{12}\.json")
DEFAULT_DIR = "audit-checkpoints"


@dataclass(frozen=True)
class Stored:
    name: str
    data: bytes
    problems: list[str] = field(default_factory=list)  # delete markers, extra versions


class CheckpointStore(Protocol):
    location: str

    def put(self, name: str, data: bytes) -> bool:
        """Write ``name`` once; False if it exists already."""
        ...

    def names(self) -> list[str]: ...

    def read(self, name: str) -> bytes:
        """The checkpoint as first written."""
        ...

    def read_all(self) -> list[Stored]: ...


class LocalFolderStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)

    def put(self, name: str, data: bytes) -> bool:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path / f".{name}.{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(data)
        os.chmod(tmp, 0o444)
        try:
            os.link(tmp, self.path / name)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def names(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if NAME.fullmatch(p.name))

    def read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def read_all(self) -> list[Stored]:
        return [Stored(name, self.read(name)) for name in self.names()]


class S3LockedStore:
    def __init__(self, storage: Storage, url: str, mode: str, retain_days: int) -> None:
        self.location = url.rstrip("/")
        self._fs, path = storage.fs(self.location)
        self.bucket, _, prefix = path.partition("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.mode = mode.upper()
        self.retain = dt.timedelta(days=retain_days)
        self._lock_checked = False

    def _call(self, method: str, **kwargs: object) -> dict:
        try:
            return self._fs.call_s3(method, **kwargs)
        except FileExistsError:
            raise
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"checkpoint store {self.location}: {method} failed: {exc}") from exc

    def _check_lock(self) -> None:
        if self._lock_checked:
            return
        try:
            found = self._fs.call_s3("get_object_lock_configuration", Bucket=self.bucket)
        except STORAGE_IO_ERRORS as exc:
            raise BadInputError(
                f"checkpoint store {self.location}: bucket {self.bucket} has no Object Lock "
                f"({exc}); create it with Object Lock enabled, or checkpoints are not write-once"
            ) from exc
        if found.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise BadInputError(f"checkpoint store {self.location}: Object Lock is not enabled")
        self._lock_checked = True

    def put(self, name: str, data: bytes) -> bool:
        self._check_lock()
        until = dt.datetime.now(dt.UTC) + self.retain
        try:
            self._call(
                "put_object",
                Bucket=self.bucket,
                Key=self.prefix + name,
                Body=data,
                IfNoneMatch="*",
                ObjectLockMode=self.mode,
                ObjectLockRetainUntilDate=until,
                ChecksumAlgorithm="SHA256",
            )
        except FileExistsError:
            return False
        return True

    def _versions(self) -> tuple[list[dict], list[dict]]:
        versions: list[dict] = []
        markers: list[dict] = []
        kwargs: dict[str, object] = {"Bucket": self.bucket, "Prefix": self.prefix}
        while True:
            page = self._call("list_object_versions", **kwargs)
            versions += page.get("Versions", [])
            markers += page.get("DeleteMarkers", [])
            if not page.get("IsTruncated"):
                return versions, markers
            kwargs["KeyMarker"] = page.get("NextKeyMarker")
            kwargs["VersionIdMarker"] = page.get("NextVersionIdMarker")

    def names(self) -> list[str]:
        versions, _ = self._versions()
        return sorted({n for v in versions if NAME.fullmatch(n := v["Key"][len(self.prefix) :])})

    def _read(self, key: str, version: str) -> bytes:
        async def fetch() -> bytes:
            resp = await self._fs._call_s3("get_object", Bucket=self.bucket, Key=key, VersionId=version)
            async with resp["Body"] as body:
                return await body.read()

        try:
            return fsspec.asyn.sync(self._fs.loop, fetch)
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"checkpoint store {self.location}: cannot read {key}: {exc}") from exc

    def read(self, name: str) -> bytes:
        page = self._call("list_object_versions", Bucket=self.bucket, Prefix=self.prefix + name)
        found = [v for v in page.get("Versions", []) if v["Key"] == self.prefix + name]
        if not found:
            raise TransientError(f"checkpoint {name} vanished from {self.location}")
        return self._read(self.prefix + name, found[-1]["VersionId"])  # S3 lists newest first

    def read_all(self) -> list[Stored]:
        versions, markers = self._versions()
        by_name: dict[str, list[dict]] = {}
        for version in versions:
            by_name.setdefault(version["Key"][len(self.prefix) :], []).append(version)
        marked = {m["Key"][len(self.prefix) :]: m for m in markers}
        out = []
        for name in sorted(n for n in by_name if NAME.fullmatch(n)):
            found = by_name[name][::-1]  # S3 lists a key's versions newest first
            problems = []
            if name in marked:
                problems.append(
                    f"someone deleted it (delete marker of {marked[name]['LastModified']:%Y-%m-%d %H:%M}); "
                    "its locked first version was read"
                )
            if len(found) > 1:
                problems.append(f"{len(found) - 1} later upload(s) under its name; the first was read")
            out.append(Stored(name, self._read(self.prefix + name, found[0]["VersionId"]), problems))
        return out


def checkpoint_location(storage: Storage) -> str:
    """``audit_checkpoint_url``, or a folder of this root's own under ``state_dir``."""
    settings: Settings = storage.settings
    if settings.audit.checkpoint_url:
        url = settings.audit.checkpoint_url.rstrip("/")
        if not is_remote(url):
            url = str(Path(url.removeprefix("file://")).expanduser().resolve())
    else:
        digest = hashlib.sha256(storage.root.encode()).hexdigest()[:16]
        url = str(Path(settings.storage.state_dir).expanduser().resolve() / DEFAULT_DIR / digest)
    if url == storage.root or url.startswith(storage.root.rstrip("/") + "/"):
        raise BadInputError(
            f"audit_checkpoint_url {url} is inside the storage root {storage.root}: checkpoints "
            "must live where a writer of the storage root cannot reach"
        )
    return url


def checkpoint_store(storage: Storage) -> CheckpointStore:
    url = checkpoint_location(storage)
    settings = storage.settings
    if url.startswith("s3://"):
        return S3LockedStore(
            storage, url, settings.audit.checkpoint_lock, settings.audit.checkpoint_retain_days
        )
    if is_remote(url):
        raise BadInputError(f"audit_checkpoint_url {url}: use s3:// (with Object Lock) or a local folder")
    return LocalFolderStore(Path(url))
