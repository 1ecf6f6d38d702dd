"""Offline test and sample media: real photos shipped inside registry packages.

Nothing is downloaded from the web at run time. ``fetch_media`` fetches two
packages' archives from the package registry with ``pip download --no-deps`` (the
same channel that installs citywatch) and unpacks the photos we need:

- ``face_recognition==1.3.0`` sdist: tests/test_images (obama x3, biden);
- ``insightface==2.1`` wheel: data/images (t1.jpg with 6 faces, Tom_Hanks_54745.png);
- ``skimage.data.astronaut()`` comes with scikit-image;
- Debian ``opencv-doc`` (installed by infra/install.sh): vtest.avi, messi5.jpg.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from citywatch.errors import BadInputError

log = logging.getLogger(__name__)

OPENCV_DOC_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
_FACE_RECOGNITION = "face-recognition==1.3.0"
_INSIGHTFACE = "insightface==2.1"
_WANTED_FR = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")
_WANTED_IF = ("t1.jpg", "Tom_Hanks_54745.png")


def default_media_dir() -> Path:
    """Where fetched media is cached: ``~/.cache/citywatch/media``."""
    return Path.home() / ".cache" / "citywatch" / "media"


def _pip_download(spec: str, dest: Path, sdist: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), spec]
    if sdist:
        cmd[4:4] = ["--no-binary", ":all:"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BadInputError(f"could not fetch sample media package {spec}: {proc.stderr.strip()}")
    files = sorted(dest.iterdir())
    if not files:
        raise BadInputError(f"pip download of {spec} produced no file")
    return files[0]


def fetch_media(media_dir: Path | None = None) -> Path:
    """Make sure the sample photos are in ``media_dir``; return that directory."""
    media_dir = media_dir or default_media_dir()
    wanted = [*_WANTED_FR, *_WANTED_IF]
    if all((media_dir / name).is_file() for name in wanted):
        return media_dir
    media_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fr_dir = Path(tmp, "fr")
        fr_dir.mkdir()
        sdist = _pip_download(_FACE_RECOGNITION, fr_dir, sdist=True)
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if "/tests/test_images/" in member.name and name in _WANTED_FR:
                    src = tar.extractfile(member)
                    if src is not None:
                        (media_dir / name).write_bytes(src.read())
        if_dir = Path(tmp, "if")
        if_dir.mkdir()
        wheel = _pip_download(_INSIGHTFACE, if_dir, sdist=False)
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                name = Path(info.filename).name
                if "data/images/" in info.filename and name in _WANTED_IF:
                    (media_dir / name).write_bytes(zf.read(info))
    missing = [name for name in wanted if not (media_dir / name).is_file()]
    if missing:
        raise BadInputError(f"sample media incomplete in {media_dir}: missing {missing}")
    log.info("sample media ready in %s", media_dir)
    return media_dir


def opencv_doc_file(name: str) -> Path:
    """A file of Debian's opencv-doc examples (vtest.avi, messi5.jpg)."""
    path = OPENCV_DOC_DATA / name
    if not path.is_file():
        raise BadInputError(f"{path} not found: install Debian's opencv-doc package (infra/install.sh does)")
    return path


def copy_media(names: list[str], dest: Path, media_dir: Path | None = None) -> None:
    """Copy fetched media files into ``dest`` (used by tests)."""
    src_dir = fetch_media(media_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(src_dir / name, dest / name)
