"""Outage events, customer status, prediction and the outage CLI on the ingested model.

Expected answers come from an independent oracle: networkx reachability over the model's
edge rows (``oracle_supplied``) and the customer links read with plain SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, text

from gridtopo.cli import main
from gridtopo.db.bulk import read_frame
from gridtopo.errors import InputError
from gridtopo.topology import outages
from gridtopo.topology.graph import EDGE_SCHEMA, SOURCE_SCHEMA, read_network
from gridtopo.topology.index import QueryIndex, UnknownIdError, load_index
from gridtopo.topology.predict import predict_outage, read_calls
from tests.test_topology_index import oracle_supplied

T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)


class Oracle:
    """Who is out when devices open, computed with networkx from the rows."""

    def __init__(self, engine: Engine) -> None:
        edges, sources, _ = read_network(engine)
        self.edges = edges
        stations = sources.join(edges.filter(pl.col("kind") == "breaker"),
                                left_on="source_node", right_on="to_node")
        self.roots = sorted(set(stations["from_node"].to_list()))
        with engine.connect() as conn:
            links = read_frame(conn, (
                "SELECT l.from_id, t.node FROM links l JOIN customers c ON c.customer_id = "
                "l.from_id JOIN transformers t ON t.transformer_id = l.to_id WHERE l.kind = "
                "'customer_transformer' AND c.status <> 'closed' AND t.status = 'in_service'"),
                {"customer_id": pl.Utf8, "node": pl.Utf8})
        self.customer_node = dict(links.iter_rows())
        self.base = oracle_supplied(edges, self.roots, set())

    def out(self, devices: list[str]) -> set[str]:
        dead = self.base - oracle_supplied(self.edges, self.roots, set(devices))
        return {c for c, n in self.customer_node.items() if n in dead}

    def protective(self) -> list[str]:
        return [e for e, k, *_ in self.edges.iter_rows() if k in ("breaker", "fuse", "recloser")]


@pytest.fixture
def index(model_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> QueryIndex:
    monkeypatch.chdir(tmp_path)  # a PostgreSQL index is written to the working directory
    return load_index(model_engine)


@pytest.fixture
def oracle(model_engine: Engine) -> Oracle:
    return Oracle(model_engine)


def _fuse_with_customers(oracle: Oracle) -> tuple[str, set[str]]:
    cases = [(d, oracle.out([d])) for d in oracle.protective()]
    device, out = max((c for c in cases if 0 < len(c[1]) < len(oracle.customer_node) / 3),
                      key=lambda c: len(c[1]))
    return device, out


def test_declare_status_overlap_close(model_engine: Engine, index: QueryIndex,
                                      oracle: Oracle) -> None:
    fuse, below = _fuse_with_customers(oracle)
    inside = sorted(below)[0]
    outside = sorted(set(oracle.customer_node) - oracle.out([fuse]))[0]
    first = outages.declare(model_engine, index, [fuse], kind="unplanned", started_at=T0,
                            expected_end=T0 + dt.timedelta(hours=2), reason="fault")
    assert first["customers_interrupted"] == len(below)
    state = outages.OutageState.load(model_engine, index)
    status = outages.customer_status(index, state, inside)
    assert status["out"] is True and [e["id"] for e in status["events"]] == [first["id"]]
    assert status["expected_restoration"] == T0 + dt.timedelta(hours=2)
    assert outages.customer_status(index, state, outside)["out"] is False

    breaker = next(d for d in oracle.protective() if oracle.out([d]) > below)
    second = outages.declare(model_engine, index, [breaker], started_at=T0)
    assert second["overlaps"] == [first["id"]]
    assert second["customers_interrupted"] == len(oracle.out([breaker]))

    closed = outages.close(model_engine, first["id"], ended_at=T0 + dt.timedelta(minutes=90))
    assert closed["status"] == "closed"
    assert closed["customer_minutes"] == pytest.approx(len(below) * 90)
    state = outages.OutageState.load(model_engine, index)
    status = outages.customer_status(index, state, inside)
    assert status["out"] is True and [e["id"] for e in status["events"]] == [second["id"]]
    assert status["expected_restoration"] is None
    outages.close(model_engine, second["id"])
    state = outages.OutageState.load(model_engine, index)
    assert outages.customer_status(index, state, inside)["out"] is False
    history = outages.list_events(model_engine, status="closed")
    assert history["total"] == 2 and {e["id"] for e in history["events"]} == {
        first["id"], second["id"]}
    with pytest.raises(outages.EventStateError, match="already closed"):
        outages.close(model_engine, first["id"])
    with pytest.raises(outages.EventNotFoundError, match="999"):
        outages.get_event(model_engine, 999)
    with pytest.raises(UnknownIdError, match="NO-SUCH"):
        outages.customer_status(index, state, "NO-SUCH")


def test_planned_event_in_the_future_is_upcoming(model_engine: Engine, index: QueryIndex,
                                                 oracle: Oracle) -> None:
    fuse, below = _fuse_with_customers(oracle)
    start = outages.now() + dt.timedelta(days=2)
    event = outages.declare(model_engine, index, [fuse], kind="planned", started_at=start,
                            expected_end=start + dt.timedelta(hours=4))
    status = outages.customer_status(index, outages.OutageState.load(model_engine, index),
                                     sorted(below)[0])
    assert status["out"] is False
    assert [e["id"] for e in status["upcoming"]] == [event["id"]]
    with pytest.raises(outages.EventStateError, match="not after"):
        outages.declare(model_engine, index, [fuse], started_at=start, expected_end=start)


def test_prediction_is_the_smallest_protective_outage_explaining_calls(
    index: QueryIndex, oracle: Oracle
) -> None:
    _, below = _fuse_with_customers(oracle)
    callers = sorted(below)[:: max(1, len(below) // 4)][:4]
    explaining = [(len(oracle.out([d])), d) for d in oracle.protective()
                  if set(callers) <= oracle.out([d])]
    expected = min(explaining)[1]
    result = predict_outage(index, [*callers, callers[0], "NOT-A-CUSTOMER"])
    assert [p["device"] for p in result["predictions"]] == [expected]
    assert result["predictions"][0]["customers_below"] == len(oracle.out([expected]))
    assert result["unknown_customers"] == ["NOT-A-CUSTOMER"]
    assert result["calls"] == len(callers) + 2


def test_calls_file_errors_name_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "calls.csv"
    good.write_text("time,户号\n08:01,0300100000000\n\n08:02,0300100000004\n",
                    encoding="utf-8-sig")
    assert read_calls(good) == ["0300100000000", "0300100000004"]
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,time\nA,1\n,2\n")
    with pytest.raises(InputError, match=r"bad.csv:3"):
        read_calls(bad)
    with pytest.raises(InputError, match=r"nohdr.csv:1: no customer id column"):
        (tmp_path / "nohdr.csv").write_text("phone\n1\n")
        read_calls(tmp_path / "nohdr.csv")


# --------------------------------------------------------------------------- CLI


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False)


def test_cli_impact_status_and_errors(model_db_url: str, model_engine: Engine, oracle: Oracle,
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fuse, below = _fuse_with_customers(oracle)
    result = run(model_db_url, "outage", "impact", fuse, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["devices"] == [fuse] and data["customers"] == len(below)
    with model_engine.connect() as conn:
        feeders = read_frame(conn, "SELECT feeder_id, source_node, feeder_id FROM feeders",
                             SOURCE_SCHEMA)
        breakers = read_frame(conn, "SELECT edge_id, kind, feeder_id, from_node, to_node, 0, 1 "
                              "FROM edges WHERE kind = 'breaker'", EDGE_SCHEMA)
    per_feeder = breakers.join(feeders, left_on="to_node", right_on="source_node")
    assert per_feeder.height >= 2
    two = per_feeder["edge_id"].to_list()[:2]
    mixed = json.loads(run(model_db_url, "outage", "impact", *two, "--list", "--json").stdout)
    assert mixed["customers"] == len(oracle.out(two))
    assert {c["customer_id"] for c in mixed["customer_list"]} == oracle.out(two)
    assert len(mixed["by_feeder"]) == 2
    assert sum(f["customers"] for f in mixed["by_feeder"].values()) == mixed["customers"]

    unknown = run(model_db_url, "outage", "impact", fuse, "NO-SUCH-DEVICE")
    assert unknown.exit_code == 2 and "NO-SUCH-DEVICE" in unknown.stderr
    missing = run(model_db_url, "outage", "status", "NO-SUCH-CUSTOMER")
    assert missing.exit_code == 2 and "NO-SUCH-CUSTOMER" in missing.stderr
    calls = tmp_path / "calls.csv"
    calls.write_text("customer_id,time\nX,1\n,2\n")
    bad = run(model_db_url, "outage", "predict", str(calls))
    assert bad.exit_code == 2 and "calls.csv:3" in bad.stderr

    inside = sorted(below)[0]
    declared = json.loads(run(model_db_url, "outage", "declare", fuse, "--kind", "planned",
                              "--reason", "pole", "--json").stdout)
    status = json.loads(run(model_db_url, "outage", "status", inside, "--json").stdout)
    assert status["out"] is True and status["events"][0]["id"] == declared["id"]
    up = json.loads(run(model_db_url, "trace", "upstream", inside, "--json").stdout)
    assert fuse in up["protective_devices"]
    assert up["path"][-1]["kind"] == "breaker" and up["station_id"]
    down = json.loads(run(model_db_url, "trace", "downstream", fuse, "--json").stdout)
    assert down["customers"] == len(below) and down["kind"] in ("breaker", "fuse", "recloser")
    isolate = json.loads(run(model_db_url, "trace", "isolate", fuse, "--json").stdout)
    assert isolate["faulted"] == [fuse] and isolate["upstream"]
    assert run(model_db_url, "trace", "restore", fuse, "--json").exit_code == 0
    check = json.loads(run(model_db_url, "trace", "check", up["feeder_id"], "--json").stdout)
    assert check["loops"] == [] and check["islands"] == []
    nofeeder = run(model_db_url, "trace", "check", "NO-FEEDER")
    assert nofeeder.exit_code == 2 and "NO-FEEDER" in nofeeder.stderr
    closed = run(model_db_url, "outage", "close", str(declared["id"]), "--json")
    assert json.loads(closed.stdout)["status"] == "closed"
    with model_engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM outage_events")).scalar_one() == "closed"
    listed = json.loads(run(model_db_url, "outage", "list", "--json").stdout)
    assert listed["total"] == 1


def test_two_events_that_cut_a_loop_together_put_customers_out() -> None:
    from gridtopo.topology.graph import TRANSFORMER_SCHEMA
    from gridtopo.topology.index import CUSTOMER_SCHEMA, index_from_frames

    edges = pl.DataFrame([("BRK", "breaker", "F", "BUS", "S", 0, 1),
                          ("L1", "line", "F", "S", "A", 0, 1),
                          ("L2", "line", "F", "A", "C", 0, 1),
                          ("L3", "line", "F", "S", "C", 0, 1)], schema=EDGE_SCHEMA, orient="row")
    sources = pl.DataFrame([("F", "S", "ST")], schema=SOURCE_SCHEMA, orient="row")
    transformers = pl.DataFrame([("T", "C")], schema=TRANSFORMER_SCHEMA, orient="row")
    customers = pl.DataFrame([("K", "T", 1)], schema=CUSTOMER_SCHEMA, orient="row")
    index = index_from_frames(edges, sources, transformers, customers)
    events = []
    for i, device in enumerate(("L2", "L3")):
        positions = index.affected_positions(index.edge_indices([device]))
        assert positions.size == 0  # each alone leaves C fed around the loop
        events.append(outages.ActiveEvent({"id": i, "kind": "unplanned", "reason": None,
                                           "started_at": T0, "expected_end": None}, positions))
    combined = index.affected_positions(index.edge_indices(["L2", "L3"]))
    state = outages.OutageState.from_events(events, len(index.order), T0, combined)
    status = outages.customer_status(index, state, "K")
    assert status["out"] is True and {e["id"] for e in status["events"]} == {0, 1}
