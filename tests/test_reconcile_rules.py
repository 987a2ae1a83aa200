"""Small hand-written cases for each reconciliation rule (generated-truth tests are separate)."""

from __future__ import annotations

import polars as pl
import pytest

from gridtopo.reconcile.links import reconcile

STATIONS = pl.DataFrame({"station_id": ["BDZ-1"], "station_name": ["110kV龙华站"]})
FEEDERS = pl.DataFrame({"feeder_id": ["XL-1", "XL-2"],
                        "feeder_name": ["10kV龙华Ⅰ线", "10kV龙华Ⅱ线"],
                        "station_id": ["BDZ-1", "BDZ-9"], "source_node": ["N1", "N20"]})
EDGES = pl.DataFrame({"edge_id": ["E1", "E2", "E3"], "feeder_id": ["XL-1", "XL-1", "XL-2"],
                      "from_node": ["N1", "N2", "N20"], "to_node": ["N2", "N3", "N21"]})


def transformers(**overrides: list[object]) -> pl.DataFrame:
    base: dict[str, list[object]] = {
        "transformer_id": ["PB-1", "PB-2", "PB-3"],
        "transformer_name": ["龙华村1号配变", "龙华村2号配变", "新围3号公变"],
        "feeder_id": ["XL-1", "XL-1", "XL-2"],
        "node": ["N2", "N3", "N21"],
        "marketing_area_code": ["TQ1", "TQ2", "TQ3"],
        "lon": [113.0, 113.01, 113.5],
        "lat": [23.0, 23.0, 23.5],
    }
    base.update(overrides)
    return pl.DataFrame(base)


def areas(**overrides: list[object]) -> pl.DataFrame:
    base: dict[str, list[object]] = {
        "area_code": ["TQ1", "TQ2", "TQ3"],
        "area_name": ["龙华村#1台区", "龙华村2#公变台区", "新围3号台区"],
        "feeder_name": ["龙华1线", "10KV龙华I线", "龙华Ⅱ线"],
        "station_name": ["龙华变电站", "龙华站", "龙华变"],
        "pms_transformer_id": ["PB-1", "PB-2", "PB-3"],
    }
    base.update(overrides)
    return pl.DataFrame(base)


CUSTOMERS = pl.DataFrame({
    "customer_id": ["C1", "C2", "C3", "C4"],
    "area_code": ["TQ1", "TQ2", "TQ3", "TQ404"],
    "lon": [113.0001, 113.0101, 113.5001, 113.2],
    "lat": [23.0001, 23.0001, 23.5001, 23.2],
})


def run(tx: pl.DataFrame | None = None, ar: pl.DataFrame | None = None,
        decisions: pl.DataFrame | None = None) -> tuple[dict[tuple[str, str], tuple], pl.DataFrame]:
    result = reconcile({"stations": STATIONS, "feeders": FEEDERS, "edges": EDGES,
                        "transformers": transformers() if tx is None else tx,
                        "transformer_areas": areas() if ar is None else ar,
                        "customers": CUSTOMERS}, decisions)
    links = {(k, f): (t, m, c) for k, f, t, m, c in result.all_links.select(
        "kind", "from_id", "to_id", "method", "confidence").iter_rows()}
    return links, result.unlinked


def test_clean_ids_link_everything_with_top_confidence() -> None:
    links, unlinked = run()
    assert links[("area_transformer", "TQ1")] == ("PB-1", "cross_system_id", 0.99)
    assert links[("customer_transformer", "C3")] == ("PB-3", "cross_system_id", 0.99)
    assert links[("feeder_station", "XL-1")] == ("BDZ-1", "source_code", 1.0)
    assert ("feeder_station", "XL-2") not in links  # BDZ-9 is not a station
    assert set(unlinked.filter(pl.col("kind") == "customer_transformer")["entity_id"]) == {"C4"}


