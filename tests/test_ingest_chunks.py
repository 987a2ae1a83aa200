"""Reading in chunks: a file read in many small chunks gives exactly what it gives read in one —
loaded frames, quarantined rows (messages, lines, values, raw JSON), accounts and warnings —
whatever falls on a chunk boundary (duplicates, quarantined rows, a restart in another
encoding, a chunk only Python's csv module can parse, extra fields, blank lines)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import polars as pl
import pytest

import gridtopo.ingest.delimited
import gridtopo.ingest.encoding
from gridtopo.ingest import SourceBundle, read_sources
from gridtopo.ingest.convert import shared_text
from gridtopo.ingest.delimited import read_delimited
from gridtopo.ingest.textrows import detached
from tests.test_ingest_support import (
    CUSTOMER_HEADER,
    csv_text,
    customer_row,
    quarantined,
    write_csv,
    write_customers,
)

TINY = 512
"""Chunk size (bytes) that splits the test files into dozens of chunks."""


def _read(source: Path, chunk_bytes: int, monkeypatch: pytest.MonkeyPatch
          ) -> tuple[SourceBundle, dict[str, int]]:
    """``read_sources`` with chunks of about ``chunk_bytes`` (and line starts noted about as
    often, for reading rows back); also the chunks read per file."""
    chunks: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage.startswith("read "):
            chunks[stage.removeprefix("read ")] = chunks.get(stage.removeprefix("read "), 0) + 1

    with monkeypatch.context() as patch:
        patch.setattr(gridtopo.ingest.encoding, "CHUNK_BYTES", chunk_bytes)
        patch.setattr(gridtopo.ingest.encoding, "MARK_BYTES",
                      min(chunk_bytes // 4, gridtopo.ingest.encoding.MARK_BYTES))
        return read_sources(source, progress=progress), chunks


def _assert_same(one: SourceBundle, many: SourceBundle) -> None:
    assert [asdict(f) for f in many.files] == [asdict(f) for f in one.files]
    assert many.warnings == one.warnings
    assert list(many.tables) == list(one.tables)
    for name, table in one.tables.items():
        for kind in ("frame", "quarantine"):
            expected: pl.DataFrame = getattr(table, kind)
            got: pl.DataFrame = getattr(many.tables[name], kind)
            assert got.schema == expected.schema, (name, kind)
            assert got.equals(expected, null_equal=True), (name, kind)


def _same_in_chunks(source: Path, monkeypatch: pytest.MonkeyPatch,
                    chunk_bytes: int = TINY) -> tuple[SourceBundle, dict[str, int]]:
    """Read ``source`` with the default chunks (one per small file) and with small chunks;
    assert both give the same and return the small-chunk reading with its chunk counts."""
    one, default = _read(source, gridtopo.ingest.encoding.CHUNK_BYTES, monkeypatch)
    many, chunks = _read(source, chunk_bytes, monkeypatch)
    assert any(chunks[name] > n for name, n in default.items()), (default, chunks)
    _assert_same(one, many)
    return many, chunks


def test_generated_exports_with_defects(synthetic_sources: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    many, chunks = _same_in_chunks(synthetic_sources, monkeypatch, chunk_bytes=4096)
    assert chunks["marketing/customers.csv"] > 50
    customers = many.files[[f.table for f in many.files].index("customers")]
    assert customers.encoding == "gbk"
    assert customers.rows_quarantined > 0 and customers.rows_merged > 0
    rules = set(many.tables["customers"].quarantine["rule"].to_list())
    assert {"duplicate_conflict", "missing_required"} <= rules


def test_duplicates_and_problems_on_both_sides_of_boundaries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [customer_row(i, 更新时间=f"2024-01-{1 + i % 28:02d}") for i in range(40)]
    rows += [customer_row(3, 户名="改名", 更新时间="2023-01-01"),   # line 42 loses to 5
             customer_row(30, 户名="新名", 更新时间="2025-01-01"),  # line 43 wins over 32
             customer_row(7, 更新时间="2024-01-08"),                 # merged into line 9
             customer_row(50, 合同容量="-1"), customer_row(51)[:3]]
    rows += [customer_row(i, 更新时间="x" if i % 9 == 0 else "") for i in range(60, 100)]
    write_customers(tmp_path, rows[:50], name="customers_1.csv")
    write_customers(tmp_path, [*rows[50:], customer_row(20, 户名="他人")],
                    name="customers_2.csv", encoding="utf-8")  # its last row loses to line 22
    many, chunks = _same_in_chunks(tmp_path, monkeypatch)
    assert min(chunks.values()) > 5
    q = many.tables["customers"].quarantine
    conflicts = q.filter(pl.col("rule") == "duplicate_conflict")
    assert conflicts.select("file", "line").rows() == [(0, 32), (0, 42), (1, 37)]
    assert json.loads(conflicts["raw"][1])["户名"] == "改名"
    assert [f.rows_merged for f in many.files] == [1, 0]


def test_fields_set_aside_on_both_sides_of_boundaries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Distribution rows kept without a bad field, in many chunks: one that loses a conflict
    in a later chunk (held already, not read back twice), one merged into an earlier one."""
    header = ["配变编码", "所属线路", "额定容量", "状态", "更新时间"]
    rows = [[f"T{i:03d}", "F1", "abc" if i % 6 == 0 else "400", "检修" if i % 10 == 3 else "",
             "2024-01-02"] for i in range(60)]
    rows += [["T006", "F1", "400", "", "2024-06-01"],   # line 62 wins over line 8 (kept, bad)
             ["T012", "F1", "xyz", "", "2024-01-02"]]   # line 63 same as line 14 once blank
    write_csv(tmp_path / "transformers.csv", header, rows, encoding="gbk")
    many, chunks = _same_in_chunks(tmp_path, monkeypatch, chunk_bytes=256)
    assert chunks["transformers.csv"] > 5
    q = many.tables["transformers"].quarantine
    assert q.filter(~pl.col("row_kept")).select("line", "rule").rows() == [(8, "not_a_number")]
    assert "on line 62" in q.filter(~pl.col("row_kept"))["message"][0]
    account = many.files[0]
    assert (account.rows_read, account.rows_loaded, account.rows_quarantined,
            account.rows_merged, account.fields_quarantined) == (62, 60, 1, 1, 16)
    # 16 fields: 10 capacities and 6 statuses, less line 8's (refused), plus line 63's


