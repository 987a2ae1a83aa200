"""The API's routes: check the key's scope, call the library, answer JSON.

Each route is a few lines over :mod:`gridtopo.topology.queries`,
:mod:`gridtopo.outages.events`, :mod:`gridtopo.outages.state`, :mod:`gridtopo.outages.report` and
:mod:`gridtopo.outages.predict`; the worker's :class:`~gridtopo.api.service.Service` is the
app's ``state.service``. Errors are raised, never caught here: the app turns any
:class:`~gridtopo.errors.GridtopoError` into its ``http_status``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gridtopo import __version__
from gridtopo.api.keys import KeyInfo
from gridtopo.api.middleware import request_key
from gridtopo.api.schemas import (
    MAX_PAGE,
    CloseRequest,
    DeclareRequest,
    ImpactRequest,
    PredictRequest,
)
from gridtopo.api.service import Service, json_body
from gridtopo.outages import events as outages
from gridtopo.outages.predict import predict_outage
from gridtopo.outages.report import CustomerPage, event_customers, impact_report
from gridtopo.outages.state import combined_impact
from gridtopo.topology import queries

router = APIRouter()
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PageOffset = Annotated[int, Query(ge=0)]


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _authorize(request: Request, scope: str) -> tuple[Service, KeyInfo]:
    """The worker's service and the request's key, if that holds ``scope`` (else 401/403)."""
    service = _service(request)
    return service, service.authorize(request_key(request.headers.get), scope)


def _json(data: Any, status: int = 200) -> Response:
    return Response(json_body(data), status, media_type="application/json")


def _page(key: KeyInfo, limit: int, offset: int) -> CustomerPage:
    """A page of customers with contacts, unmasked only for a key with ``personal:read``."""
    return CustomerPage(limit, offset, reveal=key.allows("personal:read"))


@router.get("/health", tags=["service"])
def health(request: Request) -> dict[str, Any]:
    """Liveness and what the service answers from (no key needed)."""
    service = _service(request)
    meta = service.index.meta
    return {"status": "ok", "version": __version__, "backend": service.engine.dialect.name,
            "index": {k: meta[k] for k in ("ingest_run", "built_at", "feeders",
                                           "transformers", "customers")}}


@router.get("/v1/customers/{customer_id}/status", tags=["customers"])
async def customer_status(customer_id: str, request: Request) -> Response:
    """Is the customer out now, because of which events, and until when?

    Served by :class:`~gridtopo.api.middleware.StatusFastPath` ahead of the framework; this
    route documents it and answers alike."""
    status, headers, body = _service(request).customer_status(
        request_key(request.headers.get), customer_id)
    return Response(body, status, {k.decode(): v.decode() for k, v in headers},
                    media_type="application/json")


@router.get("/v1/customers/{customer_id}/upstream", tags=["traces"])
def customer_upstream(customer_id: str, request: Request) -> Response:
    """Supply path of a customer (or transformer, or node): devices, feeder, station."""
    service, _ = _authorize(request, "outage:read")
    return _json(queries.upstream(service.index, customer_id))


@router.get("/v1/devices/{device_id}/downstream", tags=["traces"])
def device_downstream(device_id: str, request: Request, limit: PageLimit = 100) -> Response:
    """Counts of what hangs below a device, with up to ``limit`` ids of each kind."""
    service, _ = _authorize(request, "outage:read")
    return _json(queries.downstream(service.index, device_id, limit=limit))


@router.post("/v1/impact", tags=["outages"])
def impact(body: ImpactRequest, request: Request) -> Response:
    """What opening the devices and closing the ties would de-energize, in total and per
    feeder, and what each closed tie picks up (those customers are not out); with
    ``list_customers`` one page of the customers, masked unless ``personal:read``."""
    service, key = _authorize(request, "outage:read")
    page = _page(key, body.limit, body.offset) if body.list_customers else None
    return _json(impact_report(service.engine, service.index, body.devices, body.close,
                               customers=page))


@router.get("/v1/outages", tags=["outages"])
def list_outages(request: Request, status: Literal["active", "closed"] | None = None,
                 limit: PageLimit = 100, offset: PageOffset = 0) -> Response:
    """Outage events, newest first, one page."""
    service, _ = _authorize(request, "outage:read")
    return _json(outages.list_events(service.engine, status=status, limit=limit,
                                     offset=offset))


@router.post("/v1/outages", status_code=201, tags=["outages"])
def declare(body: DeclareRequest, request: Request) -> Response:
    """Declare a planned or unplanned outage opening the devices and closing the ties."""
    service, key = _authorize(request, "outage:write")
    event = outages.declare(service.engine, service.index, body.devices, close=body.close,
                            kind=body.kind, started_at=body.started_at,
                            expected_end=body.expected_end, reason=body.reason,
                            created_by=f"api:{key.name}")
    service.state(fresh=True)
    return _json(event, 201)


@router.get("/v1/outages/{event_id}", tags=["outages"])
def get_outage(event_id: int, request: Request) -> Response:
    """One event with its impact."""
    service, _ = _authorize(request, "outage:read")
    event = outages.get_event(service.engine, event_id)
    event["impact"] = combined_impact(service.index, [event]).to_dict()
    return _json(event)


@router.get("/v1/outages/{event_id}/customers", tags=["outages"])
def outage_customers(event_id: int, request: Request, limit: PageLimit = 100,
                     offset: PageOffset = 0) -> Response:
    """The customers an event interrupts, one page, masked unless ``personal:read``."""
    service, key = _authorize(request, "outage:read")
    return _json(event_customers(service.engine, service.index, event_id,
                                 _page(key, limit, offset)))


@router.post("/v1/outages/{event_id}/close", tags=["outages"])
def close_outage(event_id: int, request: Request, body: CloseRequest | None = None
                 ) -> Response:
    """Close an event (kept as history with its customer-minutes)."""
    service, _ = _authorize(request, "outage:write")
    event = outages.close(service.engine, event_id, ended_at=body.ended_at if body else None)
    service.state(fresh=True)
    return _json(event)


@router.post("/v1/predict", tags=["outages"])
def predict(body: PredictRequest, request: Request) -> Response:
    """The most likely opened device(s) explaining trouble calls from these customers."""
    service, _ = _authorize(request, "outage:read")
    return _json(predict_outage(service.index, body.customers))
