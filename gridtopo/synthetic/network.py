"""The true distribution network: substations, radial 10 kV feeders, ties and transformers.

This is ground truth before any export defect. Each substation has one bus node; each of its
feeders starts with a ``breaker`` edge from that bus to the feeder's ``source_node`` (so the
source node is the breaker's *downstream* terminal, the "connectivity node fed by the
station's outgoing breaker" of the spec). From there a feeder is a tree:

* a trunk of ``line``/``cable`` segments heading away from the station, cut every few segments
  by a normally-closed sectionalising ``switch`` and, on some feeders, by a ``recloser``;
* laterals branching off the trunk, each protected by a ``fuse`` at its tee;
* transformers, each on its own node, hanging off a trunk or lateral node through a drop-out
  ``fuse``.

Normally-open tie ``switch``es (``feeder_id`` blank) join the far ends of neighbouring feeders
of the same station and, for some stations, a feeder of the nearest other station; the tie
conductor up to the switch belongs to the first feeder.

Everything is held in flat numpy arrays indexed by node / edge / transformer number, because
the export, the defect injection and the truth files all work on whole columns. The build is a
Python loop per feeder (≈12k at full size), never per customer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridtopo.progress import ProgressCallback
from gridtopo.synthetic import names
from gridtopo.synthetic.sizing import Sizes, apportion

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Edge kinds, in the order of EDGE_KINDS (the strings written to edges.csv).
EDGE_KINDS = ("line", "cable", "switch", "breaker", "fuse", "recloser")
LINE, CABLE, SWITCH, BREAKER, FUSE, RECLOSER = range(6)
SWITCHING_KINDS = frozenset({SWITCH, BREAKER, FUSE, RECLOSER})

NO_FEEDER = -1  # feeder index of a station bus node and of a tie edge

_R = 6371008.8
_DEG = 180.0 / math.pi

PUBLIC_KVA = np.array([100, 200, 315, 400, 500, 630, 800])
PUBLIC_KVA_P = np.array([0.05, 0.15, 0.2, 0.25, 0.15, 0.15, 0.05])
DEDICATED_KVA = np.array([250, 315, 400, 500, 630, 800, 1000, 1250])
DEDICATED_SHARE = 0.08  # share of transformers that are a single big customer's 专变


@dataclass
class Network:
    """The whole true network as columns. Indices (not ids) link the arrays together."""

    # stations
    station_base: list[str]
    station_voltage: IntArray
    station_city: IntArray
    station_lon: FloatArray
    station_lat: FloatArray
    station_bus: IntArray
    # feeders
    feeder_station: IntArray
    feeder_base: list[str]
    feeder_numeral: IntArray
    feeder_source: IntArray
    feeder_node_start: IntArray  # nodes of feeder f are [start, end) plus tie-conductor nodes
    feeder_node_end: IntArray
    # nodes
    node_lon: FloatArray
    node_lat: FloatArray
    node_feeder: IntArray
    node_parent_edge: IntArray  # edge feeding the node from the source side, -1 for roots
    # edges
    edge_kind: IntArray
    edge_feeder: IntArray
    edge_from: IntArray
    edge_to: IntArray
    edge_open: IntArray  # 1 normally open, 0 closed, -1 not a switching device
    # transformers (one 台区 each)
    tr_feeder: IntArray
    tr_node: IntArray
    tr_capacity: IntArray
    tr_dedicated: npt.NDArray[np.bool_]
    tr_stem: list[str]  # village / building / company part of the name
    tr_number: IntArray  # 1号, 2号… within the stem on the feeder (0 for 专变)
    tr_variant: IntArray  # which spelling habit names this transformer

    @property
    def tr_station(self) -> IntArray:
        """Station index of each transformer's true feeder."""
        return self.feeder_station[self.tr_feeder]


