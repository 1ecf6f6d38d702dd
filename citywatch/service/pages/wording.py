"""Web wording for messages written for the command line.

The governance layer's errors name CLI flags (``--why``, ``--note``, ``--since``...): right in
a terminal, odd on a page whose form has a "note" field. The console shows the same sentence
with each known flag replaced by the field a page user fills in; the CLI, the JSON API and the
audit log keep the original text.
"""

from __future__ import annotations

import re

# a flag in brackets after the thing it names: "a justification (--why)" -> "a justification"
_BRACKETED = re.compile(r" \((?:--[a-z][a-z-]*(?: or [A-Z_]+)?)\)")
# the words a page user knows for a flag that stands alone in a sentence
_FIELDS = {
    "--why": "justification",
    "--justification": "justification",
    "--note": "note",
    "--since": "start",
    "--until": "end",
    "--expires": "expiry",
    "--threshold": "threshold",
    "--state": "state",
    "--limit": "limit",
    "--case": "case",
    "--reason": "reason",
    "--approval": "approval",
    "--camera": "camera",
    "--pad": "padding",
}
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*(?![\w-])")


def web_wording(message: str) -> str:
    """``message`` with the CLI flags it names said as a page says them."""
    text = _BRACKETED.sub("", message)
    text = _FLAG.sub(lambda m: _FIELDS.get(m.group(0), m.group(0)), text)
    if text != message and text[:1].islower() and message.startswith("--"):
        text = text[:1].upper() + text[1:]  # "--since ... " began the sentence: "Start ... "
    return text
