"""The quiet close of index workers drops only the heartbeat a worker's own close cuts off
(issue 13, item 10): after a run that succeeded, no ``CommClosedError`` traceback; while
a worker runs, a failed heartbeat is still logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import pytest
from distributed import Worker
from distributed.comm.core import CommClosedError
from distributed.core import Status

from citywatch.tasks.dask_workers import HEARTBEAT_FAILED, QuietClose


@dataclass
class FakeWorker:
    """What the filter reads of a worker: its status."""

    status: Status


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def worker_log() -> Iterator[tuple[FakeWorker, Kept]]:
    logger = logging.getLogger("distributed.worker")
    filters_before = list(logger.filters)
    kept = Kept()
    logger.addHandler(kept)
    worker = FakeWorker(Status.running)
    QuietClose().setup(cast(Worker, worker))
    try:
        yield worker, kept
    finally:
        logger.removeHandler(kept)
        logger.filters[:] = filters_before


def _heartbeat_failed(logger: logging.Logger) -> None:
    try:
        raise CommClosedError("in <TCP (closed) ConnectionPool.heartbeat_worker>: Stream is closed")
    except CommClosedError:
        logger.exception(f"{HEARTBEAT_FAILED}.")  # as distributed's Worker.heartbeat does


@pytest.mark.parametrize(
    ("status", "logged"),
    [
        (Status.running, True),  # the scheduler went away mid-run: people must see it
        (Status.paused, True),
        (Status.closing_gracefully, True),
        (Status.closing, False),  # the worker's own close cut its heartbeat off
        (Status.closed, False),
        (Status.failed, False),
    ],
)
def test_a_failed_heartbeat_is_dropped_only_once_the_worker_closes(
    worker_log: tuple[FakeWorker, Kept], status: Status, logged: bool
) -> None:
    worker, kept = worker_log
    worker.status = status
    _heartbeat_failed(logging.getLogger("distributed.worker"))
    assert kept.messages == ([f"{HEARTBEAT_FAILED}."] if logged else [])


def test_other_errors_of_a_closing_worker_are_still_logged(worker_log: tuple[FakeWorker, Kept]) -> None:
    worker, kept = worker_log
    worker.status = Status.closing
    logging.getLogger("distributed.worker").error("Compute Failed for key %s", "index-segment-1")
    assert kept.messages == ["Compute Failed for key index-segment-1"]


def test_the_filter_outlives_the_plugin_the_close_removes(worker_log: tuple[FakeWorker, Kept]) -> None:
    """Worker.close tears its plugins down before it shuts its connections."""
    worker, kept = worker_log
    QuietClose().teardown(cast(Worker, worker))  # what Worker.close does first
    worker.status = Status.closing
    _heartbeat_failed(logging.getLogger("distributed.worker"))
    assert kept.messages == []
