"""``citywatch``: the one command-line entry point.

Exit codes: 0 ok, 1 failure, 2 bad input (the message says which input and why),
3 refused (the acting user's role does not allow the action).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from citywatch.cli import commands, demo, output, remote
from citywatch.cli.args import Parser, UsageError, add_subcommands
from citywatch.errors import BadInputError, CitywatchError, ForbiddenError
from citywatch.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]

DESCRIPTION = """\
Index city-scale CCTV footage (Prefect flows fanning segments out over Dask), search it
for a face or a plate, keep an approved and expiring watchlist that raises alerts for a
person to review, and export redacted, signed evidence clips.

Every command acts as a user of <root>/users.yaml (--user or CITYWATCH_USER) with a
role; searches, exports and watchlist changes also need --case and --why, and all of it
is written to a tamper-evident audit log. Settings come from CITYWATCH_* environment
variables (see the README).

exit codes: 0 ok, 1 failure, 2 bad input, 3 refused (the user's role does not allow it)"""

EPILOG = """\
examples:
  citywatch demo
      sample footage -> index -> search -> watchlist -> alerts, end to end
  citywatch --user demo-investigator search face probe.jpg --case C-1 --why "missing person report"
  citywatch search plate --help"""


def package_version() -> str:
    try:
        return importlib.metadata.version("citywatch")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings, with --root and --user over them."""
    overrides: dict[str, str] = {}
    if getattr(args, "root", None):
        overrides["storage__root"] = args.root
    if getattr(args, "user", None):
        overrides["user"] = args.user
    return Settings(**overrides)  # type: ignore[arg-type]  # section__field keywords (see Settings)


def _env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable of a setting's error location (storage.root -> CITYWATCH_STORAGE__ROOT)."""
    prefix = Settings.model_config.get("env_prefix") or ""
    delimiter = Settings.model_config.get("env_nested_delimiter") or "__"
    return (prefix + delimiter.join(str(part) for part in loc)).upper()


def settings_problem(exc: ValidationError) -> str:
    """Each invalid setting by name and variable, without its value (it may be a secret)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = tuple(error["loc"])
        where = f"{'.'.join(map(str, loc))} ({_env_name(loc)}): " if loc else ""
        problems.append(where + error["msg"])
    return "; ".join(problems)


class _HideExpectedErrors(logging.Filter):
    """Drop Prefect's traceback log for citywatch's own errors: the CLI states them."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, CitywatchError)


def build_parser() -> Parser:
    parser = Parser(
        prog="citywatch",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument(
        "--root", help="storage root, a path or s3://bucket/prefix (overrides CITYWATCH_STORAGE__ROOT)"
    )
    parser.add_argument("--user", help="acting user (overrides CITYWATCH_USER); must be in users.yaml")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO) to stderr")
    sub = add_subcommands(parser, "command", "what to do (`citywatch COMMAND --help` for each)")
    commands.register(sub)
    demo.register(sub, run_cli=main)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not verbose:
        for noisy in ("distributed", "prefect.task_runner.dask"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).addFilter(_HideExpectedErrors())


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        output.error(str(exc))
        return 2
    _configure_logging(args.verbose)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        output.error(f"invalid settings: {settings_problem(exc)}")
        return 2
    try:
        handler: Handler = remote.handler_for(args.handler, settings)  # client or direct mode
        return handler(args, settings)
    except BadInputError as exc:
        output.error(str(exc))
        return 2
    except ForbiddenError as exc:
        output.error(str(exc))
        return 3
    except CitywatchError as exc:
        output.error(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