def test_a_restart_as_gbk_after_many_utf8_chunks(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gridtopo.ingest.delimited, "SAMPLE_BYTES", 300)
    header = ["customer_id", "customer_name", "area_code", "contract_kva", "updated_at"]
    rows = [[f"C{i:04d}", f"name{i}", "TQ1", "-1" if i % 7 == 0 else "5", "2024-01-01"]
            for i in range(60)]
    rows += [["C0001", "other", "TQ1", "5", "2023-01-01"], ["C0100", "王五", "TQ1", "5", ""]]
    (tmp_path / "customers.csv").write_bytes(csv_text(header, rows).encode("gbk"))
    many, chunks = _same_in_chunks(tmp_path, monkeypatch, chunk_bytes=128)
    assert many.files[0].encoding == "gbk"
    assert chunks["customers.csv"] > 10  # read twice: as UTF-8 up to 王五, then as GBK
    assert many.files[0].rows_read == 62
    assert many.tables["customers"].frame["customer_name"][-1] == "王五"
    assert quarantined(many) == {i + 2: "out_of_range" for i in range(0, 60, 7)} | {
        62: "duplicate_conflict"}


def test_gbk_upgraded_to_gb18030_in_a_later_chunk(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [customer_row(i, 户名=f"刘{i}") for i in range(40)]
    rows += [customer_row(40, 户名="刘䶮"), customer_row(41, 户名="刘䶮")]  # GB18030 only
    rows += [customer_row(5, 户名="刘䶮", 更新时间="2020-01-01"),  # loses to line 7
             customer_row(41, 户名="王䶮", 更新时间="2020-01-01")]  # loses to line 43
    write_customers(tmp_path, rows, encoding="gb18030")
    many, _ = _same_in_chunks(tmp_path, monkeypatch)
    assert many.files[0].encoding == "gb18030"
    raws = [json.loads(r)["户名"] for r in many.tables["customers"].quarantine["raw"]]
    assert raws == ["刘䶮", "王䶮"]


def test_a_chunk_parsed_leniently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [",".join(CUSTOMER_HEADER)]
    lines += [",".join(customer_row(i, 合同容量="-2" if i == 25 else "6")) for i in range(50)]
    lines[30] = ",".join(customer_row(29, 用电地址='东城5"号'))
    lines[31] = ",".join(customer_row(3, 户名="旧", 更新时间="2020-01-01"))  # loses to line 5
    lines += [",".join(customer_row(99, 用电地址='"东城,6号"'))]
    (tmp_path / "customers.csv").write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    many, _ = _same_in_chunks(tmp_path, monkeypatch)
    frame = many.tables["customers"].frame
    assert frame.filter(pl.col("_line") == 31)["address"].to_list() == ['东城5"号']
    assert frame["address"][-1] == "东城,6号"
    assert quarantined(many) == {27: "out_of_range", 32: "duplicate_conflict"}
    assert json.loads(many.tables["customers"].quarantine["raw"][1])["户名"] == "旧"


def test_extra_fields_only_in_a_late_chunk(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [",".join(CUSTOMER_HEADER)]
    lines += [",".join(customer_row(i, 相别="Q" if i == 2 else "A")) for i in range(40)]
    lines += [",".join([*customer_row(40), "extra", "more"])]
    (tmp_path / "customers.csv").write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    write_customers(tmp_path / "b", [customer_row(41, 相别="Q")])
    many, _ = _same_in_chunks(tmp_path, monkeypatch)
    raws = [json.loads(r) for r in many.tables["customers"].quarantine["raw"]]
    assert raws[0]["(extra fields)"] is None  # line 4, chunks before the long row
    assert raws[1]["(extra fields)"] == "extra,more"
    assert "(extra fields)" not in raws[2]  # the other file has no long row


def test_blank_lines_crlf_and_quoted_newlines(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [customer_row(i, 用电地址=f"东城街道\r\n{i}号" if i % 5 == 0 else f"{i}号")
            for i in range(30)]
    rows.append(customer_row(0, 用电地址="新址", 更新时间="2025-01-01"))  # wins over line 4
    text = csv_text(CUSTOMER_HEADER, rows, newline="\r\n").replace(
        f"{CUSTOMER_HEADER[-1]}\r\n", f"{CUSTOMER_HEADER[-1]}\r\n\r\n  \r\n").replace(
        "03001000000012,", "\r\n\r\n\r\n03001000000012,")
    (tmp_path / "customers.csv").write_bytes(text.encode("gbk"))
    many, _ = _same_in_chunks(tmp_path, monkeypatch, chunk_bytes=200)
    assert many.files[0].rows_read == 31
    assert many.tables["customers"].frame["address"][4] == "东城街道\r\n5号"
    q = many.tables["customers"].quarantine
    assert q.select("line", "rule").rows() == [(4, "duplicate_conflict")]
    assert json.loads(q["raw"][0])["用电地址"] == "东城街道\r\n0号"


def test_text_cleaning_depends_on_the_value_alone(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [customer_row(i) for i in range(30)]
    rows[1] = customer_row(1, 户名=" 张一 ")
    rows[25] = customer_row(25, 用电地址="东城街道\n", 户名="张\u3000")
    write_customers(tmp_path, rows)
    many, _ = _same_in_chunks(tmp_path, monkeypatch)
    frame = many.tables["customers"].frame
    assert frame["customer_name"][1] == "张一"
    assert frame["address"][25] == "东城街道" and frame["customer_name"][25] == "张"


def test_read_delimited_gives_the_whole_file(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [",".join(CUSTOMER_HEADER)] + [",".join(customer_row(i)) for i in range(30)]
    lines[20] += ",extra"
    path = tmp_path / "customers.csv"
    path.write_bytes(("\n".join(lines) + "\n\n").encode("gbk"))
    one = read_delimited(path)
    monkeypatch.setattr(gridtopo.ingest.encoding, "CHUNK_BYTES", TINY)
    many = read_delimited(path)
    assert many.frame.equals(one.frame, null_equal=True)
    assert (many.headers, many.encoding, many.sha256) == (one.headers, one.encoding, one.sha256)
    assert one.frame.columns == [*CUSTOMER_HEADER, "(extra fields)", "_line", "_fields"]
    assert one.frame["_line"].to_list() == list(range(2, 32))
    assert one.frame["(extra fields)"].drop_nulls().to_list() == ["extra"]


def _text_buffer_bytes(s: pl.Series) -> int:
    """Bytes of the buffers holding ``s``'s longer texts (the views' buffer aside)."""
    array = s.to_arrow(compat_level=pl.CompatLevel.newest())
    return sum(b.size for b in array.buffers()[2:] if b is not None)


def test_held_rows_do_not_keep_their_chunk() -> None:
    chunk = pl.DataFrame({"a": [f"广东省东莞市东城街道{i}号" for i in range(10_000)]})
    few = chunk.select(pl.col("a").gather([3, 9_999]))
    assert _text_buffer_bytes(few["a"]) > 100_000  # a plain gather keeps the chunk's text
    held = detached(few)
    assert held.equals(few) and _text_buffer_bytes(held["a"]) < 200


def test_shared_text_keeps_values_and_stores_each_once() -> None:
    names = pl.Series("n", [f"龙华{i % 7}号台区" if i % 11 else None for i in range(20_000)])
    shared = shared_text(names)
    assert shared.dtype == pl.String and shared.name == "n"
    assert shared.equals(names, null_equal=True)
    assert _text_buffer_bytes(shared) < 1_000 < _text_buffer_bytes(names)
    ids = pl.Series("id", [f"0300{i:09d}" for i in range(20_000)])
    assert shared_text(ids) is ids  # distinct values: left as they are
