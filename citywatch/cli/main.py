"""``citywatch``: the one command-line entry point.

Exit codes: 0 ok, 1 failure, 2 bad input (the message says which input and why).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from citywatch.cli import commands, demo, output
from citywatch.errors import BadInputError, CitywatchError, ForbiddenError
from citywatch.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "root", None):
        overrides["storage_root"] = args.root
    if getattr(args, "user", None):
        overrides["user"] = args.user
    return Settings(**overrides)


class _HideExpectedErrors(logging.Filter):
    """Drop Prefect's traceback log for citywatch's own errors: the CLI states them."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, CitywatchError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citywatch", description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="storage root (overrides CITYWATCH_STORAGE_ROOT)")
    parser.add_argument("--user", help="acting user (overrides CITYWATCH_USER); must be in users.yaml")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    commands.register(sub)
    demo.register(sub, run_cli=main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        for noisy in ("distributed", "prefect.task_runner.dask"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).addFilter(_HideExpectedErrors())
    handler: Handler = args.handler
    try:
        return handler(args, _settings(args))
    except BadInputError as exc:
        output.error(str(exc))
        return 2
    except ForbiddenError as exc:
        output.error(str(exc))
        return 3
    except CitywatchError as exc:
        output.error(str(exc))
        return 1
    except ValueError as exc:  # pydantic settings validation
        output.error(f"invalid settings: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
