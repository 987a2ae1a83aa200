"""Reliability indices (供电可靠性指标) from closed outage events: SAIFI, SAIDI, CAIDI, ASAI
(供电可靠率 RS-1) and MAIFI, per month, per region, per feeder and per kind, after IEEE 1366.

Definitions, for a group of customers (a feeder, a region, the whole model) over a period:

* **SAIFI** = Σ customers interrupted / customers served (interruptions per customer);
* **SAIDI** = Σ customer-minutes interrupted / customers served (minutes per customer);
* **CAIDI** = SAIDI / SAIFI (minutes per interruption; ``None`` when nobody was interrupted);
* **ASAI** (RS-1) = 1 − SAIDI / minutes in the period;
* **MAIFI** = Σ customers momentarily interrupted / customers served.

Only **sustained** interruptions count towards SAIFI, SAIDI, CAIDI and ASAI: events lasting
longer than ``min_minutes`` (5 by default, IEEE 1366); shorter (momentary) events count
towards MAIFI and ``momentary_events`` only. Only **closed** events count: an active event
has no duration yet. Planned (计划停电) and unplanned (故障停电) events are reported together
and, in ``by_kind`` and with ``by=("kind",)``, separately; ``kind=`` keeps one of them.

An event belongs to the **month of its start in Asia/Shanghai local time** (UTC+8), whole,
even when it ends in the next month; ``start``/``end`` months are inclusive, in that time too.

**Totals** (the whole model, per month, per kind) use what each event stored when it was
declared and closed (``customers_interrupted``, ``customer_minutes``). A **breakdown per
feeder or region** needs each event's customers per feeder, which events do not store: it is
recomputed from the event's devices (opened, and ties closed) with **today's** network (the
current query index), unscaled, times the event's stored duration. When the recomputed
customers differ from the stored ones — the network changed since, or a device is gone — the
event is listed in ``network_changed_events`` and every row it contributes to has
``network_changed: true``: the breakdown then does not add up to the totals, visibly.
**Customers served** are the active customers on each feeder in the current index (normal
switching state); the model's are those on any feeder. A feeder's region is its station's
(:func:`~gridtopo.topology.regions.station_regions`).

On the doctest model (2,458 active customers linked to two feeders), one 90-minute fault in
May 2024 and one 3-minute trip:

>>> from gridtopo.outages.events import close, declare
>>> from gridtopo.topology.index import load_index
>>> index = load_index(engine)
>>> start = dt.datetime(2024, 5, 6, 8, 0, tzinfo=dt.timezone.utc)
>>> fault = declare(engine, index, ["SB-00000009"], started_at=start)
>>> _ = close(engine, fault["id"], ended_at=start + dt.timedelta(minutes=90))
>>> trip = declare(engine, index, ["SB-00000001"], started_at=start + dt.timedelta(days=1))
>>> _ = close(engine, trip["id"], ended_at=start + dt.timedelta(days=1, minutes=3))
>>> report = reliability_report(engine, index, by=("feeder",))
>>> t = report["totals"]
>>> t["customers_served"], t["events"], t["customers_interrupted"], t["momentary_events"]
(2458, 1, 1254, 1)
>>> round(t["saifi"], 4), round(t["saidi"], 2), t["caidi"], round(t["maifi"], 2)
(0.5102, 45.92, 90.0, 0.69)
>>> [(r["feeder_id"], r["customers_interrupted"]) for r in report["rows"]]
[('XL-000001', 1254), ('XL-000002', 0)]
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, selectinload

from gridtopo.clock import as_utc, utcnow
from gridtopo.db.models import OutageEvent
from gridtopo.errors import GridtopoError, InputError, OutputExistsError, snippet
from gridtopo.outages.events import EVENT_KINDS
from gridtopo.topology.index import QueryIndex
from gridtopo.topology.queries import impact
from gridtopo.topology.regions import UNKNOWN, station_regions

LOCAL_TIME = ZoneInfo("Asia/Shanghai")
"""The time zone whose calendar months the report counts in (China Standard Time, UTC+8)."""
MIN_MINUTES = 5.0
"""IEEE 1366: an interruption longer than this many minutes is sustained, else momentary."""
MAX_MONTHS = 240
"""Longest period one report covers (20 years), so that rows per month stay a report."""
DIMENSIONS = ("month", "kind", "region", "feeder")
"""What rows can be grouped by, in the order their columns appear."""
NO_FEEDER = ""
"""The feeder label of customers that hang on no feeder (a station bus, say)."""
CSV_COLUMNS = (
    "month", "kind", "region", "feeder_id", "customers_served", "events",
    "customers_interrupted", "customer_minutes", "saifi", "saidi", "caidi", "asai",
    "momentary_events", "momentary_interruptions", "maifi", "period_minutes",
    "network_changed",
)
"""The columns of :func:`write_csv`, in order (those of a dimension not grouped by are left
out)."""
CSV_CHINESE = {
    "month": "月份", "kind": "停电性质", "region": "地区", "feeder_id": "线路",
    "customers_served": "用户总数", "events": "停电次数",
    "customers_interrupted": "停电用户数", "customer_minutes": "停电时户数(户·分钟)",
    "saifi": "系统平均停电频率", "saidi": "系统平均停电时间(分钟)",
    "caidi": "用户平均停电持续时间(分钟)", "asai": "供电可靠率RS-1",
    "momentary_events": "瞬时停电次数", "momentary_interruptions": "瞬时停电用户数",
    "maifi": "平均短时停电频率", "period_minutes": "统计期分钟数",
    "network_changed": "网络已变化",
}
"""The Chinese name of each CSV column, for ``chinese`` headers."""


class ReliabilityInputError(InputError):
    """A reliability request that cannot be answered as asked (bad month, kind, grouping)."""


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(value: str) -> tuple[int, int]:
    """``YYYY-MM`` (years 1900–9999) as (year, month); :class:`ReliabilityInputError`
    otherwise.

    >>> parse_month("2024-05")
    (2024, 5)
    """
    found = _MONTH.match(value.strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1900:
        raise ReliabilityInputError(f"{snippet(value)} is not a month such as 2024-05 "
                                    "(YYYY-MM, from 1900)")
    return int(found.group(1)), int(found.group(2))


def month_of(moment: dt.datetime) -> str:
    """The Asia/Shanghai calendar month (``YYYY-MM``) of an instant; naive means UTC.

    >>> month_of(dt.datetime(2024, 5, 31, 16, 30))  # 00:30 on 1 June in Shanghai
    '2024-06'
    """
    return as_utc(moment).astimezone(LOCAL_TIME).strftime("%Y-%m")


def month_minutes(month: str) -> float:
    """Minutes in a calendar month: days × 1440 (China keeps no daylight saving time).

    >>> month_minutes("2024-02"), month_minutes("2023-02")
    (41760.0, 40320.0)
    """
    year, number = parse_month(month)
    return float(calendar.monthrange(year, number)[1] * 1440)


def months_between(first: str, last: str) -> list[str]:
    """The months from ``first`` to ``last`` inclusive.

    >>> months_between("2024-11", "2025-02")
    ['2024-11', '2024-12', '2025-01', '2025-02']
    """
    year, month = parse_month(first)
    end = parse_month(last)
    if (year, month) > end:
        raise ReliabilityInputError(f"the period starts ({first}) after it ends ({last})")
    if (end[0] - year) * 12 + end[1] - month >= MAX_MONTHS:
        raise ReliabilityInputError(f"the period {first} to {last} is longer than "
                                    f"{MAX_MONTHS} months: ask for a shorter one")
    found = []
    while (year, month) <= end:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


@dataclass
class _Event:
    """One closed event as the report counts it."""

    id: int
    kind: str
    month: str
    minutes: float
    customers: int
    customer_minutes: float
    by_feeder: dict[str, int] = field(default_factory=dict)
    recomputed: int | None = None
    error: str | None = None

    @property
    def changed(self) -> bool:
        return self.recomputed != self.customers


@dataclass
class _Sums:
    """Running sums of one row."""

    events: int = 0
    customers: int = 0
    customer_minutes: float = 0.0
    momentary_events: int = 0
    momentary_customers: int = 0
    changed: bool = False

    def add(self, customers: int, customer_minutes: float, sustained: bool,
            changed: bool) -> None:
        """Count one event's part in this row: ``customers`` interrupted for
        ``customer_minutes`` in all."""
        if sustained:
            self.events += 1
            self.customers += customers
            self.customer_minutes += customer_minutes
        else:
            self.momentary_events += 1
            self.momentary_customers += customers
        self.changed |= changed


def indices(served: int, sums: _Sums, period_minutes: float) -> dict[str, Any]:
    """The indices of a row from its sums: counts, SAIFI, SAIDI, CAIDI, ASAI and MAIFI.

    With no customers served the ratios are ``None`` (nothing to divide by); with no
    interruption SAIFI and SAIDI are 0, ASAI 1 and CAIDI ``None``.

    >>> row = indices(1000, _Sums(events=2, customers=300, customer_minutes=27000.0), 43200.0)
    >>> row["saifi"], row["saidi"], row["caidi"], round(row["asai"], 6)
    (0.3, 27.0, 90.0, 0.999375)
    """
    saifi = sums.customers / served if served else None
    saidi = sums.customer_minutes / served if served else None
    return {
        "customers_served": served, "events": sums.events,
        "customers_interrupted": sums.customers,
        "customer_minutes": round(sums.customer_minutes, 3),
        "saifi": saifi, "saidi": saidi,
        "caidi": sums.customer_minutes / sums.customers if sums.customers else None,
        "asai": 1 - saidi / period_minutes if saidi is not None and period_minutes else None,
        "momentary_events": sums.momentary_events,
        "momentary_interruptions": sums.momentary_customers,
        "maifi": sums.momentary_customers / served if served else None,
        "period_minutes": period_minutes, "network_changed": sums.changed,
    }


def feeder_regions(engine: Engine, index: QueryIndex) -> dict[str, str]:
    """feeder id → region of its station (``未知`` without a station or a known place)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT station_id, station_name, ST_X(geom), ST_Y(geom) FROM stations")).all()
    stations = pl.DataFrame(rows, schema={"station_id": pl.Utf8, "station_name": pl.Utf8,
                                          "lon": pl.Float64, "lat": pl.Float64}, orient="row")
    region = dict(station_regions(stations).iter_rows()) if stations.height else {}
    return {f.decode(): region.get(s.decode(), UNKNOWN)
            for f, s in zip(index.feeder_ids.tolist(), index.feeder_station.tolist(),
                            strict=True)}


