"""Quiet, clean ends for the local Dask workers of an index run.

When a worker closes, a heartbeat it already sent can be cut off by its own close
(distributed's ``Worker.close`` shuts its connections while the reply is on its way),
and distributed logs that as an ERROR with a ``CommClosedError`` traceback, after a
run that succeeded. :class:`QuietClose` drops exactly that record, and only once the
worker is closing; a heartbeat that fails while the worker runs is still logged.
"""

from __future__ import annotations

import logging

from distributed import Worker, WorkerPlugin
from distributed.core import Status

HEARTBEAT_FAILED = "Failed to communicate with scheduler during heartbeat"
_RUNNING = {Status.running, Status.paused, Status.closing_gracefully}


class _HeartbeatCutByClose(logging.Filter):
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        closing = self.worker.status not in _RUNNING
        return not (closing and str(record.msg).startswith(HEARTBEAT_FAILED))


class QuietClose(WorkerPlugin):
    """Worker plugin: no traceback for the heartbeat a worker's own close cuts off."""

    name = "citywatch-quiet-close"

    def setup(self, worker: Worker) -> None:
        self._filter = _HeartbeatCutByClose(worker)
        # kept for the rest of the process: the worker's close removes its plugins
        # before it shuts its connections, so the filter must outlive the plugin
        logging.getLogger("distributed.worker").addFilter(self._filter)
