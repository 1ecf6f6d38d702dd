"""Argument helpers shared by the command groups."""

from __future__ import annotations

import argparse


def add_case_arguments(parser: argparse.ArgumentParser) -> None:
    """--case and --why: every search, export and watchlist change is tied to both."""
    parser.add_argument("--case", dest="case_id", help="case id this action is for (required)")
    parser.add_argument(
        "--why", dest="justification", help="justification, recorded in the audit log (required)"
    )
