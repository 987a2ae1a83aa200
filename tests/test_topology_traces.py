"""Traces on a small hand-drawn network whose answers are known by construction.

    F1: BUS1 -BRK1- S1 -L1- A -SW1- B -L2- C -FU1- D(T_D)
                                    B -L3- E(T_E)
    F2: BUS2 -BRK2- S2 -L4- G(T_G)          tie TIE (normally open) between C and G
    F3: BUS3 -BRK3- S3 -L6- H -L7- I -L8- S3 (a loop)    J -L9- K(T_K) (an island)
"""

from __future__ import annotations

import networkx as nx
import polars as pl
import pytest

from gridtopo.db.read.network import EDGE_SCHEMA, SOURCE_SCHEMA, TRANSFORMER_SCHEMA
from gridtopo.outages.predict import predict_outage
from gridtopo.topology.graph import UnknownDeviceError, graph_from_frames
from gridtopo.topology.index import CUSTOMER_SCHEMA, QueryIndex, index_from_frames
from gridtopo.topology.queries import downstream, upstream
from gridtopo.topology.traces import islands, isolation, loops, restoration

EDGES = [
    ("BRK1", "breaker", "F1", "BUS1", "S1", 0), ("L1", "line", "F1", "S1", "A", 0),
    ("SW1", "switch", "F1", "A", "B", 0), ("L2", "line", "F1", "B", "C", 0),
    ("FU1", "fuse", "F1", "C", "D", 0), ("L3", "cable", "F1", "B", "E", 0),
    ("BRK2", "breaker", "F2", "BUS2", "S2", 0), ("L4", "line", "F2", "S2", "G", 0),
    ("TIE", "switch", None, "C", "G", 1),
    ("BRK3", "breaker", "F3", "BUS3", "S3", 0), ("L6", "line", "F3", "S3", "H", 0),
    ("L7", "line", "F3", "H", "I", 0), ("L8", "line", "F3", "I", "S3", 0),
    ("L9", "line", "F3", "J", "K", 0),
]
TRANSFORMERS = [("T_D", "D"), ("T_E", "E"), ("T_G", "G"), ("T_K", "K")]
CUSTOMERS = [("C_D1", "T_D", 1), ("C_D2", "T_D", 1), ("C_E1", "T_E", 1), ("C_G1", "T_G", 1)]


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return {
        "edges": pl.DataFrame([(*e, 1) for e in EDGES], schema=EDGE_SCHEMA, orient="row"),
        "sources": pl.DataFrame([("F1", "S1", "ST"), ("F2", "S2", "ST"), ("F3", "S3", "ST")],
                                schema=SOURCE_SCHEMA, orient="row"),
        "transformers": pl.DataFrame(TRANSFORMERS, schema=TRANSFORMER_SCHEMA, orient="row"),
    }


@pytest.fixture(scope="module")
def G(frames: dict[str, pl.DataFrame]) -> nx.MultiGraph:
    return graph_from_frames(**frames)


@pytest.fixture(scope="module")
def index(frames: dict[str, pl.DataFrame]) -> QueryIndex:
    customers = pl.DataFrame(CUSTOMERS, schema=CUSTOMER_SCHEMA, orient="row")
    return index_from_frames(frames["edges"], frames["sources"], frames["transformers"],
                             customers)


def test_isolation_finds_the_nearest_switching_devices(G: nx.MultiGraph) -> None:
    result = isolation(G, ["L2"])
    assert result["boundary"] == ["FU1", "SW1"]
    assert result["upstream"] == ["SW1"] and result["downstream"] == ["FU1"]
    assert result["section_transformers"] == ["T_E"]
    with pytest.raises(UnknownDeviceError, match="L99"):
        isolation(G, ["L99"])


def test_restoration_through_the_normally_open_tie(G: nx.MultiGraph) -> None:
    assert restoration(G, ["SW1", "L2"]) == [
        {"tie": "TIE", "via_feeder": "F2", "nodes": 2, "transformers": ["T_D"]}]
    assert restoration(G, ["BRK2"]) == [
        {"tie": "TIE", "via_feeder": "F1", "nodes": 2, "transformers": ["T_G"]}]
    assert restoration(G, ["L3"]) == []


def test_loops_and_islands(G: nx.MultiGraph) -> None:
    assert loops(G, "F3") == [["L6", "L7", "L8"]]
    assert loops(G, "F1") == []
    assert islands(G, "F3") == [{"nodes": ["J", "K"], "transformers": ["T_K"]}]
    assert islands(G, "F1") == []


def test_upstream_and_downstream(index: QueryIndex) -> None:
    up = upstream(index, "C_D1")
    assert [p["edge_id"] for p in up["path"]] == ["FU1", "L2", "SW1", "L1", "BRK1"]
    assert up["protective_devices"] == ["FU1", "BRK1"]
    assert (up["transformer_id"], up["feeder_id"], up["station_id"]) == ("T_D", "F1", "ST")
    assert upstream(index, "T_K")["energized"] is False
    down = downstream(index, "SW1")
    assert down["edges"] == 3 and sorted(down["transformer_ids"]) == ["T_D", "T_E"]
    assert sorted(down["customer_ids"]) == ["C_D1", "C_D2", "C_E1"]
    assert downstream(index, "TIE")["in_tree"] is False


def test_prediction_picks_the_lowest_protective_device(index: QueryIndex) -> None:
    assert [p["device"] for p in predict_outage(index, ["C_D1", "C_D2"])["predictions"]] == [
        "FU1"]
    both = predict_outage(index, ["C_D1", "C_E1", "C_G1"])["predictions"]
    assert sorted((p["feeder_id"], p["device"]) for p in both) == [("F1", "BRK1"),
                                                                  ("F2", "BRK2")]
