"""Clips rendered for the console's player, kept in the service's memory (never in storage).

Each play gets a random token; the ``<video>`` asks for ``/media/clip?clip=TOKEN`` and
the token is honoured only for the user and case it was made for. The rendered bytes
are shared by the tokens of one sighting (rendering again costs seconds), the least
recently played dropped first once ``settings.play.cache_bytes`` is used (the clip
just played is always kept), and a token
lasts ``TOKEN_TTL_S``.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from citywatch.tasks.export.preview import PreviewClip

TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
TOKEN_TTL_S = 3600.0
MAX_TOKENS = 10_000


@dataclass(frozen=True, slots=True)
class Ticket:
    """Who may fetch a rendered clip, for which case."""

    user: str
    case_id: str
    key: tuple[str, str]  # (kind, sighting id)
    made: float


class ClipCache:
    """Rendered clips by (kind, sighting id), and the tokens that may fetch them."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._clips: OrderedDict[tuple[str, str], PreviewClip] = OrderedDict()
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()
        self._lock = threading.Lock()

    def clip(self, kind: str, sighting_id: str) -> PreviewClip | None:
        with self._lock:
            found = self._clips.get((kind, sighting_id))
            if found is not None:
                self._clips.move_to_end((kind, sighting_id))
            return found

    def keep(self, kind: str, sighting_id: str, clip: PreviewClip, user: str, case_id: str) -> str:
        """Keep ``clip`` (if it fits) and return a new token for ``user`` in ``case_id``."""
        token = secrets.token_urlsafe(16)
        with self._lock:
            key = (kind, sighting_id)
            self._clips[key] = clip
            self._clips.move_to_end(key)
            while len(self._clips) > 1 and sum(len(c.data) for c in self._clips.values()) > self.max_bytes:
                self._clips.popitem(last=False)
            self._tickets[token] = Ticket(user, case_id, key, time.monotonic())
            while len(self._tickets) > MAX_TOKENS:
                self._tickets.popitem(last=False)
        return token

    def fetch(self, token: str, user: str, case_id: str) -> PreviewClip | None:
        """The clip behind ``token`` if it was made for ``user`` in ``case_id`` and is still kept."""
        if not TOKEN.fullmatch(token):
            return None
        with self._lock:
            ticket = self._tickets.get(token)
            if ticket is None or time.monotonic() - ticket.made > TOKEN_TTL_S:
                return None
            if ticket.user != user or ticket.case_id != case_id:
                return None
            return self._clips.get(ticket.key)
