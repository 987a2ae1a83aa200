"""The public routes: the outage feed and map anyone may read, without an API key.

``GET /v1/outages.geojson`` is :func:`~gridtopo.outages.public.public_feed` — current and
planned outages per feeder and per transformer area with counts only, no personal data — and
``GET /map`` the page drawing it (:mod:`gridtopo.api.map_page`). Like ``/health`` they are
:class:`~gridtopo.api.auth.KeyedRoute` routes without a required scope: no key is asked
for, and the OpenAPI document shows them without a security requirement.

A storm of public requests must not recompute the feed: each worker keeps one answer per
(served model snapshot, :func:`~gridtopo.outages.public.state_version` of its outage state),
computed by one request while the others wait for it, and the network's extent and feeder
regions once per model. The outage state itself is the worker's, re-read at most once a
second (:meth:`~gridtopo.api.service.Service.state`), so a declared or closed event shows
within a second; answers may be cached by clients and proxies for ``MAX_AGE`` seconds.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

import polars as pl
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Engine, func, select

from gridtopo.api.auth import KeyedRoute
from gridtopo.api.map_page import map_page
from gridtopo.api.openapi import answers
from gridtopo.api.schemas import json_body
from gridtopo.api.served import ModelSnapshot
from gridtopo.api.service import Service, run_header
from gridtopo.db.models import Feeder, Station
from gridtopo.outages.public import StateVersion, network_extent, public_feed, state_version
from gridtopo.topology.regions import station_regions

router = APIRouter(route_class=KeyedRoute)
PUBLIC_PATHS = ("/health", "/v1/outages.geojson", "/map")
"""The routes that need no API key (the OpenAPI document gives them no security)."""
GEOJSON = "application/geo+json"
MAX_AGE = 15
"""Seconds a client or proxy may keep a public answer (the map re-reads every 60 s)."""

_NULLABLE_TEXT = {"type": ["string", "null"]}
FEATURE_PROPERTIES: dict[str, Any] = {
    "level": {"enum": ["feeder", "area"],
              "description": "feeder: a feeder's de-energized section; area: one transformer "
                             "(台区) in it"},
    "status": {"enum": ["current", "planned"],
               "description": "current: supply off now; planned: an event starting later"},
    "event_ids": {"type": "array", "items": {"type": "integer"}},
    "kind": {"enum": ["planned", "unplanned", "mixed"]},
    "cause": {**_NULLABLE_TEXT, "description": "the events' reasons, joined by '; '"},
    "started_at": {**_NULLABLE_TEXT, "format": "date-time"},
    "etr": {**_NULLABLE_TEXT, "format": "date-time",
            "description": "estimated restoration: the latest expected end, null if unknown"},
    "customers_out": {"type": "integer", "minimum": 0, "description": "a count only"},
    "transformers_out": {"type": "integer", "minimum": 0},
    "section": {"type": "string", "description": "current:<feeder> or "
                                                 "planned:<event>:<feeder>"},
    "feeder_id": _NULLABLE_TEXT, "feeder_name": _NULLABLE_TEXT, "region": _NULLABLE_TEXT,
    "area_code": _NULLABLE_TEXT, "area_name": _NULLABLE_TEXT, "transformer_id": _NULLABLE_TEXT,
}
AREA_ONLY = ("area_code", "area_name", "transformer_id")
"""The properties only an area feature has."""
FEED_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "generated_at": {"type": "string", "format": "date-time"},
        "ingest_run": {"type": ["integer", "null"]},
        "extent": {"type": ["array", "null"], "items": {"type": "number"},
                   "description": "[min lon, min lat, max lon, max lat] of the network"},
        "features": {"type": "array", "items": {
            "type": "object", "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"const": "Feature"},
                "geometry": {"type": ["object", "null"],
                             "description": "MultiLineString, Polygon or MultiPoint (feeder), "
                                            "Point (area), WGS 84 lon/lat"},
                "properties": {"type": "object", "required": [
                    name for name in FEATURE_PROPERTIES if name not in AREA_ONLY],
                               "properties": FEATURE_PROPERTIES}}}}}}


def _public(media_type: str, schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a public route answering ``media_type``."""
    result = answers(keyed=False)
    result[200] = {"description": "OK", "content": {media_type: {"schema": schema}}}
    result[304] = {"description": "Not modified: the answer of the ETag sent in If-None-Match"}
    return result


