"""Storage through fsspec URLs (local paths or s3://) and the LanceDB connection.

Every path in citywatch is a URL under the storage root. Keys are validated so that
nothing can escape the root (``..``, absolute paths, URL schemes).
"""

from __future__ import annotations

import os
import posixpath
import re
import uuid
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import fsspec
from botocore.exceptions import ConnectionError as S3ConnectionError
from botocore.exceptions import HTTPClientError as S3HTTPError

from citywatch.errors import BadInputError, NotFoundError, TransientError
from citywatch.listing import FolderListing, ObjectInfo, scan_folder, scan_top
from citywatch.settings import Settings

if TYPE_CHECKING:
    import lancedb

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")

# What a storage call raises when the disk or the S3 service fails (-> TransientError):
# s3fs turns S3 error responses into OSError, but lets botocore's connection errors
# (refused, timed out, dropped) through unchanged once its own retries are spent.
STORAGE_IO_ERRORS: tuple[type[Exception], ...] = (OSError, S3ConnectionError, S3HTTPError)


def is_remote(url: str) -> bool:
    """True for URLs with a scheme other than file://."""
    return bool(_SCHEME.match(url)) and not url.startswith("file://")


def safe_key(key: str) -> str:
    """Validate a storage key relative to the root; return it normalised.

    Refuses absolute paths, ``..`` components, URL schemes, backslashes and NUL.
    """
    if not isinstance(key, str) or not key:
        raise BadInputError(f"storage key {key!r} is empty or not text")
    if "\x00" in key or "\\" in key:
        raise BadInputError(f"storage key {key!r} contains a NUL or backslash")
    if _SCHEME.match(key) or key.startswith("/") or re.match(r"^[a-zA-Z]:", key):
        raise BadInputError(f"storage key {key!r} must be relative to the storage root")
    parts = key.split("/")
    if any(part in ("..", ".") for part in parts):
        raise BadInputError(f"storage key {key!r} must not contain '.' or '..' parts")
    return posixpath.normpath(key)


