"""The outage-impact HTTP API (FastAPI; OpenAPI at ``/docs``) that notifiers and channels query.

Every ``/v1`` route needs an API key (``X-API-Key: gt_…`` or ``Authorization: Bearer gt_…``)
with the route's scope: ``outage:read`` to ask, ``outage:write`` to declare and close events;
names, phones and addresses are masked unless the key also has ``personal:read``. Impact and
declare bodies take ``devices`` to open and ``close``, normally-open ties a switching plan
closes to pick up load (转供); answers show ``closed`` and what each tie picks up.

Errors are JSON ``{"detail": "..."}``: 401 bad, expired or revoked key; 403 missing scope; 404
unknown id (named); 409 an event that cannot change that way; 413 a body over 1 MiB; 422 a
malformed request, or a ``close`` naming a device that is not a normally-open, in-service
switching device. Nothing internal (SQL, paths, tracebacks) reaches a client; a failing
request never stops the service.

Answers come from the memory-mapped :class:`~gridtopo.topology.index.QueryIndex`; the active
outage events are re-read at most once per ``refresh_seconds`` (1 s), so an event declared
through another worker or the CLI shows within a second. Verified keys are remembered for
``key_cache_seconds`` (10 s): a revocation takes effect within that time. A key's
``last_used_at`` is written at most once per ``touch_seconds`` (60 s) per key and worker, by a
background thread, so that requests never wait for that write.

>>> from fastapi.testclient import TestClient
>>> TestClient(create_app(engine)).get("/health").json()["status"]
'ok'
>>> # gridtopo serve   (uvicorn, see gridtopo.cli.service)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine

from gridtopo import __version__
from gridtopo.api.middleware import BodyLimit, StatusFastPath
from gridtopo.api.routes import router
from gridtopo.api.service import Service
from gridtopo.db import open_engine
from gridtopo.errors import GridtopoError
from gridtopo.topology.index import QueryIndex, load_index, read_index

MAX_PROBLEMS = 20
"""Validation problems one 422 answer lists at most."""


async def _gridtopo_error(_: Request, err: GridtopoError) -> Response:
    """Any :class:`GridtopoError` as ``{"detail": message}`` with the class's own status."""
    return JSONResponse({"detail": str(err)}, err.http_status,
                        headers=dict(err.http_headers) or None)


async def _invalid(_: Request, err: RequestValidationError) -> Response:
    """A request the schemas refuse: 422 with where and what, nothing more."""
    problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in err.errors()]
    return JSONResponse({"detail": problems[:MAX_PROBLEMS]}, 422)


async def _internal(_: Request, err: Exception) -> Response:
    """A bug: 500 naming only the exception's class (no SQL, paths or traceback)."""
    return JSONResponse({"detail": f"internal error ({type(err).__name__})"}, 500)


def create_app(engine: Engine, index: QueryIndex | None = None, *, refresh_seconds: float = 1.0,
               key_cache_seconds: float = 10.0, touch_seconds: float = 60.0) -> FastAPI:
    """The API over ``engine``'s model (and its index, loaded or built when not given)."""
    service = Service(engine, index if index is not None else load_index(engine),
                      refresh_seconds=refresh_seconds, key_cache_seconds=key_cache_seconds,
                      touch_seconds=touch_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.finish_writes()

    app = FastAPI(title="gridtopo outage API", version=__version__,
                  description=(__doc__ or "").split(">>>")[0], lifespan=lifespan)
    app.state.service = service
    app.add_middleware(BodyLimit)
    app.add_middleware(StatusFastPath, service=service)
    app.exception_handler(GridtopoError)(_gridtopo_error)
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(Exception)(_internal)
    app.include_router(router)
    return app


def app_from_env() -> FastAPI:
    """App factory for uvicorn workers: the database from ``$GRIDTOPO_DB``, the index from
    ``$GRIDTOPO_INDEX`` when set (served as is, without a staleness check), else next to it."""
    engine = open_engine(os.environ.get("GRIDTOPO_DB"))
    given = os.environ.get("GRIDTOPO_INDEX")
    return create_app(engine, read_index(Path(given)) if given else None)
