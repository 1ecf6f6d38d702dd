"""Session fixtures: a real Prefect server, the sample footage, one indexed root."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from citywatch.settings import Settings
from citywatch.stack.prefect_server import QUIET_ENV, start_prefect_server
from tests import session_cleanup

if TYPE_CHECKING:
    from tests.s3 import S3Server

for _key, _value in QUIET_ENV.items():
    os.environ.setdefault(_key, _value)

session_cleanup.install()  # servers started in their own sessions die with pytest


@pytest.hookimpl(trylast=True)  # after the session fixtures' own teardown
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session_cleanup.stop_own_servers()


# The sample the end-to-end tests index: small enough for CI, same generator as
# `citywatch sample` (4 cameras, H.264 720p, real face photos).
SAMPLE_SEGMENTS_PER_CAMERA = 2
SAMPLE_SEGMENT_SECONDS = 20.0


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``prefect server start`` on loopback; Dask worker processes inherit its URL."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("prefect")
    api_url, pid = start_prefect_server(home, wait_s=300)  # a loaded machine needs more than 90 s
    os.environ["PREFECT_API_URL"] = api_url
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        yield api_url
        # send queued run logs and events while the server still answers (otherwise
        # their workers retry a stopped server at interpreter exit, for up to a minute)
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for worker in (APILogWorker, EventsWorker):
            worker.drain_all(timeout=10)
    os.environ.pop("PREFECT_API_URL", None)
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated sample (read-only for tests: copy it before changing files)."""
    from citywatch.sample.dataset import generate_sample

    out = tmp_path_factory.mktemp("sample")
    generate_sample(
        out, seed=7, segments_per_camera=SAMPLE_SEGMENTS_PER_CAMERA, segment_seconds=SAMPLE_SEGMENT_SECONDS
    )
    return out


@dataclass(frozen=True)
class Indexed:
    root: Path
    settings: Settings
    summary: object  # flows.index_footage.IndexSummary


def settings_for(root: Path, tmp: Path, **extra: object) -> Settings:
    """Settings for a test root, acting as the demo admin (see citywatch/auth.py)."""
    extra.setdefault("user", "demo-admin")
    return Settings(storage__root=str(root), storage__state_dir=str(tmp / "state"), dask__workers=2, **extra)


def as_user(settings: Settings, user: str) -> Settings:
    return settings.model_copy(update={"user": user})


CASE = {"case_id": "TEST-1", "justification": "automated end-to-end test of citywatch"}


@pytest.fixture(scope="session")
def indexed(prefect_api: str, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Indexed:
    """The sample indexed once through the real flow (Prefect server + 2 Dask workers)."""
    from citywatch.flows.index_footage import run_index
    from citywatch.governance.auth import write_demo_users
    from citywatch.storage import Storage

    root = tmp_path_factory.mktemp("indexed") / "data"
    shutil.copytree(sample_dir, root)
    settings = settings_for(root, root.parent)
    write_demo_users(Storage(settings))
    summary = run_index(settings)
    return Indexed(root, settings, summary)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3 API (moto, in-process) on a free loopback port; tests make their own buckets."""
    from tests.s3 import moto_server

    with moto_server() as server:
        yield server
