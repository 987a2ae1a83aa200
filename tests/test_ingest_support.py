"""Helpers shared by the ingest tests: write small but real export files.

Files are written byte for byte (encoding, delimiter, line endings under the test's control)
so each test exercises the same code a real export would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from gridtopo.ingest import SourceBundle, read_sources

CUSTOMER_HEADER = ["户号", "户名", "用电地址", "台区编号", "相别", "合同容量", "用户状态",
                   "经度", "纬度", "更新时间"]


def customer_row(i: int, **changes: str) -> list[str]:
    """A valid customer row in :data:`CUSTOMER_HEADER` order; ``changes`` override fields by
    header (e.g. ``**{"合同容量": "-1"}``)."""
    row = {
        "户号": f"03001{i:08d}", "户名": f"张{i}", "用电地址": f"广东省东莞市东城街道{i}号",
        "台区编号": "TQ0001", "相别": "A", "合同容量": "6", "用户状态": "正常",
        "经度": "113.82", "纬度": "23.14", "更新时间": "2024-01-02 03:04:05",
    }
    row.update(changes)
    return [row[h] for h in CUSTOMER_HEADER]


def csv_text(header: Sequence[str], rows: Sequence[Sequence[str]], delimiter: str = ",",
             newline: str = "\n") -> str:
    """Delimited text with a header; fields containing the delimiter, a quote or a newline
    are quoted."""
    def cell(value: str) -> str:
        if any(ch in value for ch in (delimiter, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [delimiter.join(cell(v) for v in row) for row in [list(header), *rows]]
    return newline.join(lines) + newline


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]],
              encoding: str = "utf-8", delimiter: str = ",") -> Path:
    """Write a delimited file in ``encoding`` (creating parent directories)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(csv_text(header, rows, delimiter).encode(encoding))
    return path


def write_customers(directory: Path, rows: Sequence[Sequence[str]], name: str = "customers.csv",
                    encoding: str = "gbk", header: Sequence[str] = CUSTOMER_HEADER) -> Path:
    """Write a customers export into ``directory``."""
    return write_csv(directory / name, header, rows, encoding)


def read_one(directory: Path, table: str = "customers", **kwargs: object) -> SourceBundle:
    """``read_sources`` on ``directory``, checking accounting adds up and ``table`` exists."""
    bundle = read_sources(directory, **kwargs)  # type: ignore[arg-type]
    for account in bundle.files:
        assert account.rows_read == (account.rows_loaded + account.rows_quarantined
                                     + account.rows_merged)
    assert table in bundle.tables
    return bundle


def quarantined(bundle: SourceBundle, table: str = "customers") -> dict[int, str]:
    """Quarantined line → rule of ``table``."""
    q = bundle.tables[table].quarantine
    return dict(zip(q["line"].to_list(), q["rule"].to_list(), strict=True))


def column(bundle: SourceBundle, name: str, table: str = "customers") -> list[object]:
    """A loaded column of ``table`` as a list."""
    frame: pl.DataFrame = bundle.tables[table].frame
    return frame[name].to_list()
