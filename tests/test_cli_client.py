"""The CLI as a client of a real `citywatch serve` (uvicorn on a loopback port).

Each CLI call is a subprocess with CITYWATCH_API_URL and its own config dir (where
`citywatch login` keeps the token); none of them is given the storage root.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from citywatch.stack.prefect_server import free_port
from tests.service_support import PASSWORD, WHY, add_users, running_service, service_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("root")
    settings = service_settings(root)
    add_users(settings)
    with running_service(settings) as base:
        yield base, tmp_path_factory.mktemp("homes")


def cli(base: str, home: Path, *argv: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CITYWATCH_")}
    environ.update(
        PYTHONPATH=str(REPO), CITYWATCH_API_URL=base, XDG_CONFIG_HOME=str(home), HOME=str(home), **env
    )
    return subprocess.run(
        [sys.executable, "-m", "citywatch.cli.main", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        cwd=home,
        timeout=120,
    )


def login(base: str, homes: Path, name: str) -> Path:
    home = homes / name
    home.mkdir(exist_ok=True)
    done = cli(base, home, "login", "--name", name, "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert f"as {name}" in done.stdout and PASSWORD not in done.stdout + done.stderr
    return home


def test_login_stores_a_private_token_and_commands_act_as_that_person(service: tuple[str, Path]) -> None:
    base, homes = service
    sam, sue, ivy, ann, ada = (login(base, homes, n) for n in ("sam", "sue", "ivy", "ann", "ada"))
    token_file = sam / "citywatch" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().startswith("cwt_")

    add = ["watchlist", "add", "plate", "AB1234", "--label", "stolen van", "--reason", "stolen_vehicle"]
    add += ["--expires", "7d", "--case", "C-9", "--why", WHY, "--json"]
    done = cli(base, sam, *add)
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout)
    assert entry["requested_by"] == "sam" and entry["state"] == "pending"

    approve = ["watchlist", "approve", entry["id"], "--why", "case file checked by a second person"]
    mine = cli(base, sam, "--user", "sue", *approve)  # --user selects nothing in client mode
    assert mine.returncode == 3, mine.stderr
    assert cli(base, ivy, *approve).returncode == 3  # investigators may not approve
    done = cli(base, sue, *approve)
    assert done.returncode == 0, done.stderr
    assert "approved by sue" in done.stdout

    listed = cli(base, ivy, "watchlist", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(e["id"], e["state"]) for e in json.loads(listed.stdout)] == [(entry["id"], "active")]

    # the same matrix idea as the service tests, through the CLI: refused roles get exit code 3
    probe = ann / "probe.jpg"
    probe.write_bytes(b"\xff\xd8\xff\xe0 not really a photo")
    face = ["search", "face", str(probe), "--case", "C-9", "--why", WHY]
    for home, argv, code in (
        (ann, face, 3),
        (ada, face, 3),
        (ann, ["watchlist", "list"], 3),
        (ann, ["alerts", "list"], 3),
        (ivy, ["audit", "list"], 3),
        (ivy, ["alerts", "dismiss", "A-1", "--note", "different person"], 3),
        (ivy, ["hold", "T-1", "--case", "C-9", "--why", WHY], 3),
        (ada, ["watchlist", "remove", "NOPE", "--note", "found safe"], 2),  # allowed; no such entry
        (sam, ["alerts", "list", "--json"], 0),
    ):
        done = cli(base, home, *argv)
        assert done.returncode == code, (argv, done.stdout, done.stderr)
        if code == 3:
            assert "the service refused" in done.stderr

    bad = cli(base, sam, *[("C 9!" if a == "C-9" else a) for a in add])
    assert bad.returncode == 2 and "case_id" in bad.stderr

    audit = cli(base, ada, "audit", "list", "--json", "--limit", "1000")
    assert audit.returncode == 0, audit.stderr
    rows = json.loads(audit.stdout)
    approvals = [r for r in rows if r["action"] == "watchlist_approve" and r["outcome"] == "ok"]
    assert [r["user"] for r in approvals] == ["sue"]
    assert json.loads(approvals[0]["params"])["via"]["auth"] == "token"
    verify = cli(base, ada, "audit", "verify")
    assert verify.returncode == 0 and "audit log intact" in verify.stdout


def test_token_file_open_to_others_is_refused(service: tuple[str, Path]) -> None:
    base, homes = service
    home = login(base, homes, "sue")
    token_file = home / "citywatch" / "token"
    token_file.chmod(0o644)
    done = cli(base, home, "watchlist", "list")
    assert done.returncode == 3
    assert "group or others" in done.stderr and str(token_file) in done.stderr
    token_file.chmod(0o600)
    assert cli(base, home, "watchlist", "list").returncode == 0


def test_logout_revokes_the_token(service: tuple[str, Path]) -> None:
    base, homes = service
    home = login(base, homes, "ivy")
    token = (home / "citywatch" / "token").read_text().strip()
    done = cli(base, home, "logout")
    assert done.returncode == 0, done.stderr
    assert not (home / "citywatch" / "token").exists()
    not_signed_in = cli(base, home, "watchlist", "list")
    assert not_signed_in.returncode == 3 and "citywatch login" in not_signed_in.stderr
    revoked = cli(base, home, "watchlist", "list", CITYWATCH_API_TOKEN=token)
    assert revoked.returncode == 3 and "the service refused" in revoked.stderr


def test_wrong_password_and_token_stdin(service: tuple[str, Path]) -> None:
    base, homes = service
    home = homes / "other"
    home.mkdir(exist_ok=True)
    wrong = cli(base, home, "login", "--name", "sam", "--password-stdin", stdin="nope\n")
    assert wrong.returncode == 3 and "name or password is wrong" in wrong.stderr
    assert not (home / "citywatch" / "token").exists()
    token = (login(base, homes, "sam") / "citywatch" / "token").read_text()
    done = cli(base, home, "login", "--token-stdin", stdin=token)
    assert done.returncode == 0 and "as sam" in done.stdout
    assert stat.S_IMODE((home / "citywatch" / "token").stat().st_mode) == 0o600


def test_unreachable_service_names_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = cli(url, tmp_path, "audit", "verify", CITYWATCH_API_TOKEN="cwt_" + "0" * 16 + "_" + "a" * 43)
    assert done.returncode == 1
    assert f"cannot reach the citywatch service at {url}" in done.stderr
