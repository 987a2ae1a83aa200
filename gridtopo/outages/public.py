"""The public outage feed: current and planned outages as GeoJSON, with counts only.

What the public may see of the outage state (:class:`~gridtopo.outages.state.OutageState`):
where the supply is off or will be, since when, why, until when and for how many customers —
never who. The feed is a GeoJSON ``FeatureCollection`` (RFC 7946, WGS 84 lon/lat) of two
levels of features, each for one **status**:

* ``current`` — the section the started events de-energize *together* (their combined
  switching, the same state that answers a customer's status), aggregated per feeder and per
  transformer (台区);
* ``planned`` — each active event whose start is still to come, on its own (its own
  switching), per feeder and per transformer: two planned events on a feeder are two
  features, because they are two separate interruptions.

Closed events are absent; so are customers: no customer id, name, phone, address or meter id
is read at all (counts come from the index's arrays).

Properties of every feature (``level`` ``feeder`` or ``area``):

==================  =========================================================================
``level``           ``feeder``: the de-energized section of one feeder; ``area``: one
                    transformer (台区, transformer area) in it
``status``          ``current`` (supply off now) or ``planned`` (an event starting later)
``event_ids``       the outage events responsible, ascending
``kind``            ``planned``, ``unplanned``, or ``mixed`` when the events differ
``cause``           the events' reasons, distinct, joined by ``"; "`` (null when none)
``started_at``      the earliest start of the events (ISO 8601 UTC)
``etr``             estimated time of restoration: the latest expected end of the events, null
                    when any of them has none
``customers_out``   customers (active accounts) without supply — a count only
``transformers_out``  transformers without supply (1 for an area feature)
``feeder_id``       the feeder, ``feeder_name`` its name (null when the model has none)
``section``         names the section: ``current:<feeder>`` or ``planned:<event>:<feeder>``,
                    shared by a feeder feature and its area features
``region``          the feeder's region (city) when the caller supplies regions, else null
``area_code``       (area only) the transformer's marketing area code (台区编号), or null
``area_name``       (area only) the area's name (台区名称), else the transformer's name, or null
``transformer_id``  (area only) the transformer
==================  =========================================================================

Geometry: a feeder feature is the ``MultiLineString`` of the de-energized edges (the tree edge
above each dead node, the opened device included) that have a geometry; when none has, the
convex hull (``Polygon``) of the dead transformers' points, or a ``MultiPoint`` of fewer than
three, or null. An area feature is its transformer's ``Point`` (null without one). The
collection adds ``extent`` (``[min lon, min lat, max lon, max lat]`` of the network's
transformers, for a map's frame), ``generated_at`` and ``ingest_run``.

The feed is a function of the served model and the outage state: :func:`state_version`
names that state, so a caller can cache one answer per (model, version) and serve a storm
of requests without recomputing.

>>> import datetime as dt
>>> from gridtopo.outages.events import declare
>>> from gridtopo.outages.state import OutageState
>>> from gridtopo.topology.index import load_index
>>> index = load_index(engine)
>>> fault = declare(engine, index, ["SB-00000009"], reason="fault")
>>> feed = public_feed(engine, index, OutageState.load(engine, index))
>>> feeders = [f["properties"] for f in feed["features"] if f["properties"]["level"] == "feeder"]
>>> [(p["status"], p["event_ids"], p["customers_out"]) for p in feeders]
[('current', [1], 1254)]
>>> feed["features"][0]["geometry"]["type"]
'MultiLineString'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Engine, LargeBinary, func, select, type_coerce

from gridtopo.clock import now_seconds
from gridtopo.db.models import Edge, Feeder, Transformer, TransformerArea
from gridtopo.outages.state import ActiveEvent, OutageState
from gridtopo.topology.index import QueryIndex

CHUNK = 5000
"""Ids per ``IN (…)`` list when reading geometries (well under every store's limit)."""
DIGITS = 6
"""Decimals kept of a coordinate: 0.1 m, enough for a map and a smaller feed."""
StateVersion = tuple[tuple[int, bool], ...]


def state_version(state: OutageState) -> StateVersion:
    """What the feed depends on in ``state``: each active event's id and whether it has
    started. Events never change once declared except by closing (which drops them from the
    active ones) and by their start passing, so an equal version means an equal feed."""
    return tuple((int(e.data["id"]), bool(e.data["started_at"] <= state.at))
                 for e in state.events)


def public_feed(engine: Engine, index: QueryIndex, state: OutageState, *,
                regions: Mapping[str, str] | None = None,
                extent: Sequence[float] | None = None) -> dict[str, Any]:
    """The public GeoJSON ``FeatureCollection`` of ``state`` over ``index`` (see the module
    docstring); ``regions`` maps feeder ids to a region name, ``extent`` is the network's
    frame (read with :func:`network_extent` when not given)."""
    groups: list[_Group] = []
    started = [e for e in state.events if e.data["started_at"] <= state.at]
    if started:
        dead = np.flatnonzero(state.out)
        groups += _split(index, "current", dead, started, state.out)
    for event in state.events:
        if event.data["started_at"] > state.at:
            groups += _split(index, "planned", event.positions, [event], None)
    features = _features(engine, index, groups, regions or {})
    return {"type": "FeatureCollection",
            "generated_at": now_seconds().isoformat(),
            "ingest_run": index.meta.get("ingest_run"),
            "extent": list(extent) if extent is not None else network_extent(engine),
            "features": features}


def network_extent(engine: Engine) -> list[float] | None:
    """``[min lon, min lat, max lon, max lat]`` of the in-service transformers with a
    position (one aggregate query), None when none has one."""
    x, y = func.ST_X(Transformer.geom), func.ST_Y(Transformer.geom)
    with engine.connect() as conn:
        row = conn.execute(select(func.min(x), func.min(y), func.max(x), func.max(y))
                           .where(Transformer.geom.is_not(None),
                                  Transformer.status == "in_service")).one()
    if any(v is None for v in row):
        return None
    return [round(float(v), DIGITS) for v in row]


class _Group:
    """The dead positions of one feeder under some events, with the events."""

    def __init__(self, status: str, feeder: int, positions: np.ndarray,
                 events: list[dict[str, Any]], transformer_events: dict[int, list[int]]):
        self.status = status
        self.feeder = feeder
        self.positions = positions
        self.events = events
        self.transformer_events = transformer_events


def _split(index: QueryIndex, status: str, positions: np.ndarray, events: list[ActiveEvent],
           out: np.ndarray | None) -> list[_Group]:
    """``positions`` split per feeder; each part's events are those whose own positions (dead
    ones, with ``out``) reach it — or all ``events`` when only their combination cuts it."""
    if not positions.size:
        return []
    labels = index.position_feeder[positions]
    reach: list[np.ndarray] = []
    for event in events:
        mine = event.positions if out is None else event.positions[out[event.positions]]
        reach.append(mine)
    groups = []
    for f in np.unique(labels).tolist():
        at = positions[labels == f]
        chosen = [i for i, mine in enumerate(reach)
                  if mine.size and np.isin(mine, at, assume_unique=True).any()]
        chosen = chosen or list(range(len(events)))
        transformers: dict[int, list[int]] = {}
        for i in chosen:
            here = np.intersect1d(reach[i], at, assume_unique=True)
            for t in index.transformers_at(here).tolist():
                transformers.setdefault(int(t), []).append(int(events[i].data["id"]))
        for t in index.transformers_at(at).tolist():  # cut by the combination only
            transformers.setdefault(int(t), [int(events[i].data["id"]) for i in chosen])
        groups.append(_Group(status, int(f), at, [events[i].data for i in chosen],
                             transformers))
    return groups


def _summary(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """What a feature says of its events: ids, kind, cause, start and ETR."""
    events = sorted(events, key=lambda e: e["id"])
    kinds = {e["kind"] for e in events}
    reasons = list(dict.fromkeys(e["reason"] for e in events if e["reason"]))
    ends = [e["expected_end"] for e in events]
    starts: list[dt.datetime] = [e["started_at"] for e in events]
    return {"event_ids": [e["id"] for e in events],
            "kind": kinds.pop() if len(kinds) == 1 else "mixed",
            "cause": "; ".join(reasons) or None,
            "started_at": min(starts).isoformat() if starts else None,
            "etr": None if not ends or None in ends else max(ends).isoformat()}


def _features(engine: Engine, index: QueryIndex, groups: list[_Group],
              regions: Mapping[str, str]) -> list[dict[str, Any]]:
    """The feeder and area features of ``groups``, with names and geometries from the
    database."""
    if not groups:
        return []
    every = np.unique(np.concatenate([g.positions for g in groups]))
    nodes = index.order[every]
    above = index.parent_edge[nodes]
    numbers = np.unique(above[above >= 0])
    edge_name = dict(zip(numbers.tolist(), index.names(index.edge_ids, numbers), strict=True))
    edge_of = {p: edge_name.get(e) for p, e in zip(every.tolist(), above.tolist(), strict=True)}
    edge_ids = sorted(edge_name.values())
    transformer_numbers = sorted({t for g in groups for t in g.transformer_events})
    transformer_ids = index.names(index.transformer_ids, np.array(transformer_numbers,
                                                                  dtype=np.int64))
    feeder_ids = sorted({index.feeder_ids[g.feeder].decode() for g in groups if g.feeder >= 0})
    lines = _edge_lines(engine, edge_ids)
    places, areas = _transformers(engine, transformer_ids)
    names = _feeder_names(engine, feeder_ids)
    tr_id = dict(zip(transformer_numbers, transformer_ids, strict=True))
    served = index.customer_transformer[index.customers_at(every)]
    per_transformer = np.bincount(served[served >= 0], minlength=len(index.transformer_ids))

    features: list[dict[str, Any]] = []
    for group in groups:
        feeder = index.feeder_ids[group.feeder].decode() if group.feeder >= 0 else None
        section = f"{group.status}:{feeder or ''}" if group.status == "current" else \
            f"planned:{group.events[0]['id']}:{feeder or ''}"
        common = {"section": section, "feeder_id": feeder, "feeder_name": names.get(feeder or ""),
                  "region": regions.get(feeder or "")}
        shapes = [lines[e] for p in group.positions.tolist()
                  if (e := edge_of[p]) is not None and e in lines]
        points = [places[tr_id[t]] for t in sorted(group.transformer_events)
                  if tr_id[t] in places]
        features.append(_feature(_section(shapes, points), {
            "level": "feeder", "status": group.status, **_summary(group.events),
            "customers_out": index.count_customers(group.positions),
            "transformers_out": index.count_transformers(group.positions), **common}))
        by_id = {e["id"]: e for e in group.events}
        for t in sorted(group.transformer_events, key=lambda n: tr_id[n]):
            tid = tr_id[t]
            code, name = areas.get(tid, (None, None))
            place = places.get(tid)
            features.append(_feature(
                {"type": "Point", "coordinates": list(place)} if place else None, {
                    "level": "area", "status": group.status,
                    **_summary(by_id[i] for i in dict.fromkeys(group.transformer_events[t])),
                    "customers_out": int(per_transformer[t]), "transformers_out": 1,
                    **common, "area_code": code, "area_name": name, "transformer_id": tid}))
    return features


def _feature(geometry: dict[str, Any] | None, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _section(lines: list[list[list[float]]], points: list[tuple[float, float]]
             ) -> dict[str, Any] | None:
    """A feeder section's geometry: its lines, else its transformers' hull or points."""
    if lines:
        return {"type": "MultiLineString", "coordinates": lines}
    if len(points) >= 3:
        hull = shapely.convex_hull(shapely.multipoints(points))
        if isinstance(hull, shapely.Polygon):
            ring = [[round(x, DIGITS), round(y, DIGITS)] for x, y in hull.exterior.coords]
            return {"type": "Polygon", "coordinates": [ring]}
    if points:
        return {"type": "MultiPoint", "coordinates": [list(p) for p in points]}
    return None


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def _edge_lines(engine: Engine, edge_ids: Sequence[str]) -> dict[str, list[list[float]]]:
    """Coordinates of the edges among ``edge_ids`` that have a geometry."""
    found: dict[str, list[list[float]]] = {}
    wkb = type_coerce(func.ST_AsBinary(Edge.geom), LargeBinary)
    with engine.connect() as conn:
        for chunk in _chunks(edge_ids):
            rows = conn.execute(select(Edge.edge_id, wkb).where(
                Edge.edge_id.in_(chunk), Edge.geom.is_not(None))).all()
            if not rows:
                continue
            shapes = shapely.from_wkb([bytes(r[1]) for r in rows])
            for (edge_id, _), shape in zip(rows, shapes, strict=True):
                coords = shapely.get_coordinates(shape)
                if len(coords) >= 2:
                    found[edge_id] = np.round(coords, DIGITS).tolist()
    return found


def _transformers(engine: Engine, transformer_ids: Sequence[str]
                  ) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[str | None,
                                                                              str | None]]]:
    """Positions, and (area code, area or transformer name), of ``transformer_ids``."""
    places: dict[str, tuple[float, float]] = {}
    areas: dict[str, tuple[str | None, str | None]] = {}
    query = (select(Transformer.transformer_id, func.ST_X(Transformer.geom),
                    func.ST_Y(Transformer.geom), Transformer.marketing_area_code,
                    TransformerArea.area_name, Transformer.transformer_name)
             .outerjoin(TransformerArea,
                        TransformerArea.area_code == Transformer.marketing_area_code))
    with engine.connect() as conn:
        for chunk in _chunks(transformer_ids):
            for tid, x, y, code, area, name in conn.execute(
                    query.where(Transformer.transformer_id.in_(chunk))):
                if x is not None and y is not None:
                    places[tid] = (round(float(x), DIGITS), round(float(y), DIGITS))
                areas[tid] = (code, area or name)
    return places, areas


def _feeder_names(engine: Engine, feeder_ids: Sequence[str]) -> dict[str, str]:
    """Names of the feeders among ``feeder_ids`` that have one."""
    names: dict[str, str] = {}
    with engine.connect() as conn:
        for chunk in _chunks(feeder_ids):
            names.update((f, str(n)) for f, n in conn.execute(
                select(Feeder.feeder_id, Feeder.feeder_name)
                .where(Feeder.feeder_id.in_(chunk), Feeder.feeder_name.is_not(None))).all())
    return names
