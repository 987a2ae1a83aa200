"""Values: numbers, date-times, yes/no, enums, coordinates, WKT — what converts, what is
quarantined and with which rule and message."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from gridtopo.ingest import TABLES, contract
from gridtopo.ingest.contracts import contract_problems
from gridtopo.ingest.convert import ROW
from tests.test_ingest_support import (
    customer_row,
    quarantined,
    read_one,
    write_csv,
    write_customers,
)


def _customers_with(tmp_path: Path, field: str, values: list[str]) -> tuple[list[object],
                                                                             dict[int, str]]:
    """Read one customer per value of header ``field``; (loaded column, quarantine)."""
    write_customers(tmp_path, [customer_row(i, **{field: v}) for i, v in enumerate(values)])
    bundle = read_one(tmp_path)
    frame = bundle.tables["customers"].frame
    name = {"合同容量": "contract_kva", "更新时间": "updated_at", "相别": "phase",
            "用户状态": "status", "经度": "lon", "纬度": "lat"}[field]
    by_line = dict(zip(frame["_line"].to_list(), frame[name].to_list(), strict=True))
    return [by_line.get(line) for line in range(2, len(values) + 2)], quarantined(bundle)


def test_numbers(tmp_path: Path) -> None:
    values, q = _customers_with(tmp_path, "合同容量", [
        "6", " 8 ", "1,234.5", "１２３", "400kVA", "400 kVA", "0.4MVA", "50千伏安", "1e2",
        "", "abc", "12a", "1,23", "nan", "-1",
    ])
    assert values[:10] == [6.0, 8.0, 1234.5, 123.0, 400.0, 400.0, 400.0, 50.0, 100.0, None]
    assert q == {12: "not_a_number", 13: "not_a_number", 14: "not_a_number",
                 15: "not_a_number", 16: "out_of_range"}


def test_datetimes(tmp_path: Path) -> None:
    values, q = _customers_with(tmp_path, "更新时间", [
        "2024-01-02 03:04:05", "2024-01-02", "2024/01/02 03:04", "2024/1/2", "20240102",
        "2024-01-02T03:04:05", "2024-01-02 03:04:05.250", "２０２４-01-02", "2024年1月2日",
        "", "0000-00-00 00:00:00", "2024-13-01", "昨天",
    ])
    day = dt.datetime(2024, 1, 2)
    assert values[:10] == [
        dt.datetime(2024, 1, 2, 3, 4, 5), day, dt.datetime(2024, 1, 2, 3, 4), day, day,
        dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 2, 3, 4, 5, 250000), day, day,
        None,
    ]
    assert q == {12: "not_a_date", 13: "not_a_date", 14: "not_a_date"}


def test_enums(tmp_path: Path) -> None:
    phases, q = _customers_with(tmp_path, "相别", ["A", "b", "A相", "三相", "ｃ", "abc", "", "D"])
    assert phases[:7] == ["A", "B", "A", "ABC", "C", "ABC", None]
    assert q == {9: "not_in_domain"}


def test_customer_status_and_default(tmp_path: Path) -> None:
    status, q = _customers_with(tmp_path, "用户状态",
                                ["正常", "销户", "Active", "CLOSED", "", "暂停"])
    assert status[:5] == ["active", "closed", "active", "closed", "active"]
    assert q == {7: "not_in_domain"}


def test_distribution_enums_and_booleans(tmp_path: Path) -> None:
    header = ["设备编码", "设备类型", "起始节点", "终止节点", "常开"]
    kinds = ["线路", "电缆", "开关", "断路器", "熔断器", "重合器", "switch", "Line", "刀闸"]
    flags = ["", "", "true", "false", "1", "0", "是", "否", "常开", "常闭", "Y", "n", "yes",
             "maybe"]
    rows = [[f"E{i}", kinds[i % len(kinds)], "a", "b", flag] for i, flag in enumerate(flags)]
    rows.append(["E99", "变压器", "a", "b", ""])
    write_csv(tmp_path / "edges.csv", header, rows)
    (tmp_path / "transformers.csv").write_text(
        "设备编码,状态\nT1,运行\nT2,退役\nT3,\nT4,In Service\nT5,坏了\n", encoding="utf-8")
    bundle = read_one(tmp_path, "edges")
    edges = bundle.tables["edges"].frame
    assert edges["kind"].to_list()[:9] == ["line", "cable", "switch", "breaker", "fuse",
                                           "recloser", "switch", "line", "switch"]
    assert edges["normal_open"].to_list() == [None, None, True, False, True, False, True,
                                              False, True, False, True, False, True]
    assert quarantined(bundle, "edges") == {15: "not_a_boolean", 16: "not_in_domain"}
    # T5's unknown status is set aside alone: the transformer stays, with the default status
    assert bundle.tables["transformers"].frame["status"].to_list() == [
        "in_service", "retired", "in_service", "in_service", "in_service"]
    assert quarantined(bundle, "transformers") == {6: "not_in_domain"}
    assert bundle.tables["transformers"].quarantine["row_kept"].to_list() == [True]
    assert bundle.tables["edges"].quarantine["row_kept"].to_list() == [False, False]


def test_coordinates(tmp_path: Path) -> None:
    rows = [
        customer_row(1),
        customer_row(2, 经度="116.39", 纬度="39.91"),  # Beijing: outside Guangdong, still fine
        customer_row(3, 经度="", 纬度=""),
        customer_row(4, 经度="190", 纬度="23"),
        customer_row(5, 经度="113", 纬度="-91"),
        customer_row(6, 经度="113", 纬度=""),
        customer_row(7, 经度="东经113", 纬度="23"),
        customer_row(8, 经度="113.5°", 纬度="23.1度"),
    ]
    write_customers(tmp_path, rows)
    bundle = read_one(tmp_path)
    frame = bundle.tables["customers"].frame
    # a customer with an unusable point is still a customer: kept, both lon and lat blank
    assert frame["lon"].to_list() == [113.82, 116.39, None, None, None, None, None, 113.5]
    assert frame["lat"].to_list() == [23.14, 39.91, None, None, None, None, None, 23.1]
    assert quarantined(bundle) == {5: "out_of_range", 6: "out_of_range",
                                   7: "incomplete_coordinates", 8: "not_a_number"}
    assert bundle.tables["customers"].quarantine["row_kept"].to_list() == [True] * 4
    messages = bundle.tables["customers"].quarantine["message"].to_list()
    assert messages[0] == "customers.csv line 5: 经度 (lon) '190' is not between -180 and 180"
    assert messages[2] == ("customers.csv line 7: 经度 (lon) '113' has no latitude (lat) "
                           "with it")


def test_wkt(tmp_path: Path) -> None:
    header = ["edge_id", "kind", "from_node", "to_node", "geometry"]
    rows = [
        ["E1", "line", "a", "b", "LINESTRING (113.1 23.1, 113.2 23.2)"],
        ["E2", "line", "a", "b", "linestring(113.1 23.1,113.2 23.2)"],
        ["E3", "line", "a", "b", "LINESTRING Z (113.1 23.1 5, 113.2 23.2 6)"],
        ["E4", "line", "a", "b", ""],
        ["E5", "line", "a", "b", "LINESTRING (113.1 23.1"],
        ["E6", "line", "a", "b", "POINT (113.1 23.1)"],
        ["E7", "line", "a", "b", "LINESTRING EMPTY"],
    ]
    write_csv(tmp_path / "edges.csv", header, rows)
    bundle = read_one(tmp_path, "edges")
    canonical = "LINESTRING (113.1 23.1, 113.2 23.2)"
    # an edge without a usable geometry still conducts: kept, its geometry blank
    assert bundle.tables["edges"].frame["geometry"].to_list() == [canonical] * 3 + [None] * 4
    assert quarantined(bundle, "edges") == {6: "bad_geometry", 7: "bad_geometry",
                                            8: "bad_geometry"}


def test_ranges_lengths_and_required(tmp_path: Path) -> None:
    write_csv(tmp_path / "transformers.csv", ["配变编码", "额定容量"],
              [["T1", "400"], ["T2", "0"], ["T3", "-5"], ["X" * 65, "400"], ["", "400"]])
    write_csv(tmp_path / "edges.csv", ["设备编码", "设备类型", "起始节点", "终止节点", "长度"],
              [["E1", "线路", "a", "b", "0"], ["E2", "线路", "a", "b", "-1"],
               ["E3", "线路", "", "b", "1"]])
    bundle = read_one(tmp_path, "transformers")
    assert quarantined(bundle, "transformers") == {3: "out_of_range", 4: "out_of_range",
                                                   5: "too_long", 6: "missing_required"}
    assert quarantined(bundle, "edges") == {3: "out_of_range", 4: "missing_required"}
    messages = bundle.tables["transformers"].quarantine["message"].to_list()
    assert messages[0] == "transformers.csv line 3: 额定容量 (capacity_kva) '0' must be > 0"
    assert messages[3] == "transformers.csv line 6: 配变编码 (transformer_id) is blank but required"


def test_several_problems_in_one_row_give_one_quarantined_row(tmp_path: Path) -> None:
    write_customers(tmp_path, [customer_row(1, 台区编号="", 合同容量="x", 相别="D")])
    bundle = read_one(tmp_path)
    q = bundle.tables["customers"].quarantine
    assert q.height == 1 and bundle.files[0].rows_quarantined == 1
    row = q.row(0, named=True)
    assert (row["field"], row["value"], row["rule"]) == ("contract_kva", "x", "not_a_number")
    assert row["message"] == (
        "customers.csv line 2: 合同容量 (contract_kva) 'x' is not a number; 台区编号 "
        "(area_code) is blank but required; 相别 (phase) 'D' is not one of A, B, C, ABC")


def test_contract_failures_point_at_the_right_rows() -> None:
    spec = TABLES["customers"]
    n = 6
    frame = pl.DataFrame({f.name: pl.repeat(None, n, dtype=f.dtype, eager=True)
                          for f in spec.fields}).with_columns(
        pl.Series("customer_id", ["a", "b", None, "d", "e", "f"]),
        pl.Series("customer_name", ["x"] * n),
        pl.Series("area_code", ["t"] * n),
        pl.Series("contract_kva", [1.0, -1.0, 1.0, 1.0, 1.0, 1.0]),
        pl.Series("phase", ["A", "A", "A", "Q", None, "B"]),
        pl.Series("lat", [None, None, None, None, 95.0, None]),
        pl.Series(ROW, [10, 11, 12, 13, 14, 15], dtype=pl.Int64),
        pl.Series("_line", [2, 3, 4, 5, 6, 7], dtype=pl.Int64),
    )
    found = contract_problems(frame, spec).sort(ROW)
    assert found.select(ROW, "field", "rule").rows() == [
        (11, "contract_kva", "out_of_range"), (12, "customer_id", "missing_required"),
        (13, "phase", "not_in_domain"), (14, "lat", "out_of_range"),
    ]


@pytest.mark.parametrize("table", list(TABLES))
def test_loaded_frames_satisfy_the_full_contract(tmp_path: Path, table: str) -> None:
    write_customers(tmp_path, [customer_row(1), customer_row(1), customer_row(2)])
    write_csv(tmp_path / "transformer_areas.csv", ["台区编号", "台区容量"], [["TQ1", "400"]])
    write_csv(tmp_path / "stations.csv", ["station_id"], [["S1"]])
    write_csv(tmp_path / "feeders.csv", ["feeder_id"], [["F1"]])
    write_csv(tmp_path / "edges.csv", ["edge_id", "kind", "from_node", "to_node"],
              [["E1", "line", "a", "b"]])
    write_csv(tmp_path / "transformers.csv", ["transformer_id"], [["T1"]])
    bundle = read_one(tmp_path, table)
    contract(table).validate(bundle.tables[table].frame.cast(TABLES[table].schema))
