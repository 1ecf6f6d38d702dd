"""Hostile input: each gives a clear error (exit 2 bad input, 3 not allowed) and leaves
every table unchanged. Refusals are recorded in the audit log (that table grows by
design); every other table is compared before and after. ``index`` names the footage it
left out in its summary and exits 1 when that was a segment (failed, or two files for one
segment id); a failed segment is recorded in the segments table, by design.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from citywatch.cli.main import main
from citywatch.sample.media import fetch_media
from citywatch.settings import Settings
from citywatch.storage import Storage
from tests.hostile_support import SEGMENT, hostile_files, pending_plate_entry, real_ids, tables_digest

pytestmark = pytest.mark.slow

CASE = ["--case", "HOSTILE-1", "--why", "testing hostile input handling"]
INJECT = "x' OR '1'='1"


HOSTILE: list[tuple[str, list[str], int, str]] = [
    # (name, argv after --user, exit code, words the message must contain)
    ("camera injection", ["search", "face", "{obama}", "--camera", INJECT, *CASE], 2, "camera"),
    ("camera traversal", ["search", "face", "{obama}", "--camera", "../etc", *CASE], 2, "camera"),
    ("unknown camera", ["search", "face", "{obama}", "--camera", "cam-nowhere", *CASE], 2, "no such camera"),
    ("district injection", ["search", "face", "{obama}", "--district", INJECT, *CASE], 2, "district"),
    ("since injection", ["search", "face", "{obama}", "--since", "1' OR 1=1", *CASE], 2, "--since"),
    ("until not a date", ["search", "face", "{obama}", "--until", "2026-13-45", *CASE], 2, "--until"),
    (
        "since after until",
        ["search", "face", "{obama}", "--since", "2026-02-01", "--until", "2026-01-01", *CASE],
        2,
        "after",
    ),
    ("face index out of range", ["search", "face", "{obama}", "--face", "7", *CASE], 2, "out of range"),
    ("probe empty", ["search", "face", "{empty}", *CASE], 2, "empty"),
    ("probe not an image", ["search", "face", "{text}", *CASE], 2, "not a readable image"),
    ("probe truncated", ["search", "face", "{truncated}", *CASE], 2, "could not be decoded"),
    ("probe too many bytes", ["search", "face", "{huge}", *CASE], 2, "limit"),
    ("probe decompression bomb", ["search", "face", "{bomb}", *CASE], 2, "pixels"),
    ("probe without a face", ["search", "face", "{tiny}", *CASE], 2, "no face"),
    ("probe traversal to /etc", ["search", "face", "/etc/passwd", *CASE], 2, "not a readable image"),
    ("probe missing", ["search", "face", "/nonexistent/x.jpg", *CASE], 2, "does not exist"),
    (
        "case traversal",
        ["search", "face", "{obama}", "--case", "../../etc", "--why", "testing hostile input handling"],
        2,
        "case",
    ),
    ("case missing", ["search", "face", "{obama}", "--why", "testing hostile input"], 2, "case"),
    (
        "justification too short",
        ["search", "face", "{obama}", "--case", "C-1", "--why", "x"],
        2,
        "justification",
    ),
    ("plate injection", ["search", "plate", INJECT, *CASE], 2, "not allowed"),
    ("plate sql", ["search", "plate", "AB;DROP TABLE plates", *CASE], 2, "not allowed"),
    ("plate empty", ["search", "plate", "", *CASE], 2, "plate"),
    ("plate too long", ["search", "plate", "A" * 100, *CASE], 2, "plate"),
    ("near malformed", ["search", "plate", "AB12*", "--near", "22.3,north,5", *CASE], 2, "--near"),
    ("near out of range", ["search", "plate", "AB12*", "--near", "95,114,10", *CASE], 2, "--near"),
    (
        "watchlist plate injection",
        [
            "watchlist",
            "add",
            "plate",
            INJECT,
            "--label",
            "x",
            "--reason",
            "suspect",
            "--expires",
            "1d",
            *CASE,
        ],
        2,
        "not allowed",
    ),
    (
        "watchlist expiry too far",
        [
            "watchlist",
            "add",
            "plate",
            "AB1234",
            "--label",
            "x",
            "--reason",
            "suspect",
            "--expires",
            "400d",
            *CASE,
        ],
        2,
        "expir",
    ),
    (
        "watchlist photo with 6 faces",
        [
            "watchlist",
            "add",
            "face",
            "--photo",
            "{group}",
            "--label",
            "x",
            "--reason",
            "missing",
            "--expires",
            "1d",
            *CASE,
        ],
        2,
        "6 faces",
    ),
    ("approve injection", ["watchlist", "approve", INJECT, "--why", "hostile approve"], 2, "does not exist"),
    ("export sighting injection", ["export", "--sighting", INJECT, *CASE], 2, "sighting"),
    (
        "export camera traversal",
        [
            "export",
            "--camera",
            "../x",
            "--since",
            "2026-11-20T08:00:00Z",
            "--until",
            "2026-11-20T08:00:10Z",
            *CASE,
        ],
        2,
        "camera",
    ),
    ("hold injection", ["hold", INJECT, *CASE], 2, "no face or plate rows"),
    # --- issue 13: identifiers in full (a trailing newline), local inputs only, pixel budget,
    # plate-pattern breadth, footage problems named (index: exit 1 when footage is left out)
    (
        "camera id + newline",
        ["search", "face", "{obama}", "--camera", "cam-queens-rd\n", *CASE],
        2,
        "'cam-queens-rd\\n'",
    ),
    (
        "case id with a newline",
        ["search", "plate", "AB1234", "--case", "HOSTILE\n1", "--why", "testing hostile input handling"],
        2,
        "case id 'HOSTILE\\n1' is invalid",
    ),
    (
        "user + newline",
        ["--user", "demo-investigator\n", "search", "plate", "AB1234", *CASE],
        3,
        "'demo-investigator\\n'",
    ),
    (
        "alert id + newline",
        ["alerts", "confirm", "{alert}\n", "--note", "checked the photo"],
        2,
        "'{alert}\\n'",
    ),
    (
        "watchlist id + newline",
        ["watchlist", "approve", "{entry}\n", "--why", "hostile approve"],
        2,
        "'{entry}\\n'",
    ),
    ("hold track + newline", ["hold", "{track}\n", *CASE], 2, "'{track}\\n'"),
    ("export sighting + newline", ["export", "--sighting", "{sighting}\n", *CASE], 2, "'{sighting}\\n'"),
    (
        "time + newline",
        ["search", "plate", "AB1234", "--since", "2026-11-20T08:00:00Z\n", *CASE],
        2,
        "--since",
    ),
    (
        "probe over http",
        ["search", "face", "http://127.0.0.1:9/p.jpg", *CASE],
        2,
        "probe 'http://127.0.0.1:9/p.jpg'",
    ),
    # another storage's scheme (file:// is the local root's own: /etc/passwd is then no image)
    (
        "probe on s3:// of a local root",
        ["search", "face", "s3://bucket/p.jpg", *CASE],
        2,
        "'s3://bucket/p.jpg'",
    ),
    (
        "footage over http",
        ["index", "--footage", "http://127.0.0.1:9/f"],
        2,
        "--footage 'http://127.0.0.1:9/f'",
    ),
    (
        "photo over http",
        [
            "watchlist",
            "add",
            "face",
            "--photo",
            "http://127.0.0.1:9/p.jpg",
            "--label",
            "x",
            "--reason",
            "missing",
            "--expires",
            "1d",
            *CASE,
        ],
        2,
        "http://127.0.0.1:9/p.jpg",
    ),
    ("probe over the pixel budget", ["search", "face", "{big}", *CASE], 2, "probe_max_pixels"),
    (
        "photo over the pixel budget",
        [
            "watchlist",
            "add",
            "face",
            "--photo",
            "{big}",
            "--label",
            "x",
            "--reason",
            "missing",
            "--expires",
            "1d",
            *CASE,
        ],
        2,
        "probe_max_pixels",
    ),
    (
        "plate pattern matching everything",
        ["watchlist", "add", "plate", "?*", "--label", "x", "--reason", "suspect", "--expires", "1d", *CASE],
        2,
        "'?*' has 0 literal characters",
    ),
    (
        "two files, one segment id",
        ["index", "--footage", "{conflict}"],
        1,
        f"CONFLICT segment {SEGMENT} has 2 files",
    ),
    ("a segment that fails", ["index", "--footage", "{corrupt}"], 1, "FAILED {corrupt}/" + SEGMENT),
    (
        "footage folder + newline",
        ["index", "--footage", "{newline}"],
        0,
        "folder 'cam-nl\\n' is not a valid camera id",
    ),
    ("start time in 2099", ["index", "--footage", "{future}"], 0, "more than a day in the future"),
    ("symlink in footage", ["index", "--footage", "{links}"], 0, "a symbolic link, not followed"),
]

# tables a refusal writes to by design: a failed segment is recorded with its reason
RECORDED = {"a segment that fails": "segments"}


@pytest.fixture(scope="module")
def hostile_root(indexed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:  # noqa: ANN001
    """A copy of the indexed sample, with a copy of the machine state that signed its audit
    records (the audit key), used by every command of this module (CITYWATCH_STORAGE__STATE_DIR)."""
    root = tmp_path_factory.mktemp("hostile") / "data"
    shutil.copytree(indexed.root, root)
    state = root.parent / "state"
    keys = Path(indexed.settings.storage.state_dir) / "keys"
    if keys.is_dir():
        shutil.copytree(keys, state / "keys")
    pending_plate_entry(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(state))
        yield root


def _user_for(args: list[str]) -> list[str]:
    if args[0] == "--user":
        return []
    if args[0] == "index":
        return ["--user", "demo-admin"]
    reviews = args[0] in ("watchlist", "hold", "alerts") and args[1:2] != ["add"]
    return ["--user", "demo-supervisor" if reviews else "demo-investigator"]


@pytest.mark.parametrize(("name", "argv", "code", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_refused_cleanly(
    hostile_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch,  # noqa: ANN001
    name: str,
    argv: list[str],
    code: int,
    words: str,
) -> None:
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(hostile_root.parent / "state"))
    files = {
        **hostile_files(tmp_path / "files"),
        **real_ids(hostile_root),
        "obama": str(hostile_root / "sample/probes/obama.jpg"),
        "group": str(fetch_media() / "t1.jpg"),
    }
    args = [a.format(**files) if a.startswith("{") else a for a in argv]
    words = words.format(**files) if "{" in words else words
    before = tables_digest(hostile_root)
    assert main(["--root", str(hostile_root), *_user_for(args), *args]) == code
    out, err = capsys.readouterr()
    if code in (2, 3):  # refused: one error line naming the input
        assert err.startswith("error: ") and words.lower() in err.lower(), err
    else:  # index: footage left out is named in the summary (exit 1 when it was a segment)
        assert words.lower() in out.lower(), out
    assert "Traceback" not in err + out
    after = tables_digest(hostile_root)
    recorded = RECORDED.get(name)
    assert {t: d for t, d in after.items() if t != recorded} == {
        t: d for t, d in before.items() if t != recorded
    }
    if recorded:  # written by design, naming the input and why
        rows = (
            Storage(Settings(storage__root=str(hostile_root))).db.open_table(recorded).to_arrow().to_pylist()
        )
        mine = [r for r in rows if r["uri"].startswith(files["corrupt"])]
        assert [r["state"] for r in mine] == ["failed"] and "not a readable video" in mine[0]["error"]


def test_unknown_user_is_refused_and_audited(hostile_root: Path, capsys) -> None:  # noqa: ANN001
    from citywatch.governance.audit_log import AuditLog
    from citywatch.settings import Settings
    from citywatch.storage import Storage

    assert main(["--root", str(hostile_root), "--user", INJECT, "search", "plate", "AB1234", *CASE]) in (2, 3)
    assert "error:" in capsys.readouterr().err
    last = AuditLog(Storage(Settings(storage__root=str(hostile_root)))).rows()[-1]
    assert last.outcome == "refused"
    assert AuditLog(Storage(Settings(storage__root=str(hostile_root)))).verify().ok


REFUSED_GOVERNED: list[tuple[str, str, list[str], int, str, str]] = [
    # (name, user, argv, exit code, audited action, outcome): refused before or at the
    # governance check -> "refused"; bad input the action's body finds -> "failed"
    # (citywatch.governance.auth.governed, docs/governance.md)
    (
        "bad plate query",
        "demo-investigator",
        ["search", "plate", "AB;DROP", *CASE],
        2,
        "search_plate",
        "refused",
    ),
    (
        "bad time",
        "demo-investigator",
        ["search", "plate", "AB1234", "--since", "soon", *CASE],
        2,
        "search_plate",
        "refused",
    ),
    ("role not allowed", "demo-analyst", ["search", "plate", "AB1234", *CASE], 3, "search_plate", "refused"),
    (
        "probe over http",
        "demo-investigator",
        ["search", "face", "http://127.0.0.1:9/p.jpg", *CASE],
        2,
        "search_face",
        "refused",
    ),
    (
        "plate pattern matching everything",
        "demo-investigator",
        ["watchlist", "add", "plate", "?*", "--label", "x", "--reason", "suspect", "--expires", "1d", *CASE],
        2,
        "watchlist_request",
        "failed",
    ),
]


@pytest.mark.parametrize(
    ("name", "user", "argv", "code", "action", "outcome"),
    REFUSED_GOVERNED,
    ids=[r[0] for r in REFUSED_GOVERNED],
)
def test_a_refused_governed_action_is_audited_exactly_once(
    hostile_root: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    user: str,
    argv: list[str],
    code: int,
    action: str,
    outcome: str,
) -> None:
    """Not zero times (issue 13, item 9: bad input was refused before the governance
    check and never audited) and not twice (once by the check, once by the refusal)."""
    from citywatch.governance.audit_log import AuditLog

    log = AuditLog(Storage(Settings(storage__root=str(hostile_root))))
    before = log.rows()
    assert main(["--root", str(hostile_root), "--user", user, *argv]) == code
    err = capsys.readouterr().err
    new = log.rows()[len(before) :]
    assert [(r.user, r.action, r.outcome) for r in new] == [(user, action, outcome)], err
    assert new[0].case_id == "HOSTILE-1" and new[0].detail and new[0].detail in err
    assert log.verify().ok