@dataclass(frozen=True)
class PublicAnswer:
    """A computed feed: the model it describes, the state version, its body and ETag."""

    model: ModelSnapshot
    version: StateVersion
    body: bytes
    page: bytes
    etag: str


class PublicFeedCache:
    """One worker's public answer per (model snapshot, outage state version)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answer: PublicAnswer | None = None
        self._frame: tuple[ModelSnapshot, list[float] | None, dict[str, str]] | None = None
        self.computed = 0
        """How many times the feed was computed (not served from the cache)."""

    def answer(self, service: Service) -> PublicAnswer:
        """The current answer: cached, or computed by one caller while the others wait."""
        model = service.model()
        state = service.state(model)
        version = state_version(state)
        cached = self._answer
        if cached is not None and cached.model is model and cached.version == version:
            return cached
        with self._lock:
            cached = self._answer
            if cached is not None and cached.model is model and cached.version == version:
                return cached
            frame = self._frame
            if frame is None or frame[0] is not model:
                frame = (model, network_extent(service.engine), feeder_regions(service.engine))
                self._frame = frame
            body = json_body(public_feed(service.engine, model.index, state,
                                         regions=frame[2], extent=frame[1]))
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            self._answer = PublicAnswer(model, version, body, map_page(body), etag)
            self.computed += 1
            return self._answer


def feeder_regions(engine: Engine) -> dict[str, str]:
    """Feeder id → the region (city) of its station (:mod:`gridtopo.topology.regions`)."""
    with engine.connect() as conn:
        rows = conn.execute(select(Feeder.feeder_id, Station.station_id, Station.station_name,
                                   func.ST_X(Station.geom), func.ST_Y(Station.geom))
                            .join(Station, Station.station_id == Feeder.station_id)).all()
    if not rows:
        return {}
    stations = pl.DataFrame(
        [r[1:] for r in rows], orient="row",
        schema={"station_id": pl.Utf8, "station_name": pl.Utf8, "lon": pl.Float64,
                "lat": pl.Float64}).unique("station_id")
    region = dict(station_regions(stations).iter_rows())
    return {feeder: region[station] for feeder, station, *_ in rows if station in region}


def _cache(request: Request) -> PublicFeedCache:
    app_state = request.app.state
    cache: PublicFeedCache | None = getattr(app_state, "public_feed", None)
    if cache is None:
        cache = app_state.public_feed = PublicFeedCache()
    return cache


def _answer(request: Request, which: str, media_type: str) -> Response:
    service: Service = request.app.state.service
    found = _cache(request).answer(service)
    headers = {**run_header(found.model), "Cache-Control": f"public, max-age={MAX_AGE}",
               "ETag": found.etag if which == "feed" else found.etag[:-1] + '-map"'}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(found.body if which == "feed" else found.page, 200, headers,
                    media_type=media_type)


@router.get("/v1/outages.geojson", tags=["public"],
            responses=_public(GEOJSON, FEED_SCHEMA))
def outages_geojson(request: Request) -> Response:
    """Current and planned outages as GeoJSON, per feeder and transformer area (台区),
    with counts only — no key needed, no personal data. Each feature's ``properties``:
    ``level`` (feeder | area), ``status`` (current | planned), ``event_ids``, ``kind``,
    ``cause``, ``started_at``, ``etr``, ``customers_out``, ``transformers_out``,
    ``section``, ``feeder_id``, ``feeder_name``, ``region``, and for an area ``area_code``,
    ``area_name``, ``transformer_id``; geometry the de-energized edges (MultiLineString),
    else the hull or points of the dead transformers; a transformer's Point for an area."""
    return _answer(request, "feed", GEOJSON)


@router.get("/map", tags=["public"], responses=_public("text/html", {"type": "string"}))
def outage_map(request: Request) -> Response:
    """The public outage map (停电地图): a self-contained HTML page drawing the feed and
    listing the outages, re-reading the feed every 60 s (no key needed)."""
    return _answer(request, "map", "text/html; charset=utf-8")
