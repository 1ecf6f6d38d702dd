"""The CLI as a client of the service, on the indexed sample: the same answers as direct mode.

A real ``citywatch serve`` (uvicorn on loopback) runs on a copy of the indexed sample.
An investigator signs in with ``citywatch login`` and runs ``search face``, ``search
plate``, ``export`` and ``export verify`` with only CITYWATCH_API_URL and the stored
token (no storage root); the same commands in direct mode, on the same root and as the
same user, must give the same sightings, the same export subject and the same checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from citywatch.settings import Settings
from citywatch.storage import Storage
from tests.service_support import WHY, add_users, running_service
from tests.test_cli_client import cli, login

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CASE = ["--case", "C-42", "--why", WHY]


@dataclass(frozen=True)
class Served:
    base: str
    root: Path
    state: Path
    home: Path  # the signed-in investigator's home (token in its config dir)


@pytest.fixture(scope="module")
def served(indexed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:  # noqa: ANN001
    """A copy of the indexed sample and the machine state that signed its audit records."""
    root = tmp_path_factory.mktemp("client-e2e") / "data"
    shutil.copytree(indexed.root, root)
    state = root.parent / "state"
    keys = Path(indexed.settings.storage.state_dir) / "keys"
    if keys.is_dir():
        shutil.copytree(keys, state / "keys")
    settings = Settings(storage__root=str(root), storage__state_dir=str(state), auth__login_max_failures=3)
    add_users(settings)
    with running_service(settings) as base:
        home = login(base, tmp_path_factory.mktemp("homes"), "ivy")
        yield Served(base, root, state, home)


def direct(served: Served, *argv: str) -> subprocess.CompletedProcess[str]:
    """The CLI acting directly on the root (no service), as the same investigator."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CITYWATCH_")}
    environ.update(
        PYTHONPATH=str(REPO),
        CITYWATCH_STORAGE__ROOT=str(served.root),
        CITYWATCH_STORAGE__STATE_DIR=str(served.state),
        CITYWATCH_USER="ivy",
    )
    return subprocess.run(
        [sys.executable, "-m", "citywatch.cli.main", *argv],
        capture_output=True,
        text=True,
        env=environ,
        timeout=900,
    )


def both(served: Served, *argv: str) -> tuple[object, object]:
    """``argv --json`` through the service and directly; both must succeed."""
    through = cli(served.base, served.home, *argv, "--json")
    assert through.returncode == 0, through.stderr
    done = direct(served, *argv, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(through.stdout), json.loads(done.stdout)


def _without(rows: list[dict[str, object]], *keys: str) -> list[dict[str, object]]:
    return [{k: v for k, v in row.items() if k not in keys} for row in rows]


def test_search_face_through_the_service_finds_what_direct_mode_finds(served: Served) -> None:
    probe = served.root / "sample" / "probes" / "obama.jpg"
    through, done = both(served, "search", "face", str(probe), *CASE)
    assert isinstance(through, list) and isinstance(done, list)
    assert through, "the sample's probe person is in the footage"
    assert _without(through, "report") == _without(done, "report")
    assert {s["camera_id"] for s in through} >= {through[0]["camera_id"]}


def test_search_plate_through_the_service_finds_what_direct_mode_finds(served: Served) -> None:
    plates = Storage(Settings(storage__root=str(served.root))).db.open_table("plates").to_arrow()
    text = max(set(plates.column("text").to_pylist()), key=plates.column("text").to_pylist().count)
    through, done = both(served, "search", "plate", text, *CASE)
    assert isinstance(through, list) and isinstance(done, list)
    assert through and through[0]["text"] == text
    assert _without(through, "report") == _without(done, "report")


def test_export_and_verify_through_the_service_match_direct_mode(served: Served) -> None:
    probe = served.root / "sample" / "probes" / "obama.jpg"
    found = cli(served.base, served.home, "search", "face", str(probe), *CASE, "--json")
    assert found.returncode == 0, found.stderr
    sighting = json.loads(found.stdout)[0]["face_id"]

    through, done = both(served, "export", "--sighting", sighting, "--pad", "2s", *CASE)
    assert isinstance(through, dict) and isinstance(done, dict)
    same = ("case_id", "frames", "subject", "gaps", "key_id")
    assert {k: through[k] for k in same} == {k: done[k] for k in same}
    assert through["export_id"] != done["export_id"]  # two exports, one per request
    assert through["subject"]["matched_by"] not in ("none", "no-subject")

    # each export verified both ways: through the service (by the path the export printed)
    # and directly; the verdicts and every check agree
    for manifest in (through["manifest_uri"], done["manifest_uri"]):
        verify = ["export", *CASE, "verify", manifest]
        via = cli(served.base, served.home, *verify, "--json")
        assert via.returncode == 0, via.stderr
        here = direct(served, *verify, "--json")
        assert here.returncode == 0, here.stderr
        a, b = json.loads(via.stdout), json.loads(here.stdout)
        assert a["ok"] and b["ok"] and a["manifest"] == b["manifest"]
        checks = [[(c["name"], c["status"]) for c in report["checks"]] for report in (a, b)]
        assert checks[0] == checks[1]

    outside = cli(served.base, served.home, "export", *CASE, "verify", "/etc/passwd")
    assert outside.returncode == 2 and "not an export of case C-42" in outside.stderr


def test_what_the_service_wrote_is_in_the_layout_its_policy_grants(served: Served) -> None:
    """After the searches and exports above: only the layout's prefixes under the root, and the
    service's bucket policy (infra/s3/service.json) lets it write each one it wrote."""
    from citywatch import layout
    from tests.test_infra_policies import WRITE, allows, key, load

    written = {p.name + "/" if p.is_dir() else p.name for p in served.root.iterdir()} - {"sample/"}
    assert written <= {*layout.ROOT_PREFIXES, *layout.CONFIG}, written
    service = load("service")
    for prefix in (layout.REPORTS, layout.EXPORTS, layout.SERVICE, layout.AUTH, layout.DB, layout.AUDIT):
        assert prefix in written
        assert allows(service, WRITE, key(prefix)), prefix
