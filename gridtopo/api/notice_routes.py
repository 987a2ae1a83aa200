"""The notifier's routes: the notice feed, ETR changes and customers' notice preferences.

``GET /v1/notifications?after=CURSOR`` (scope ``notify:read``) is the pull feed of
:mod:`gridtopo.outages.outbox`: released notices in ``seq`` order; ask again with ``next``.
Recipients (phone numbers) are masked unless the key also has ``personal:read`` — then
counted against the key's personal-data limit and logged like every personal-data listing;
a notifier sending in bulk takes a webhook instead (``gridtopo notices webhook add``).
``POST /v1/outages/{id}/etr`` (``outage:write``) moves an event's expected end and tells the
customers whose restoration time moved; ``PUT /v1/customers/{id}/notices`` (``calls:write``,
what a customer asks the call centre or the app) records an opt-out.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gridtopo.api.auth import KeyedRoute, keyed
from gridtopo.api.openapi import answers
from gridtopo.api.routes import BODY, Key, _json, _service, notice_rules
from gridtopo.api.schemas import (
    EtrRequest,
    EventId,
    Id,
    NoticeFeed,
    NoticePreferenceRequest,
    OutageEvent,
)
from gridtopo.outages import events as outages
from gridtopo.outages.notices import set_opt_out
from gridtopo.outages.outbox import FEED_LIMIT, feed

router = APIRouter(route_class=KeyedRoute)
Cursor = Annotated[int, Query(ge=0, le=2**62)]


@router.get("/v1/notifications", tags=["notices"], openapi_extra=keyed("notify:read"),
            responses=answers(429, model=NoticeFeed))
def notifications(request: Request, key: Key, after: Cursor = 0,
                  limit: Annotated[int, Query(ge=1, le=FEED_LIMIT)] = 100) -> Response:
    """Notices released after the cursor ``after``, oldest first; ``next`` is the cursor for
    the next call (the same when nothing is new)."""
    service = _service(request)
    reveal = key.allows("personal:read")
    data = feed(service.engine, after=after, limit=limit, reveal=reveal)
    service.reveal(key, "GET /v1/notifications", request.url.path,
                   {"personal_data": "full" if reveal else "masked", "items": data["items"]})
    return _json(data, None)


@router.post("/v1/outages/{event_id}/etr", tags=["outages"],
             openapi_extra=keyed("outage:write"),
             responses=answers(404, 409, *BODY, model=OutageEvent))
def set_etr(event_id: EventId, body: EtrRequest, request: Request) -> Response:
    """Set or move an active event's expected end; ``notices`` counts the ETR notices."""
    service = _service(request)
    model = service.model()
    event = outages.set_etr(service.engine, model.index, event_id, body.expected_end,
                            notice_rules=notice_rules(request))
    service.state(model, fresh=True)
    return _json(event, model)


@router.put("/v1/customers/{customer_id}/notices", tags=["notices"],
            openapi_extra=keyed("calls:write"), responses=answers(*BODY))
def notice_preference(customer_id: Id, body: NoticePreferenceRequest, request: Request,
                      key: Key) -> Response:
    """Record whether the customer wants outage notices (``opt_out``)."""
    set_opt_out(_service(request).engine, [customer_id], body.opt_out, by=f"api:{key.name}")
    return _json({"customer_id": customer_id, "opt_out": body.opt_out}, None)
