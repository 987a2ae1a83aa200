"""The call-centre routes: find the caller, take trouble calls and meter events, predictions.

``GET /v1/customers`` finds customers by phone, meter, address text or location
(:mod:`gridtopo.outages.callers`), masked unless the key has ``personal:read`` (then counted
against its limit and logged, as every personal-data listing). ``POST /v1/calls`` and
``POST /v1/meter-events`` need ``calls:write``; the dispatcher's decisions on predictions
need ``outage:write``. Predictions are kept up to date by the worker's
:class:`~gridtopo.api.predictor.PredictionLoop`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import AfterValidator

from gridtopo.api.auth import KeyedRoute, keyed
from gridtopo.api.call_schemas import (
    CallRequest,
    CancelRequest,
    ConfirmRequest,
    MergeRequest,
    MeterEvents,
    RetargetRequest,
)
from gridtopo.api.openapi import answers
from gridtopo.api.routes import BODY, LISTING, Key, PageLimit, _json, _service, notice_rules
from gridtopo.api.schemas import EventId, Id, check_text
from gridtopo.api.served import ModelSnapshot
from gridtopo.outages import prediction as predictions
from gridtopo.outages.callers import MAX_RESULTS, CallerQuery, find_customers, parse_near
from gridtopo.outages.calls import get_call, take_call
from gridtopo.outages.meters import record_events

router = APIRouter(route_class=KeyedRoute)
Text = Annotated[str | None, Query(max_length=200), AfterValidator(check_text)]


@router.get("/v1/customers", tags=["customers"], openapi_extra=keyed("outage:read"),
            responses=answers(*LISTING))
def find(request: Request, key: Key, customer_id: Annotated[Id | None, Query()] = None,
         phone: Text = None, meter: Text = None, q: Text = None, near: Text = None,
         crs: Literal["wgs84", "gcj02"] = "wgs84",
         radius_m: Annotated[float, Query(gt=0, le=5000)] = 200.0,
         limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 10) -> Response:
    """Find the customer a caller is, by exactly one of ``customer_id``, ``phone``, ``meter``
    (电能表资产号), ``q`` (address text, fuzzy) or ``near=lon,lat`` (``crs`` wgs84 or gcj02:
    customers within ``radius_m``, nearest first, and the nearest transformer)."""
    service = _service(request)
    query = CallerQuery(customer_id, phone, meter, q, parse_near(near) if near else None, crs,
                        radius_m, limit)
    query.key()
    reveal = key.allows("personal:read")

    def listing(model: ModelSnapshot) -> tuple[ModelSnapshot, dict[str, Any]]:
        return model, find_customers(service.engine, model.index, query, reveal=reveal)

    model, data = service.served.consistent(listing)
    service.reveal(key, "GET /v1/customers", request.url.path, data)
    return _json(data, model)


@router.post("/v1/calls", status_code=201, tags=["calls"], openapi_extra=keyed("calls:write"),
             responses=answers(200, 201, 409, *BODY))
def take(body: CallRequest, request: Request) -> Response:
    """Store a trouble call and answer at once with what is known (``status``: in_event,
    in_prediction, behind_meter, predicting, recorded, unresolved, closed_account,
    outside_territory). The same ``call_id`` and body again answers 200 with the stored
    answer; another body under that id is 409."""
    service = _service(request)
    model = service.model()
    answer, created = take_call(service.engine, model.index, service.state(model), body.call())
    return _json(answer, model, 201 if created else 200)


@router.get("/v1/calls/{call_id}", tags=["calls"], openapi_extra=keyed("outage:read"),
            responses=answers(404))
def call(call_id: Id, request: Request) -> Response:
    """A stored call's answer, with the prediction it joined since."""
    return _json(get_call(_service(request).engine, call_id), None)


@router.post("/v1/meter-events", tags=["calls"], openapi_extra=keyed("calls:write"),
             responses=answers(*BODY))
def meter_events(body: MeterEvents, request: Request) -> Response:
    """Store AMI last gasps (power_off), power-ons and devices reported closed; answers how
    many were stored, duplicates, and unknown meters and devices."""
    service = _service(request)
    model = service.model()
    return _json(record_events(service.engine, model.index, [e.event() for e in body.events]),
                 model)


@router.get("/v1/predictions", tags=["predictions"], openapi_extra=keyed("outage:read"),
            responses=answers(200))
def list_predictions(request: Request, status: Literal["open", "confirmed", "merged",
                                                       "cancelled", "restored"] | None = "open",
                     limit: PageLimit = 100) -> Response:
    """Predicted outages, newest first (default: the open ones)."""
    return _json(predictions.list_predictions(_service(request).engine, status=status,
                                              limit=limit), None)


@router.get("/v1/predictions/{prediction_id}", tags=["predictions"],
            openapi_extra=keyed("outage:read"), responses=answers(404))
def get_prediction(prediction_id: EventId, request: Request) -> Response:
    """One prediction."""
    return _json(predictions.get_prediction(_service(request).engine, prediction_id), None)


@router.post("/v1/predictions/{prediction_id}/confirm", tags=["predictions"],
             openapi_extra=keyed("outage:write"), responses=answers(404, 409, *BODY))
def confirm(prediction_id: EventId, request: Request, key: Key,
            body: ConfirmRequest | None = None) -> Response:
    """Confirm: declare an unplanned outage event opening the predicted device."""
    service = _service(request)
    model = service.model()
    done = predictions.confirm(service.engine, model.index, prediction_id,
                               by=f"api:{key.name}", expected_end=body.expected_end if body
                               else None, reason=body.reason if body else None,
                               notice_rules=notice_rules(request))
    service.state(model, fresh=True)
    return _json(done, model)


@router.post("/v1/predictions/{prediction_id}/merge", tags=["predictions"],
             openapi_extra=keyed("outage:write"), responses=answers(404, 409, *BODY))
def merge(prediction_id: EventId, body: MergeRequest, request: Request, key: Key) -> Response:
    """Merge into ``into``: one outage at the lowest protective device above both."""
    service = _service(request)
    model = service.model()
    return _json(predictions.merge(service.engine, model.index, prediction_id, body.into,
                                   by=f"api:{key.name}"), model)


@router.post("/v1/predictions/{prediction_id}/retarget", tags=["predictions"],
             openapi_extra=keyed("outage:write"), responses=answers(404, 409, *BODY))
def retarget(prediction_id: EventId, body: RetargetRequest, request: Request, key: Key
             ) -> Response:
    """Point the prediction at another device; it keeps it as signals arrive."""
    service = _service(request)
    model = service.model()
    return _json(predictions.retarget(service.engine, model.index, prediction_id, body.device,
                                      by=f"api:{key.name}"), model)


@router.post("/v1/predictions/{prediction_id}/cancel", tags=["predictions"],
             openapi_extra=keyed("outage:write"), responses=answers(404, 409, *BODY))
def cancel(prediction_id: EventId, request: Request, key: Key, body: CancelRequest | None = None
           ) -> Response:
    """Cancel: no outage; its signals stay out of prediction."""
    return _json(predictions.cancel(_service(request).engine, prediction_id,
                                    by=f"api:{key.name}", note=body.note if body else None),
                 None)
