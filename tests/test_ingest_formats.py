"""Formats and layouts: CSV/TSV delimiters, xlsx sheets, GeoJSON and GeoPackage layers, and
the rows a delimited file can get wrong (field counts, quoting, blank lines, line endings)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import xlsxwriter
from shapely.geometry import LineString, Point

from gridtopo.ingest import load_profile
from tests.test_ingest_support import (
    CUSTOMER_HEADER,
    csv_text,
    customer_row,
    quarantined,
    read_one,
    write_customers,
)

ROWS = [customer_row(1), customer_row(2, 用电地址="东莞市, 东城街道")]


@pytest.mark.parametrize(("delimiter", "file_format"), [
    (",", "csv"), ("\t", "tsv"), (";", "csv"), ("|", "csv"),
])
def test_delimiters_are_sniffed(tmp_path: Path, delimiter: str, file_format: str) -> None:
    (tmp_path / "customers.csv").write_bytes(
        csv_text(CUSTOMER_HEADER, ROWS, delimiter).encode("gbk"))
    bundle = read_one(tmp_path)
    assert bundle.files[0].file_format == file_format
    frame = bundle.tables["customers"].frame
    assert frame["address"].to_list() == ["广东省东莞市东城街道1号", "东莞市, 东城街道"]
    assert frame["_line"].to_list() == [2, 3]


def test_tsv_suffix_and_gbk_pipe_delimiter(tmp_path: Path) -> None:
    # '|' (0x7C) is also a GBK trail byte: splitting must happen on decoded text
    rows = [customer_row(1, 户名="丨|亅")]
    (tmp_path / "customers.tsv").write_bytes(csv_text(CUSTOMER_HEADER, rows, "|").encode("gbk"))
    frame = read_one(tmp_path).tables["customers"].frame
    assert frame["customer_name"].to_list() == ["丨|亅"]


def _workbook(path: Path, sheets: dict[str, list[list[object]]]) -> None:
    book = xlsxwriter.Workbook(path)
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            sheet.write_row(r, 0, row)
    book.close()


def test_xlsx_first_sheet_by_default(tmp_path: Path) -> None:
    _workbook(tmp_path / "用户档案.xlsx", {
        "用户": [CUSTOMER_HEADER, customer_row(1), [], customer_row(2, 合同容量="-1")],
        "其他": [["x"], ["y"]],
    })
    bundle = read_one(tmp_path)
    account = bundle.files[0]
    assert (account.file_format, account.encoding, account.rows_read) == ("xlsx", None, 2)
    frame = bundle.tables["customers"].frame
    # the negative 合同容量 is set aside on its own: the customer on row 4 is kept without it
    assert frame["customer_id"].to_list() == ["0300100000001", "0300100000002"]
    assert frame["_line"].to_list() == [2, 4]
    assert frame["contract_kva"].to_list() == [6.0, None]
    assert quarantined(bundle) == {4: "out_of_range"}
    assert bundle.tables["customers"].quarantine["row_kept"].to_list() == [True]
    assert "row 4" in bundle.tables["customers"].quarantine["message"][0]


@pytest.mark.parametrize("sheet", ['"用户"', "2"])
def test_xlsx_sheet_chosen_by_profile(tmp_path: Path, sheet: str) -> None:
    _workbook(tmp_path / "book.xlsx", {
        "说明": [["本文件为导出"]],
        "用户": [CUSTOMER_HEADER, customer_row(1), customer_row(2)],
    })
    (tmp_path / "p.toml").write_text(f'[customers]\nfile = "book.xlsx"\nsheet = {sheet}\n',
                                     encoding="utf-8")
    bundle = read_one(tmp_path, profile=load_profile(tmp_path / "p.toml"))
    assert bundle.tables["customers"].frame.height == 2


def test_xlsx_numbers_and_dates_as_cells(tmp_path: Path) -> None:
    book = xlsxwriter.Workbook(tmp_path / "customers.xlsx")
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["户号", "户名", "台区编号", "合同容量", "更新时间"])
    sheet.write_row(1, 0, ["0300123456789", "张三", "TQ1", 6.5])
    import datetime as dt
    sheet.write_datetime(1, 4, dt.datetime(2024, 5, 6, 7, 8, 9),
                         book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}))
    book.close()
    frame = read_one(tmp_path).tables["customers"].frame
    assert frame.row(0, named=True)["contract_kva"] == 6.5
    assert frame["updated_at"].to_list() == [dt.datetime(2024, 5, 6, 7, 8, 9)]
    assert frame["customer_id"].to_list() == ["0300123456789"]


def test_geojson_points_and_lines(tmp_path: Path) -> None:
    transformers = gpd.GeoDataFrame(
        {"设备编码": ["PB-1", "PB-2"], "额定容量": [400.0, 315.0], "状态": ["运行", "退役"],
         "经度": [1.0, 2.0]},
        geometry=[Point(113.1, 23.1), None], crs="EPSG:4326")
    transformers.to_file(tmp_path / "transformers.geojson", driver="GeoJSON")
    edges = gpd.GeoDataFrame(
        {"设备编码": ["E1"], "设备类型": ["电缆"], "起始节点": ["N1"], "终止节点": ["N2"]},
        geometry=[LineString([(113.1, 23.1), (113.2, 23.2)])], crs="EPSG:4326")
    edges.to_file(tmp_path / "edges.geojson", driver="GeoJSON")
    bundle = read_one(tmp_path, "transformers")
    t = bundle.tables["transformers"].frame
    assert t["lon"].to_list() == [113.1, None]  # the layer's geometry, not the 经度 column
    assert t["status"].to_list() == ["in_service", "retired"]
    assert t["capacity_kva"].to_list() == [400.0, 315.0]
    assert t["_line"].to_list() == [1, 2]
    e = bundle.tables["edges"].frame
    assert e["geometry"].to_list() == ["LINESTRING (113.1 23.1, 113.2 23.2)"]
    assert e["kind"].to_list() == ["cable"]
    assert {f.file_format for f in bundle.files} == {"geojson"}


def test_geopackage_layers_in_another_crs(tmp_path: Path) -> None:
    points = gpd.GeoDataFrame({"station_id": ["S1"], "电压等级": ["110kV"]},
                              geometry=[Point(113.25, 23.125)], crs="EPSG:4326")
    lines = gpd.GeoDataFrame(
        {"edge_id": ["E1"], "kind": ["line"], "from_node": ["A"], "to_node": ["B"]},
        geometry=[LineString([(113.25, 23.125), (113.5, 23.25)])], crs="EPSG:4326")
    package = tmp_path / "pms.gpkg"
    points.to_crs("EPSG:3857").to_file(package, layer="变电站", driver="GPKG")
    lines.to_crs("EPSG:4547").to_file(package, layer="edges", driver="GPKG")
    bundle = read_one(tmp_path, "stations")
    s = bundle.tables["stations"].frame.row(0, named=True)
    assert s["lon"] == pytest.approx(113.25, abs=1e-9)
    assert s["lat"] == pytest.approx(23.125, abs=1e-9)
    assert s["voltage_kv"] == 110.0
    wkt = bundle.tables["edges"].frame["geometry"][0]
    assert wkt.startswith("LINESTRING (113.2")
    assert [f.file_format for f in bundle.files] == ["gpkg", "gpkg"]


def test_geojson_for_a_marketing_table_is_ignored_with_a_warning(tmp_path: Path) -> None:
    gpd.GeoDataFrame({"户号": ["1"]}, geometry=[Point(113, 23)], crs="EPSG:4326").to_file(
        tmp_path / "customers.geojson", driver="GeoJSON")
    write_customers(tmp_path / "sub", [customer_row(1)])
    bundle = read_one(tmp_path)
    assert [Path(f.path).suffix for f in bundle.files] == [".csv"]
    assert any("customers.geojson" in w and "ignored" in w for w in bundle.warnings)


def test_field_count_short_long_and_truncated_last_line(tmp_path: Path) -> None:
    good = ",".join(customer_row(1))
    short = ",".join(customer_row(2)[:5])
    long = ",".join([*customer_row(3), "extra", "more"])
    truncated = ",".join(customer_row(4))[:25]
    text = "\n".join([",".join(CUSTOMER_HEADER), good, short, long, truncated])  # no final \n
    (tmp_path / "customers.csv").write_bytes(text.encode("gbk"))
    bundle = read_one(tmp_path)
    assert bundle.tables["customers"].frame["_line"].to_list() == [2]
    assert quarantined(bundle) == {3: "field_count", 4: "field_count", 5: "field_count"}
    q = bundle.tables["customers"].quarantine
    assert q["message"][0] == "customers.csv line 3: has 5 fields but the header has 10"
    assert "has 12 fields" in q["message"][1]
    assert '"(extra fields)":"extra,more"' in q["raw"][1]
    assert bundle.files[0].rows_quarantined == 3


def test_quoted_newlines_blank_lines_and_crlf_keep_line_numbers(tmp_path: Path) -> None:
    rows = [customer_row(1, 用电地址="东城街道\r\n12号"), customer_row(2), customer_row(3)]
    text = csv_text(CUSTOMER_HEADER, rows, newline="\r\n")
    lines = text.split("\r\n")
    text = "\r\n".join([*lines[:4], "", "  ", *lines[4:]])  # blank lines before row 3
    (tmp_path / "customers.csv").write_bytes(text.encode("gbk"))
    bundle = read_one(tmp_path)
    frame = bundle.tables["customers"].frame
    assert frame["address"][0] == "东城街道\r\n12号"
    assert frame["_line"].to_list() == [2, 4, 7]
    assert bundle.files[0].rows_read == 3


def test_stray_quotes_are_read_leniently(tmp_path: Path) -> None:
    good = ",".join(customer_row(1))
    stray = ",".join(customer_row(2, 用电地址='东城5"号'))
    text = "\n".join([",".join(CUSTOMER_HEADER), good, stray, ",".join(customer_row(3))]) + "\n"
    (tmp_path / "customers.csv").write_bytes(text.encode("gbk"))
    frame = read_one(tmp_path).tables["customers"].frame
    assert frame["address"][1] == '东城5"号'
    assert frame["_line"].to_list() == [2, 3, 4]


def test_header_only_file_loads_nothing_with_a_warning(tmp_path: Path) -> None:
    write_customers(tmp_path, [])
    bundle = read_one(tmp_path)
    assert bundle.tables["customers"].frame.height == 0
    assert bundle.files[0].rows_read == 0
    assert any("header but no rows" in w for w in bundle.warnings)
