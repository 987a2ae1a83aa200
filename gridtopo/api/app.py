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

>>> app = create_app(engine)  # doctest: +SKIP
>>> # gridtopo serve --workers 2   (uvicorn, see gridtopo.cli.network)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridtopo import __version__
from gridtopo.api.keys import AuthenticationError, KeyInfo, authenticate, hash_key, touch_key
from gridtopo.db import open_engine
from gridtopo.errors import GridtopoError
from gridtopo.outages import events as outages
from gridtopo.outages.contacts import contacts
from gridtopo.outages.events import MAX_DEVICES, EventStateError
from gridtopo.outages.predict import predict_outage
from gridtopo.outages.state import OutageState, combined_impact, customer_status
from gridtopo.topology import queries
from gridtopo.topology.index import QueryIndex, UnknownIdError, load_index, read_index

MAX_BODY_BYTES = 1 << 20
MAX_PAGE = 1000
MAX_CALLS = 20_000


class ScopeError(GridtopoError):
    """The key lacks the scope a route needs (HTTP 403)."""


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, ensure_ascii=False, default=str).encode(), status,
                    media_type="application/json")


@dataclass
class Service:
    """The state one API worker shares across requests."""

    engine: Engine
    index: QueryIndex
    refresh_seconds: float = 1.0
    key_cache_seconds: float = 10.0
    touch_seconds: float = 60.0
    _state: OutageState | None = None
    _state_time: float = 0.0
    _keys: dict[str, tuple[KeyInfo, float]] = field(default_factory=dict)
    _touched: dict[str, float] = field(default_factory=dict)
    _writer: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        1, thread_name_prefix="gridtopo-key-use"))

    def state(self, *, fresh: bool = False) -> OutageState:
        """The active outages, re-read when older than ``refresh_seconds`` or ``fresh``."""
        clock = time.monotonic()
        if fresh or self._state is None or clock - self._state_time > self.refresh_seconds:
            self._state = OutageState.load(self.engine, self.index)
            self._state_time = clock
        return self._state

    def authorize(self, request: Request, scope: str) -> KeyInfo:
        """The request's key if it holds ``scope``; 401/403 errors otherwise."""
        return self.authorize_key(request_key(request.headers.get), scope)

    def authorize_key(self, key: str | None, scope: str) -> KeyInfo:
        """``key``'s description if it holds ``scope``; 401/403 errors otherwise."""
        digest = hash_key(key) if key else ""
        cached = self._keys.get(digest)
        clock = time.monotonic()
        if cached is None or clock - cached[1] > self.key_cache_seconds:
            info = authenticate(self.engine, key)
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[digest] = (info, clock)
        else:
            info = cached[0]
        if info.expires_at is not None and info.expires_at <= dt.datetime.now(dt.UTC):
            self._keys.pop(digest, None)
            raise AuthenticationError("API key expired")
        if not info.allows(scope):
            raise ScopeError(f"this API key lacks the {scope} scope")
        self._note_use(digest, clock)
        return info

    def _note_use(self, digest: str, clock: float) -> None:
        """Have the background writer set the key's ``last_used_at``, at most once per
        ``touch_seconds`` per key: the hot path neither writes nor waits."""
        last = self._touched.get(digest)
        if last is not None and clock - last < self.touch_seconds:
            return
        if len(self._touched) > 10_000:
            self._touched.clear()
        self._touched[digest] = clock
        self._writer.submit(touch_key, self.engine, digest, dt.datetime.now(dt.UTC))

    def finish_writes(self) -> None:
        """Wait for the pending ``last_used_at`` writes (at shutdown, and in tests)."""
        self._writer.submit(lambda: None).result()


def request_key(header: Callable[[str], str | None]) -> str | None:
    """The API key of a request: ``X-API-Key``, else ``Authorization: Bearer``."""
    key = header("x-api-key")
    bearer = header("authorization") or ""
    if not key and bearer.lower().startswith("bearer "):
        key = bearer[7:].strip()
    return key


def status_response(service: Service, key: str | None, customer_id: str) -> tuple[int, bytes]:
    """Status code and JSON body of a customer-status request: the one hot route."""
    try:
        service.authorize_key(key, "outage:read")
        data = customer_status(service.index, service.state(), customer_id)
        code = 200
    except GridtopoError as err:
        data, code = {"detail": str(err)}, _status_code(err)
    return code, json.dumps(data, ensure_ascii=False, default=str).encode()