class _Builder:
    """Append-only node and edge lists used while growing feeders one by one."""

    def __init__(self) -> None:
        self.lon: list[float] = []
        self.lat: list[float] = []
        self.node_feeder: list[int] = []
        self.parent: list[int] = []
        self.kind: list[int] = []
        self.feeder: list[int] = []
        self.src: list[int] = []
        self.dst: list[int] = []
        self.open: list[int] = []

    def node(self, lon: float, lat: float, feeder: int, parent_edge: int = -1) -> int:
        self.lon.append(lon)
        self.lat.append(lat)
        self.node_feeder.append(feeder)
        self.parent.append(parent_edge)
        return len(self.lon) - 1

    def edge(self, kind: int, feeder: int, a: int, b: int, normally_open: bool = False) -> int:
        self.kind.append(kind)
        self.feeder.append(feeder)
        self.src.append(a)
        self.dst.append(b)
        self.open.append((1 if normally_open else 0) if kind in SWITCHING_KINDS else -1)
        return len(self.kind) - 1

    def child(self, kind: int, feeder: int, parent: int, heading: float, dist_m: float) -> int:
        """A new node ``dist_m`` metres from ``parent`` along ``heading`` (radians from east),
        joined to it by a new edge of ``kind``; returns the new node."""
        lat0 = self.lat[parent]
        lat = lat0 + dist_m * math.sin(heading) / _R * _DEG
        lon = self.lon[parent] + dist_m * math.cos(heading) / (_R * math.cos(lat0 / _DEG)) * _DEG
        e = len(self.kind)
        n = self.node(lon, lat, feeder, e)
        self.edge(kind, feeder, parent, n)
        return n


def _place_stations(rng: np.random.Generator, n: int) -> tuple[IntArray, FloatArray, FloatArray]:
    """City of each station (∝ customers) and its position scattered around the city centre."""
    weights = np.array([c.weight for c in names.CITIES])
    per_city = apportion(n, weights, minimum=1 if n >= len(names.CITIES) else 0)
    city = np.repeat(np.arange(len(names.CITIES)), per_city)
    spread = np.array([c.spread_deg for c in names.CITIES])[city]
    lon = np.array([c.lon for c in names.CITIES])[city] + rng.normal(0, 1, n) * spread
    lat = np.array([c.lat for c in names.CITIES])[city] + rng.normal(0, 0.8, n) * spread
    # Keep stations far enough inside the box that their feeders and customers (and even a
    # customer_misplaced 20 km off, or a GCJ-02 shift) stay inside it too.
    lon = np.clip(lon, names.LON_MIN + 0.3, names.LON_MAX - 0.3)
    lat = np.clip(lat, names.LAT_MIN + 0.3, names.LAT_MAX - 0.3)
    return city.astype(np.int64), lon, lat


def _station_bases(rng: np.random.Generator, city: IntArray) -> list[str]:
    """Station names unique within a city (realistic repeats across cities)."""
    out = [""] * city.size
    for c in np.unique(city):
        idx = np.flatnonzero(city == c)
        for i, base in zip(idx.tolist(), names.place_names(rng, idx.size), strict=True):
            out[i] = base
    return out


def _feeder_names(rng: np.random.Generator, count: int) -> tuple[list[str], list[int]]:
    """Feeder base names of one station: unique, except that ~15 % come as Ⅰ/Ⅱ pairs."""
    bases = names.place_names(rng, count)
    numerals = [0] * count
    for i in range(1, count):
        if rng.random() < 0.15 and numerals[i - 1] in (0, 1):
            bases[i] = bases[i - 1]
            numerals[i - 1] = 1
            numerals[i] = 2
    return bases, numerals


