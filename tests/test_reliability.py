"""Reliability indices (SAIFI, SAIDI, CAIDI, ASAI, MAIFI) on the ingested model, both stores.

Expected values are computed here from first principles, not with the library: customers
served per feeder are the active customers whose transformer hangs in the part of the network
a feeder's supply reaches through conducting edges (networkx over the edge rows, with every
feeder breaker cut so each feeder is its own component); the customers an event interrupts
are those networkx finds cut off by its devices (:class:`tests.test_outage_events.Oracle`),
each counted on its feeder. Months are counted in Asia/Shanghai time, by the event's start.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import polars as pl
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, text

from gridtopo.cli.main import main
from gridtopo.db.read.frames import read_frame
from gridtopo.db.read.network import read_network
from gridtopo.outages import events as outages
from gridtopo.quality.reliability import ReliabilityInputError, reliability_report
from gridtopo.topology.index import QueryIndex
from gridtopo.topology.regions import station_regions
from tests.test_outage_events import Oracle, _fuse_with_customers, _switching_plan
from tests.test_topology_index import SWITCHING

UTC = dt.UTC
SHANGHAI = dt.timezone(dt.timedelta(hours=8))  # China has no daylight saving time


def feeder_customers(engine: Engine, oracle: Oracle) -> dict[str, set[str]]:
    """feeder id → the active customers its supply reaches in the normal state."""
    edges, sources, _ = read_network(engine)
    source_nodes = set(sources["source_node"].to_list())
    H = nx.Graph()
    H.add_nodes_from(source_nodes)
    for _eid, kind, _, u, v, nopen, ins in edges.iter_rows():
        feeder_breaker = kind == "breaker" and (u in source_nodes or v in source_nodes)
        if ins and not (nopen and kind in SWITCHING) and not feeder_breaker:
            H.add_edge(u, v)
    found: dict[str, set[str]] = {}
    for feeder, source, _ in sources.iter_rows():
        if source not in oracle.base:
            continue
        nodes = nx.node_connected_component(H, source) & oracle.base
        found[feeder] = {c for c, n in oracle.customer_node.items() if n in nodes}
    return found


@dataclass
class Ev:
    """An event as the test declared it: its interrupted customers and its duration."""

    kind: str
    start: dt.datetime
    minutes: float
    out: set[str]

    @property
    def month(self) -> str:
        return self.start.astimezone(SHANGHAI).strftime("%Y-%m")


def month_minutes(month: str) -> int:
    year, number = map(int, month.split("-"))
    return calendar.monthrange(year, number)[1] * 24 * 60


def expect(events: list[Ev], customers: set[str], served: int, minutes: float,
           min_minutes: float = 5.0) -> dict[str, Any]:
    """The indices of the ``customers`` group (``served`` of them) over ``events``."""
    sustained = [e for e in events if e.minutes > min_minutes]
    momentary = [e for e in events if e.minutes <= min_minutes]
    hit = [e for e in sustained if e.out & customers]
    ci = sum(len(e.out & customers) for e in sustained)
    cmi = sum(len(e.out & customers) * e.minutes for e in sustained)
    mci = sum(len(e.out & customers) for e in momentary)
    return {"customers_served": served, "customers_interrupted": ci,
            "customer_minutes": pytest.approx(cmi), "events_hit": len(hit),
            "saifi": pytest.approx(ci / served), "saidi": pytest.approx(cmi / served),
            "caidi": pytest.approx(cmi / ci) if ci else None,
            "asai": pytest.approx(1 - cmi / served / minutes),
            "maifi": pytest.approx(mci / served), "momentary_interruptions": mci}


def check(row: dict[str, Any], want: dict[str, Any], events: int | None = None) -> None:
    for key, value in want.items():
        if key != "events_hit":
            assert row[key] == value, (key, row)
    if events is not None:
        assert row["events"] == events, row


def declare_closed(engine: Engine, index: QueryIndex, oracle: Oracle, devices: list[str],
                   start: dt.datetime, minutes: float, *, kind: str = "unplanned",
                   close: tuple[str, ...] = ()) -> Ev:
    event = outages.declare(engine, index, devices, close=close, kind=kind, started_at=start)
    out = oracle.out(devices, close)
    assert event["customers_interrupted"] == len(out)
    outages.close(engine, event["id"], ended_at=start + dt.timedelta(minutes=minutes))
    return Ev(kind, start, minutes, out)


def other_feeder_device(oracle: Oracle, by_feeder: dict[str, set[str]], avoid: set[str]
                        ) -> tuple[str, str]:
    """A protective device (and its feeder) cutting off customers of one feeder none of
    which are in ``avoid``: the largest such, a feeder breaker if there is one."""
    cases = []
    for device in oracle.protective():
        out = oracle.out([device])
        feeders = [f for f, cs in by_feeder.items() if out & cs]
        if out and not out & avoid and len(feeders) == 1:
            cases.append((len(out), device, feeders[0]))
    _, device, feeder = max(cases)
    return device, feeder


# --------------------------------------------------------------------------- the indices


def test_indices_per_month_and_feeder(model_engine: Engine, index: QueryIndex,
                                      oracle: Oracle) -> None:
    by_feeder = feeder_customers(model_engine, oracle)
    assert len(by_feeder) >= 2
    served = {f: len(cs) for f, cs in by_feeder.items()}
    everyone = set().union(*by_feeder.values())
    fuse, below = _fuse_with_customers(oracle)
    device, feeder_b = other_feeder_device(oracle, by_feeder, below)
    events = [
        declare_closed(model_engine, index, oracle, [fuse],
                       dt.datetime(2026, 3, 10, 2, 0, tzinfo=UTC), 90),
        # 17:30 UTC on 31 March is 01:30 on 1 April in Shanghai: an April event
        declare_closed(model_engine, index, oracle, [device],
                       dt.datetime(2026, 3, 31, 17, 30, tzinfo=UTC), 47.5),
        declare_closed(model_engine, index, oracle, [fuse],
                       dt.datetime(2026, 5, 2, 6, 0, tzinfo=UTC), 200),
    ]
    assert [e.month for e in events] == ["2026-03", "2026-04", "2026-05"]
    months = ["2026-03", "2026-04", "2026-05"]
    period = sum(month_minutes(m) for m in months)

    report = reliability_report(model_engine, index, by=["feeder", "month"])
    assert report["period"] == {"from": "2026-03", "to": "2026-05", "months": 3,
                                "minutes": period, "timezone": "Asia/Shanghai"}
    assert report["by"] == ["month", "feeder"] and report["network_changed"] is False
    check(report["totals"], expect(events, everyone, len(everyone), period), events=3)
    assert report["totals"]["customers_served"] == sum(served.values())
    rows = {(r["month"], r["feeder_id"]): r for r in report["rows"]}
    assert set(rows) == {(m, f) for m in months for f in served}
    for (month, feeder), row in rows.items():
        in_month = [e for e in events if e.month == month]
        want = expect(in_month, by_feeder[feeder], served[feeder], month_minutes(month))
        check(row, want)
        assert row["network_changed"] is False
    assert rows[("2026-04", feeder_b)]["customers_interrupted"] == len(events[1].out) > 0
    assert rows[("2026-04", feeder_b)]["events"] == 1

    per_feeder = reliability_report(model_engine, index, by=["feeder"])
    for row in per_feeder["rows"]:
        f = row["feeder_id"]
        check(row, expect(events, by_feeder[f], served[f], period))

    per_month = reliability_report(model_engine, index, by=["month"], start="2026-02",
                                   end="2026-04")
    assert [r["month"] for r in per_month["rows"]] == ["2026-02", "2026-03", "2026-04"]
    for row in per_month["rows"]:
        in_month = [e for e in events if e.month == row["month"]]
        check(row, expect(in_month, everyone, len(everyone), month_minutes(row["month"])),
              events=len(in_month))
    assert per_month["totals"]["events"] == 2  # the May event is outside the period
    feb = per_month["rows"][0]
    assert (feb["saifi"], feb["saidi"], feb["caidi"], feb["asai"]) == (0.0, 0.0, None, 1.0)


def test_momentary_interruptions_count_only_in_maifi(model_engine: Engine, index: QueryIndex,
                                                      oracle: Oracle) -> None:
    fuse, below = _fuse_with_customers(oracle)
    everyone = set().union(*feeder_customers(model_engine, oracle).values())
    start = dt.datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
    events = [declare_closed(model_engine, index, oracle, [fuse], start, 120),
              declare_closed(model_engine, index, oracle, [fuse], start + dt.timedelta(days=1),
                             3),
              declare_closed(model_engine, index, oracle, [fuse], start + dt.timedelta(days=2),
                             5)]  # exactly 5 minutes is not "longer than 5": momentary
    report = reliability_report(model_engine, index)
    totals = report["totals"]
    check(totals, expect(events, everyone, len(everyone), month_minutes("2026-06")), events=1)
    assert totals["momentary_events"] == 2
    assert totals["momentary_interruptions"] == 2 * len(below)
    assert totals["caidi"] == pytest.approx(120)
    assert report["rows"] == []

    longer = reliability_report(model_engine, index, min_minutes=2.5)
    check(longer["totals"], expect(events, everyone, len(everyone), month_minutes("2026-06"),
                                   min_minutes=2.5), events=3)
    assert longer["totals"]["momentary_events"] == 0 and longer["totals"]["maifi"] == 0.0


def test_planned_and_unplanned_apart_and_together(model_engine: Engine, index: QueryIndex,
                                                   oracle: Oracle) -> None:
    by_feeder = feeder_customers(model_engine, oracle)
    everyone = set().union(*by_feeder.values())
    fuse, _ = _fuse_with_customers(oracle)
    plan = _switching_plan(oracle)
    start = dt.datetime(2026, 7, 3, 1, 0, tzinfo=UTC)
    fault = declare_closed(model_engine, index, oracle, [fuse], start, 75)
    works = declare_closed(model_engine, index, oracle, plan.opens, start + dt.timedelta(days=3),
                           240, kind="planned", close=(plan.tie,))
    assert works.out == plan.out  # customers the tie picks up are not interrupted
    minutes = month_minutes("2026-07")
    both = reliability_report(model_engine, index, by=["kind"])
    check(both["totals"], expect([fault, works], everyone, len(everyone), minutes), events=2)
    check(both["by_kind"]["planned"], expect([works], everyone, len(everyone), minutes),
          events=1)
    check(both["by_kind"]["unplanned"], expect([fault], everyone, len(everyone), minutes),
          events=1)
    assert [(r["kind"], r["events"]) for r in both["rows"]] == [("planned", 1),
                                                                 ("unplanned", 1)]
    assert both["rows"][0]["saidi"] == both["by_kind"]["planned"]["saidi"]

    planned = reliability_report(model_engine, index, kind="planned", by=["feeder"])
    assert planned["kind"] == "planned" and list(planned["by_kind"]) == ["planned"]
    check(planned["totals"], expect([works], everyone, len(everyone), minutes), events=1)
    for row in planned["rows"]:
        f = row["feeder_id"]
        check(row, expect([works], by_feeder[f], len(by_feeder[f]), minutes))
    with pytest.raises(ReliabilityInputError, match="unknown outage kind"):
        reliability_report(model_engine, index, kind="forced")


def test_open_events_are_left_out_and_no_events_give_zeros(
    model_engine: Engine, index: QueryIndex, oracle: Oracle
) -> None:
    by_feeder = feeder_customers(model_engine, oracle)
    served = sum(len(cs) for cs in by_feeder.values())
    now = dt.datetime(2026, 8, 20, 3, 0, tzinfo=UTC)
    empty = reliability_report(model_engine, index, by=["month", "feeder"], now=now)
    assert empty["period"]["from"] == empty["period"]["to"] == "2026-08"
    zero = {"customers_served": served, "events": 0, "customers_interrupted": 0,
            "customer_minutes": 0.0, "saifi": 0.0, "saidi": 0.0, "caidi": None, "asai": 1.0,
            "momentary_events": 0, "maifi": 0.0}
    assert {k: empty["totals"][k] for k in zero} == zero
    assert len(empty["rows"]) == len(by_feeder)
    assert all(r["events"] == 0 and r["saifi"] == 0.0 for r in empty["rows"])

    fuse, _ = _fuse_with_customers(oracle)
    outages.declare(model_engine, index, [fuse], started_at=now - dt.timedelta(hours=1))
    still = reliability_report(model_engine, index, now=now)
    assert {k: still["totals"][k] for k in zero} == zero


def test_regions_sum_their_feeders(model_engine: Engine, index: QueryIndex,
                                   oracle: Oracle) -> None:
    by_feeder = feeder_customers(model_engine, oracle)
    with model_engine.connect() as conn:
        stations = read_frame(conn, "SELECT station_id, station_name, ST_X(geom), ST_Y(geom) "
                              "FROM stations", {"station_id": pl.Utf8, "station_name": pl.Utf8,
                                                "lon": pl.Float64, "lat": pl.Float64})
        station_of = dict(conn.execute(text("SELECT feeder_id, station_id FROM feeders")).all())
    region_of_station = dict(station_regions(stations).iter_rows())
    members: dict[str, set[str]] = {}
    for feeder, customers in by_feeder.items():
        members.setdefault(region_of_station[station_of[feeder]], set()).update(customers)
    fuse, _ = _fuse_with_customers(oracle)
    event = declare_closed(model_engine, index, oracle, [fuse],
                           dt.datetime(2026, 9, 9, 9, 0, tzinfo=UTC), 33)
    report = reliability_report(model_engine, index, by=["region"])
    assert [r["region"] for r in report["rows"]] == sorted(members)
    for row in report["rows"]:
        cs = members[row["region"]]
        check(row, expect([event], cs, len(cs), month_minutes("2026-09")))
    both = reliability_report(model_engine, index, by=["feeder", "region"])
    assert Counter(r["region"] for r in both["rows"]) == Counter(
        region_of_station[station_of[f]] for f in by_feeder)


def test_a_changed_network_is_flagged_not_hidden(model_engine: Engine, index: QueryIndex,
                                                 oracle: Oracle) -> None:
    fuse, below = _fuse_with_customers(oracle)
    start = dt.datetime(2026, 10, 5, 1, 0, tzinfo=UTC)
    kept = declare_closed(model_engine, index, oracle, [fuse], start, 60)
    moved = outages.declare(model_engine, index, [fuse], started_at=start + dt.timedelta(days=1))
    outages.close(model_engine, moved["id"], ended_at=start + dt.timedelta(days=1, hours=1))
    gone = outages.declare(model_engine, index, [fuse], started_at=start + dt.timedelta(days=2))
    outages.close(model_engine, gone["id"], ended_at=start + dt.timedelta(days=2, hours=1))
    with model_engine.begin() as conn:  # as if the network had changed since these events
        conn.execute(text("UPDATE outage_events SET customers_interrupted = :n, "
                          "customer_minutes = :m WHERE id = :id"),
                     {"n": len(below) + 7, "m": (len(below) + 7) * 60.0, "id": moved["id"]})
        conn.execute(text("UPDATE outage_devices SET device_id = 'SB-REMOVED' "
                          "WHERE event_id = :id"), {"id": gone["id"]})
    report = reliability_report(model_engine, index, by=["feeder"])
    assert report["network_changed"] is True
    changed = {e["id"]: e for e in report["network_changed_events"]}
    assert set(changed) == {moved["id"], gone["id"]}
    assert changed[moved["id"]]["recomputed"] == len(below)
    assert changed[moved["id"]]["customers_interrupted"] == len(below) + 7
    assert changed[gone["id"]]["recomputed"] is None
    assert "SB-REMOVED" in changed[gone["id"]]["error"]
    # totals are the stored figures; the breakdown the recomputed ones, flagged
    assert report["totals"]["customers_interrupted"] == 3 * len(below) + 7
    assert report["totals"]["network_changed"] is True
    rows = [r for r in report["rows"] if r["customers_interrupted"]]
    assert len(rows) == 1 and rows[0]["customers_interrupted"] == 2 * len(below)
    assert rows[0]["network_changed"] is True
    assert rows[0]["customer_minutes"] == pytest.approx(2 * len(below) * kept.minutes)
    assert all(r["network_changed"] is False for r in report["rows"] if r is not rows[0])


# --------------------------------------------------------------------------- CLI


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False)


def test_cli_report_reliability(model_db_url: str, model_engine: Engine, index: QueryIndex,
                                oracle: Oracle, tmp_path: Path) -> None:
    by_feeder = feeder_customers(model_engine, oracle)
    everyone = set().union(*by_feeder.values())
    fuse, _ = _fuse_with_customers(oracle)
    start = dt.datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # 04:00 on 1 December in Shanghai
    event = declare_closed(model_engine, index, oracle, [fuse], start, 61, kind="planned")

    result = run(model_db_url, "report", "reliability", "--by", "month", "--by", "feeder",
                 "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["period"]["from"] == "2026-12" and data["by"] == ["month", "feeder"]
    check(data["totals"], expect([event], everyone, len(everyone), month_minutes("2026-12")),
          events=1)
    for row in data["rows"]:
        cs = by_feeder[row["feeder_id"]]
        check(row, expect([event], cs, len(cs), month_minutes("2026-12")))

    out = tmp_path / "reliability.csv"
    written = run(model_db_url, "report", "reliability", "--by", "feeder", "--kind", "planned",
                  "--csv", str(out), "--json")
    assert written.exit_code == 0, written.output
    assert json.loads(written.stdout)["csv"] == {"path": str(out), "rows": len(by_feeder)}
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["feeder_id"] for r in table] == sorted(by_feeder)
    assert "month" not in table[0] and "saifi" in table[0]
    for r in table:
        cs = by_feeder[r["feeder_id"]]
        assert float(r["saidi"]) == pytest.approx(len(event.out & cs) * 61 / len(cs))
    again = run(model_db_url, "report", "reliability", "--csv", str(out))
    assert again.exit_code == 2 and "exists" in again.stderr
    forced = run(model_db_url, "report", "reliability", "--csv", str(out), "--force",
                 "--zh-headers")
    assert forced.exit_code == 0 and "SAIFI" in forced.stdout and "wrote 1 rows" in forced.stdout
    with out.open(encoding="utf-8-sig", newline="") as f:
        header, totals = list(csv.reader(f))
    assert header[0] == "customers_served 用户总数" and "saifi 系统平均停电频率" in header
    assert int(totals[0]) == len(everyone) and int(totals[2]) == len(event.out)

    human = run(model_db_url, "report", "reliability", "--by", "feeder")
    assert human.exit_code == 0 and all(f in human.stdout for f in by_feeder)
    assert "Asia/Shanghai" in human.stdout
    for args, message in ((["--from", "2026-13"], "not a month"),
                          (["--from", "2026-12", "--to", "2026-01"], "after it ends")):
        bad = run(model_db_url, "report", "reliability", *args)
        assert bad.exit_code == 2 and message in bad.stderr, bad.output
    wrong = run(model_db_url, "report", "reliability", "--by", "street")
    assert wrong.exit_code == 2

