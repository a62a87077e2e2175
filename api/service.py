"""The service's entry points, one per command: ``pavement serve``, ``pavement worker`` and
``pavement token create`` call these (``pipelines/cli.py``)."""

from __future__ import annotations

import logging
import signal
import threading

from api.db import open_store
from api.security import NewToken, create_token
from api.settings import Settings

logger = logging.getLogger(__name__)


def run_serve(settings: Settings) -> None:
    """Serve the API on ``settings.host:settings.port`` until stopped (Ctrl-C)."""
    import uvicorn

    from api.app import create_app

    app = create_app(settings)
    # One process: tus PATCH locks are per process (docs/service.md); scale with more workers instead.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", proxy_headers=True)


def run_worker(settings: Settings, once: bool = False) -> int:
    """Take and process jobs until SIGINT / SIGTERM (finishing the job at hand first); with
    ``once``, until the queue is empty. The number of jobs run."""
    from api.worker import work

    store = open_store(settings)
    stop = threading.Event()

    def _stop(signum, _frame) -> None:
        logger.warning("signal %d: stopping after the current job", signum)
        stop.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return work(store, settings, once=once, stop=stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        store.engine.dispose()


def run_token_create(settings: Settings, name: str, role: str) -> NewToken:
    """A new bearer token for ``name`` with ``role``; the secret is only in the returned value."""
    store = open_store(settings)
    try:
        with store.session() as session:
            return create_token(session, name, role)
    finally:
        store.engine.dispose()
