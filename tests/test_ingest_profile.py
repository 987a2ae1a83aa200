"""Profiles: what each key does, and strictness (every unknown or wrong key is an error that
names it)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gridtopo.errors import InputError
from gridtopo.geo import wgs84_to_bd09
from gridtopo.ingest import ProfileError, load_profile
from tests.test_ingest_support import (
    CUSTOMER_HEADER,
    csv_text,
    customer_row,
    quarantined,
    read_one,
    write_csv,
    write_customers,
)


def _profile(directory: Path, text: str) -> Path:
    path = directory / "profile.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("encodng = 'gbk'", "profile.toml: unknown key 'encodng' at the top level; did you mean "
                        "'encoding'?"),
    ("[customer]\nfile = 'x.csv'", "unknown key 'customer' at the top level; did you mean "
                                   "'customers'?"),
    ("[customers]\nencodng = 'gbk'", "profile.toml: unknown key 'encodng' in [customers]"),
    ("[customers.columns]\ncustomer_idd = '户号'", "unknown key 'customer_idd' in "
                                                  "[customers.columns]"),
    ("[customers.values]\ncontract_kva = {'x' = 'y'}", "unknown key 'contract_kva' in "
                                                       "[customers.values]"),
    ("[customers.values]\nstatus = {'在用' = 'actve'}", "maps '在用' to 'actve', which is not "
                                                       "one of active, closed"),
    ("[edges.values]\nnormal_open = {'分' = 'true'}", "which is not one of true or false"),
    ("[customers]\ncrs = 'EPSG:999999'", "crs 'EPSG:999999': not a coordinate system"),
    ("crs = 'mars'", "crs 'mars'"),
    ("[customers]\nencoding = 'klingon'", "encoding 'klingon' is not an encoding"),
    ("[customers]\ndelimiter = ',,'", "delimiter must be one character"),
    ("[customers]\nsheet = 0", "sheet numbers start at 1"),
    ("[customers]\nfile = 3", "[customers] file must be a non-empty string"),
    ("customers = 3", "customers must be a table"),
    ("[customers", "not valid TOML"),
])
def test_profile_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ProfileError) as err:
        load_profile(_profile(tmp_path, text))
    assert message in str(err.value)
    assert isinstance(err.value, InputError)


def test_missing_profile(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(tmp_path / "nope.toml")


def test_defaults_and_overrides(tmp_path: Path) -> None:
    profile = load_profile(_profile(tmp_path, 'crs = "gcj02"\nencoding = "GBK"\n'
                                              '[customers]\ncrs = "bd09"\n'
                                              '[transformers]\ndelimiter = "\\t"\n'))
    assert profile.table("customers").crs == "bd09"
    assert profile.table("customers").encoding == "gbk"
    assert profile.table("transformers").crs == "gcj02"
    assert profile.table("transformers").delimiter == "\t"
    assert profile.table("stations").crs == "gcj02"


def test_columns_map_and_value_map(tmp_path: Path) -> None:
    header = ["用户编号(新)", "姓名", "所属台区", "容量", "用电状态"]
    write_csv(tmp_path / "customers.csv", header, [
        ["0300000000001", "张三", "TQ1", "6", "在用"],
        ["0300000000002", "李四", "TQ1", "8", "拆除"],
        ["0300000000003", "王五", "TQ1", "8", "正常"],
    ], encoding="gbk")
    profile = _profile(tmp_path, """