class Storage:
    """Files under the storage root plus the LanceDB database at ``<root>/db``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        root = settings.storage.root
        if not is_remote(root):
            root = str(Path(root.removeprefix("file://")).expanduser().resolve())
        self.root = root

    # --- fsspec ---------------------------------------------------------------
    def fs_options(self, url: str) -> dict[str, object]:
        """fsspec options for ``url`` (credentials and endpoint for s3)."""
        if not url.startswith("s3://"):
            return {}
        s = self.settings
        client: dict[str, object] = {"region_name": s.s3.region}
        if s.s3.endpoint_url:
            client["endpoint_url"] = s.s3.endpoint_url
        # no listings cache: a long-running worker must see segments, leases and
        # audit records that other machines wrote after its first listing
        opts: dict[str, object] = {"client_kwargs": client, "use_listings_cache": False}
        if s.s3.access_key_id:
            opts["key"] = s.s3.access_key_id
        if s.s3.secret_access_key:
            opts["secret"] = s.s3.secret_access_key.get_secret_value()
        if s.s3.session_token:
            opts["token"] = s.s3.session_token.get_secret_value()
        return opts

    def fs(self, url: str) -> tuple[fsspec.AbstractFileSystem, str]:
        """The filesystem and in-filesystem path of ``url``."""
        fs, path = fsspec.core.url_to_fs(url, **self.fs_options(url))
        return fs, path

    def url(self, key: str) -> str:
        """The URL of ``key`` under the storage root."""
        return f"{self.root}/{safe_key(key)}"

    def resolve(self, url_or_path: str, what: str = "location") -> str:
        """A user-given location: local paths become absolute; URLs must use the root's scheme.

        Nothing is fetched from anywhere else (http://, ftp://, ...): a probe or footage
        URL must never make citywatch request an address on someone's behalf.
        """
        if not is_remote(url_or_path):
            return str(Path(url_or_path.removeprefix("file://")).expanduser().resolve())
        scheme = url_or_path.split("://", 1)[0].lower()
        allowed = self.root.split("://", 1)[0].lower() if is_remote(self.root) else None
        if scheme != allowed:
            accepted = (
                f"local paths and {allowed}:// URLs (the storage root's scheme)"
                if allowed
                else "local paths (the storage root is a local directory)"
            )
            raise BadInputError(f"{what} {url_or_path!r}: only {accepted} are accepted, not {scheme}://")
        return url_or_path.rstrip("/")

    def write_bytes(self, key: str, data: bytes) -> str:
        """Write ``data`` at ``key`` under the root; return its URL."""
        url = self.url(key)
        fs, path = self.fs(url)
        try:
            fs.makedirs(posixpath.dirname(path), exist_ok=True)
            fs.pipe_file(path, data)
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"could not write {url}: {exc}") from exc
        return url

    def read_bytes(self, url: str) -> bytes:
        """Read a whole object by URL."""
        fs, path = self.fs(url)
        try:
            return fs.cat_file(path)
        except FileNotFoundError as exc:
            raise NotFoundError(f"{url} does not exist") from exc
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"could not read {url}: {exc}") from exc

    def create_exclusive(self, url: str, data: bytes) -> bool:
        """Create the object at ``url`` holding ``data`` unless it exists; False if it did.

        Local: a temp file hard-linked into place (atomic, fails if present). S3: a
        conditional PUT (``If-None-Match: *``), honoured by AWS, moto and localbucket.
        """
        fs, path = self.fs(url)
        try:
            if not is_remote(url):
                folder = Path(path).parent
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{Path(path).name}.{uuid.uuid4().hex}.tmp"
                tmp.write_bytes(data)
                try:
                    os.link(tmp, path)
                finally:
                    tmp.unlink()
            else:
                fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"could not create {url}: {exc}") from exc
        return True

    def exists(self, url: str) -> bool:
        fs, path = self.fs(url)
        try:
            return bool(fs.exists(path))
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"could not check whether {url} exists: {exc}") from exc

    def delete(self, url: str) -> None:
        """Delete one file; nothing happens if it is gone. On s3 this is one
        DeleteObject (not DeleteObjects, which some S3 servers lack)."""
        fs, path = self.fs(url)
        try:
            fs.rm_file(path)
        except FileNotFoundError:
            return
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"could not delete {url}: {exc}") from exc

    def list_files(self, location: str) -> list[ObjectInfo]:
        """Every file below ``location`` (recursive), sorted by key."""
        fs, base = self.fs(location)
        try:
            found = fs.find(base, detail=True) if fs.exists(base) else None
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"could not list {location}: {exc}") from exc
        if found is None:
            raise NotFoundError(f"footage location {location} does not exist")
        out: list[ObjectInfo] = []
        prefix = base.rstrip("/") + "/"
        scheme = location.split("://", 1)[0] + "://" if is_remote(location) else ""
        for path, info in sorted(found.items()):
            if info.get("type") != "file" or not path.startswith(prefix):
                continue
            out.append(
                ObjectInfo(url=f"{scheme}{path}", key=path[len(prefix) :], size=int(info.get("size") or 0))
            )
        return out

    def list_all(self, location: str) -> FolderListing:
        """Every file below ``location`` and, on local disk, the symbolic links (one walk).

        The same files as :meth:`list_files` (links neither listed nor followed); local
        disk is walked with ``os.scandir`` (one ``stat`` per file), several times faster
        than fsspec's ``find`` on a large tree.
        """
        if is_remote(location):
            return FolderListing(self.list_files(location), [])
        base = location.removeprefix("file://")
        files: list[ObjectInfo] = []
        links: list[str] = []
        folders = [base]
        while folders:
            folder = folders.pop()
            try:
                below, found, linked = scan_folder(folder, base)
                folders += below
                files += found
                links += linked
            except (FileNotFoundError, NotADirectoryError) as exc:
                if folder == base:
                    raise NotFoundError(f"footage location {location} does not exist") from exc
                # a folder (or file) removed while the walk was on its way
            except OSError as exc:
                raise TransientError(f"could not list {folder}: {exc}") from exc
        files.sort(key=lambda o: o.key)
        return FolderListing(files, sorted(links))

    def list_top(self, location: str) -> tuple[list[str], FolderListing]:
        """One level of ``location``: its folder names and its files (not recursive).

        On S3 one delimited listing (the common prefixes are the folders).
        """
        fs, base = self.fs(location)
        try:
            if not is_remote(location):
                return scan_top(Path(base), location)
            found = fs.ls(base, detail=True) if fs.exists(base) else None
        except FileNotFoundError:
            found = None
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"could not list {location}: {exc}") from exc
        if found is None:
            raise NotFoundError(f"footage location {location} does not exist")
        folders: list[str] = []
        files: list[ObjectInfo] = []
        prefix = base.rstrip("/") + "/"
        scheme = location.split("://", 1)[0] + "://"
        for info in found:
            path = str(info["name"]).rstrip("/")
            if not path.startswith(prefix):
                continue
            name = path[len(prefix) :]
            if info.get("type") == "directory":
                folders.append(name)
            elif info.get("type") == "file":
                files.append(ObjectInfo(url=f"{scheme}{path}", key=name, size=int(info.get("size") or 0)))
        return sorted(folders), FolderListing(sorted(files, key=lambda o: o.key), [])

    def list_folder_from(self, location: str, folder: str, start_at: str) -> FolderListing:
        """Files directly in ``<location>/<folder>`` whose name sorts at or after ``start_at``.

        Keys are ``<folder>/<name>``. Local disk: one ``os.scandir`` (names compared
        before any ``stat``); S3: one ListObjectsV2 from ``StartAfter`` (only the newer keys
        come back). Entries in sub-folders are not listed (a full listing reports them).
        """
        if is_remote(location):
            return self._s3_folder_from(location, folder, start_at)
        base = Path(location.removeprefix("file://")) / folder
        out = FolderListing([], [])
        try:
            with os.scandir(base) as entries:
                for entry in entries:
                    if entry.name < start_at:
                        continue
                    if entry.is_symlink():
                        out.links.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        size = entry.stat(follow_symlinks=False).st_size
                        out.files.append(ObjectInfo(url=entry.path, key=f"{folder}/{entry.name}", size=size))
        except FileNotFoundError:
            return out  # the folder went away since the top listing
        except OSError as exc:
            raise TransientError(f"could not list {base}: {exc}") from exc
        out.files.sort(key=lambda o: o.key)
        return out

    def _s3_folder_from(self, location: str, folder: str, start_at: str) -> FolderListing:
        fs, base = self.fs(location)
        bucket, _, key = base.partition("/")
        prefix = f"{key.rstrip('/')}/{folder}/" if key else f"{folder}/"
        out = FolderListing([], [])
        token: str | None = None
        try:
            while True:
                args: dict[str, object] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
                if token:
                    args["ContinuationToken"] = token
                elif start_at:
                    args["StartAfter"] = prefix + start_at
                page = fs.call_s3("list_objects_v2", **args)
                for item in page.get("Contents", []):
                    name = str(item["Key"])[len(prefix) :]
                    if name and name >= start_at:
                        out.files.append(
                            ObjectInfo(
                                url=f"s3://{bucket}/{item['Key']}",
                                key=f"{folder}/{name}",
                                size=int(item.get("Size") or 0),
                            )
                        )
                token = page.get("NextContinuationToken")
                if not page.get("IsTruncated") or not token:
                    break
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"could not list {location}/{folder}: {exc}") from exc
        return out

    def list_links(self, location: str) -> list[str]:
        """Symbolic links below a local ``location`` (never followed; S3 has none)."""
        if is_remote(location):
            return []
        base = Path(location.removeprefix("file://"))
        links: list[str] = []
        for folder, dirs, files in os.walk(base):
            links += [str(Path(folder) / n) for n in (*dirs, *files) if (Path(folder) / n).is_symlink()]
        return sorted(links)

    # --- LanceDB --------------------------------------------------------------
    def lance_options(self, url: str | None = None) -> dict[str, str]:
        """LanceDB object-store options for ``url`` (default: the root; only for s3)."""
        if not (url or self.root).startswith("s3://"):
            return {}
        s = self.settings
        opts = {"region": s.s3.region, "allow_http": str(s.s3.allow_http).lower()}
        if s.s3.endpoint_url:
            opts["endpoint"] = s.s3.endpoint_url
        if s.s3.access_key_id:
            opts["aws_access_key_id"] = s.s3.access_key_id
        if s.s3.secret_access_key:
            opts["aws_secret_access_key"] = s.s3.secret_access_key.get_secret_value()
        if s.s3.session_token:
            opts["aws_session_token"] = s.s3.session_token.get_secret_value()
        if not s.s3.bulk_delete:
            opts["aws_disable_bulk_delete"] = "true"
        return opts

    @cached_property
    def db(self) -> lancedb.DBConnection:
        import lancedb

        url = f"{self.root}/db"
        try:
            return lancedb.connect(url, storage_options=self.lance_options() or None)
        except (ValueError, RuntimeError, OSError) as exc:
            if not is_remote(url):
                raise
            # the object store could not be reached (its own retries spent)
            raise TransientError(f"could not connect to the database at {url}: {exc}") from exc
