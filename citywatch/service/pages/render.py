"""Rendering the console's pages: Jinja2 (autoescaped), the user's time zone, security headers.

Pages are server-rendered; ``static/console.js`` sends the forms (with the session's
CSRF header) and puts the returned HTML fragment in place. Every asset comes from the
service itself: the Content-Security-Policy allows nothing else and no inline script.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from citywatch.governance.sessions import load_session
from citywatch.service.identity import Identity
from citywatch.service.pages.wording import web_wording
from citywatch.settings import Settings

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STATIC = Path(__file__).resolve().parents[1] / "static"
TZ_COOKIE = "citywatch_tz"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def page_headers(settings: Settings | None) -> dict[str, str]:
    """The security headers of a page; with a tile server configured, its images are allowed
    (that one origin, images only: settings.map.tiles_url)."""
    origin = settings.map.tiles_origin if settings is not None else ""
    if not origin:
        return HEADERS
    csp = CSP.replace("img-src 'self' data: blob:", f"img-src 'self' data: blob: {origin}")
    return {**HEADERS, "Content-Security-Policy": csp}


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone ``name``; UTC when it is empty or unknown."""
    try:
        return ZoneInfo(name) if name and len(name) <= 64 else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def user_zone(request: Request) -> ZoneInfo:
    """The browser's time zone (console.js keeps it in a cookie), else UTC."""
    return zone_named(unquote(request.cookies.get(TZ_COOKIE, "")))


def offset_text(moment: dt.datetime, zone: ZoneInfo) -> str:
    offset = moment.astimezone(zone).utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_time(moment: dt.datetime | None, zone: ZoneInfo, seconds: bool = True) -> str:
    """``2026-11-20 14:03:05 UTC+01:00``: a UTC moment in the user's zone, with its offset."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    shown = moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{shown} {offset_text(moment, zone)}"


def from_local(value: str, zone: ZoneInfo, what: str) -> dt.datetime | None:
    """A ``datetime-local`` form value in ``zone`` as a UTC moment (None when empty)."""
    from citywatch.errors import BadInputError

    value = value.strip()
    if not value:
        return None
    try:
        naive = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadInputError(f"{what} {value[:40]!r} is not a date and time like 2026-11-20T14:00") from exc
    if naive.tzinfo is not None:
        return naive.astimezone(dt.UTC)
    return naive.replace(tzinfo=zone).astimezone(dt.UTC)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["local_time"] = local_time
    return env


ENV = _environment()


def session_ends(request: Request, identity: Identity) -> dt.datetime | None:
    """When the caller's session ends if they stay idle (the sooner of idle and absolute expiry)."""
    if not identity.session_id:
        return None
    service = request.app.state.service
    session = load_session(service.storage, service.settings, identity.session_id)
    if session is None:
        return None
    settings = service.settings
    idle_end = session.seen() + dt.timedelta(seconds=settings.auth.session_idle_s)
    hard_end = session.created() + dt.timedelta(seconds=settings.auth.session_max_s)
    return min(idle_end, hard_end)


def is_fragment(request: Request) -> bool:
    """console.js asks for the part of the page a form replaces, not a whole page."""
    return request.headers.get("x-console", "") == "1"


def oidc_button(settings: Settings | None) -> str:
    """The provider's name for the "Sign in with ..." button; empty when OIDC is not configured."""
    if settings is None or not settings.oidc.issuer:
        return ""
    if settings.oidc.display_name:
        return settings.oidc.display_name
    return urlsplit(settings.oidc.issuer).hostname or settings.oidc.issuer


def render(request: Request, template: str, status: int = 200, **context: object) -> HTMLResponse:
    identity = getattr(request.state, "identity", None)
    zone = user_zone(request)
    who = identity if isinstance(identity, Identity) else None
    values: dict[str, object] = {
        "identity": who,
        "roles": {r.value for r in who.roles} if who else set(),
        "csrf": who.csrf if who else "",
        "zone": zone,
        "session_ends": session_ends(request, who) if who else None,
        "oidc_name": oidc_button(request.app.state.service.settings),
    }
    values.update(context)  # a page may show another zone (the one a search form gave)
    html = ENV.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status, headers=page_headers(request.app.state.service.settings))


def redirect(location: str) -> HTMLResponse:
    """Tell console.js to load ``location`` (a form's fetch cannot follow a 303 into a page)."""
    return HTMLResponse("", status_code=200, headers={**HEADERS, "X-Redirect": location})


def refusal_page(
    status: int, message: str, path: str, fragment: bool, settings: Settings | None = None
) -> bytes:
    """The HTML the gate and the error handlers send instead of JSON on a page."""
    if fragment:
        template = "error_fragment.html"
    elif status == 401:
        template = "signin.html"
    else:
        template = "error.html"
    return (
        ENV.get_template(template)
        .render(
            identity=None,
            roles=set(),
            csrf="",
            zone=ZoneInfo("UTC"),
            session_ends=None,
            status=status,
            message=web_wording(message),
            next=path if path.startswith("/") and not path.startswith("//") else "/cases",
            need_totp=False,
            name="",
            oidc_name=oidc_button(settings),
        )
        .encode()
    )