def customers_served(index: QueryIndex) -> dict[str, int]:
    """feeder id → active customers on it in the normal state (from the index).

    >>> from gridtopo.topology.index import load_index
    >>> customers_served(load_index(engine))
    {'XL-000001': 1700, 'XL-000002': 758}
    """
    per_position = np.diff(index.cum_customers)
    labels = np.asarray(index.position_feeder)
    on = labels >= 0
    counts = np.bincount(labels[on], weights=per_position[on], minlength=len(index.feeder_ids))
    return {f.decode(): int(c) for f, c in zip(index.feeder_ids.tolist(), counts.tolist(),
                                               strict=True)}


def _closed_events(engine: Engine, kinds: Sequence[str]) -> list[tuple[OutageEvent, list[str],
                                                                        list[str]]]:
    with Session(engine) as session:
        rows = session.execute(
            select(OutageEvent).options(selectinload(OutageEvent.devices))
            .where(OutageEvent.status == "closed", OutageEvent.kind.in_(kinds))
            .order_by(OutageEvent.started_at, OutageEvent.id)).scalars().all()
        return [(e, sorted(d.device_id for d in e.devices if d.action == "open"),
                 sorted(d.device_id for d in e.devices if d.action == "close")) for e in rows]


def _event(index: QueryIndex, row: OutageEvent, opened: list[str], closed: list[str]
           ) -> _Event:
    """A closed event with its customers per feeder recomputed on today's network."""
    start, end = as_utc(row.started_at), as_utc(row.ended_at)
    assert start is not None and end is not None
    event = _Event(id=row.id, kind=row.kind, month=month_of(start),
                   minutes=(end - start).total_seconds() / 60,
                   customers=int(row.customers_interrupted or 0),
                   customer_minutes=float(row.customer_minutes or 0.0))
    try:
        result = impact(index, opened, close=closed)
    except GridtopoError as err:  # a device no longer in the network, a tie now closed, ...
        event.error = str(err)
        return event
    event.recomputed = result.customers
    event.by_feeder = {name: int(f["customers"]) for name, f in result.by_feeder.items()}
    return event


