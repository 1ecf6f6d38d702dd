"""The CLI explains itself: every option has help, every command has examples, flags
documented as required are required by the parser, and --version names the package."""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
from collections.abc import Iterator

import pytest

from citywatch.cli.main import build_parser, main


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subcommand's parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


PARSERS = list(_parsers(build_parser()))
SUBCOMMANDS = PARSERS[1:]


def test_the_tree_is_walked() -> None:
    progs = {p.prog for p in PARSERS}
    for prog in ("citywatch search face", "citywatch watchlist add plate", "citywatch export verify"):
        assert prog in progs
    assert len(SUBCOMMANDS) >= 30


@pytest.mark.parametrize("parser", PARSERS, ids=[p.prog for p in PARSERS])
def test_every_argument_has_help(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"{parser.prog} {name} has no help text"
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help and choice.help.strip(), f"{parser.prog} {choice.dest} has no help"


@pytest.mark.parametrize("parser", PARSERS, ids=[p.prog for p in PARSERS])
def test_documented_required_flags_are_required(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if action.option_strings and "(required)" in (action.help or ""):
            assert action.required, f"{parser.prog} {action.option_strings} says (required) but is optional"


@pytest.mark.parametrize("parser", SUBCOMMANDS, ids=[p.prog for p in SUBCOMMANDS])
def test_every_subcommand_has_examples(parser: argparse.ArgumentParser) -> None:
    assert parser.description and parser.description.strip(), f"{parser.prog} has no description"
    epilog = parser.epilog or ""
    assert epilog.startswith("examples:"), f"{parser.prog} has no examples"
    assert "  citywatch " in epilog, f"{parser.prog}'s epilog shows no command"
    help_text = parser.format_help()
    assert "examples:\n  citywatch " in help_text  # the raw formatter keeps the lines


def test_top_level_help_describes_citywatch(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "CCTV footage" in out and "exit codes" in out and "examples:" in out


def test_version_prints_the_package_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "citywatch.cli.main", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"citywatch {importlib.metadata.version('citywatch')}"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["search", "face", "probe.jpg", "--why", "a good reason"], "required: --case"),
        (["search", "plate", "AB1234", "--case", "C-1"], "required: --why"),
        (["watchlist", "alerts"], "invalid choice"),
        (["search", "face", "probe.jpg", "--top-k", "many", "--case", "C", "--why", "w"], "--top-k"),
    ],
    ids=["no-case", "no-why", "unknown-command", "not-a-number"],
)
def test_usage_errors_are_bad_input(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: citywatch ") and words in err, err
    assert "--help" in err


def test_invalid_settings_name_the_variable_not_the_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYWATCH_DASK__WORKERS", "lots-of-secret-workers")
    assert main(["down"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid settings: dask.workers (CITYWATCH_DASK__WORKERS)"), err
    assert "lots-of-secret-workers" not in err
