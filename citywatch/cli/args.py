"""Argument helpers shared by the command groups: the parser class, commands with
examples, and the arguments many commands take (--case/--why, --json)."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from typing import NoReturn

from citywatch.errors import BadInputError

Subcommands = argparse._SubParsersAction  # argparse's type for add_subparsers() (no public name)
WIDTH = 88


class UsageError(BadInputError):
    """The command line does not parse (unknown flag, missing required flag, bad value)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of exiting, so that the
    CLI reports it like any other bad input (``error: ...``, exit code 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _fill(text: str) -> str:
    """Wrap each paragraph (the raw formatter keeps line breaks as written)."""
    return "\n\n".join(textwrap.fill(" ".join(p.split()), WIDTH) for p in text.split("\n\n"))


def add_command(
    sub: Subcommands[Parser],
    name: str,
    *,
    help: str,
    examples: Sequence[str],
    description: str | None = None,
) -> Parser:
    """A subcommand with a one-line ``help``, a ``description`` and an epilog of examples.

    Each example is ``command  # what it does`` (the comment is optional).
    """
    lines = []
    for example in examples:
        command, _, comment = example.partition("  # ")
        lines.append(f"  {command}" + (f"\n      {comment}" if comment else ""))
    return sub.add_parser(
        name,
        help=help,
        description=_fill(description or help[:1].upper() + help[1:] + "."),
        epilog="examples:\n" + "\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_subcommands(parser: Parser, dest: str, help: str) -> Subcommands[Parser]:
    """A required choice of subcommands, listed under ``commands``."""
    return parser.add_subparsers(dest=dest, required=True, title="commands", metavar="COMMAND", help=help)


def add_case_arguments(parser: argparse.ArgumentParser) -> None:
    """--case and --why: every search, export and watchlist change is tied to both."""
    parser.add_argument("--case", dest="case_id", required=True, help="case id this action is for (required)")
    parser.add_argument(
        "--why",
        dest="justification",
        metavar="WHY",
        required=True,
        help="justification, recorded in the audit log (required)",
    )


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
