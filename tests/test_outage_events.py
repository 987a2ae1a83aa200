"""Outage events, customer status, prediction and the outage CLI on the ingested model.

Expected answers come from an independent oracle: networkx reachability over the model's
edge rows (``oracle_supplied``) and the customer links read with plain SQL. Switching plans
(ties closed to pick up load) are checked the same way, with the ties conducting.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import networkx as nx
import polars as pl
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from gridtopo.cli.main import main
from gridtopo.clock import now_seconds
from gridtopo.db import downgrade, open_engine, upgrade
from gridtopo.db.read.frames import read_frame
from gridtopo.db.read.network import EDGE_SCHEMA, SOURCE_SCHEMA, read_network
from gridtopo.errors import InputError
from gridtopo.outages import events as outages
from gridtopo.outages import state as outage_state
from gridtopo.outages.predict import predict_outage, read_calls
from gridtopo.topology.index import QueryIndex, UnknownIdError
from gridtopo.topology.queries import SwitchingError
from tests.test_topology_index import (
    SWITCHING,
    closable_ties,
    multi_source_networks,
    oracle_supplied,
    radial_networks,
    roots_of,
)

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
                "SELECT c.customer_id, t.node FROM customers c JOIN transformers t ON "
                "t.transformer_id = c.transformer_id WHERE c.status <> 'closed' "
                "AND t.status = 'in_service'"),
                {"customer_id": pl.Utf8, "node": pl.Utf8})
        self.customer_node = dict(links.iter_rows())
        self.base = oracle_supplied(edges, self.roots, set())

    def out(self, devices: list[str], close: tuple[str, ...] = ()) -> set[str]:
        dead = self.base - oracle_supplied(self.edges, self.roots, set(devices), set(close))
        return {c for c, n in self.customer_node.items() if n in dead}

    def protective(self) -> list[str]:
        return [e for e, k, *_ in self.edges.iter_rows() if k in ("breaker", "fuse", "recloser")]


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
    state = outage_state.OutageState.load(model_engine, index)
    status = outage_state.customer_status(index, state, inside)
    assert status["out"] is True and [e["id"] for e in status["events"]] == [first["id"]]
    assert status["expected_restoration"] == T0 + dt.timedelta(hours=2)
    assert outage_state.customer_status(index, state, outside)["out"] is False

    breaker = next(d for d in oracle.protective() if oracle.out([d]) > below)
    second = outages.declare(model_engine, index, [breaker], started_at=T0)
    assert second["overlaps"] == [first["id"]]
    assert second["customers_interrupted"] == len(oracle.out([breaker]))

    closed = outages.close(model_engine, first["id"], ended_at=T0 + dt.timedelta(minutes=90))
    assert closed["status"] == "closed"
    assert closed["customer_minutes"] == pytest.approx(len(below) * 90)
    state = outage_state.OutageState.load(model_engine, index)
    status = outage_state.customer_status(index, state, inside)
    assert status["out"] is True and [e["id"] for e in status["events"]] == [second["id"]]
    assert status["expected_restoration"] is None
    outages.close(model_engine, second["id"])
    state = outage_state.OutageState.load(model_engine, index)
    assert outage_state.customer_status(index, state, inside)["out"] is False
    history = outages.list_events(model_engine, status="closed")
    assert history["total"] == 2 and {e["id"] for e in history["events"]} == {
        first["id"], second["id"]}
    with pytest.raises(outages.EventStateError, match="already closed"):
        outages.close(model_engine, first["id"])
    with pytest.raises(outages.EventNotFoundError, match="999"):
        outages.get_event(model_engine, 999)
    with pytest.raises(UnknownIdError, match="NO-SUCH"):
        outage_state.customer_status(index, state, "NO-SUCH")


def test_planned_event_in_the_future_is_upcoming(model_engine: Engine, index: QueryIndex,
                                                 oracle: Oracle) -> None:
    fuse, below = _fuse_with_customers(oracle)
    start = now_seconds() + dt.timedelta(days=2)
    event = outages.declare(model_engine, index, [fuse], kind="planned", started_at=start,
                            expected_end=start + dt.timedelta(hours=4))
    status = outage_state.customer_status(index, outage_state.OutageState.load(model_engine, index),
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


@dataclass
class Plan:
    """A switching plan on the model: open ``opens`` (a section), close ``tie``; ``picked``
    are the customers the tie picks up, ``out`` those still cut off."""

    opens: list[str]
    tie: str
    picked: set[str]
    out: set[str]


def _switching_plan(oracle: Oracle) -> Plan:
    """Two switching devices on the supply path of a tie's end, such that with both open the
    tie picks up the part below the lower one and the part between them stays out."""
    H = nx.Graph()
    H.add_edges_from(("SUPPLY", r) for r in oracle.roots)
    device_between: dict[frozenset[str], str] = {}
    rows = list(oracle.edges.iter_rows())
    for eid, kind, _, u, v, nopen, ins in rows:
        if ins and not (nopen and kind in SWITCHING):
            H.add_edge(u, v)
            if kind in SWITCHING:
                device_between[frozenset((u, v))] = eid
    for tie, _, _, u, v, *_ in sorted(r for r in rows if r[0] in closable_ties(oracle.edges)):
        for end in (u, v):
            if end not in oracle.base:
                continue
            path = nx.shortest_path(H, "SUPPLY", end)
            switches = [d for d in (device_between.get(frozenset(p))
                                    for p in pairwise(path)) if d]
            for i, upper in enumerate(switches):
                for lower in switches[i + 1:]:
                    both = oracle.out([upper, lower])
                    out = oracle.out([upper, lower], (tie,))
                    if out and both - out:
                        return Plan([upper, lower], tie, both - out, out)
    raise AssertionError("the synthetic model has no tie that picks up part of a section")


def test_switching_plan_picks_up_part_of_the_section(model_engine: Engine, index: QueryIndex,
                                                     oracle: Oracle) -> None:
    plan = _switching_plan(oracle)
    picked, beyond = sorted(plan.picked)[0], sorted(plan.out)[0]
    event = outages.declare(model_engine, index, plan.opens, close=[plan.tie], kind="planned",
                            started_at=T0, expected_end=T0 + dt.timedelta(hours=4),
                            reason="pole swap with load transfer")
    assert event["devices"] == sorted(plan.opens) and event["closed"] == [plan.tie]
    assert event["customers_interrupted"] == len(plan.out)
    (via,) = event["impact"]["picked_up"]
    assert via["tie"] == plan.tie and via["customers"] == len(plan.picked)
    state = outage_state.OutageState.load(model_engine, index)
    status = outage_state.customer_status(index, state, picked)
    assert status["out"] is False and status["events"] == []
    assert status["transfer"] == {"tie": plan.tie, "events": [event["id"]]}
    status = outage_state.customer_status(index, state, beyond)
    assert status["out"] is True and [e["id"] for e in status["events"]] == [event["id"]]
    assert status["transfer"] is None
    assert outages.get_event(model_engine, event["id"])["closed"] == [plan.tie]
    assert outages.list_events(model_engine)["events"][0]["closed"] == [plan.tie]
    closed = outages.close(model_engine, event["id"], ended_at=T0 + dt.timedelta(hours=1))
    assert closed["customer_minutes"] == pytest.approx(len(plan.out) * 60)


def test_a_load_transfer_declared_after_the_outage_relieves_it(
    model_engine: Engine, index: QueryIndex, oracle: Oracle
) -> None:
    """Events combine: a closing-only event picks up what another cut off; an event that
    opens the tie wins over the one closing it."""
    plan = _switching_plan(oracle)
    picked = sorted(plan.picked)[0]
    outage = outages.declare(model_engine, index, plan.opens, started_at=T0)
    assert outage["customers_interrupted"] == len(plan.out | plan.picked)
    transfer = outages.declare(model_engine, index, [], close=[plan.tie], started_at=T0)
    assert transfer["customers_interrupted"] == 0 and transfer["overlaps"] == [outage["id"]]
    state = outage_state.OutageState.load(model_engine, index)
    status = outage_state.customer_status(index, state, picked)
    assert status["out"] is False
    assert status["transfer"] == {"tie": plan.tie, "events": [transfer["id"]]}
    assert outage_state.customer_status(index, state, sorted(plan.out)[0])["out"] is True
    opening = outages.declare(model_engine, index, [plan.tie], started_at=T0)
    status = outage_state.customer_status(index, outage_state.OutageState.load(model_engine, index),
                                     picked)
    assert status["out"] is True and status["transfer"] is None
    assert [e["id"] for e in status["events"]] == [outage["id"]]
    assert opening["overlaps"] == [transfer["id"]]
    with pytest.raises(SwitchingError, match="both opened and closed"):
        outages.declare(model_engine, index, [plan.tie], close=[plan.tie])
    with pytest.raises(outages.EventStateError, match="no device given"):
        outages.declare(model_engine, index, [" "], close=[])


@settings(max_examples=90, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.booleans().flatmap(lambda meshed: radial_networks(meshed, (2, 4), (1, 6))),
                 multi_source_networks()), st.data())
def test_overlapping_switching_events_combine_as_documented(net: dict[str, pl.DataFrame],
                                                            data: st.DataObject) -> None:
    """Status of every customer under random active events, each opening devices and closing
    ties, some not started yet, against networkx on the combined state (opening wins)."""
    from gridtopo.topology.index import index_from_frames

    edges = net["edges"]
    index = index_from_frames(edges, net["sources"], net["transformers"], net["customers"])
    roots = roots_of(net)
    ids, ties = edges["edge_id"].to_list(), closable_ties(edges)
    events: list[dict[str, Any]] = []
    for i in range(data.draw(st.integers(1, 4))):
        opens = data.draw(st.lists(st.sampled_from(ids), max_size=3, unique=True))
        close = data.draw(st.lists(st.sampled_from([t for t in ties if t not in opens]),
                                   unique=True)) if set(ties) - set(opens) else []
        start = T0 + dt.timedelta(hours=data.draw(st.sampled_from([-1, 0, 1])))
        events.append({"id": i, "kind": "planned", "reason": None, "started_at": start,
                       "expected_end": None, "devices": opens, "closed": close})
    state = outage_state.OutageState.from_data(index, events, T0)
    started = [e for e in events if e["started_at"] <= T0]
    opened = {d for e in started for d in e["devices"]}
    closed = {d for e in started for d in e["closed"]} - opened
    base = oracle_supplied(edges, roots, set())
    now_fed = oracle_supplied(edges, roots, opened, closed)
    picked = now_fed - oracle_supplied(edges, roots, opened)

    def own(event: dict[str, Any]) -> set[str]:
        return base - oracle_supplied(edges, roots, set(event["devices"]), set(event["closed"]))

    dead_alone = {e["id"]: own(e) for e in events}
    tr_node = dict(net["transformers"].iter_rows())
    for customer, tr, active in net["customers"].iter_rows():
        status = outage_state.customer_status(index, state, customer)
        node = tr_node[tr]
        if not active:
            assert status["out"] is False
            continue
        assert status["out"] is (node not in now_fed), (customer, events)
        assert (status["transfer"] is not None) is (node in picked)
        assert [e["id"] for e in status["upcoming"]] == [
            e["id"] for e in events if e["started_at"] > T0 and node in dead_alone[e["id"]]]
        if node in base - now_fed:
            responsible = [e["id"] for e in started if node in dead_alone[e["id"]]]
            assert [e["id"] for e in status["events"]] == (
                responsible or [e["id"] for e in started])


def test_existing_outage_devices_become_openings(empty_db_url: str) -> None:
    """Migration 0003 on a database holding events: old rows are openings, the action is
    checked, and the downgrade keeps the rows."""
    engine = open_engine(empty_db_url, create=True)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO outage_events (kind, status, started_at, created_at) "
                          "VALUES ('planned', 'active', :t, :t)"), {"t": T0})
        conn.execute(text("INSERT INTO outage_devices (event_id, device_id) VALUES (1, 'SB-1')"))
    upgrade(engine)
    assert outages.get_event(engine, 1)["devices"] == ["SB-1"]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO outage_devices (event_id, device_id, action) "
                          "VALUES (1, 'SB-2', 'toggle')"))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO outage_devices (event_id, device_id, action) "
                          "VALUES (1, 'SB-3', 'close')"))
    assert outages.get_event(engine, 1)["closed"] == ["SB-3"]
    downgrade(engine, "0002")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT device_id FROM outage_devices ORDER BY 1")
                            ).scalars().all() == ["SB-1", "SB-3"]
    engine.dispose()


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


def test_cli_switching_plan(model_db_url: str, oracle: Oracle, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plan = _switching_plan(oracle)
    closing = ("--close", plan.tie)
    data = json.loads(run(model_db_url, "outage", "impact", *plan.opens, *closing, "--list",
                          "--json").stdout)
    assert data["closed"] == [plan.tie] and data["customers"] == len(plan.out)
    assert {c["customer_id"] for c in data["customer_list"]} == plan.out
    assert [(p["tie"], p["customers"]) for p in data["picked_up"]] == [(plan.tie,
                                                                       len(plan.picked))]
    human = run(model_db_url, "outage", "impact", *plan.opens, *closing).stdout
    assert f"close {plan.tie}" in human and f"picked up through {plan.tie}" in human

    line = next(e for e, kind, *_ in oracle.edges.iter_rows() if kind == "line")
    for args, named in (((*plan.opens, *closing, "--close", line),
                         f"{line} (a line, not a switching"),
                        ((*plan.opens, "--close", "NO-SUCH-TIE"), "NO-SUCH-TIE"),
                        ((plan.tie, *closing), "both opened and closed"),
                        ((), "no device given")):
        failed = run(model_db_url, "outage", "impact", *args)
        assert failed.exit_code == 2 and named in failed.stderr, (args, failed.output)

    event = json.loads(run(model_db_url, "outage", "declare", *plan.opens, *closing, "--kind",
                           "planned", "--reason", "load transfer", "--json").stdout)
    assert event["closed"] == [plan.tie] and event["customers_interrupted"] == len(plan.out)
    failed = run(model_db_url, "outage", "declare", *plan.opens, "--close", line)
    assert failed.exit_code == 2 and line in failed.stderr
    listed = json.loads(run(model_db_url, "outage", "list", "--json").stdout)
    assert listed["total"] == 1 and listed["events"][0]["closed"] == [plan.tie]
    assert f"close {plan.tie}" in run(model_db_url, "outage", "list").stdout
    picked = sorted(plan.picked)[0]
    status = json.loads(run(model_db_url, "outage", "status", picked, "--json").stdout)
    assert status["out"] is False and status["transfer"]["tie"] == plan.tie
    assert f"fed through tie {plan.tie}" in run(model_db_url, "outage", "status", picked).stdout
    beyond = json.loads(run(model_db_url, "outage", "status", sorted(plan.out)[0],
                            "--json").stdout)
    assert beyond["out"] is True and beyond["events"][0]["id"] == event["id"]


def test_two_events_that_cut_a_loop_together_put_customers_out() -> None:
    from gridtopo.db.read.network import TRANSFORMER_SCHEMA
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
        events.append(outage_state.ActiveEvent({"id": i, "kind": "unplanned", "reason": None,
                                           "started_at": T0, "expected_end": None}, positions))
    combined = index.affected_positions(index.edge_indices(["L2", "L3"]))
    state = outage_state.OutageState.from_events(events, len(index.order), T0, combined)
    status = outage_state.customer_status(index, state, "K")
    assert status["out"] is True and {e["id"] for e in status["events"]} == {0, 1}
