"""`citywatch users ...`: the first admin, admin-only changes, passwords never as arguments."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from citywatch.cli.main import main
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.passwords import verify_password
from citywatch.governance.users import find_user
from citywatch.settings import Settings
from citywatch.storage import Storage

PASSWORD = "correct horse battery"


def run(root: Path, monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--root", str(root), *argv])


def test_users_add_list_and_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    assert (
        run(tmp_path, monkeypatch, "users", "add", "ivy", "--role", "investigator", "--password-stdin") == 3
    )
    assert "first account must have --role admin" in capsys.readouterr().err
    assert run(tmp_path, monkeypatch, "users", "add", "chief", "--role", "admin", "--password-stdin",
               stdin=PASSWORD + "\n") == 0  # fmt: skip
    storage = Storage(Settings(storage__root=str(tmp_path)))
    chief = find_user(storage, "chief")
    assert chief is not None and verify_password(chief.password_hash, PASSWORD)
    add = ["users", "add", "ivy", "--role", "investigator", "--password-stdin"]
    assert run(tmp_path, monkeypatch, *add, stdin=PASSWORD + "\n") == 3  # nobody acting
    assert run(tmp_path, monkeypatch, "--user", "chief", *add, stdin=PASSWORD + "\n") == 0
    assert run(tmp_path, monkeypatch, "--user", "ivy", "users", "add", "eve", "--role", "admin",
               "--password-stdin", stdin=PASSWORD + "\n") == 3  # fmt: skip
    capsys.readouterr()
    assert run(tmp_path, monkeypatch, "--user", "chief", "users", "add", "IVY", "--role", "admin",
               "--password-stdin", stdin=PASSWORD + "\n") == 2  # fmt: skip
    assert "only by case or look-alike" in capsys.readouterr().err
    assert run(tmp_path, monkeypatch, "--user", "chief", "users", "add", "bob", "--role", "analyst",
               "--password-stdin", stdin="short\n") == 2  # fmt: skip
    assert "at least 10" in capsys.readouterr().err
    assert run(tmp_path, monkeypatch, "--user", "chief", "users", "list", "--json") == 0
    listed = capsys.readouterr().out
    assert '"ivy"' in listed and PASSWORD not in listed and "argon2" not in listed
    rows = AuditLog(storage).rows()
    assert [(r.user, r.action, r.outcome) for r in rows][:2] == [
        ("bootstrap", "users_manage", "ok"),
        ("", "users_manage", "refused"),
    ]
    assert all(PASSWORD not in r.params for r in rows)
    # the table now says who is who: the demo users file no longer does
    (tmp_path / "users.yaml").write_text("users: [{name: mallory, roles: [admin]}]\n")
    assert run(tmp_path, monkeypatch, "--user", "mallory", "users", "list") == 3


def test_users_import_copies_the_yaml_without_passwords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(
        tmp_path,
        monkeypatch,
        "users",
        "add",
        "chief",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    source = tmp_path / "old.yaml"
    source.write_text("users: [{name: ann, roles: [analyst]}, {name: CHIEF, roles: [admin]}]\n")
    assert run(tmp_path, monkeypatch, "--user", "chief", "users", "import", str(source)) == 0
    ann = find_user(Storage(Settings(storage__root=str(tmp_path))), "ann")
    assert ann is not None and ann.password_hash == "" and ann.roles == ["analyst"]
    assert find_user(Storage(Settings(storage__root=str(tmp_path))), "CHIEF") is None
