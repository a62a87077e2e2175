"""The FastAPI application: ``create_app(settings)``; the API under ``/api/v1`` (OpenAPI at
``/api/v1/openapi.json``, docs at ``/api/v1/docs``) and the engineers' web map at ``/``.

The project's errors (``PavementError``) become one JSON answer, ``{"detail", "error"}``, with a
4xx status: bad input (``InputError``) 422, a bad parameter (``ConfigError``) 400, anything else the
service cannot do now (a model, an export) 409. A value the database refuses (``DataError``: text with
a NUL character, which PostgreSQL cannot hold, or a number out of a column's range) is a 422 too.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api import exports, runs, segments, tokens, tus
from api.answers import AnswerCache
from api.db import Store, open_store
from api.security import ensure_dev_user
from api.settings import Settings, get_settings
from pavement.errors import ConfigError, InputError, PavementError

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
WEB_DIR = Path(__file__).with_name("web")


def _status_of(exc: PavementError) -> int:
    if isinstance(exc, InputError):
        return 422
    if isinstance(exc, ConfigError):
        return 400
    return 409


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """The service over ``settings.data_dir`` and its database (migrated on start)."""
    settings = settings or get_settings()
    store = store or open_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        store.engine.dispose()

    app = FastAPI(
        title="pavement",
        summary="Road pavement inspection: uploads, processing jobs, segments, 様式A, KPI",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.segment_answers = AnswerCache(segments.ANSWER_CACHE_BYTES)
    app.state.dev_user_id = ensure_dev_user(store) if settings.dev else None
    if settings.dev:
        logger.warning("development mode: the token 'dev' is an admin; never use --dev on a shared machine")

    @app.exception_handler(PavementError)
    async def pavement_error(request: Request, exc: PavementError) -> JSONResponse:
        return JSONResponse(
            status_code=_status_of(exc), content={"detail": str(exc), "error": type(exc).__name__}
        )

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> JSONResponse:
        logger.info("%s %s: the database refused a value: %s", request.method, request.url.path, exc.orig)
        return JSONResponse(
            status_code=422,
            content={
                "detail": f"a value of this request cannot be stored or compared ({exc.orig}); "
                "send text without NUL characters and numbers within the documented ranges",
                "error": "DataError",
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 405:  # Starlette names only the first route's methods of the path
            allowed = _allowed_methods(request.app, request.scope)
            exc = StarletteHTTPException(405, exc.detail, headers={**(exc.headers or {}), "Allow": allowed})
        return await http_exception_handler(request, exc)

    api = APIRouter(prefix=API_PREFIX)
    for module in (tus, runs, segments, exports, tokens):
        api.include_router(module.router)
    app.include_router(api)
    _add_web_map(app, settings)
    return app


def _allowed_methods(app: FastAPI, scope: dict) -> str:
    """The ``Allow`` header of a path: the methods of every route that matches it."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def _add_web_map(app: FastAPI, settings: Settings) -> None:
    """The engineers' map at ``/``: Leaflet from the xstatic-leaflet package (no CDN), the page's
    own files from ``api/web``; the page asks for a token and calls the API with it."""
    import xstatic.pkg.leaflet as leaflet

    config = json.dumps({"tile_url": settings.tile_url, "tile_attribution": settings.tile_attribution})
    page = (
        (WEB_DIR / "index.html")
        .read_text(encoding="utf-8")
        .replace("__CONFIG__", config.replace("</", "<\\/"))
    )
    app.mount("/static/leaflet", StaticFiles(directory=leaflet.BASE_DIR), name="leaflet")
    app.mount("/static/app", StaticFiles(directory=WEB_DIR), name="web")

    @app.get("/", include_in_schema=False)
    def web_map() -> HTMLResponse:
        return HTMLResponse(page)
