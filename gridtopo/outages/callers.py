"""Find the customer a caller is: by customer id, phone, meter id, address text or location.

A call-centre agent (or the app, or an IVR) has one of these from the caller:

* the **customer id** (户号) — exact;
* the **phone** the call comes from — digits only, a leading ``+86``/``86`` dropped;
* the **meter id** (电能表资产号, ``customers.meter_id``) — exact;
* **address text** (用电地址), fuzzy: addresses are compared by their character bigrams
  (Dice coefficient), which tolerates a missing 省/市 prefix, a wrong character and
  reordered parts — Chinese has no spaces to split words on, and bigrams are what a word
  segmenter would give for place names;
* a **location** from a phone map (lon/lat in WGS 84, or GCJ-02 as every Chinese map app
  gives it): the customers within ``radius_m`` (nearest first) and the nearest transformer
  within the radius. A point farther than :data:`TERRITORY_M` from every transformer is
  outside the territory.

Names, phones and addresses come back masked by :mod:`gridtopo.privacy` unless ``reveal``.

>>> sorted(bigrams("广东省 东莞市"))
['东省', '东莞', '广东', '省东', '莞市']
>>> round(address_score("东莞市小河大道2号", "广东省东莞市小河大道2号89号"), 2)
0.73
>>> normalize_phone("+86 131-1054-5518")
'13110545518'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, and_, case, func, literal, or_, select

from gridtopo.db.models import Customer, CustomerPersonal, Transformer
from gridtopo.errors import InputError
from gridtopo.geo import gcj02_to_wgs84, haversine_m
from gridtopo.outages.contacts import contacts
from gridtopo.topology.index import QueryIndex
from gridtopo.topology.queries import _find

CRS_NAMES = ("wgs84", "gcj02")
RADIUS_M = 200.0
"""Default search radius around a location."""
MAX_RADIUS_M = 5000.0
TERRITORY_M = 5000.0
"""A location farther than this from every transformer is outside the territory."""
SERVICE_DROP_M = 500.0
"""How far a customer may lie from its transformer: transformers this much beyond the radius
are searched for customers within it."""
MAX_RESULTS = 50
ADDRESS_BIGRAMS = 16
"""Bigrams of the query scored in SQL to pick candidates (then all are scored exactly)."""
ADDRESS_CANDIDATES = 200
MIN_ADDRESS_SCORE = 0.3
_NOT_TEXT = re.compile(r"[\s,，。.、;；:：()（）\-—#/]+")


class SearchError(InputError):
    """A customer search that names no key, or more than one (422)."""


def normalize_phone(text: str) -> str:
    """Digits only, without a leading country code 86 on an 11-digit mobile number."""
    digits = re.sub(r"\D", "", text)
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


def bigrams(text: str) -> set[str]:
    """Character bigrams of ``text`` without spaces and punctuation (one character: itself)."""
    clean = _NOT_TEXT.sub("", text)
    return {clean[i:i + 2] for i in range(len(clean) - 1)} or ({clean} if clean else set())


def address_score(query: str, address: str) -> float:
    """Dice coefficient of the bigrams of ``query`` and ``address`` (0 to 1)."""
    a, b = bigrams(query), bigrams(address)
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


@dataclass(frozen=True)
class CallerQuery:
    """What a caller gave: exactly one of the keys (``near`` is ``(lon, lat)`` in ``crs``)."""

    customer_id: str | None = None
    phone: str | None = None
    meter: str | None = None
    q: str | None = None
    near: tuple[float, float] | None = None
    crs: str = "wgs84"
    radius_m: float = RADIUS_M
    limit: int = 10

    def key(self) -> str:
        """Which key is given; :class:`SearchError` unless exactly one."""
        given = [name for name in ("customer_id", "phone", "meter", "q", "near")
                 if getattr(self, name) not in (None, "")]
        if len(given) != 1:
            raise SearchError("give exactly one of customer_id, phone, meter, q (address text) "
                              f"or near (lon,lat); got {', '.join(given) or 'none'}")
        if self.crs not in CRS_NAMES:
            raise SearchError(f"unknown crs {self.crs!r}: use wgs84 or gcj02")
        if not 0 < self.radius_m <= MAX_RADIUS_M:
            raise SearchError(f"radius_m must be in (0, {MAX_RADIUS_M:g}], not {self.radius_m}")
        return given[0]


def parse_near(text: str) -> tuple[float, float]:
    """``"lon,lat"`` as floats; :class:`SearchError` naming the value when malformed."""
    try:
        lon, lat = (float(part) for part in text.split(","))
    except ValueError as err:
        raise SearchError(f"near={text!r}: expected lon,lat in degrees") from err
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise SearchError(f"near={text!r}: lon must be in [-180, 180], lat in [-90, 90]")
    return lon, lat


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """A phone map's point in WGS 84 (GCJ-02 converted back)."""
    if crs == "gcj02":
        x, y = gcj02_to_wgs84(lon, lat)
        return float(x), float(y)
    return lon, lat


