"""``GET /v1/reliability``: SAIFI, SAIDI, CAIDI, ASAI (RS-1) and MAIFI of the closed outage
events, as ``gridtopo report reliability --json`` answers (:mod:`gridtopo.quality.reliability`).

Needs ``outage:read``. Query: ``by`` (repeatable: month, kind, region, feeder), ``from`` and
``to`` (``YYYY-MM``, Asia/Shanghai months, inclusive), ``kind`` (planned or unplanned) and
``min_minutes`` (sustained means longer than this, default 5). A malformed month, a period
over 240 months or one that ends before it starts is 422.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gridtopo.api.auth import KeyedRoute, keyed
from gridtopo.api.openapi import answers
from gridtopo.api.routes import _json, _service
from gridtopo.api.served import ModelSnapshot
from gridtopo.quality.reliability import MIN_MINUTES, reliability_report

router = APIRouter(route_class=KeyedRoute)


@router.get("/v1/reliability", tags=["reliability"], openapi_extra=keyed("outage:read"),
            responses=answers(422, 503))
def reliability(
    request: Request,
    by: Annotated[list[Literal["month", "kind", "region", "feeder"]], Query()] = [],  # noqa: B006
    start: Annotated[str | None, Query(alias="from", pattern=r"^\d{4}-\d{2}$")] = None,
    end: Annotated[str | None, Query(alias="to", pattern=r"^\d{4}-\d{2}$")] = None,
    kind: Literal["planned", "unplanned"] | None = None,
    min_minutes: Annotated[float, Query(ge=0, le=1440)] = MIN_MINUTES,
) -> Response:
    """Reliability indices of the closed events, in total, per kind and in rows per ``by``
    (totals from the stored event figures; per-feeder and per-region rows recomputed on the
    served network, ``network_changed`` where that differs)."""
    service = _service(request)

    def answer(model: ModelSnapshot) -> tuple[ModelSnapshot, dict[str, Any]]:
        return model, reliability_report(service.engine, model.index, by=by, start=start,
                                         end=end, kind=kind, min_minutes=min_minutes)

    model, data = service.served.consistent(answer)
    return _json(data, model)
