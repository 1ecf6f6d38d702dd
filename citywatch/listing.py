"""What a footage listing returns, and one scan of a local folder (used by
:class:`citywatch.storage.Storage`'s listings)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from citywatch.errors import NotFoundError, TransientError


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One file found under a location."""

    url: str
    key: str  # relative to the listed location
    size: int


@dataclass(frozen=True, slots=True)
class FolderListing:
    """Files of one folder (see :meth:`Storage.list_folder_from`) and the links among them."""

    files: list[ObjectInfo]
    links: list[str]  # local symbolic links (never followed)


def scan_folder(folder: str, base: str) -> tuple[list[str], list[ObjectInfo], list[str]]:
    """One ``os.scandir`` of ``folder``: its sub-folder paths, its files (keys relative to
    ``base``) and its symbolic links (never followed). OS errors are the caller's."""
    folders: list[str] = []
    files: list[ObjectInfo] = []
    links: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_symlink():
                links.append(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                size = entry.stat(follow_symlinks=False).st_size
                files.append(ObjectInfo(url=entry.path, key=entry.path[len(base) + 1 :], size=size))
    return folders, files, links


def scan_top(base: Path, location: str) -> tuple[list[str], FolderListing]:
    try:
        folders, files, links = scan_folder(str(base), str(base))
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise NotFoundError(f"footage location {location} does not exist") from exc
    except OSError as exc:
        raise TransientError(f"could not list {location}: {exc}") from exc
    names = sorted(os.path.basename(f) for f in folders)
    return names, FolderListing(sorted(files, key=lambda o: o.key), sorted(links))