[customers.columns]
customer_id = "用户编号（新）"
customer_name = "姓名"
area_code = "所属台区"
contract_kva = "容量"
status = "用电状态"
[customers.values]
status = { "在用" = "active", "拆除" = "closed" }
""")
    bundle = read_one(tmp_path, profile=load_profile(profile))
    frame = bundle.tables["customers"].frame
    assert frame["customer_id"].to_list() == ["0300000000001", "0300000000002",
                                              "0300000000003"]
    assert frame["status"].to_list() == ["active", "closed", "active"]
    assert frame["contract_kva"].to_list() == [6.0, 8.0, 8.0]


def test_columns_entry_naming_an_absent_header(tmp_path: Path) -> None:
    write_customers(tmp_path, [customer_row(1)])
    profile = _profile(tmp_path, '[customers.columns]\ncustomer_id = "用户编号X"\n')
    with pytest.raises(InputError) as err:
        read_one(tmp_path, profile=load_profile(profile))
    message = str(err.value)
    assert "customer_id" in message and "用户编号X" in message and "customers.csv" in message


def test_file_glob_encoding_and_delimiter(tmp_path: Path) -> None:
    for part in (1, 2):
        text = csv_text(CUSTOMER_HEADER, [customer_row(part)], delimiter=";")
        path = tmp_path / "exports" / f"营销导出_{part}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(text.encode("gb18030"))
    write_customers(tmp_path, [customer_row(9)])  # customers.csv: replaced by the profile
    profile = _profile(tmp_path, '[customers]\nfile = "exports/营销导出_*.txt"\n'
                                 'encoding = "gb18030"\ndelimiter = ";"\n')
    bundle = read_one(tmp_path, profile=load_profile(profile))
    assert [Path(f.path).name for f in bundle.files] == ["营销导出_1.txt", "营销导出_2.txt"]
    assert {f.encoding for f in bundle.files} == {"gb18030"}
    assert bundle.tables["customers"].frame["_file"].to_list() == [0, 1]


@pytest.mark.parametrize("file", ["missing.csv", "exports/*.csv"])
def test_profile_pointing_at_a_missing_file(tmp_path: Path, file: str) -> None:
    write_customers(tmp_path, [customer_row(1)])
    profile = _profile(tmp_path, f'[customers]\nfile = "{file}"\n')
    with pytest.raises(InputError) as err:
        read_one(tmp_path, profile=load_profile(profile))
    assert file in str(err.value)


def _web_mercator(lon: float, lat: float) -> tuple[float, float]:
    """EPSG:3857 by its textbook formula (independent of pyproj)."""
    r = 6378137.0
    return (r * math.radians(lon),
            r * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))


@pytest.mark.parametrize(("crs", "source", "expected"), [
    ("EPSG:3857", _web_mercator(113.264385, 23.129112), (113.264385, 23.129112)),
    ("gcj02", (116.40337, 39.91793), (116.397128, 39.916527)),
    ("bd09", tuple(float(v) for v in wgs84_to_bd09(113.3, 23.1)), (113.3, 23.1)),
    ("EPSG:4490", (113.3, 23.1), (113.3, 23.1)),
])
def test_profile_crs_converts_to_wgs84(tmp_path: Path, crs: str, source: tuple[float, float],
                                       expected: tuple[float, float]) -> None:
    lon, lat = (f"{v:.6f}" for v in source)
    write_customers(tmp_path, [customer_row(1, 经度=lon, 纬度=lat)])
    profile = _profile(tmp_path, f'[customers]\ncrs = "{crs}"\n')
    frame = read_one(tmp_path, profile=load_profile(profile)).tables["customers"].frame
    assert frame["lon"][0] == pytest.approx(expected[0], abs=2e-5)
    assert frame["lat"][0] == pytest.approx(expected[1], abs=2e-5)


def test_projected_coordinates_out_of_the_projection_are_quarantined(tmp_path: Path) -> None:
    write_customers(tmp_path, [customer_row(1, 经度="500000", 纬度="2560000"),
                               customer_row(2, 经度="1e30", 纬度="1e30")])
    profile = _profile(tmp_path, 'crs = "EPSG:4547"\n')
    bundle = read_one(tmp_path, profile=load_profile(profile))
    assert bundle.tables["customers"].frame["lon"][0] == pytest.approx(114.0, abs=0.01)
    assert quarantined(bundle) == {3: "out_of_range"}


def test_profile_edges_crs_converts_wkt(tmp_path: Path) -> None:
    x0, y0 = _web_mercator(113.0, 23.0)
    x1, y1 = _web_mercator(113.5, 23.5)
    write_csv(tmp_path / "edges.csv", ["edge_id", "kind", "from_node", "to_node", "geometry"],
              [["E1", "line", "a", "b", f"LINESTRING ({x0} {y0}, {x1} {y1})"]])
    profile = _profile(tmp_path, '[edges]\ncrs = "EPSG:3857"\n')
    bundle = read_one(tmp_path, "edges", profile=load_profile(profile))
    wkt = bundle.tables["edges"].frame["geometry"][0]
    numbers = [float(v) for v in wkt.removeprefix("LINESTRING (").rstrip(")").replace(",", " ")
               .split()]
    assert numbers == pytest.approx([113.0, 23.0, 113.5, 23.5], abs=1e-9)
