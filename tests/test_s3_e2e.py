"""End to end on s3:// against a real S3 API (moto over HTTP): index, searches, sweep.

The sample's segments in which obama passes (3 of 8, three cameras) are copied into a
bucket and indexed by the real flow on 2 Dask worker processes; every file and table
lives in the bucket. Searches and the sweep must give what the same segments give on
local disk (the shared ``indexed`` fixture).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from citywatch.cli.main import main
from citywatch.governance.auth import write_demo_users
from citywatch.sample.dataset import load_ground_truth
from citywatch.settings import Settings
from citywatch.storage import Storage
from tests.conftest import CASE, as_user
from tests.s3 import upload

pytestmark = pytest.mark.slow
WHY = ["--case", CASE["case_id"], "--why", CASE["justification"]]


@dataclass(frozen=True)
class OnS3:
    settings: Settings
    summary: object  # flows.index_footage.IndexSummary
    truth: object  # citywatch.sample.truth.GroundTruth
    keys: tuple[str, ...]  # the segments copied into the bucket
    results_dir: Path  # where Prefect would persist results on this machine


def obama_keys(truth) -> tuple[str, ...]:  # noqa: ANN001
    return tuple(sorted({a.key for a in truth.appearances if a.person_id == "obama"}))


@pytest.fixture(scope="module")
def on_s3(
    prefect_api: str,
    sample_dir: Path,
    s3_server,  # noqa: ANN001
    tmp_path_factory: pytest.TempPathFactory,
) -> OnS3:
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from citywatch.flows.index_footage import run_index

    truth = load_ground_truth(sample_dir / "sample" / "ground_truth.json")
    keys = obama_keys(truth)
    tmp = tmp_path_factory.mktemp("s3-e2e")
    settings = s3_server.settings(
        f"{s3_server.bucket()}/city",
        storage__state_dir=str(tmp / "state"),
        dask__workers=2,
        user="demo-admin",
    )
    upload(settings, sample_dir, ["cameras.yaml", "sample", *keys])
    write_demo_users(Storage(settings))
    results = tmp / "prefect-results"
    with (
        pytest.MonkeyPatch.context() as env,
        temporary_settings(updates={PREFECT_RESULTS_LOCAL_STORAGE_PATH: results}),
    ):
        env.setenv("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(results))  # Dask workers
        summary = run_index(settings)
    return OnS3(settings, summary, truth, keys, results)


def segment_ids(keys: tuple[str, ...]) -> set[str]:
    return {k.removeprefix("footage/").removesuffix(".mp4") for k in keys}


def test_index_on_s3_keeps_everything_in_the_bucket(on_s3: OnS3) -> None:
    storage = Storage(on_s3.settings)
    assert (on_s3.summary.indexed, on_s3.summary.failed) == (len(on_s3.keys), [])
    segments = storage.db.open_table("segments").to_arrow().to_pylist()
    done = {(i, "done") for i in segment_ids(on_s3.keys)}
    assert {(s["id"], s["state"]) for s in segments} == done
    faces = storage.db.open_table("faces").to_arrow().select(["thumb_uri"]).to_pylist()
    assert faces and all(f["thumb_uri"].startswith(f"{storage.root}/") for f in faces)
    assert all(storage.exists(f["thumb_uri"]) for f in faces[:10])
    assert storage.exists(f"{storage.root}/db/faces.lance")
    # no worker relies on this machine's disk: Prefect persisted no results locally
    assert not on_s3.results_dir.exists() or not any(on_s3.results_dir.iterdir())


def test_face_search_on_s3_equals_local_disk(on_s3: OnS3, indexed) -> None:  # noqa: ANN001
    from citywatch.flows.search import face_search
    from citywatch.tasks.search.faces import SearchFilters

    storage = Storage(on_s3.settings)
    probe = f"{storage.root}/sample/probes/obama.jpg"  # the probe itself read from s3
    found = face_search(probe, SearchFilters(), as_user(on_s3.settings, "demo-investigator"), **CASE)
    local = face_search(
        str(indexed.root / "sample" / "probes" / "obama.jpg"),
        SearchFilters(),
        as_user(indexed.settings, "demo-investigator"),
        **CASE,
    )

    def key(s) -> tuple:  # noqa: ANN001
        return s.camera_id, s.ts, round(s.distance, 4)

    expected = [key(s) for s in local.sightings if s.segment_uri.endswith(on_s3.keys)]
    assert expected, "the local run found obama in none of these segments"
    assert [key(s) for s in found.sightings] == expected
    assert {s.camera_id for s in found.sightings} == {k.split("/")[1] for k in on_s3.keys}
    assert found.report_uri.startswith(f"{storage.root}/reports/")
    html = storage.read_bytes(found.report_uri).decode()
    assert html.count("data:image/jpeg;base64,") == len(found.sightings)


def test_plate_search_on_s3_equals_local_disk(on_s3: OnS3, indexed) -> None:  # noqa: ANN001
    from citywatch.flows.search import plate_search
    from citywatch.tasks.search.faces import SearchFilters

    ids = segment_ids(on_s3.keys)

    def plates(settings: Settings) -> list[tuple[str, str]]:
        rows = Storage(settings).db.open_table("plates").to_arrow().to_pylist()
        return sorted((r["id"], r["text"]) for r in rows if r["segment_id"] in ids)

    on_disk = plates(indexed.settings)
    assert on_disk, "the local run read no plate in these segments: nothing would be compared"
    assert plates(on_s3.settings) == on_disk
    for text in sorted({text for _, text in on_disk}) or ["AB1234"]:
        results = [
            plate_search(text, SearchFilters(), as_user(s, "demo-investigator"), **CASE)
            for s in (on_s3.settings, indexed.settings)
        ]
        found, local = (
            [(p.plate.camera_id, p.plate.ts, p.plate.text) for p in r.sightings if p.plate.segment_id in ids]
            for r in results
        )
        assert local, f"the local search for {text} found none of the plates it was read from"
        assert found == local
        assert results[0].report_uri.startswith(f"{Storage(on_s3.settings).root}/reports/")


def test_sweep_on_s3_alerts_once_per_pass(on_s3: OnS3, monkeypatch: pytest.MonkeyPatch, s3_server) -> None:  # noqa: ANN001
    from citywatch.flows.watchlist_sweep import watchlist_sweep
    from citywatch.governance.alerts import list_alerts
    from citywatch.governance.watchlist import list_entries

    for name, value in s3_server.env().items():  # the CLI builds its settings from env
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", on_s3.settings.storage.state_dir)
    storage = Storage(on_s3.settings)
    root = storage.root
    assert (
        main(
            [
                "--root",
                root,
                "--user",
                "demo-investigator",
                "watchlist",
                "add",
                "face",
                "--photo",
                f"{root}/sample/probes/obama.jpg",
                "--label",
                "obama",
                "--reason",
                "missing",
                "--expires",
                "2d",
                *WHY,
            ]
        )
        == 0
    )
    (entry,) = list_entries(storage)
    assert (
        main(
            [
                "--root",
                root,
                "--user",
                "demo-supervisor",
                "watchlist",
                "approve",
                entry.id,
                "--why",
                CASE["justification"],
            ]
        )
        == 0
    )
    summary = watchlist_sweep(settings=as_user(on_s3.settings, "demo-admin"))
    passes = [a for a in on_s3.truth.appearances if a.person_id == "obama"]
    alerts = list_alerts(storage)
    assert summary.sweep.alerts_new == len(alerts) == len(passes)
    slack = dt.timedelta(seconds=1.5)
    assert all(
        any(p.camera_id == a.camera_id and p.start - slack <= a.ts <= p.end + slack for p in passes)
        for a in alerts
    )
    assert all(a.thumb_uri.startswith(f"{root}/") and storage.exists(a.thumb_uri) for a in alerts)
