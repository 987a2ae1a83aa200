"""What part of the model an export covers: a run (``--as-of``) and filters.

Filters combine with AND:

* ``--station ID`` (repeatable): the station's feeders and everything on them;
* ``--feeder ID`` (repeatable): those feeders and everything on them;
* ``--bbox minlon,minlat,maxlon,maxlat``: features whose geometry intersects the box (feeders
  that have an edge in it; customers and points inside it).

Equipment belongs to a feeder by its own ``feeder_id``; customers by their reconciled
transformer. Tie edges with a blank ``feeder_id`` fall outside any station/feeder filter.
Unknown ids are an error (exit 2), checked against the model as of the chosen run.

>>> with engine.connect() as conn:
...     view = open_view(conn, Scope(as_of="1", feeders=("XL-000002",)))
>>> view.run, view.feeder_ids
(1, ('XL-000002',))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from gridtopo.db.read.asof import resolve_as_of, versioned
from gridtopo.errors import GridtopoError

BBox = tuple[float, float, float, float]


class UnknownFilterError(GridtopoError):
    """A ``--station`` or ``--feeder`` names an id the model (as of the run) does not hold."""

    http_status = 404


class BBoxError(GridtopoError):
    """``--bbox`` is not four numbers minlon,minlat,maxlon,maxlat with min < max."""

    http_status = 422


def parse_bbox(text: str) -> BBox:
    """``"113.2,22.9,113.8,23.4"`` → ``(113.2, 22.9, 113.8, 23.4)``."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as err:
        raise BBoxError(f"--bbox {text!r}: expected minlon,minlat,maxlon,maxlat") from err
    if len(values) != 4 or values[0] >= values[2] or values[1] >= values[3]:
        raise BBoxError(f"--bbox {text!r}: expected minlon,minlat,maxlon,maxlat with min < max")
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class Scope:
    """What the user asked for: ``as_of`` (run id or date, None = now) and the filters."""

    as_of: str | int | None = None
    stations: tuple[str, ...] = ()
    feeders: tuple[str, ...] = ()
    bbox: BBox | None = None


@dataclass(frozen=True)
class View:
    """A resolved export scope: the run (None = current model) and the filters.

    ``feeder_ids`` is None when no station/feeder filter applies, else the feeders in scope;
    ``station_ids`` likewise for the stations layer.
    """

    run: int | None = None
    feeder_ids: tuple[str, ...] | None = None
    station_ids: tuple[str, ...] | None = None
    bbox: BBox | None = None
    filters: dict[str, object] = field(default_factory=dict)


def _known(conn: Connection, table: str, column: str, ids: Sequence[str],
           run: int | None) -> set[str]:
    source = versioned(table, run)
    found = conn.execute(select(source.c[column]).where(source.c[column].in_(list(ids)))).all()
    return {row[0] for row in found}


def open_view(conn: Connection, scope: Scope = Scope()) -> View:
    """Resolve ``scope.as_of`` and check the filters against the model as of that run."""
    run = resolve_as_of(conn, scope.as_of)
    stations, feeders, box = scope.stations, scope.feeders, scope.bbox
    filters: dict[str, object] = {"as_of_run": run}
    feeder_ids: set[str] | None = None
    station_ids: set[str] | None = None
    feeder_table = versioned("feeders", run)
    if stations:
        missing = sorted(set(stations) - _known(conn, "stations", "station_id", stations, run))
        if missing:
            raise UnknownFilterError(f"--station {missing[0]}: no such station in the model"
                                     + (f" as of run {run}" if run is not None else ""))
        station_ids = set(stations)
        feeder_ids = {r[0] for r in conn.execute(select(feeder_table.c.feeder_id).where(
            feeder_table.c.station_id.in_(list(stations))))}
        filters["stations"] = sorted(stations)
    if feeders:
        missing = sorted(set(feeders) - _known(conn, "feeders", "feeder_id", feeders, run))
        if missing:
            raise UnknownFilterError(f"--feeder {missing[0]}: no such feeder in the model"
                                     + (f" as of run {run}" if run is not None else ""))
        feeder_ids = set(feeders) if feeder_ids is None else feeder_ids & set(feeders)
        own = {r[0] for r in conn.execute(select(feeder_table.c.station_id).where(
            feeder_table.c.feeder_id.in_(list(feeders)))) if r[0] is not None}
        station_ids = own if station_ids is None else station_ids & own
        filters["feeders"] = sorted(feeders)
    if box is not None:
        filters["bbox"] = list(box)
    return View(
        run=run,
        feeder_ids=tuple(sorted(feeder_ids)) if feeder_ids is not None else None,
        station_ids=tuple(sorted(station_ids)) if station_ids is not None else None,
        bbox=box,
        filters=filters,
    )
