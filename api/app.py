"""The FastAPI application: ``create_app(settings)``; everything under ``/api/v1`` (OpenAPI at
``/api/v1/openapi.json``, docs at ``/api/v1/docs``).

The project's errors (``PavementError``) become one JSON answer, ``{"detail", "error"}``, with a
4xx status: bad input 422, bad configuration 400, a model that cannot be loaded 503 is not 4xx and
is therefore reported as 409 (the service cannot do it now).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from api import exports, runs, segments, tokens, tus
from api.db import Store, open_store
from api.security import ensure_dev_user
from api.settings import Settings, get_settings
from pavement.errors import ConfigError, InputError, PavementError

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


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
    app.state.dev_user_id = ensure_dev_user(store) if settings.dev else None
    if settings.dev:
        logger.warning("development mode: the token 'dev' is an admin; never use --dev on a shared machine")

    @app.exception_handler(PavementError)
    async def pavement_error(request: Request, exc: PavementError) -> JSONResponse:
        return JSONResponse(
            status_code=_status_of(exc), content={"detail": str(exc), "error": type(exc).__name__}
        )

    api = APIRouter(prefix=API_PREFIX)
    for module in (tus, runs, segments, exports, tokens):
        api.include_router(module.router)
    app.include_router(api)
    return app