def _transformer_stems(rng: np.random.Generator, k: int, dedicated: npt.NDArray[np.bool_]
                       ) -> tuple[list[str], list[int]]:
    """Name stems of one feeder's transformers: a few villages/estates numbered 1号, 2号…,
    and factories for the dedicated ones. (stem, number) is unique within the feeder."""
    n_villages = int(min(max(1, k // 4), 6))
    places = names.place_names(rng, n_villages + int(dedicated.sum()))
    villages = [p + names.VILLAGE_SUFFIXES[int(rng.integers(len(names.VILLAGE_SUFFIXES)))]
                for p in places[:n_villages]]
    factories = iter(places[n_villages:])
    counters = [0] * n_villages
    stems: list[str] = []
    numbers: list[int] = []
    for is_ded in dedicated.tolist():
        if is_ded:
            industry = names.INDUSTRIES[int(rng.integers(len(names.INDUSTRIES)))]
            stems.append(f"{next(factories)}{industry}厂")
            numbers.append(0)
        else:
            v = int(rng.integers(n_villages))
            counters[v] += 1
            stems.append(villages[v])
            numbers.append(counters[v])
    return stems, numbers


def build_network(rng: np.random.Generator, sizes: Sizes,
                  progress: ProgressCallback | None = None) -> Network:
    """Grow the province's network. ``progress`` is an optional ``(stage, done, total)``
    callable, called every few hundred feeders."""
    n_st, n_fd, n_tr = sizes.stations, sizes.feeders, sizes.transformers
    st_city, st_lon, st_lat = _place_stations(rng, n_st)
    st_base = _station_bases(rng, st_city)
    st_voltage = np.where(rng.random(n_st) < 0.8, 110, 35).astype(np.int64)
    cable_share = np.array([c.cable_share for c in names.CITIES])[st_city]

    feeders_per_station = apportion(n_fd, rng.uniform(8, 14, n_st), minimum=1)
    fd_station = np.repeat(np.arange(n_st), feeders_per_station).astype(np.int64)
    # Transformers per feeder: at least one, long-tailed around the mean of ≈17.7.
    tr_per_feeder = apportion(n_tr, rng.lognormal(0.0, 0.45, n_fd), minimum=1)
    dedicated = rng.random(n_tr) < DEDICATED_SHARE

    b = _Builder()
    st_bus = np.array([b.node(float(st_lon[s]), float(st_lat[s]), NO_FEEDER)
                       for s in range(n_st)], dtype=np.int64)
    fd_base: list[str] = []
    fd_numeral: list[int] = []
    fd_source = np.zeros(n_fd, dtype=np.int64)
    fd_start = np.zeros(n_fd, dtype=np.int64)
    fd_end = np.zeros(n_fd, dtype=np.int64)
    fd_heading = np.zeros(n_fd)
    fd_trunk: list[list[int]] = []
    tr_feeder = np.repeat(np.arange(n_fd), tr_per_feeder).astype(np.int64)
    tr_node = np.zeros(n_tr, dtype=np.int64)
    tr_stem: list[str] = []
    tr_number: list[int] = []

    f = 0
    t0 = 0
    for s in range(n_st):
        nf = int(feeders_per_station[s])
        bases, numerals = _feeder_names(rng, nf)
        fd_base += bases
        fd_numeral += numerals
        start_angle = rng.uniform(0, 2 * math.pi)
        for j in range(nf):
            heading = start_angle + 2 * math.pi * j / nf + rng.normal(0, 0.15)
            fd_heading[f] = heading
            k = int(tr_per_feeder[f])
            fd_start[f] = len(b.lon)
            trunk = _grow_feeder(rng, b, f, int(st_bus[s]), heading, k,
                                 float(cable_share[s]), dedicated[t0:t0 + k], tr_node[t0:t0 + k])
            fd_source[f] = trunk[0]
            fd_trunk.append(trunk[1:])
            fd_end[f] = len(b.lon)
            stems, numbers = _transformer_stems(rng, k, dedicated[t0:t0 + k])
            tr_stem += stems
            tr_number += numbers
            t0 += k
            f += 1
            if progress is not None and (f % 500 == 0 or f == n_fd):
                progress("network", f, n_fd)

    _add_ties(rng, b, fd_station, fd_heading, fd_trunk, st_lon, st_lat, cable_share)

    capacity = np.where(dedicated, rng.choice(DEDICATED_KVA, n_tr),
                        rng.choice(PUBLIC_KVA, n_tr, p=PUBLIC_KVA_P)).astype(np.int64)
    return Network(
        station_base=st_base, station_voltage=st_voltage, station_city=st_city,
        station_lon=st_lon, station_lat=st_lat, station_bus=st_bus,
        feeder_station=fd_station, feeder_base=fd_base,
        feeder_numeral=np.array(fd_numeral, dtype=np.int64), feeder_source=fd_source,
        feeder_node_start=fd_start, feeder_node_end=fd_end,
        node_lon=np.array(b.lon), node_lat=np.array(b.lat),
        node_feeder=np.array(b.node_feeder, dtype=np.int64),
        node_parent_edge=np.array(b.parent, dtype=np.int64),
        edge_kind=np.array(b.kind, dtype=np.int64), edge_feeder=np.array(b.feeder, dtype=np.int64),
        edge_from=np.array(b.src, dtype=np.int64), edge_to=np.array(b.dst, dtype=np.int64),
        edge_open=np.array(b.open, dtype=np.int64),
        tr_feeder=tr_feeder, tr_node=tr_node, tr_capacity=capacity, tr_dedicated=dedicated,
        tr_stem=tr_stem, tr_number=np.array(tr_number, dtype=np.int64),
        tr_variant=rng.integers(0, 1 << 20, n_tr).astype(np.int64),
    )


def _grow_feeder(rng: np.random.Generator, b: _Builder, f: int, bus: int, heading: float,
                 k: int, cable_share: float, dedicated: npt.NDArray[np.bool_],
                 tr_node_out: IntArray) -> list[int]:
    """Grow feeder ``f`` from station bus ``bus``; fills ``tr_node_out`` with the nodes of its
    ``k`` transformers and returns ``[source_node, trunk nodes…]``."""
    urban = cable_share >= 0.5
    lo, hi = (150.0, 400.0) if urban else (300.0, 800.0)
    source = b.child(BREAKER, f, bus, heading, 40.0)
    segments = int(min(max(round(k / 3) + 2, 3), 30))
    sec_every = int(rng.integers(3, 6))
    recloser_at = int(rng.integers(2, segments)) if segments >= 4 and rng.random() < 0.4 else -1
    cur = source
    trunk: list[int] = [source]
    headings: list[float] = []
    for i in range(segments):
        if i > 0 and i % sec_every == 0:
            cur = b.child(SWITCH, f, cur, heading, 5.0)
        if i == recloser_at:
            cur = b.child(RECLOSER, f, cur, heading, 5.0)
        heading += rng.normal(0, 0.3)
        kind = CABLE if rng.random() < cable_share else LINE
        cur = b.child(kind, f, cur, heading, rng.uniform(lo, hi))
        trunk.append(cur)
        headings.append(heading)

    lateral: list[int] = []
    for _ in range(int(rng.integers(k // 6, k // 4 + 1))):
        at = int(rng.integers(len(headings)))
        heading_side = headings[at] + (math.pi / 2 if rng.random() < 0.5 else -math.pi / 2)
        cur = b.child(FUSE, f, trunk[at + 1], heading_side, 5.0)
        for _ in range(int(rng.integers(1, 4))):
            heading_side += rng.normal(0, 0.3)
            kind = CABLE if rng.random() < cable_share * 0.5 else LINE
            cur = b.child(kind, f, cur, heading_side, rng.uniform(lo * 0.6, hi * 0.6))
            lateral.append(cur)

    trunk_attach = trunk[1:]
    for i in range(k):
        use_lateral = lateral and (not dedicated[i]) and rng.random() < 0.6
        pool = lateral if use_lateral else trunk_attach
        at = pool[int(rng.integers(len(pool)))]
        tr_node_out[i] = b.child(FUSE, f, at, rng.uniform(0, 2 * math.pi), rng.uniform(15, 50))
    return trunk


def _add_ties(rng: np.random.Generator, b: _Builder, fd_station: IntArray, fd_heading: FloatArray,
              fd_trunk: list[list[int]], st_lon: FloatArray, st_lat: FloatArray,
              cable_share: FloatArray) -> None:
    """Normally-open ties: angular neighbours within a station (each pair with p=0.75) and,
    for ~35 % of stations, one feeder to a feeder of the nearest other station."""
    n_st = st_lon.size
    first = np.searchsorted(fd_station, np.arange(n_st))
    last = np.searchsorted(fd_station, np.arange(n_st), side="right")

    def tie(fa: int, fb: int) -> None:
        a_end = fd_trunk[fa][-1]
        cand = fd_trunk[fb]
        d = [(b.lon[n] - b.lon[a_end]) ** 2 + (b.lat[n] - b.lat[a_end]) ** 2 for n in cand]
        target = cand[int(np.argmin(d))]
        # Conductor from feeder a's far end to a node 5 m short of the tie point, then the
        # normally-open switch onto feeder b.
        dx = (b.lon[target] - b.lon[a_end]) * math.cos(b.lat[a_end] / _DEG)
        dy = b.lat[target] - b.lat[a_end]
        dist = max(math.hypot(dx, dy) / _DEG * _R - 5.0, 1.0)
        heading = math.atan2(dy, dx)
        kind = CABLE if rng.random() < cable_share[fd_station[fa]] else LINE
        near = b.child(kind, fa, a_end, heading, dist)
        b.edge(SWITCH, NO_FEEDER, near, target, normally_open=True)

    for s in range(n_st):
        fs = list(range(int(first[s]), int(last[s])))
        if len(fs) < 2:
            continue
        fs.sort(key=lambda i: fd_heading[i] % (2 * math.pi))
        pairs = [(fs[j], fs[(j + 1) % len(fs)]) for j in range(len(fs) if len(fs) > 2 else 1)]
        for fa, fb in pairs:
            if rng.random() < 0.75:
                tie(fa, fb)
    if n_st < 2:
        return
    cos_lat = np.cos(np.radians(st_lat))
    for s in range(n_st):
        if last[s] == first[s] or rng.random() >= 0.35:
            continue
        d2 = ((st_lon - st_lon[s]) * cos_lat) ** 2 + (st_lat - st_lat[s]) ** 2
        d2[s] = np.inf
        d2[last == first] = np.inf
        other = int(np.argmin(d2))
        if not np.isfinite(d2[other]):
            continue
        fa = int(rng.integers(first[s], last[s]))
        fb = int(rng.integers(first[other], last[other]))
        tie(fa, fb)
