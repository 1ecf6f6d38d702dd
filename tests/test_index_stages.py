"""The index run says where its CPU went (tasks/index/stages.py), for the throughput benchmark."""

from __future__ import annotations

import pytest

from citywatch.tasks.index.stages import STAGES, StageClock, StageCpu
from tests.conftest import Indexed

pytestmark = pytest.mark.slow


def test_the_sample_run_reports_cpu_per_stage_and_worker_memory(indexed: Indexed) -> None:
    summary = indexed.summary
    stages = summary.stages
    negative = {name: getattr(stages, name) for name in STAGES if getattr(stages, name) < 0}
    assert negative == {}
    # the sample has moving people and cars: every model stage did work
    idle = [
        n
        for n in ("decode", "gate", "face_detect", "embed", "plate_detect", "plate_read", "write")
        if getattr(stages, n) <= 0
    ]
    assert idle == []
    per_hour = stages.per_footage_hour(summary.footage_s)
    assert per_hour["total"] == pytest.approx(stages.total * 3600 / summary.footage_s)
    assert 0 < summary.peak_worker_rss_mb  # measured in the worker processes, not here


def test_a_clock_charges_laps_and_moves_measured_shares() -> None:
    clock = StageClock()
    sum(i * i for i in range(200_000))
    clock.lap("decode")
    assert clock.cpu.decode > 0
    clock.charge("decode", "gate", clock.cpu.decode / 4)
    assert clock.cpu.gate == pytest.approx(clock.cpu.decode / 3)
    total = StageCpu()
    total.add(clock.cpu)
    total.add(clock.cpu)
    assert total.total == pytest.approx(2 * clock.cpu.total)
