"""Encodings: detection of UTF-8 (with/without BOM), GBK and GB18030; forced encodings;
files that are not text at all."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest

from gridtopo.errors import InputError
from gridtopo.ingest import load_profile
from gridtopo.ingest.encoding import SAMPLE_BYTES
from tests.test_ingest_support import (
    csv_text,
    customer_row,
    read_one,
    write_customers,
)

ROWS = [customer_row(1, 户名="张三"), customer_row(2, 户名="李四")]


@pytest.mark.parametrize(("encoding", "reported"), [
    ("utf-8", "utf-8"),
    ("utf-8-sig", "utf-8-sig"),
    ("gbk", "gbk"),
    ("gb18030", "gbk"),  # plain Chinese text is the same bytes in both: reported as GBK
])
def test_encodings_are_detected(tmp_path: Path, encoding: str, reported: str) -> None:
    write_customers(tmp_path, ROWS, encoding=encoding)
    bundle = read_one(tmp_path)
    assert bundle.files[0].encoding == reported
    assert bundle.tables["customers"].frame["customer_name"].to_list() == ["张三", "李四"]
    assert bundle.tables["customers"].frame.columns[0] == "customer_id"  # BOM not in header


def test_gb18030_only_characters_are_reported_as_gb18030(tmp_path: Path) -> None:
    # 䶮 (U+4DAE, a character of personal names) is outside GBK: GB18030 four-byte code
    write_customers(tmp_path, [customer_row(1, 户名="刘䶮")], encoding="gb18030")
    bundle = read_one(tmp_path)
    assert bundle.files[0].encoding == "gb18030"
    assert bundle.tables["customers"].frame["customer_name"].to_list() == ["刘䶮"]


def test_gbk_upgraded_to_gb18030_beyond_the_sniffed_sample(tmp_path: Path) -> None:
    n = SAMPLE_BYTES // 60 + 10
    rows = [customer_row(i) for i in range(n)] + [customer_row(n, 户名="刘䶮")]
    path = write_customers(tmp_path, rows, encoding="gb18030")
    assert path.stat().st_size > SAMPLE_BYTES
    bundle = read_one(tmp_path)
    assert bundle.files[0].encoding == "gb18030"
    assert bundle.tables["customers"].frame["customer_name"][-1] == "刘䶮"


def test_ascii_sample_then_gbk_is_read_as_gbk(tmp_path: Path) -> None:
    n = SAMPLE_BYTES // 60 + 10
    rows = [customer_row(i, 户名=f"name{i}", 用电地址="x") for i in range(n)]
    rows.append(customer_row(n, 户名="王五"))
    header = ["customer_id", "customer_name", "address", "area_code", "phase", "contract_kva",
              "status", "lon", "lat", "updated_at"]
    write_customers(tmp_path, rows, encoding="gbk", header=header)
    bundle = read_one(tmp_path)
    assert bundle.files[0].encoding == "gbk"
    assert bundle.tables["customers"].frame["customer_name"][-1] == "王五"


@pytest.mark.parametrize("encoding", ["big5", "gb18030"])
def test_profile_forces_an_encoding(tmp_path: Path, encoding: str) -> None:
    # Big5 bytes would be detected as (garbled) GBK: only the profile can say what they are
    text = csv_text(["customer_id", "customer_name", "area_code"], [["1", "陳大文", "TQ1"]])
    (tmp_path / "customers.csv").write_bytes(text.encode(encoding))
    (tmp_path / "p.toml").write_text(f'[customers]\nencoding = "{encoding}"\n',
                                     encoding="utf-8")
    bundle = read_one(tmp_path, profile=load_profile(tmp_path / "p.toml"))
    assert bundle.files[0].encoding == encoding
    assert bundle.tables["customers"].frame["customer_name"].to_list() == ["陳大文"]


def test_wrong_forced_encoding_names_file_offset_and_line(tmp_path: Path) -> None:
    header = ["customer_id", "customer_name", "area_code"]
    text = csv_text(header, [["1", "Zhang", "TQ1"], ["2", "王五", "TQ1"]])
    (tmp_path / "customers.csv").write_bytes(text.encode("gbk"))
    (tmp_path / "p.toml").write_text('encoding = "utf-8"\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_one(tmp_path, profile=load_profile(tmp_path / "p.toml"))
    message = str(err.value)
    offset = text.encode("gbk").index("王".encode("gbk"))
    assert "customers.csv" in message and "utf-8" in message
    assert f"byte offset {offset}" in message and "line 3" in message


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("customers.csv", "户号,户名\n1,张三\n")
    return buffer.getvalue()


@pytest.mark.parametrize(("content", "why"), [
    (b"\x89PNG\r\n\x1a\n" + bytes(200), "PNG"),
    (_zip_bytes(), "zip"),
    (b"customer_id,customer_name\n1,\x00\x00\x00\n", "NUL"),
    (random.Random(7).randbytes(4000), ""),
])
def test_a_file_that_is_not_text_is_refused(tmp_path: Path, content: bytes, why: str) -> None:
    (tmp_path / "customers.csv").write_bytes(content)
    with pytest.raises(InputError, match="not a text/CSV file") as err:
        read_one(tmp_path)
    assert "customers.csv" in str(err.value) and why in str(err.value)


def test_utf16_is_refused_with_advice(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_bytes(csv_text(["户号"], [["1"]]).encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16"):
        read_one(tmp_path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_bytes(b"")
    with pytest.raises(InputError, match=r"customers\.csv: empty file"):
        read_one(tmp_path)
