"""Header aliases and normalisation: every header sources.md lists maps with no configuration."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from gridtopo.errors import InputError
from gridtopo.ingest import TABLES, canonical_schema, contract
from gridtopo.ingest.discover import classify
from gridtopo.ingest.headers import alias_index, map_headers, normalise_header
from tests.test_ingest_support import customer_row, read_one, write_csv

# The aliases of spec/sources.md, copied here on purpose: dropping one from
# gridtopo.ingest.tables must fail a test.
SPEC_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "customers": {
        "customer_id": ("户号", "用户编号", "客户编号", "用户号"),
        "customer_name": ("户名", "用户名称", "客户名称"),
        "address": ("用电地址", "地址"),
        "phone": ("联系电话", "手机号码", "移动电话"),
        "area_code": ("台区编号", "台区编码"),
        "area_name": ("台区名称",),
        "feeder_name": ("线路名称", "所属线路"),
        "station_name": ("变电站名称", "所属变电站", "变电站"),
        "meter_id": ("电能表资产号", "表计资产编号", "电表资产号"),
        "phase": ("相别", "接线相别"),
        "voltage_class": ("电压等级",),
        "contract_kva": ("合同容量", "运行容量"),
        "status": ("用户状态", "状态"),
        "lon": ("经度",),
        "lat": ("纬度",),
        "updated_at": ("更新时间", "最后修改时间", "修改时间"),
    },
    "transformer_areas": {
        "area_code": ("台区编号", "台区编码"),
        "area_name": ("台区名称",),
        "feeder_name": ("线路名称", "所属线路"),
        "station_name": ("变电站名称", "所属变电站"),
        "capacity_kva": ("台区容量", "变压器容量", "配变容量"),
        "pms_transformer_id": ("PMS设备编码", "配变设备编码", "设备编码"),
        "updated_at": ("更新时间",),
    },
    "stations": {
        "station_id": ("设备编码", "变电站编码"),
        "station_name": ("变电站名称",),
        "voltage_kv": ("电压等级",),
        "lon": ("经度",),
        "lat": ("纬度",),
    },
    "feeders": {
        "feeder_id": ("线路编码",),
        "feeder_name": ("线路名称",),
        "station_id": ("所属变电站编码",),
        "voltage_kv": (),
        "source_node": ("出线节点",),
    },
    "edges": {
        "edge_id": ("设备编码",),
        "kind": ("设备类型",),
        "feeder_id": ("线路编码", "所属线路"),
        "from_node": ("起始节点",),
        "to_node": ("终止节点",),
        "normal_open": ("常开", "常开状态"),
        "length_m": ("长度",),
        "geometry": ("几何", "WKT"),
    },
    "transformers": {
        "transformer_id": ("设备编码", "配变编码"),
        "transformer_name": ("配变名称", "设备名称"),
        "feeder_id": ("所属线路",),
        "node": ("连接节点",),
        "capacity_kva": ("额定容量",),
        "marketing_area_code": ("营销台区编号", "台区编号"),
        "status": (),
        "lon": ("经度",),
        "lat": ("纬度",),
        "updated_at": ("更新时间",),
    },
}
CASES = [
    (table, field, header)
    for table, fields in SPEC_ALIASES.items()
    for field, aliases in fields.items()
    for header in (field, *aliases)
]


def test_spec_fields_are_the_canonical_fields() -> None:
    for table, fields in SPEC_ALIASES.items():
        assert set(TABLES[table].columns) == set(fields), table


@pytest.mark.parametrize(("table", "field", "header"), CASES,
                         ids=[f"{t}.{f}={h}" for t, f, h in CASES])
def test_every_alias_maps(table: str, field: str, header: str) -> None:
    spec = TABLES[table]
    required = [f.name for f in spec.fields if f.required and f.name != field]
    mapping = map_headers(spec, [header, *required], "x.csv")
    assert mapping.fields[field] == header
    assert mapping.unknown == ()


def test_aliases_are_unambiguous_within_a_table() -> None:
    for table in TABLES.values():
        seen: dict[str, str] = {}
        for f in table.fields:
            for header in f.headers:
                key = normalise_header(header)
                assert seen.setdefault(key, f.name) == f.name, (table.name, header)
        assert len(alias_index(table)) == len(seen)


@pytest.mark.parametrize(("header", "expected"), [
    (" 户号 ", "户号"),
    ("ＣＵＳＴＯＭＥＲ＿ＩＤ", "customerid"),
    ("Customer ID", "customerid"),
    ("customer-id", "customerid"),
    ("合同容量(kVA)", "合同容量"),
    ("合同容量（kVA）", "合同容量"),
    ("合同容量 （ kVA ）", "合同容量"),
    ("长度[m]", "长度"),
    ("长度【米】", "长度"),
    ("(kVA)", "(kva)"),
])
def test_header_normalisation(header: str, expected: str) -> None:
    assert normalise_header(header) == expected


def test_normalised_headers_read_end_to_end(tmp_path: Path) -> None:
    header = ["　户号 ", "ＣＵＳＴＯＭＥＲ_NAME", "台区编号", "合同容量（kVA）", "Updated At"]
    write_csv(tmp_path / "customers.csv", header,
              [["0300123456789", "张三", "TQ1", "6", "2024-01-02"]])
    bundle = read_one(tmp_path)
    frame = bundle.tables["customers"].frame
    assert frame["customer_id"].to_list() == ["0300123456789"]
    assert frame["customer_name"].to_list() == ["张三"]
    assert frame["contract_kva"].to_list() == [6.0]
    assert frame["updated_at"].dt.year().to_list() == [2024]


def test_missing_required_column_names_file_field_and_aliases(tmp_path: Path) -> None:
    write_csv(tmp_path / "customers.csv", ["户号", "台区编号"], [["1", "TQ1"]])
    with pytest.raises(InputError) as err:
        read_one(tmp_path)
    message = str(err.value)
    assert "customers.csv" in message
    assert "customer_name" in message
    assert "户名" in message and "用户名称" in message and "客户名称" in message


def test_unknown_columns_are_kept_in_raw_with_a_warning(tmp_path: Path) -> None:
    header = ["户号", "户名", "台区编号", "备注", "合同容量"]
    write_csv(tmp_path / "customers.csv", header,
              [["1", "张三", "TQ1", "老用户", "6"], ["2", "李四", "TQ1", "新", "-1"]])
    bundle = read_one(tmp_path)
    assert any("备注" in w and "not used" in w for w in bundle.warnings)
    assert "备注" not in bundle.tables["customers"].frame.columns
    raw = bundle.tables["customers"].quarantine["raw"][0]
    assert '"备注":"新"' in raw


def test_a_second_column_naming_a_taken_field_is_ignored_with_a_warning(tmp_path: Path) -> None:
    write_csv(tmp_path / "customers.csv", ["户号", "户名", "台区编号", "台区编码"],
              [["1", "张三", "TQ1", "TQ2"]])
    bundle = read_one(tmp_path)
    assert bundle.tables["customers"].frame["area_code"].to_list() == ["TQ1"]
    assert any("台区编码" in w and "ignored" in w for w in bundle.warnings)


def test_absent_optional_columns_are_null_with_canonical_dtypes(tmp_path: Path) -> None:
    write_csv(tmp_path / "customers.csv", ["户号", "户名", "台区编号"], [["1", "张三", "TQ1"]])
    frame = read_one(tmp_path).tables["customers"].frame
    assert frame.schema == pl.Schema(canonical_schema("customers"))
    assert frame["status"].to_list() == ["active"]
    assert frame["contract_kva"].to_list() == [None]
    contract("customers").validate(frame.cast(TABLES["customers"].schema))  # repeated: text


@pytest.mark.parametrize(("name", "table"), [
    ("customers", "customers"), ("customers_part1", "customers"), ("用户档案", "customers"),
    ("用户档案_202412", "customers"), ("CUSTOMERS", "customers"),
    ("2024-12_customers", "customers"),
    ("transformer_areas", "transformer_areas"), ("台区档案", "transformer_areas"),
    ("stations", "stations"), ("变电站", "stations"),
    ("feeders", "feeders"), ("馈线", "feeders"), ("线路", "feeders"), ("10kV线路", "feeders"),
    ("edges", "edges"), ("设备", "edges"), ("边", "edges"), ("线路设备", "edges"),
    ("transformers", "transformers"), ("配变", "transformers"), ("配变档案(2)", "transformers"),
    ("customersx", None), ("readme", None), ("变电站用户", None),
])
def test_file_names_are_classified(name: str, table: str | None) -> None:
    assert classify(name) == table


def test_customer_ids_keep_leading_zeros(tmp_path: Path) -> None:
    write_csv(tmp_path / "customers.csv", ["户号", "户名", "台区编号"],
              [[customer_row(1)[0], "张三", "0044"], ["0000000000001", "李四", "0044"]])
    frame = read_one(tmp_path).tables["customers"].frame
    assert frame["customer_id"].to_list() == ["0300100000001", "0000000000001"]
    assert frame["area_code"].to_list() == ["0044", "0044"]
