"""Markdown for Prefect artifacts: table cells that stay text (no pipes, markup or breaks)."""

from __future__ import annotations

from collections.abc import Sequence


def md_cell(text: object) -> str:
    """Text safe in a markdown table cell: no pipes, no markup, no line breaks."""
    value = "" if text is None else str(text)
    for raw, safe in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "'")):
        value = value.replace(raw, safe)
    return " ".join(value.split())


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
