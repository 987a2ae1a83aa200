"""read_sources as a whole: discovery, several files per table, duplicates, accounting and
the messages of quarantined rows."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from gridtopo.errors import InputError
from gridtopo.ingest import read_sources
from gridtopo.ingest.quarantine import QUARANTINE_SCHEMA
from tests.test_ingest_support import (
    CUSTOMER_HEADER,
    customer_row,
    quarantined,
    read_one,
    write_csv,
    write_customers,
)


def test_discovery_is_recursive_and_skips_truth_hidden_and_lock_files(tmp_path: Path) -> None:
    write_customers(tmp_path / "营销" / "2024", [customer_row(1)], name="用户档案.csv")
    write_csv(tmp_path / "配网" / "配变.csv", ["配变编码"], [["T1"]])
    write_csv(tmp_path / "配网" / "readme.txt", ["whatever"], [["x"]])
    write_customers(tmp_path / "truth", [customer_row(2)])
    write_customers(tmp_path / ".cache", [customer_row(3)])
    write_customers(tmp_path, [customer_row(4)], name="~$customers.csv")
    bundle = read_sources(tmp_path)
    assert sorted(bundle.tables) == ["customers", "transformers"]
    assert [Path(f.path).relative_to(tmp_path).as_posix() for f in bundle.files] == [
        "配网/配变.csv", "营销/2024/用户档案.csv"]
    missing = {"stations", "feeders", "edges", "transformer_areas"}
    assert {w.split()[4] for w in bundle.warnings if w.startswith("no file found")} == missing


def test_several_files_of_one_table_each_have_an_account(tmp_path: Path) -> None:
    write_customers(tmp_path, [customer_row(1), customer_row(2)], name="customers_part1.csv")
    write_customers(tmp_path, [customer_row(3), customer_row(4, 合同容量="-1")],
                    name="customers_part2.csv", encoding="utf-8")
    bundle = read_one(tmp_path)
    # the negative contract capacity is set aside on its own: the customer is kept
    assert [(Path(f.path).name, f.encoding, f.rows_read, f.rows_loaded, f.rows_quarantined,
             f.fields_quarantined)
            for f in bundle.files] == [("customers_part1.csv", "gbk", 2, 2, 0, 0),
                                       ("customers_part2.csv", "utf-8", 2, 2, 0, 1)]
    frame = bundle.tables["customers"].frame
    assert frame.select("_file", "_line").rows() == [(0, 2), (0, 3), (1, 2), (1, 3)]
    assert frame["contract_kva"].to_list() == [6.0, 6.0, 6.0, None]
    q = bundle.tables["customers"].quarantine
    assert q.select("file", "line", "row_kept").rows() == [(1, 3, True)]
    assert q["message"][0].startswith("customers_part2.csv line 3: ")


def test_duplicates_merged_and_conflicts(tmp_path: Path) -> None:
    rows = [
        customer_row(1, 更新时间="2024-01-01"),
        customer_row(2, 更新时间="2024-01-01"),
        customer_row(1, 更新时间="2024-01-01"),                       # exact repeat: merged
        customer_row(2, 户名="改名", 更新时间="2023-06-01"),           # older: quarantined
        customer_row(3, 户名="甲"),
        customer_row(3, 户名="乙"),                                    # same time: later wins
        customer_row(4, 户名="丙", 更新时间=""),                       # blank time is oldest
        customer_row(4, 户名="丁", 更新时间="2020-01-01"),
        customer_row(4, 户名="丙", 更新时间=""),                       # repeat of a loser
    ]
    write_customers(tmp_path, rows)
    bundle = read_one(tmp_path)
    frame = bundle.tables["customers"].frame
    assert frame.select("customer_id", "customer_name", "_line").rows() == [
        ("0300100000001", "张1", 2), ("0300100000002", "张2", 3),
        ("0300100000003", "乙", 7), ("0300100000004", "丁", 9)]
    assert quarantined(bundle) == {5: "duplicate_conflict", 6: "duplicate_conflict",
                                   8: "duplicate_conflict", 10: "duplicate_conflict"}
    account = bundle.files[0]
    assert (account.rows_read, account.rows_loaded, account.rows_quarantined,
            account.rows_merged) == (9, 4, 4, 1)
    q = bundle.tables["customers"].quarantine
    first = q.row(0, named=True)
    assert first["field"] == "customer_id" and first["value"] == "0300100000002"
    assert first["message"] == (
        "customers.csv line 5: 户号 (customer_id) '0300100000002' is repeated with different "
        "customer_name, updated_at on line 3, which was kept (the latest updated_at wins, "
        "then the later row)")
    assert json.loads(first["raw"])["户名"] == "改名"


def test_conflicts_across_files_name_the_kept_file(tmp_path: Path) -> None:
    write_customers(tmp_path, [customer_row(1, 户名="旧")], name="customers_1.csv")
    write_customers(tmp_path, [customer_row(1, 户名="新")], name="customers_2.csv")
    bundle = read_one(tmp_path)
    assert bundle.tables["customers"].frame["customer_name"].to_list() == ["新"]
    message = bundle.tables["customers"].quarantine["message"][0]
    assert message.startswith("customers_1.csv line 2: ")
    assert "on line 2 of customers_2.csv, which was kept" in message


def test_quarantine_rows_name_file_line_field_and_value(tmp_path: Path) -> None:
    write_customers(tmp_path / "营销", [customer_row(1), customer_row(2, 合同容量="-6")])
    bundle = read_one(tmp_path)
    q = bundle.tables["customers"].quarantine
    assert q.schema == pl.Schema(QUARANTINE_SCHEMA)
    row = q.row(0, named=True)
    assert row == {
        "file": 0, "line": 3, "field": "contract_kva", "value": "-6", "rule": "out_of_range",
        "message": "营销/customers.csv line 3: 合同容量 (contract_kva) '-6' must be ≥ 0",
        "raw": row["raw"], "row_kept": True, "entity_id": "0300100000002",
    }
    raw = json.loads(row["raw"])
    assert list(raw) == CUSTOMER_HEADER and raw["合同容量"] == "-6"


def test_accounting_adds_up_with_every_kind_of_row(tmp_path: Path) -> None:
    rows = [customer_row(i) for i in range(10)]
    # merged repeat; losing duplicate conflict (refused); unknown phase (kept, phase set
    # aside); wrong field count (refused)
    rows += [customer_row(3), customer_row(4, 户名="x"), customer_row(20, 相别="Q"),
             customer_row(21)[:4]]
    write_customers(tmp_path, rows)
    account = read_one(tmp_path).files[0]
    assert (account.rows_read, account.rows_loaded, account.rows_quarantined,
            account.rows_merged, account.fields_quarantined) == (14, 11, 2, 1, 1)
    assert len(account.sha256) == 64
    assert account.size_bytes == (tmp_path / "customers.csv").stat().st_size


def test_progress_is_reported(tmp_path: Path) -> None:
    write_customers(tmp_path, [customer_row(1)])
    calls: list[tuple[str, int, int]] = []
    read_sources(tmp_path, progress=lambda stage, done, total: calls.append((stage, done,
                                                                            total)))
    assert ("read customers.csv", calls[0][1], calls[0][2]) == calls[0]
    assert ("validate customers", 0, 1) in calls


def test_source_directory_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_sources(tmp_path / "nope")


def test_source_directory_without_exports(tmp_path: Path) -> None:
    write_csv(tmp_path / "notes.csv", ["a"], [["b"]])
    with pytest.raises(InputError, match="no recognisable export file"):
        read_sources(tmp_path)


def test_bad_rows_never_abort_but_a_bad_file_does(tmp_path: Path) -> None:
    write_customers(tmp_path, [customer_row(1), ["x"] * 30, customer_row(2, 更新时间="?")])
    bundle = read_one(tmp_path)
    # the wrong field count refuses its row; the unreadable date only sets its field aside
    account = bundle.files[0]
    assert (account.rows_loaded, account.rows_quarantined, account.fields_quarantined) == (
        2, 1, 1)
    (tmp_path / "customers_2.csv").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(InputError, match=r"customers_2\.csv"):
        read_sources(tmp_path)
