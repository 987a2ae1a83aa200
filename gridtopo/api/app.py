"""The outage-impact HTTP API (FastAPI; OpenAPI at ``/docs``) that notifiers and channels query.

Every ``/v1`` route but the public outage feed ``/v1/outages.geojson`` (and its page ``/map``:
counts only, no personal data) needs an API key (``X-API-Key: gt_…`` or ``Authorization: Bearer
gt_…``, one key, once) with the route's scope: ``outage:read`` to ask, ``outage:write`` to
declare and close events and decide on predicted outages, ``calls:write`` to send trouble calls
and meter events; names, phones and addresses are masked unless the key also has
``personal:read``, and then count against the key's limit of personal data (1,000 customers a
minute by default) and are logged (``gridtopo apikey access-log``). Impact and declare bodies
take ``devices`` to open and ``close``, normally-open ties a switching plan closes to pick up
load (转供); answers show ``closed`` and what each tie picks up.

Errors are RFC 7807 problem documents (``application/problem+json``: type, title, status,
detail): 400 more than one key; 401 no, bad, expired or revoked key (checked before anything
else); 403 missing scope; 404 unknown id (named); 408 a body that does not arrive within 10 s;
409 an event that cannot change that way; 413 a body over 1 MiB; 422 a malformed request —
ids of 1–64 characters without control characters, event ids 1–2³¹−1, date-times in years
1900–9999 (UTC) — or a ``close`` naming a device that is not a normally-open, in-service
switching device; 429 over the personal-data limit (``Retry-After``); 503 while a worker
switches to a newer model. Nothing internal (SQL, paths, tracebacks) reaches a client; a
failing request never stops the service nor drops its connection.

Each worker follows the model: it checks the database for a newer ingest run every second
and swaps to that model's index at once (``/health`` names the run it serves, answers carry
``X-Gridtopo-Run``). The active outage events are re-read at most once a second, so an event
declared through another worker or the CLI shows within a second. Verified keys are
remembered for 10 s: a revocation takes effect within that time. A key's ``last_used_at`` and
the access log are written by a background thread, so that requests never wait for them.

>>> app = create_app(engine)
>>> sorted(app.openapi()["components"]["securitySchemes"])
['ApiKey', 'Bearer']
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from gridtopo import __version__
from gridtopo.api.call_routes import router as call_router
from gridtopo.api.deliverer import DELIVER_SECONDS, DeliveryLoop
from gridtopo.api.limits import (
    BODY_TIMEOUT_SECONDS,
    LIMIT_ENV,
    PERSONAL_PER_MINUTE,
    PersonalDataLimit,
)
from gridtopo.api.middleware import BodyLimit, StatusFastPath
from gridtopo.api.notice_routes import router as notice_router
from gridtopo.api.openapi import openapi_document
from gridtopo.api.predictor import PREDICT_SECONDS, PredictionLoop
from gridtopo.api.problems import CatchAll, on_gridtopo_error, on_http_error, on_invalid
from gridtopo.api.public_routes import router as public_router
from gridtopo.api.routes import router
from gridtopo.api.served import POLL_SECONDS, ServedModel
from gridtopo.api.service import Service
from gridtopo.db import open_engine
from gridtopo.errors import GridtopoError
from gridtopo.outages.grouping import PredictionRules
from gridtopo.outages.notices import RULES_ENV, NoticeRules
from gridtopo.topology.index import QueryIndex, read_index


def create_app(engine: Engine, index: QueryIndex | None = None, *, follow: bool = True,
               refresh_seconds: float = 1.0, key_cache_seconds: float = 10.0,
               touch_seconds: float = 60.0, poll_seconds: float = POLL_SECONDS,
               personal_per_minute: int = PERSONAL_PER_MINUTE,
               body_timeout_seconds: float = BODY_TIMEOUT_SECONDS,
               predict_seconds: float = PREDICT_SECONDS,
               prediction_rules: PredictionRules | None = None,
               notice_rules: NoticeRules | None = None,
               deliver_seconds: float = DELIVER_SECONDS) -> FastAPI:
    """The API over ``engine``'s model — ``index`` when given, else the database's own,
    loaded or built — following the database's newer models unless not ``follow``; while
    it runs, predictions are updated every ``predict_seconds`` and released notices pushed to
    the webhooks every ``deliver_seconds`` (0: not by this worker); event changes write
    customer notices by ``notice_rules`` (default
    :class:`~gridtopo.outages.notices.NoticeRules`)."""
    served = ServedModel(engine, index, follow=follow, poll_seconds=poll_seconds)
    service = Service(engine, served, refresh_seconds=refresh_seconds,
                      key_cache_seconds=key_cache_seconds, touch_seconds=touch_seconds,
                      personal_limit=PersonalDataLimit(personal_per_minute))

    predictor = PredictionLoop(engine, served, prediction_rules or PredictionRules(),
                               predict_seconds)
    deliverer = DeliveryLoop(engine, deliver_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        served.start()
        predictor.start()
        deliverer.start()
        yield
        deliverer.stop()
        predictor.stop()
        served.stop()
        service.finish_writes()

    app = FastAPI(title="gridtopo outage API", version=__version__,
                  description=(__doc__ or "").split(">>>")[0], lifespan=lifespan)
    app.state.service = service
    app.state.predictor = predictor
    app.state.notice_rules = notice_rules or NoticeRules()
    app.state.deliverer = deliverer
    app.add_middleware(BodyLimit, timeout=body_timeout_seconds)
    app.add_middleware(StatusFastPath, service=service)
    app.add_middleware(CatchAll)
    app.exception_handler(GridtopoError)(on_gridtopo_error)
    app.exception_handler(RequestValidationError)(on_invalid)
    app.exception_handler(HTTPException)(on_http_error)
    app.include_router(router)
    app.include_router(call_router)
    app.include_router(notice_router)
    app.include_router(public_router)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """App factory for uvicorn workers: the database from ``$GRIDTOPO_DB``; the index from
    ``$GRIDTOPO_INDEX`` when set (served as is, never switched), else the database's own,
    followed; the personal-data limit from ``$GRIDTOPO_PERSONAL_LIMIT``; the notice rules
    from the TOML file ``$GRIDTOPO_NOTICE_RULES``."""
    engine = open_engine(os.environ.get("GRIDTOPO_DB"))
    given = os.environ.get("GRIDTOPO_INDEX")
    limit = int(os.environ.get(LIMIT_ENV) or PERSONAL_PER_MINUTE)
    rules = os.environ.get(RULES_ENV)
    return create_app(engine, read_index(Path(given)) if given else None,
                      follow=not given, personal_per_minute=limit,
                      notice_rules=NoticeRules.from_toml(rules) if rules else None)
