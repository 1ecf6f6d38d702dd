"""The FastAPI application: routers, the gate, and errors as JSON ``{"error": ...}``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from citywatch.errors import BadInputError, CitywatchError, ForbiddenError, NotFoundError, TransientError
from citywatch.service.gate import Gate
from citywatch.service.identity import Service
from citywatch.service.rules import RULES
from citywatch.settings import Settings


def endpoints(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves."""
    out = []
    for route in app.routes:
        methods = getattr(route, "methods", None) or set()
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            out.append((method, str(getattr(route, "path", ""))))
    return out


def check_rules(app: FastAPI) -> None:
    """Refuse to start with an endpoint that has no access rule (or a rule for no endpoint)."""
    served = set(endpoints(app))
    missing = sorted(served - set(RULES))
    if missing:
        raise RuntimeError(f"endpoints without an access rule in citywatch/service/rules.py: {missing}")
    stale = sorted(set(RULES) - served)
    if stale:
        raise RuntimeError(f"access rules for endpoints that do not exist: {stale}")


def _status(exc: CitywatchError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, BadInputError):
        return 400
    if isinstance(exc, ForbiddenError):
        return 403
    if isinstance(exc, TransientError):
        return 503
    return 500


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)[:2000]


def _error(request: Request, message: str, status: int, headers: Mapping[str, str] | None = None) -> Response:
    """``{"error": ...}`` on the API; on a console page the same sentence as HTML."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    from citywatch.service.pages.render import HEADERS, is_fragment, refusal_page

    service = getattr(request.app.state, "service", None)
    settings = service.settings if service is not None else None
    body = refusal_page(status, message, request.url.path, is_fragment(request), settings)
    return HTMLResponse(body, status_code=status, headers={**HEADERS, **(headers or {})})


def create_app(settings: Settings, *, check: bool = True) -> FastAPI:
    """The service app for ``settings`` (storage root, sessions, limits)."""
    from citywatch.service import (
        routes_admin,
        routes_auth,
        routes_coappear,
        routes_governed,
        routes_oidc,
        routes_search,
        routes_status,
        routes_watchlist,
    )
    from citywatch.service.clips import ClipCache
    from citywatch.service.pages import (
        routes_alerts,
        routes_audit,
        routes_cases,
        routes_entries,
        routes_export,
        routes_face,
        routes_plate,
        routes_play,
        routes_signin,
    )
    from citywatch.service.pages import (
        routes_coappear as pages_coappear,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from citywatch.tasks.search.faces_memory import start_face_tier, stop_face_tier
        from citywatch.tasks.search.plates_memory import start_plate_tier, stop_plate_tier

        service: Service = app.state.service
        # searches of closed days in memory: this process answers many of them
        start_face_tier(service.storage, settings.search.memory_tier_mb)
        start_plate_tier(service.storage, settings.search.plate_memory_tier_mb)
        try:
            yield
        finally:
            stop_face_tier(service.storage)
            stop_plate_tier(service.storage)

    app = FastAPI(
        title="citywatch",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.service = Service(settings)
    app.state.play_clips = ClipCache(settings.play.cache_bytes)  # the player's clips (memory only)
    modules = (
        routes_auth,
        routes_oidc,
        routes_search,
        routes_coappear,
        routes_watchlist,
        routes_governed,
        routes_admin,
        routes_status,
    )
    pages = (
        routes_signin,
        routes_cases,
        routes_face,
        routes_plate,
        routes_alerts,
        routes_export,
        routes_audit,
        routes_entries,
        pages_coappear,
        routes_play,
    )
    for module in (*modules, *pages):
        app.router.routes.extend(module.router.routes)  # flat: the gate matches routes itself

    @app.exception_handler(CitywatchError)
    async def _citywatch_error(request: Request, exc: CitywatchError) -> Response:
        return _error(request, str(exc), _status(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, str(exc.detail), exc.status_code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _error(request, _validation_message(exc), 422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:  # logged by the server too
        return _error(request, "the service failed to answer this request; the error is logged", 500)

    if check:
        check_rules(app)
    app.add_middleware(Gate, service=app.state.service, routes=app.router.routes)
    return app


__all__ = ["APIRoute", "check_rules", "create_app", "endpoints"]