def reliability_report(
    engine: Engine,
    index: QueryIndex,
    *,
    by: Iterable[str] = (),
    start: str | None = None,
    end: str | None = None,
    kind: str | None = None,
    min_minutes: float = MIN_MINUTES,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """SAIFI, SAIDI, CAIDI, ASAI and MAIFI of the closed events (see the module docstring).

    ``by`` names the row dimensions (any of ``month``, ``kind``, ``region``, ``feeder``;
    none: only ``totals``); ``start``/``end`` the first and last month (``YYYY-MM``, local
    time; default the months of the first and last closed event, or the month of ``now``
    when there is none); ``kind`` ``planned`` or ``unplanned`` keeps one kind. Every month
    of the period, kind and feeder (with its region) gets a row, so a feeder without
    interruptions shows zeros. Rows with ``feeder`` or ``region`` use the recomputed
    per-feeder breakdown; ``totals``, ``by_kind`` and month/kind rows the stored totals.
    """
    dims = list(dict.fromkeys(by))
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise ReliabilityInputError(f"cannot group by {', '.join(map(repr, unknown))}: use "
                                    f"{', '.join(DIMENSIONS)}")
    dims = [d for d in DIMENSIONS if d in dims]
    if kind is not None and kind not in EVENT_KINDS:
        raise ReliabilityInputError(f"unknown outage kind {kind!r}: use planned or unplanned")
    if not math.isfinite(min_minutes) or min_minutes < 0:
        raise ReliabilityInputError(f"min_minutes must be a number of minutes, 0 or more "
                                    f"(got {min_minutes})")
    kinds = [kind] if kind else list(EVENT_KINDS)
    spatial = "feeder" in dims or "region" in dims
    loaded = [_event(index, *row) for row in _closed_events(engine, kinds)]
    months = _period(start, end, sorted(e.month for e in loaded), month_of(now or utcnow()))
    events = [e for e in loaded if months[0] <= e.month <= months[-1]]
    period = sum(month_minutes(m) for m in months)

    served = customers_served(index)
    region_of = feeder_regions(engine, index) if "region" in dims else {}
    region_served: dict[str, int] = {}
    for feeder, count in served.items():
        region = region_of.get(feeder, UNKNOWN)
        region_served[region] = region_served.get(region, 0) + count
    model_served = sum(served.values())

    def sustained(e: _Event) -> bool:
        return e.minutes > min_minutes

    totals, by_kind = _Sums(), {k: _Sums() for k in kinds}
    for e in events:
        for sums in (totals, by_kind[e.kind]):
            sums.add(e.customers, e.customer_minutes, sustained(e), e.changed)

    rows: dict[tuple[str, ...], _Sums] = {}
    for e in events:
        if not spatial:  # the stored totals
            key = _key(dims, month=e.month, kind=e.kind)
            rows.setdefault(key, _Sums()).add(e.customers, e.customer_minutes, sustained(e),
                                              e.changed)
            continue
        touched: dict[tuple[str, ...], int] = {}
        for feeder, customers in e.by_feeder.items():  # recomputed, today's network
            key = _key(dims, month=e.month, kind=e.kind, feeder=feeder,
                       region=region_of.get(feeder, UNKNOWN))
            touched[key] = touched.get(key, 0) + customers
        for key, customers in touched.items():
            rows.setdefault(key, _Sums()).add(customers, customers * e.minutes, sustained(e),
                                              e.changed)

    listed = []
    if dims:
        feeders = sorted(served)
        extra = sorted({k[dims.index("feeder")] for k in rows} - set(feeders)) \
            if "feeder" in dims else []
        regions = sorted({region_of.get(f, UNKNOWN) for f in feeders}
                         | ({k[dims.index("region")] for k in rows} if "region" in dims
                            else set()))
        for key in _keys(dims, months, kinds, [*feeders, *extra], regions, region_of):
            values = dict(zip(dims, key, strict=True))
            if key not in rows and values.get("feeder", "x") == NO_FEEDER:
                continue
            if "feeder" in dims:
                count = served.get(values["feeder"], 0)
            elif "region" in dims:
                count = region_served.get(values["region"], 0)
            else:
                count = model_served
            minutes = month_minutes(values["month"]) if "month" in dims else period
            named = {("feeder_id" if d == "feeder" else d): v for d, v in values.items()}
            listed.append({**named, **indices(count, rows.get(key, _Sums()), minutes)})
    changed = [{"id": e.id, "month": e.month, "customers_interrupted": e.customers,
                "recomputed": e.recomputed, **({"error": e.error} if e.error else {})}
               for e in events if e.changed]
    return {
        "period": {"from": months[0], "to": months[-1], "months": len(months),
                   "minutes": period, "timezone": str(LOCAL_TIME)},
        "kind": kind or "all", "min_minutes": min_minutes, "by": dims,
        "totals": indices(model_served, totals, period),
        "by_kind": {k: indices(model_served, s, period) for k, s in by_kind.items()},
        "rows": listed,
        "network_changed": bool(changed), "network_changed_events": changed,
    }


def _period(start: str | None, end: str | None, seen: Sequence[str], today: str) -> list[str]:
    """The months of the report: ``start``..``end``, each defaulting to the first or last
    month with an event (``today``'s month when there is none).

    >>> _period(None, None, [], "2026-12"), _period("2024-01", "2024-02", ["2025-01"], "x")
    (['2026-12'], ['2024-01', '2024-02'])
    """
    lo = "{:04d}-{:02d}".format(*parse_month(start)) if start else (seen[0] if seen else today)
    hi = "{:04d}-{:02d}".format(*parse_month(end)) if end else (seen[-1] if seen else today)
    if start is None:
        lo = min(lo, hi)
    if end is None:
        hi = max(lo, hi)
    return months_between(lo, hi)


def _key(dims: Sequence[str], **values: str) -> tuple[str, ...]:
    return tuple(values[d] for d in dims)


def _keys(dims: Sequence[str], months: Sequence[str], kinds: Sequence[str],
          feeders: Sequence[str], regions: Sequence[str], region_of: dict[str, str]
          ) -> list[tuple[str, ...]]:
    """Every row key, in order: months × kinds × (regions or feeders with their region)."""
    places: list[dict[str, str]] = [{}]
    if "feeder" in dims:
        places = sorted(({"region": region_of.get(f, UNKNOWN), "feeder": f} for f in feeders),
                        key=lambda p: (p["region"], p["feeder"]) if "region" in dims
                        else (p["feeder"],))
    elif "region" in dims:
        places = [{"region": r} for r in regions]
    keys = []
    for month in months if "month" in dims else [""]:
        for kind in kinds if "kind" in dims else [""]:
            for place in places:
                values = {"month": month, "kind": kind, **place}
                keys.append(tuple(values[d] for d in dims))
    return keys


def write_csv(report: dict[str, Any], path: Path, *, overwrite: bool = False,
              chinese: bool = False) -> int:
    """Write the report's rows (or its totals, when it has no rows) to ``path`` as CSV in
    UTF-8 with a byte-order mark, so that Excel opens it as Unicode; the number of rows.
    Column names are English (:data:`CSV_COLUMNS`), with ``chinese`` followed by the Chinese
    name (:data:`CSV_CHINESE`), e.g. ``saifi 系统平均停电频率``. An existing file is replaced
    only with ``overwrite`` (else :class:`OutputExistsError`).

    >>> n = write_csv({"by": ["month"], "rows": [{"month": "2024-05", "saifi": 0.5}]},
    ...               Path("r.csv"), chinese=True)
    >>> raw = Path("r.csv").read_bytes()
    >>> raw[:3].hex(), n, raw.decode("utf-8-sig").split(",")[:2]
    ('efbbbf', 1, ['month 月份', 'customers_served 用户总数'])
    """
    dims = {("feeder_id" if d == "feeder" else d) for d in report["by"]}
    names = {"month", "kind", "region", "feeder_id"}
    columns = [c for c in CSV_COLUMNS if c not in names or c in dims]
    rows = report["rows"] if report["rows"] or report["by"] else [report["totals"]]
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists (use --force to replace it)")
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([f"{c} {CSV_CHINESE[c]}" if chinese else c for c in columns])
        writer.writerows([row.get(c, "") for c in columns] for row in rows)
    return len(rows)
