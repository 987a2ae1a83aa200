"""The API's routes: call the library on one model snapshot, answer JSON.

Each route is a few lines over :mod:`gridtopo.topology.queries`,
:mod:`gridtopo.outages.events`, :mod:`gridtopo.outages.state`, :mod:`gridtopo.outages.report` and
:mod:`gridtopo.outages.predict`; the worker's :class:`~gridtopo.api.service.Service` is the
app's ``state.service``. Keyed routes are :class:`~gridtopo.api.auth.KeyedRoute`: the key and
its scope are checked before the parameters. Errors are raised, never caught here: the app
answers any :class:`~gridtopo.errors.GridtopoError` with its ``http_status`` as a problem
document; each route's OpenAPI entry lists the statuses it can answer
(:func:`~gridtopo.api.openapi.answers`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from gridtopo import __version__
from gridtopo.api.auth import KeyedRoute, keyed, request_key
from gridtopo.api.keys import KeyInfo
from gridtopo.api.openapi import answers
from gridtopo.api.schemas import (
    MAX_OFFSET,
    MAX_PAGE,
    CloseRequest,
    CustomerStatus,
    DeclareRequest,
    EventId,
    Health,
    Id,
    ImpactRequest,
    OutageEvent,
    OutageList,
    PredictRequest,
    SwitchingChanges,
    json_body,
)
from gridtopo.api.served import ModelSnapshot
from gridtopo.api.service import Service, run_header
from gridtopo.db.switching import list_switching
from gridtopo.ingest.switching import SwitchingRow
from gridtopo.outages import events as outages
from gridtopo.outages.notices import NoticeRules
from gridtopo.outages.predict import predict_outage
from gridtopo.outages.report import CustomerPage, event_customers, impact_report
from gridtopo.outages.state import combined_impact
from gridtopo.topology import queries
from gridtopo.topology.switching import apply_switching

router = APIRouter(route_class=KeyedRoute)
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PageOffset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Key = Annotated[KeyInfo, Depends(request_key)]
BODY = (408, 413, 422)
"""What a route with a body can answer besides: slow (408), too large, malformed."""
LISTING = (429, 503)
"""What a route listing personal data can answer besides: over the key's limit, or the
database already holds a newer model than the worker serves (during a swap)."""


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def notice_rules(request: Request) -> NoticeRules:
    """The rules the app was created with for the notices event changes write."""
    rules: NoticeRules = request.app.state.notice_rules
    return rules


def _json(data: Any, model: ModelSnapshot | None, status: int = 200) -> Response:
    """``data`` as JSON, naming the run it was computed from when it was."""
    return Response(json_body(data), status, run_header(model) if model else None,
                    media_type="application/json")


def _page(key: KeyInfo, limit: int, offset: int) -> CustomerPage:
    """A page of customers with contacts, unmasked only for a key with ``personal:read``."""
    return CustomerPage(limit, offset, reveal=key.allows("personal:read"))


@router.get("/health", tags=["service"], responses=answers(model=Health, keyed=False))
def health(request: Request) -> Response:
    """Liveness and which model this worker serves: its ingest run and switching version,
    how many times the worker swapped models (``generation``), since when, and the worker's
    process id (no key)."""
    service = _service(request)
    model = service.model()
    meta = model.index.meta
    return _json({"status": "ok", "version": __version__,
                  "backend": service.engine.dialect.name, "model": model.describe(),
                  "index": {k: meta.get(k) for k in ("ingest_run", "switching_version",
                                                     "built_at", "feeders", "transformers",
                                                     "customers")}}, model)


@router.get("/v1/customers/{customer_id}/status", tags=["customers"],
            openapi_extra=keyed("outage:read"), responses=answers(404, model=CustomerStatus))
async def customer_status(customer_id: Id, request: Request) -> Response:
    """Is the customer out now, because of which events, and until when?

    Served by :class:`~gridtopo.api.middleware.StatusFastPath` ahead of the framework; this
    route documents it and answers alike."""
    status, headers, body = _service(request).customer_status(request.scope["headers"],
                                                              customer_id)
    return Response(body, status, {k.decode(): v.decode() for k, v in headers})


@router.get("/v1/customers/{customer_id}/upstream", tags=["traces"],
            openapi_extra=keyed("outage:read"), responses=answers(404))
def customer_upstream(customer_id: Id, request: Request) -> Response:
    """Supply path of a customer (or transformer, or node): devices, feeder, station."""
    model = _service(request).model()
    return _json(queries.upstream(model.index, customer_id), model)


@router.get("/v1/devices/{device_id}/downstream", tags=["traces"],
            openapi_extra=keyed("outage:read"), responses=answers(404))
def device_downstream(device_id: Id, request: Request, limit: PageLimit = 100) -> Response:
    """Counts of what hangs below a device, with up to ``limit`` ids of each kind."""
    model = _service(request).model()
    return _json(queries.downstream(model.index, device_id, limit=limit), model)


@router.post("/v1/impact", tags=["outages"], openapi_extra=keyed("outage:read"),
             responses=answers(404, *BODY, *LISTING))
def impact(body: ImpactRequest, request: Request, key: Key) -> Response:
    """What opening the devices and closing the ties would de-energize, in total and per
    feeder, and what each closed tie picks up (those customers are not out); with
    ``list_customers`` one page of the customers, masked unless ``personal:read`` (then
    counted against the key's limit and logged)."""
    service = _service(request)
    page = _page(key, body.limit, body.offset) if body.list_customers else None

    def report(model: ModelSnapshot) -> tuple[ModelSnapshot, dict[str, Any]]:
        return model, impact_report(service.engine, model.index, body.devices, body.close,
                                    customers=page)

    model, data = service.served.consistent(report) if page else report(service.model())
    if page:
        service.reveal(key, "POST /v1/impact", request.url.path, data["customer_list"])
    return _json(data, model)


@router.get("/v1/outages", tags=["outages"], openapi_extra=keyed("outage:read"),
            responses=answers(200, model=OutageList))
def list_outages(request: Request, status: Literal["active", "closed"] | None = None,
                 limit: PageLimit = 100, offset: PageOffset = 0) -> Response:
    """Outage events, newest first, one page."""
    service = _service(request)
    return _json(outages.list_events(service.engine, status=status, limit=limit,
                                     offset=offset), None)


@router.post("/v1/outages", status_code=201, tags=["outages"],
             openapi_extra=keyed("outage:write"),
             responses=answers(201, 404, 409, *BODY, model=OutageEvent))
def declare(body: DeclareRequest, request: Request, key: Key) -> Response:
    """Declare a planned or unplanned outage opening the devices and closing the ties."""
    service = _service(request)
    model = service.model()
    event = outages.declare(service.engine, model.index, body.devices, close=body.close,
                            kind=body.kind, started_at=body.started_at,
                            expected_end=body.expected_end, reason=body.reason,
                            created_by=f"api:{key.name}", notice_rules=notice_rules(request))
    service.state(model, fresh=True)
    return _json(event, model, 201)


@router.get("/v1/outages/{event_id}", tags=["outages"], openapi_extra=keyed("outage:read"),
            responses=answers(404, model=OutageEvent))
def get_outage(event_id: EventId, request: Request) -> Response:
    """One event with its impact."""
    service = _service(request)
    model = service.model()
    event = outages.get_event(service.engine, event_id)
    event["impact"] = combined_impact(model.index, [event]).to_dict()
    return _json(event, model)


@router.get("/v1/outages/{event_id}/customers", tags=["outages"],
            openapi_extra=keyed("outage:read"), responses=answers(404, *LISTING))
def outage_customers(event_id: EventId, request: Request, key: Key, limit: PageLimit = 100,
                     offset: PageOffset = 0) -> Response:
    """The customers an event interrupts, one page, masked unless ``personal:read`` (then
    counted against the key's limit and logged)."""
    service = _service(request)
    page = _page(key, limit, offset)

    def listing(model: ModelSnapshot) -> tuple[ModelSnapshot, dict[str, Any]]:
        return model, event_customers(service.engine, model.index, event_id, page)

    model, data = service.served.consistent(listing)
    service.reveal(key, "GET /v1/outages/{event_id}/customers", request.url.path, data)
    return _json(data, model)


@router.post("/v1/outages/{event_id}/close", tags=["outages"],
             openapi_extra=keyed("outage:write"),
             responses=answers(404, 409, *BODY, model=OutageEvent))
def close_outage(event_id: EventId, request: Request, body: CloseRequest | None = None
                 ) -> Response:
    """Close an event (kept as history with its customer-minutes)."""
    service = _service(request)
    model = service.model()
    event = outages.close(service.engine, event_id, ended_at=body.ended_at if body else None,
                          index=model.index, notice_rules=notice_rules(request))
    service.state(model, fresh=True)
    return _json(event, None)


@router.post("/v1/predict", tags=["outages"], openapi_extra=keyed("outage:read"),
             responses=answers(*BODY))
def predict(body: PredictRequest, request: Request) -> Response:
    """The most likely opened device(s) explaining trouble calls from these customers."""
    model = _service(request).model()
    return _json(predict_outage(model.index, body.customers), model)


@router.post("/v1/switching", tags=["network"], openapi_extra=keyed("network:write"),
             responses=answers(*BODY))
def record_switching(body: SwitchingChanges, request: Request, key: Key) -> Response:
    """Record switching changes done in the field (a tie moved, a section out of service):
    applied to the model and the query index all or nothing — an unknown device, or
    ``normal_open`` on a line or cable, answers 422 naming the change and device, with
    nothing applied. Every worker serves the new state within a second; the answer names
    the run and ``switching_version`` recording it."""
    service = _service(request)
    rows = [SwitchingRow(c.device, c.normal_open, c.in_service, c.at, c.note, i)
            for i, c in enumerate(body.changes, start=1)]
    done = apply_switching(service.engine, rows, origin="request", by=f"api:{key.name}",
                           pin=body.pin, item="change")
    service.served.refresh()  # this worker answers from the new state at once
    return _json(done, service.model())


@router.get("/v1/switching", tags=["network"], openapi_extra=keyed("outage:read"),
            responses=answers(200))
def switching_changes(request: Request, status: Literal["active", "confirmed", "overridden",
                                                        "replaced"] | None = None,
                      limit: PageLimit = 100) -> Response:
    """Recorded switching changes, newest first, with who, when, why and their status."""
    service = _service(request)
    return _json({"changes": list_switching(service.engine, status=status, limit=limit)},
                 None)