class StatusFastPath:
    """ASGI middleware answering ``GET /v1/customers/{id}/status`` without the framework.

    The route is what channels hammer (95598 IVR, app, WeChat); answering it before routing,
    validation and response objects triples the requests a worker serves. The FastAPI route
    of the same path documents it in OpenAPI and gives the same answers (``status_response``).
    """

    PREFIX, SUFFIX = "/v1/customers/", "/status"

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (scope["type"] != "http" or scope["method"] != "GET"
                or not path.startswith(self.PREFIX) or not path.endswith(self.SUFFIX)):
            await self.app(scope, receive, send)
            return
        customer = path[len(self.PREFIX):-len(self.SUFFIX)]
        if not customer or "/" in customer:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        code, body = status_response(self.service, request_key(headers.get), customer)
        extra = [(b"www-authenticate", b"ApiKey")] if code == 401 else []
        await send({"type": "http.response.start", "status": code, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware refusing request bodies over ``limit`` bytes with 413.

    A declared ``Content-Length`` is checked at once; a body without one (chunked) is read
    up to the limit here and handed on only when it fits.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                await _too_large(send, self.limit)
                return
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > self.limit:
                await _too_large(send, self.limit)
                return
            if not message.get("more_body", False):
                break
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body over {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


DeviceList = list[Annotated[str, Field(max_length=64)]]


class SwitchingRequest(BaseModel):
    """Devices to open and normally-open ties to close (转供); at least one device in all."""

    devices: DeviceList = Field(default_factory=list, max_length=MAX_DEVICES)
    close: DeviceList = Field(default_factory=list, max_length=MAX_DEVICES)

    @model_validator(mode="after")
    def some_device(self) -> SwitchingRequest:
        """Refuse a request that switches nothing (422)."""
        if not self.devices and not self.close:
            raise ValueError("name at least one device to open (devices) or close (close)")
        return self


class ImpactRequest(SwitchingRequest):
    """Devices to open, ties to close, and whether to list the affected customers (a page)."""

    list_customers: bool = False
    limit: int = Field(100, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0)


class DeclareRequest(SwitchingRequest):
    """A new outage event."""

    kind: Literal["planned", "unplanned"] = "unplanned"
    started_at: dt.datetime | None = None
    expected_end: dt.datetime | None = None
    reason: str | None = Field(None, max_length=1000)


class CloseRequest(BaseModel):
    """When an event ended (default: now)."""

    ended_at: dt.datetime | None = None


class PredictRequest(BaseModel):
    """Customers who called in about no supply."""

    customers: list[Annotated[str, Field(max_length=64)]] = Field(
        min_length=1, max_length=MAX_CALLS)


def _status_code(err: GridtopoError) -> int:
    if isinstance(err, AuthenticationError):
        return 401
    if isinstance(err, ScopeError):
        return 403
    if isinstance(err, UnknownIdError):
        return 404
    if isinstance(err, EventStateError | queries.UnlinkedCustomerError):
        return 409
    if isinstance(err, queries.SwitchingError):
        return 422
    return 400


def _customer_page(service: Service, key: KeyInfo, numbers: Any, limit: int, offset: int
                   ) -> dict[str, Any]:
    page = queries.page(numbers, limit, offset)
    ids = service.index.names(service.index.customer_ids, page)
    people = contacts(service.engine, ids, reveal=key.allows("personal:read"))
    return {"total": len(numbers), "limit": limit, "offset": offset,
            "personal_data": "full" if key.allows("personal:read") else "masked",
            "items": [{"customer_id": c, **people.get(c, {})} for c in ids]}


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

    @app.exception_handler(GridtopoError)
    async def gridtopo_error(_: Request, err: GridtopoError) -> Response:
        headers = {"WWW-Authenticate": "ApiKey"} if isinstance(err, AuthenticationError) else None
        return JSONResponse({"detail": str(err)}, _status_code(err), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> Response:
        problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in err.errors()]
        return JSONResponse({"detail": problems[:20]}, 422)

    @app.exception_handler(Exception)
    async def internal(_: Request, err: Exception) -> Response:
        return JSONResponse({"detail": f"internal error ({type(err).__name__})"}, 500)

    @app.get("/health", tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness and what the service answers from (no key needed)."""
        meta = service.index.meta
        return {"status": "ok", "version": __version__, "backend": engine.dialect.name,
                "index": {k: meta[k] for k in ("ingest_run", "built_at", "feeders",
                                               "transformers", "customers")}}

    @app.get("/v1/customers/{customer_id}/status", tags=["customers"])
    async def customer_status(customer_id: str, request: Request) -> Response:
        """Is the customer out now, because of which events, and until when?

        Served by :class:`StatusFastPath` ahead of the framework; this route documents it."""
        code, body = status_response(service, request_key(request.headers.get), customer_id)
        return Response(body, code, media_type="application/json")

    @app.get("/v1/customers/{customer_id}/upstream", tags=["traces"])
    def customer_upstream(customer_id: str, request: Request) -> Response:
        """Supply path of a customer (or transformer, or node): devices, feeder, station."""
        service.authorize(request, "outage:read")
        return _json(queries.upstream(service.index, customer_id))

    @app.get("/v1/devices/{device_id}/downstream", tags=["traces"])
    def device_downstream(
        device_id: str, request: Request, limit: int = Query(100, ge=1, le=MAX_PAGE),
    ) -> Response:
        """Counts of what hangs below a device, with up to ``limit`` ids of each kind."""
        service.authorize(request, "outage:read")
        return _json(queries.downstream(service.index, device_id, limit=limit))

    @app.post("/v1/impact", tags=["outages"])
    def impact(body: ImpactRequest, request: Request) -> Response:
        """What opening the devices and closing the ties would de-energize, in total and per
        feeder, and what each closed tie picks up (those customers are not out)."""
        key = service.authorize(request, "outage:read")
        result = queries.impact(service.index,
                                *outages.switching_lists(body.devices, body.close))
        data = result.to_dict()
        if body.list_customers:
            numbers = service.index.customers_at(result.positions)
            data["customer_list"] = _customer_page(service, key, numbers, body.limit,
                                                   body.offset)
        return _json(data)

    @app.get("/v1/outages", tags=["outages"])
    def list_outages(
        request: Request, status: Literal["active", "closed"] | None = None,
        limit: int = Query(100, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0),
    ) -> Response:
        """Outage events, newest first, one page."""
        service.authorize(request, "outage:read")
        return _json(outages.list_events(engine, status=status, limit=limit, offset=offset))

    @app.post("/v1/outages", status_code=201, tags=["outages"])
    def declare(body: DeclareRequest, request: Request) -> Response:
        """Declare a planned or unplanned outage opening the devices and closing the ties."""
        key = service.authorize(request, "outage:write")
        event = outages.declare(engine, service.index, body.devices, close=body.close,
                                kind=body.kind,
                                started_at=body.started_at, expected_end=body.expected_end,
                                reason=body.reason, created_by=f"api:{key.name}")
        service.state(fresh=True)
        return _json(event, 201)

    @app.get("/v1/outages/{event_id}", tags=["outages"])
    def get_outage(event_id: int, request: Request) -> Response:
        """One event with its impact."""
        service.authorize(request, "outage:read")
        event = outages.get_event(engine, event_id)
        event["impact"] = combined_impact(service.index, [event]).to_dict()
        return _json(event)

    @app.get("/v1/outages/{event_id}/customers", tags=["outages"])
    def outage_customers(
        event_id: int, request: Request, limit: int = Query(100, ge=1, le=MAX_PAGE),
        offset: int = Query(0, ge=0),
    ) -> Response:
        """The customers an event interrupts, one page, masked unless ``personal:read``."""
        key = service.authorize(request, "outage:read")
        event = outages.get_event(engine, event_id)
        result = combined_impact(service.index, [event])
        numbers = service.index.customers_at(result.positions)
        return _json({"event_id": event_id,
                      **_customer_page(service, key, numbers, limit, offset)})

    @app.post("/v1/outages/{event_id}/close", tags=["outages"])
    def close_outage(event_id: int, request: Request, body: CloseRequest | None = None
                     ) -> Response:
        """Close an event (kept as history with its customer-minutes)."""
        service.authorize(request, "outage:write")
        event = outages.close(engine, event_id, ended_at=body.ended_at if body else None)
        service.state(fresh=True)
        return _json(event)

    @app.post("/v1/predict", tags=["outages"])
    def predict(body: PredictRequest, request: Request) -> Response:
        """The most likely opened device(s) explaining trouble calls from these customers."""
        service.authorize(request, "outage:read")
        return _json(predict_outage(service.index, body.customers))

    return app


def app_from_env() -> FastAPI:
    """App factory for uvicorn workers: the database from ``$GRIDTOPO_DB``, the index from
    ``$GRIDTOPO_INDEX`` when set (served as is, without a staleness check), else next to it."""
    engine = open_engine(os.environ.get("GRIDTOPO_DB"))
    given = os.environ.get("GRIDTOPO_INDEX")
    return create_app(engine, read_index(Path(given)) if given else None)