def _rows(engine: Engine, condition: Any, limit: int) -> list[dict[str, Any]]:
    query = (select(Customer.customer_id, Customer.meter_id, Customer.status,
                    Customer.transformer_id)
             .outerjoin(CustomerPersonal, CustomerPersonal.customer_id == Customer.customer_id)
             .where(condition).order_by(Customer.customer_id).limit(limit))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def _by_address(engine: Engine, text: str, limit: int) -> list[dict[str, Any]]:
    """Candidates scored in SQL by how many of the query's bigrams their address holds, then
    scored exactly; those at :data:`MIN_ADDRESS_SCORE` or more, best first."""
    grams = sorted(bigrams(text), key=lambda g: (not any(c.isdigit() for c in g), g))
    if not grams:
        return []
    hits = sum((case((CustomerPersonal.address.like(f"%{g}%"), 1), else_=0)
                for g in grams[:ADDRESS_BIGRAMS]), literal(0))
    query = (select(Customer.customer_id, Customer.meter_id, Customer.status,
                    Customer.transformer_id, CustomerPersonal.address, hits.label("hits"))
             .join(CustomerPersonal, CustomerPersonal.customer_id == Customer.customer_id)
             .where(or_(*(CustomerPersonal.address.like(f"%{g}%")
                          for g in grams[:ADDRESS_BIGRAMS])))
             .order_by(hits.desc(), Customer.customer_id).limit(ADDRESS_CANDIDATES))
    with engine.connect() as conn:
        found = [dict(r._mapping) for r in conn.execute(query)]
    for row in found:
        row["score"] = round(address_score(text, row.pop("address") or ""), 4)
        row.pop("hits")
    found = [r for r in found if r["score"] >= MIN_ADDRESS_SCORE]
    return sorted(found, key=lambda r: (-r["score"], r["customer_id"]))[:limit]


def _box(lon: float, lat: float, metres: float) -> tuple[float, float]:
    """Half-widths in degrees (lon, lat) of a box ``metres`` around a point."""
    return metres / (111_320.0 * max(np.cos(np.radians(lat)), 0.01)), metres / 110_574.0


def nearby(engine: Engine, lon: float, lat: float, radius_m: float, limit: int
           ) -> dict[str, Any]:
    """Customers within ``radius_m`` of a WGS 84 point (nearest first, ``distance_m``), the
    nearest transformer within the radius, and whether the point lies in the territory."""
    reach = max(radius_m + SERVICE_DROP_M, TERRITORY_M)
    dx, dy = _box(lon, lat, reach)
    x, y = func.ST_X(Transformer.geom), func.ST_Y(Transformer.geom)
    with engine.connect() as conn:
        trs = conn.execute(select(Transformer.transformer_id, x, y).where(and_(
            Transformer.geom.is_not(None), x.between(lon - dx, lon + dx),
            y.between(lat - dy, lat + dy)))).all()
        t_dist = haversine_m(lon, lat, np.array([t[1] for t in trs], dtype=float),
                             np.array([t[2] for t in trs], dtype=float)) if trs else np.zeros(0)
        inside = bool(trs) and float(t_dist.min()) <= TERRITORY_M
        near_trs = [t[0] for t, d in zip(trs, t_dist.tolist(), strict=True)
                    if d <= radius_m + SERVICE_DROP_M]
        cx, cy = func.ST_X(Customer.geom), func.ST_Y(Customer.geom)
        rows: list[Any] = []
        for start in range(0, len(near_trs), 500):
            rows += conn.execute(select(Customer.customer_id, Customer.meter_id, Customer.status,
                                        Customer.transformer_id, cx, cy).where(
                Customer.transformer_id.in_(near_trs[start:start + 500]),
                Customer.geom.is_not(None))).all()
    items: list[Any] = []
    if rows:
        c_dist = haversine_m(lon, lat, np.array([r[4] for r in rows], dtype=float),
                             np.array([r[5] for r in rows], dtype=float))
        for r, d in sorted(zip(rows, c_dist.tolist(), strict=True), key=lambda p: p[1]):
            if d <= radius_m and len(items) < limit:
                items.append({"customer_id": r[0], "meter_id": r[1], "status": r[2],
                              "transformer_id": r[3], "distance_m": round(d, 1)})
    transformer = None
    if trs:
        best = int(np.argmin(t_dist))
        if float(t_dist[best]) <= radius_m:
            transformer = {"transformer_id": trs[best][0],
                           "distance_m": round(float(t_dist[best]), 1)}
    return {"items": items, "transformer": transformer, "in_territory": inside}


def find_customers(engine: Engine, index: QueryIndex, query: CallerQuery, *, reveal: bool
                   ) -> dict[str, Any]:
    """The customers matching ``query`` (see the module): ``{"matched_by", "total",
    "personal_data", "items": [{"customer_id", "status", "meter_id", "transformer_id",
    "feeder_id", "name", "phone", "address", …}]}`` with ``score`` (address) or
    ``distance_m`` (location), and for a location ``transformer`` and ``in_territory``."""
    key = query.key()
    limit = max(1, min(query.limit, MAX_RESULTS))
    extra: dict[str, Any] = {}
    if key == "customer_id":
        items = _rows(engine, Customer.customer_id == (query.customer_id or "").strip(), limit)
    elif key == "meter":
        items = _rows(engine, Customer.meter_id == (query.meter or "").strip(), limit)
    elif key == "phone":
        raw = (query.phone or "").strip()
        phones = list(dict.fromkeys((normalize_phone(raw), raw)))
        items = _rows(engine, CustomerPersonal.phone.in_(phones), limit)
    elif key == "q":
        items = _by_address(engine, query.q or "", limit)
    else:
        assert query.near is not None
        lon, lat = to_wgs84(*query.near, query.crs)
        found = nearby(engine, lon, lat, query.radius_m, limit)
        items = found.pop("items")
        extra = {"wgs84": [round(lon, 7), round(lat, 7)], **found}
    people = contacts(engine, [i["customer_id"] for i in items], reveal=reveal)
    for item in items:
        c = _find(index.customer_ids, item["customer_id"])
        position = index.customer_position(c) if c >= 0 else -1
        item["feeder_id"] = index.feeder_at(position) if 0 <= position < index.n_energized \
            else None
        item.update(people.get(item["customer_id"], {}))
    return {"matched_by": key, "total": len(items),
            "personal_data": "full" if reveal else "masked", "items": items, **extra}