def test_wrong_pms_id_loses_to_a_mutual_pair() -> None:
    """TQ1 wrongly names PB-2, which is mutually linked with TQ2: TQ1 gets PB-1 by the reverse
    id and its name."""
    links, _ = run(ar=areas(pms_transformer_id=["PB-2", "PB-2", "PB-3"]))
    assert links[("area_transformer", "TQ1")][:2] == ("PB-1", "cross_system_id")
    assert links[("area_transformer", "TQ2")][0] == "PB-2"
    assert links[("customer_transformer", "C1")][0] == "PB-1"


def test_names_decide_when_both_ids_are_missing() -> None:
    links, _ = run(tx=transformers(marketing_area_code=["TQ1", None, "TQ3"]),
                   ar=areas(pms_transformer_id=["PB-1", None, "PB-3"]))
    assert links[("area_transformer", "TQ2")][:2] == ("PB-2", "name_match")


def test_equal_evidence_stays_unlinked_as_conflict() -> None:
    """TQ2's id names PB-3 while PB-2 claims TQ2; names and places say nothing: a tie."""
    links, unlinked = run(
        tx=transformers(marketing_area_code=["TQ1", "TQ2", None],
                        transformer_name=["甲", "乙", "丙"], lon=[None, None, None],
                        lat=[None, None, None], feeder_id=["XL-1", "XL-2", "XL-2"]),
        ar=areas(pms_transformer_id=["PB-1", "PB-3", None], feeder_name=[None, None, None]),
    )
    assert ("area_transformer", "TQ2") not in links
    reason = unlinked.filter(pl.col("entity_id") == "TQ2")["reason"].item()
    assert reason.startswith("conflict") and "PB-2" in reason and "PB-3" in reason
    assert unlinked.filter(pl.col("entity_id") == "TQ2")["code"].item() == "conflict"


def test_transformer_feeder_from_node_when_code_is_unknown() -> None:
    links, _ = run(tx=transformers(feeder_id=["XL-1", "XL-404", "XL-2"]))
    assert links[("transformer_feeder", "PB-2")] == ("XL-1", "source_code", 0.9)


@pytest.mark.parametrize(("decision", "expected"), [("PB-3", "PB-3"), ("none", None)])
def test_steward_decision_overrides_and_propagates(decision: str, expected: str | None) -> None:
    decisions = pl.DataFrame({"link_kind": ["area_transformer"], "entity_id": ["TQ1"],
                              "decision": [decision]})
    links, unlinked = run(decisions=decisions)
    if expected is None:
        assert ("area_transformer", "TQ1") not in links
        assert ("customer_transformer", "C1") not in links
        assert "steward decided: no link" in unlinked["reason"].to_list()
    else:
        assert links[("area_transformer", "TQ1")] == (expected, "steward", 1.0)
        assert links[("customer_transformer", "C1")] == (expected, "steward", 1.0)


def _anonymous(lon_pb2: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Neither ids nor names connect TQ2; PB-2 stands ``lon_pb2`` from TQ2's customer."""
    tx = transformers(marketing_area_code=["TQ1", None, "TQ3"],
                      transformer_name=["龙华村1号配变", "甲", "新围3号公变"],
                      lon=[113.0, lon_pb2, 113.5])
    ar = areas(pms_transformer_id=["PB-1", None, "PB-3"])
    return tx, ar


def test_location_alone_decides_only_when_clear() -> None:
    # C2 stands at (113.0101, 23.0001): PB-2 ~10 m away, PB-1 ~1 km away → clear
    links, _ = run(*_anonymous(113.0101))
    assert links[("area_transformer", "TQ2")] == ("PB-2", "spatial_match", 0.6)
    # PB-2 ~300 m away: nearest, but not close enough to decide alone
    links, unlinked = run(*_anonymous(113.0130))
    assert ("area_transformer", "TQ2") not in links
    assert unlinked.filter(pl.col("entity_id") == "TQ2")["code"].item() == "no_candidate"
