"""Write the sample footage into a storage root (local or remote)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from citywatch.settings import Settings
from citywatch.storage import Storage, is_remote


def make_sample(
    settings: Settings, seed: int, segments_per_camera: int = 2, segment_seconds: float = 30.0
) -> Path:
    """Generate the sample into the storage root (via a temp dir for remote roots)."""
    from citywatch.governance.auth import write_demo_users

    storage = Storage(settings)
    _make_sample_files(storage, seed, segments_per_camera, segment_seconds)
    write_demo_users(storage)
    return Path(storage.root)


def _make_sample_files(storage: Storage, seed: int, segments_per_camera: int, segment_seconds: float) -> None:
    from citywatch.sample.dataset import generate_sample  # heavy imports (cv2, av): only when asked

    if not is_remote(storage.root):
        generate_sample(
            Path(storage.root),
            seed=seed,
            segments_per_camera=segments_per_camera,
            segment_seconds=segment_seconds,
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate_sample(
            Path(tmp), seed=seed, segments_per_camera=segments_per_camera, segment_seconds=segment_seconds
        )
        fs, path = storage.fs(storage.root)
        fs.put(f"{tmp}/", path, recursive=True)
