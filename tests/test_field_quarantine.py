"""Field-level quarantine: a row (distribution or marketing) with an unusable value it can do
without is kept with that field blank and the field is quarantined (file, line, field, value,
reason); a row whose key, a required or an essential field is unusable is still refused
whole. Real GBK and UTF-8 files through ``read_sources``, a real ingest and audit on both
stores."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from click.testing import CliRunner
from sqlalchemy import text

from gridtopo.cli.main import main
from gridtopo.db import open_engine, upgrade
from gridtopo.db.read.frames import read_frame
from gridtopo.db.runs import quarantined, runs
from gridtopo.ingest import SourceBundle
from gridtopo.pipeline import ingest
from gridtopo.quality.audit import run_audit
from gridtopo.quality.config import load_config, parse_now
from tests.test_ingest_support import CUSTOMER_HEADER, customer_row, read_one, write_csv

TRANSFORMER_HEADER = ["配变编码", "配变名称", "所属线路", "连接节点", "额定容量", "营销台区编号",
                      "状态", "经度", "纬度", "更新时间"]
OK_DATE = "2024-06-01 08:00:00"
LONG_PHONE = "1" * 70


def write_exports(root: Path) -> Path:
    """A small but whole chain, an unusable value in each table (and a few rows that must
    still be refused whole); stations, transformers and 台区 GBK, the rest UTF-8."""
    dist, mkt = root / "distribution", root / "marketing"
    write_csv(dist / "stations.csv", ["变电站编码", "变电站名称", "电压等级", "经度", "纬度"],
              [["S1", "城东站", "110kV", "113.8", "北纬23"]], encoding="gbk")
    write_csv(dist / "feeders.csv",
              ["线路编码", "线路名称", "所属变电站编码", "电压等级", "出线节点"],
              [["F1", "城东#1线", "S1", "10kV", "N0"], ["F2", "城东#2线", "S1", "十千伏", "N10"]])
    write_csv(dist / "edges.csv", ["设备编码", "设备类型", "所属线路", "起始节点", "终止节点",
                                   "常开", "长度"], [
        ["E1", "断路器", "F1", "N0", "N1", "否", ""],
        ["E2", "线路", "F1", "N1", "N2", "", "十米"],     # line 3: unusable length → kept
        ["E3", "线路", "F1", "N1", "N3", "", "120"],
        ["", "线路", "F1", "N3", "N4", "", "5"],          # line 5: blank key → refused
        ["E5", "开关", "F1", "N2", "N5", "半开", ""],      # line 6: switch state → refused
        ["E6", "断路器", "F2", "N10", "N11", "否", ""],
    ])
    write_csv(dist / "transformers.csv", TRANSFORMER_HEADER, [
        ["T1", "城东1号公变", "F1", "N2", "四百", "", "运行", "113.80", "23.10", OK_DATE],
        ["T2", "城东2号公变", "F1", "N3", "400", "", "运行", "东经113", "23.10", "2024-13-45"],
        ["T3", "城东3号公变", "F1", "N2", "315", "", "检修", "113.80", "23.10", OK_DATE],
        ["T4", "城东4号公变", "F2", "N11", "200", "", "运行", "113.80", "95", OK_DATE],
        ["", "无编码公变", "F2", "N11", "abc", "", "运行", "113.80", "23.10", OK_DATE],
        ["T6", "旧公变", "F2", "N11", "100", "", "退役", "113.80", "23.10", OK_DATE],
        ["T7", "城东7号公变", "F2", "N11", "100", "", "运行", "113.80", "23.10", OK_DATE],
    ], encoding="gbk")
    write_csv(mkt / "transformer_areas.csv",
              ["台区编号", "台区名称", "线路名称", "PMS设备编码", "台区容量"],
              [[f"TQ{i}", f"城东{i}号台区", "城东#1线", f"T{i}", "大" if i == 2 else "400"]
               for i in (1, 2, 3, 4)]                       # line 3: unusable capacity → kept
              + [["", "无编号台区", "城东#1线", "", "200"]],  # line 6: blank key → refused
              encoding="gbk")
    customers = [[*customer_row(10 * i + j, 台区编号=f"TQ{i}"), "13800000000"]
                 for i in (1, 2, 3, 4) for j in (1, 2)]
    # line 10: unusable 合同容量 and a phone too long → kept without both
    customers.append([*customer_row(99, 台区编号="TQ1", 合同容量="x"), LONG_PHONE])
    customers.append([*customer_row(98, 台区编号="TQ1", 户名=""), ""])  # line 11: refused
    write_csv(mkt / "customers.csv", [*CUSTOMER_HEADER, "联系电话"], customers)
    return root


def _quarantine(bundle: SourceBundle, table: str) -> list[tuple[object, ...]]:
    q = bundle.tables[table].quarantine
    return q.select("line", "field", "value", "rule", "row_kept", "entity_id").rows()


def _account(bundle: SourceBundle, table: str) -> tuple[int, int, int, int, int]:
    a = next(f for f in bundle.files if f.table == table)
    return a.rows_read, a.rows_loaded, a.rows_quarantined, a.rows_merged, a.fields_quarantined


def test_bad_fields_are_set_aside_and_the_rows_kept(tmp_path: Path) -> None:
    bundle = read_one(write_exports(tmp_path), "transformers")

    t = bundle.tables["transformers"].frame
    assert t["transformer_id"].to_list() == ["T1", "T2", "T3", "T4", "T6", "T7"]
    by_id = {r["transformer_id"]: r for r in t.iter_rows(named=True)}
    assert by_id["T1"]["capacity_kva"] is None and by_id["T1"]["lon"] == 113.8
    assert by_id["T2"]["updated_at"] is None and by_id["T2"]["capacity_kva"] == 400.0
    assert (by_id["T2"]["lon"], by_id["T2"]["lat"]) == (None, None)  # a point is one value
    assert by_id["T3"]["status"] == "in_service"  # unknown status: the default, as if blank
    assert (by_id["T4"]["lon"], by_id["T4"]["lat"]) == (None, None)
    assert _quarantine(bundle, "transformers") == [
        (2, "capacity_kva", "四百", "not_a_number", True, "T1"),
        (3, "lon", "东经113", "not_a_number", True, "T2"),
        (3, "updated_at", "2024-13-45", "not_a_date", True, "T2"),
        (4, "status", "检修", "not_in_domain", True, "T3"),
        (5, "lat", "95", "out_of_range", True, "T4"),
        (6, "capacity_kva", "abc", "not_a_number", False, None),
    ]
    messages = bundle.tables["transformers"].quarantine["message"].to_list()
    assert messages[0] == ("distribution/transformers.csv line 2: 额定容量 (capacity_kva) '四百' "
                           "is not a number")
    assert messages[2] == ("distribution/transformers.csv line 3: 更新时间 (updated_at) "
                           "'2024-13-45' is not a date-time (e.g. 2024-12-31 23:59:59)")
    # the refused row names every problem, the blank key included
    assert messages[5].endswith("配变编码 (transformer_id) is blank but required")
    assert "'abc' is not a number" in messages[5]
    assert _account(bundle, "transformers") == (7, 6, 1, 0, 5)

    s = bundle.tables["stations"].frame.row(0, named=True)
    assert (s["station_id"], s["voltage_kv"], s["lon"], s["lat"]) == ("S1", 110.0, None, None)
    assert _quarantine(bundle, "stations") == [(2, "lat", "北纬23", "not_a_number", True, "S1")]
    assert _account(bundle, "stations") == (1, 1, 0, 0, 1)

    f = bundle.tables["feeders"].frame
    assert f["voltage_kv"].to_list() == [10.0, None]
    assert _quarantine(bundle, "feeders") == [(3, "voltage_kv", "十千伏", "not_a_number", True,
                                                "F2")]

    e = bundle.tables["edges"].frame
    assert e["edge_id"].to_list() == ["E1", "E2", "E3", "E6"]
    assert e["length_m"].to_list() == [None, None, 120.0, None]
    assert _quarantine(bundle, "edges") == [
        (3, "length_m", "十米", "not_a_number", True, "E2"),
        (5, "edge_id", None, "missing_required", False, None),
        (6, "normal_open", "半开", "not_a_boolean", False, "E5"),  # a switch's state: essential
    ]
    assert _account(bundle, "edges") == (6, 4, 2, 0, 1)

    a = bundle.tables["transformer_areas"].frame
    assert a.select("area_code", "capacity_kva").rows() == [
        ("TQ1", 400.0), ("TQ2", None), ("TQ3", 400.0), ("TQ4", 400.0)]
    assert _quarantine(bundle, "transformer_areas") == [
        (3, "capacity_kva", "大", "not_a_number", True, "TQ2"),
        (6, "area_code", None, "missing_required", False, None),  # the key: refused whole
    ]
    assert _account(bundle, "transformer_areas") == (5, 4, 1, 0, 1)

    c = bundle.tables["customers"].frame
    c99 = c.filter(pl.col("customer_id") == "0300100000099").row(0, named=True)
    assert (c99["area_code"], c99["contract_kva"], c99["phone"]) == ("TQ1", None, None)
    c98 = c.filter(pl.col("customer_id") == "0300100000098").row(0, named=True)
    assert (c98["customer_name"], c98["area_code"]) == (None, "TQ1")  # no name, still supplied
    assert _quarantine(bundle, "customers") == [
        (10, "contract_kva", "x", "not_a_number", True, "0300100000099"),
        (10, "phone", LONG_PHONE, "too_long", True, "0300100000099"),
        (11, "customer_name", None, "missing_required", True, "0300100000098"),  # kept
    ]
    assert _account(bundle, "customers") == (10, 10, 0, 0, 3)


def test_a_kept_row_that_loses_a_duplicate_conflict_is_refused_whole(tmp_path: Path) -> None:
    rows = [
        ["T1", "甲", "F1", "N1", "四百", "", "运行", "", "", "2024-01-01"],
        ["T1", "甲", "F1", "N1", "400", "", "运行", "", "", "2024-06-01"],   # newer: kept
        ["T2", "乙", "F1", "N2", "abc", "", "运行", "", "", ""],
        ["T2", "乙", "F1", "N2", "xyz", "", "运行", "", "", ""],             # same once blank
    ]
    write_csv(tmp_path / "transformers.csv", TRANSFORMER_HEADER, rows)
    bundle = read_one(tmp_path, "transformers")
    frame = bundle.tables["transformers"].frame
    assert frame.select("transformer_id", "capacity_kva", "_line").rows() == [
        ("T1", 400.0, 3), ("T2", None, 4)]
    q = bundle.tables["transformers"].quarantine
    assert q.select("line", "rule", "row_kept").rows() == [
        (2, "not_a_number", False), (4, "not_a_number", True), (5, "not_a_number", True)]
    assert "repeated with different capacity_kva, updated_at on line 3" in q["message"][0]
    assert _account(bundle, "transformers") == (4, 2, 1, 1, 2)


def test_ingest_keeps_the_chain_and_the_audit_lists_what_was_set_aside(
    db_url: str, tmp_path: Path
) -> None:
    sources = write_exports(tmp_path / "sources")
    engine = open_engine(db_url)
    upgrade(engine)
    report = ingest(engine, sources)
    totals = report.totals
    assert totals["rows_read"] == (totals["rows_loaded"] + totals["rows_quarantined"]
                                   + totals["rows_merged"])
    assert (totals["rows_quarantined"], totals["fields_quarantined"]) == (4, 12)
    accounts = {f["table"]: (f["rows_quarantined"], f["fields_quarantined"])
                for f in report.files}
    assert accounts == {"stations": (0, 1), "feeders": (0, 1), "edges": (2, 1),
                        "transformers": (1, 5), "transformer_areas": (1, 1),
                        "customers": (0, 3)}
    with engine.connect() as conn:
        stored = read_frame(conn, "SELECT f.table_name, f.fields_quarantined, "
                            "f.rows_quarantined FROM ingest_files f ORDER BY f.id",
                            {"table": pl.Utf8, "fields": pl.Int64, "rows": pl.Int64})
        chain = dict(conn.execute(text(
            "SELECT customer_id, transformer_id FROM customers")).all())
        t1 = conn.execute(text("SELECT capacity_kva, status, source_line FROM transformers "
                               "WHERE transformer_id = 'T1'")).one()
        t3_status = conn.execute(text(
            "SELECT status FROM transformers WHERE transformer_id = 'T3'")).scalar_one()
    assert dict(zip(stored["table"], stored["fields"], strict=True)) == {
        t: n for t, (_, n) in accounts.items()}
    # the transformers and the customers with a bad or blank field are still on their chain
    assert chain == {customer_row(10 * i + j)[0]: f"T{i}" for i in (1, 2, 3, 4) for j in (1, 2)
                     } | {customer_row(99)[0]: "T1", customer_row(98)[0]: "T1"}
    assert tuple(t1) == (None, "in_service", 2)
    assert t3_status == "in_service"

    kept = quarantined(engine, kept=True)
    assert kept.select("table", "line", "field", "value", "entity_id").filter(
        pl.col("table") == "transformers").rows() == [
        ("transformers", 2, "capacity_kva", "四百", "T1"),
        ("transformers", 3, "lon", "东经113", "T2"),
        ("transformers", 3, "updated_at", "2024-13-45", "T2"),
        ("transformers", 4, "status", "检修", "T3"),
        ("transformers", 5, "lat", "95", "T4"),
    ]
    assert kept["row_kept"].to_list() == [True] * 12
    refused = quarantined(engine, kept=False)
    assert sorted(refused.select("table", "line").rows()) == [
        ("edges", 5), ("edges", 6), ("transformer_areas", 6),
        ("transformers", 6)]
    assert runs(engine)[0]["totals"]["fields_quarantined"] == 12

    result = run_audit(engine, load_config(None, now=parse_now("2024-12-31")), gx=False)
    found = result.findings.filter(pl.col("rule") == "field_unreadable")
    by_entity = {(r["entity_type"], r["entity_id"]): r for r in found.iter_rows(named=True)}
    assert sorted(by_entity) == [("area", "TQ2"), ("customer", "0300100000098"),
                                 ("customer", "0300100000099"),
                                 ("edge", "E2"), ("feeder", "F2"), ("station", "S1"),
                                 ("transformer", "T1"), ("transformer", "T2"),
                                 ("transformer", "T3"), ("transformer", "T4")]
    t1_finding = by_entity[("transformer", "T1")]
    assert t1_finding["message"] == ("transformer T1: source value set aside as unusable — "
                                     "capacity_kva '四百' (not_a_number)")
    assert t1_finding["dimension"] == "validity" and t1_finding["feeder_id"] == "F1"
    assert by_entity[("edge", "E2")]["feeder_id"] == "F1"
    fields = json.loads(by_entity[("transformer", "T2")]["evidence"])["fields"]
    assert {(x["field"], x["value"], x["rule"], x["line"]) for x in fields} == {
        ("lon", "东经113", "not_a_number", 3), ("updated_at", "2024-13-45", "not_a_date", 3)}
    assert {x["path"] for x in fields} == {str(sources / "distribution" / "transformers.csv")}
    # a customer's finding names the personal field but never its source value
    c99 = by_entity[("customer", "0300100000099")]
    assert c99["message"] == ("customer 0300100000099: source value set aside as unusable — "
                              "contract_kva 'x' (not_a_number); phone '' (too_long)")
    assert c99["feeder_id"] == "F1"
    assert LONG_PHONE not in c99["evidence"]
    assert {(x["field"], x["value"]) for x in json.loads(c99["evidence"])["fields"]} == {
        ("contract_kva", "x"), ("phone", None)}

    # a retired transformer has nothing to link: no finding for its blank 营销台区编号
    missing = set(result.findings.filter(pl.col("rule") == "transformer_area_code_missing")
                  ["entity_id"].to_list())
    assert {"T1", "T7"} <= missing and "T6" not in missing
    engine.dispose()


def test_cli_says_which_rows_were_kept(db_url: str, tmp_path: Path) -> None:
    sources = write_exports(tmp_path / "sources")
    runner = CliRunner()
    out = runner.invoke(main, ["--db", db_url, "ingest", str(sources)])
    assert out.exit_code == 0, out.output
    header = next(line for line in out.output.splitlines() if "quarant." in line)
    assert header.split()[-1] == "fields"
    row = next(line for line in out.output.splitlines() if "transformers.csv" in line)
    assert row.split()[-4:] == ["6", "1", "0", "5"]  # loaded, refused, merged, fields

    listed = runner.invoke(main, ["--db", db_url, "quarantine", "--table", "transformers"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].startswith("transformers.csv:2  kept     [not_a_number]")
    assert lines[5].startswith("transformers.csv:6  refused  [not_a_number]")
    assert lines[-1] == "1 rows refused, 5 fields set aside in kept rows"
    refused = json.loads(runner.invoke(main, ["--db", db_url, "quarantine", "--refused",
                                              "--json"]).output)
    assert {(r["table"], r["line"]) for r in refused} == {
        ("edges", 5), ("edges", 6), ("transformer_areas", 6),
        ("transformers", 6)}
    assert not any(r["row_kept"] for r in refused)
    history = runner.invoke(main, ["--db", db_url, "runs"])
    assert "quarantined 4 rows + 12 fields" in history.output


def test_an_unchanged_rerun_sets_aside_the_same_fields(db_url: str, tmp_path: Path) -> None:
    """A second ingest of the same files is ``unchanged``: its quarantine (and so the audit's
    list of what was set aside) is the same."""
    sources = write_exports(tmp_path / "sources")
    engine = open_engine(db_url)
    upgrade(engine)
    first = ingest(engine, sources)
    second = ingest(engine, sources)
    assert second.status == "unchanged"
    assert second.totals == first.totals
    again = quarantined(engine, second.run_id, kept=True)
    assert again.drop("run_id").equals(quarantined(engine, first.run_id, kept=True)
                                       .drop("run_id"))
    result = run_audit(engine, load_config(None, now=parse_now("2024-12-31")), gx=False)
    assert result.findings.filter(pl.col("rule") == "field_unreadable").height == 10
    engine.dispose()
