"""Direct mode on a single-user machine: the acting user is bound to the OS login."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from citywatch.cli.main import main

PASSWORD = "correct horse battery"


def run(root: Path, monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--root", str(root), *argv])


def test_user_flag_selects_only_the_account_of_the_os_login(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("CITYWATCH_USER", raising=False)
    monkeypatch.delenv("CITYWATCH_API_URL", raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "kim")
    add = ["users", "add", "--password-stdin"]
    assert run(tmp_path, monkeypatch, *add, "chief", "--role", "admin", "--os-account", "kim",
               stdin=PASSWORD + "\n") == 0  # fmt: skip
    assert run(tmp_path, monkeypatch, "--user", "chief", *add, "sam", "--role", "supervisor",
               "--os-account", "lee", stdin=PASSWORD + "\n") == 0  # fmt: skip
    capsys.readouterr()

    # kim's OS login owns chief, not sam: --user sam is refused, with or without a name
    assert run(tmp_path, monkeypatch, "--user", "sam", "watchlist", "list") == 3
    assert "not bound to the OS login 'kim'" in capsys.readouterr().err
    assert run(tmp_path, monkeypatch, "audit", "list", "--json") == 0  # no --user: the bound account
    assert '"user": "chief"' in capsys.readouterr().out

    monkeypatch.setattr("getpass.getuser", lambda: "lee")
    assert run(tmp_path, monkeypatch, "--user", "chief", "audit", "list") == 3
    assert run(tmp_path, monkeypatch, "--user", "sam", "watchlist", "list") == 0
    monkeypatch.setattr("getpass.getuser", lambda: "nobody")
    assert run(tmp_path, monkeypatch, "watchlist", "list") == 3
    assert "no user given" in capsys.readouterr().err


def test_os_account_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    add = ["users", "add", "chief", "--role", "admin", "--password-stdin", "--os-account", "kim; rm -rf"]
    assert run(tmp_path, monkeypatch, *add, stdin=PASSWORD + "\n") == 2
    assert "OS account 'kim; rm -rf' is invalid" in capsys.readouterr().err
