"""The distribution-system export (UTF-8, canonical English headers) and its topology defects.

Ids follow the usual PMS style and share nothing with marketing codes: stations ``BDZ-0012``,
feeders ``XL-000123``, transformers ``PB-0001234``, edges ``SB-00012345`` and connectivity
nodes ``N00012345`` (unique province-wide). Two defects act on the topology itself: ``island``
drops one conducting edge on the path from a feeder's source to one of its transformers, and
``loop`` adds a closed line between two non-adjacent nodes of a feeder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
from pyproj import Geod

from gridtopo.synthetic import names
from gridtopo.synthetic.crosslinks import PairExport
from gridtopo.synthetic.defects import EDGES, DefectLog, DefectPlan
from gridtopo.synthetic.network import BREAKER, EDGE_KINDS, LINE, Network
from gridtopo.synthetic.writer import (
    CsvFile,
    FileRecord,
    fixed,
    flags,
    integers,
    padded,
    timestamps,
)

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

STATION_COLUMNS = ["station_id", "station_name", "voltage_kv", "lon", "lat"]
FEEDER_COLUMNS = ["feeder_id", "feeder_name", "station_id", "voltage_kv", "source_node"]
EDGE_COLUMNS = ["edge_id", "kind", "feeder_id", "from_node", "to_node", "normal_open",
                "length_m", "geometry"]
TRANSFORMER_COLUMNS = ["transformer_id", "transformer_name", "feeder_id", "node", "capacity_kva",
                       "marketing_area_code", "status", "lon", "lat", "updated_at"]
TRANSFORMER_TRUTH_COLUMNS = ["transformer_id", "feeder_id", "station_id", "node", "in_export",
                             "energized"]


@dataclass(frozen=True)
class DistributionIds:
    """Distribution-system ids by index."""

    station: pl.Series
    feeder: pl.Series
    node: pl.Series
    transformer: pl.Series


def make_ids(rng: np.random.Generator, net: Network) -> DistributionIds:
    """Station, feeder and node ids are sequential; transformer numbers have small gaps, as
    asset registers do after years of replacements."""
    n_tr = net.tr_feeder.size
    tr_numbers = np.cumsum(rng.integers(1, 4, n_tr)) + 1000
    return DistributionIds(
        station=padded("BDZ-", np.arange(len(net.station_base)) + 1, 4),
        feeder=padded("XL-", np.arange(net.feeder_station.size) + 1, 6),
        node=padded("N", np.arange(net.node_lon.size) + 1, 8),
        transformer=padded("PB-", tr_numbers, 7),
    )


def _path_edges(net: Network, node: int) -> list[int]:
    """Edges from ``node`` up to (excluding) the station breaker, nearest first."""
    path = []
    e = int(net.node_parent_edge[node])
    while e >= 0 and net.edge_kind[e] != BREAKER:
        path.append(e)
        e = int(net.node_parent_edge[net.edge_from[e]])
    return path


@dataclass(frozen=True)
class TopologyDefects:
    """Edges removed by ``island`` and added by ``loop``; which transformers lost supply."""

    removed: IntArray
    loop_from: IntArray
    loop_to: IntArray
    islanded: BoolArray


def plan_topology_defects(rng: np.random.Generator, net: Network, plan: DefectPlan
                          ) -> TopologyDefects:
    """Pick the concrete edge for each ``island`` feeder and node pair for each ``loop``."""
    islanded = np.zeros(net.tr_feeder.size, dtype=np.bool_)
    tr_start = np.searchsorted(net.tr_feeder, np.arange(net.feeder_station.size))
    tr_end = np.searchsorted(net.tr_feeder, np.arange(net.feeder_station.size), side="right")
    removed: list[int] = []
    for f in plan.feeders["island"].tolist():
        trs = range(int(tr_start[f]), int(tr_end[f]))
        if not trs:
            continue
        t = trs[int(rng.integers(len(trs)))]
        # Skip the transformer's own drop-out fuse so that a subtree (not one node) is cut.
        candidates = _path_edges(net, int(net.tr_node[t]))[1:]
        if not candidates:
            continue
        cut = candidates[int(rng.integers(len(candidates)))]
        removed.append(cut)
        for u in trs:
            if cut in _path_edges(net, int(net.tr_node[u])):
                islanded[u] = True
    loop_from: list[int] = []
    loop_to: list[int] = []
    for f in plan.feeders["loop"].tolist():
        lo, hi = int(net.feeder_node_start[f]), int(net.feeder_node_end[f])
        for _ in range(50):
            a, b = (int(x) for x in rng.integers(lo, hi, 2))
            adjacent = (a == b or net.edge_from[net.node_parent_edge[a]] == b
                        or net.edge_from[net.node_parent_edge[b]] == a)
            if not adjacent:
                loop_from.append(a)
                loop_to.append(b)
                break
    return TopologyDefects(np.array(sorted(removed), dtype=np.int64),
                           np.array(loop_from, dtype=np.int64), np.array(loop_to, dtype=np.int64),
                           islanded)


def write_distribution(root: Path, net: Network, ids: DistributionIds, pairs: PairExport,
                       topo: TopologyDefects, log: DefectLog) -> list[FileRecord]:
    """Write the four distribution tables and ``truth/transformer_links.csv``."""
    records = []
    st_base = pl.Series(net.station_base)
    st_names = (integers(net.station_voltage) + "kV" + st_base + "站").rename("")
    with CsvFile(root, "distribution/stations.csv", STATION_COLUMNS, "utf-8") as out:
        out.write(pl.DataFrame([ids.station, st_names, integers(net.station_voltage),
                                fixed(net.station_lon, 6), fixed(net.station_lat, 6)],
                               schema=STATION_COLUMNS))
        records.append(out.close())

    fd_names = pl.Series([names.feeder_name_distribution(b, int(n)) for b, n in
                          zip(net.feeder_base, net.feeder_numeral, strict=True)], dtype=pl.Utf8)
    n_fd = net.feeder_station.size
    with CsvFile(root, "distribution/feeders.csv", FEEDER_COLUMNS, "utf-8") as out:
        out.write(pl.DataFrame([ids.feeder, fd_names, ids.station.gather(net.feeder_station),
                                pl.Series(["10"] * n_fd), ids.node.gather(net.feeder_source)],
                               schema=FEEDER_COLUMNS))
        records.append(out.close())

    records.append(_write_edges(root, net, ids, topo, log))
    records.append(_write_transformers(root, net, ids, pairs))

    truth = pl.DataFrame([
        ids.transformer, ids.feeder.gather(net.tr_feeder), ids.station.gather(net.tr_station),
        ids.node.gather(net.tr_node), flags(pairs.in_export), flags(~topo.islanded),
    ], schema=TRANSFORMER_TRUTH_COLUMNS)
    with CsvFile(root, "truth/transformer_links.csv", TRANSFORMER_TRUTH_COLUMNS, "utf-8") as out:
        out.write(truth)
        records.append(out.close())
    return records


def _write_edges(root: Path, net: Network, ids: DistributionIds, topo: TopologyDefects,
                 log: DefectLog) -> FileRecord:
    n_edges = net.edge_kind.size
    keep = np.ones(n_edges, dtype=np.bool_)
    keep[topo.removed] = False
    kept = np.flatnonzero(keep)
    n_loops = topo.loop_from.size
    edge_no = np.concatenate([kept, n_edges + np.arange(n_loops)])
    kind = np.concatenate([net.edge_kind[kept], np.full(n_loops, LINE)])
    feeder = np.concatenate([net.edge_feeder[kept], net.node_feeder[topo.loop_from]])
    src = np.concatenate([net.edge_from[kept], topo.loop_from])
    dst = np.concatenate([net.edge_to[kept], topo.loop_to])
    is_open = np.concatenate([net.edge_open[kept], np.full(n_loops, -1)])

    lon1, lat1 = net.node_lon[src], net.node_lat[src]
    lon2, lat2 = net.node_lon[dst], net.node_lat[dst]
    _, _, length = Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)
    edge_id = padded("SB-", edge_no + 1, 8)
    feeder_id = pl.select(pl.when(pl.Series(feeder >= 0))
                          .then(ids.feeder.gather(np.maximum(feeder, 0)))).to_series()
    geometry = ("LINESTRING (" + fixed(lon1, 6) + " " + fixed(lat1, 6) + ", " + fixed(lon2, 6)
                + " " + fixed(lat2, 6) + ")")
    frame = pl.DataFrame([
        edge_id, pl.Series(list(EDGE_KINDS)).gather(kind), feeder_id,
        ids.node.gather(src), ids.node.gather(dst),
        pl.Series([None, "false", "true"], dtype=pl.Utf8).gather(is_open + 1), fixed(length, 1),
        geometry,
    ], schema=EDGE_COLUMNS)
    with CsvFile(root, "distribution/edges.csv", EDGE_COLUMNS, "utf-8") as out:
        first = out.write(frame)
        record = out.close()
    removed_ids = padded("SB-", topo.removed + 1, 8)
    log.add("island", EDGES, removed_ids, "edge_id", removed_ids, "", None)
    loop_pos = kept.size + np.arange(n_loops)
    log.add("loop", EDGES, edge_id.gather(loop_pos), "edge_id", "", edge_id.gather(loop_pos),
            first + loop_pos)
    return record


def _write_transformers(root: Path, net: Network, ids: DistributionIds,
                        pairs: PairExport) -> FileRecord:
    tr_names = pl.Series([names.transformer_name_distribution(s, int(n), bool(d), int(v))
                          for s, n, d, v in zip(net.tr_stem, net.tr_number, net.tr_dedicated,
                                                net.tr_variant, strict=True)], dtype=pl.Utf8)
    frame = pl.DataFrame([
        ids.transformer, tr_names, pairs.tr_feeder_id, ids.node.gather(net.tr_node),
        pairs.tr_capacity, pairs.tr_area_code, pairs.tr_status, fixed(pairs.tr_lon, 6),
        fixed(pairs.tr_lat, 6), timestamps(pairs.tr_updated),
    ], schema=TRANSFORMER_COLUMNS).filter(pl.Series(pairs.in_export))
    with CsvFile(root, "distribution/transformers.csv", TRANSFORMER_COLUMNS, "utf-8") as out:
        out.write(frame)
        return out.close()
