"""The canonical source tables of ``spec/sources.md`` as data: the one place that says which
fields exist, how they may be spelled in a header, their type and the rules they obey.

Everything in ingest is driven by :data:`TABLES` — header matching, type conversion, the
pandera contracts, de-duplication and file discovery — and other parts of gridtopo import it
to know the canonical columns. Changing the input contract means changing this module (and
``sources.md``), nothing else.

>>> TABLES["customers"].key
'customer_id'
>>> TABLES["customers"].field("contract_kva").aliases[:2]
('合同容量', '运行容量')
>>> TABLES["edges"].field("kind").values["断路器"]
'breaker'
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

import polars as pl

from gridtopo.privacy import PERSONAL_FIELDS

FieldKind = Literal["id", "text", "number", "datetime", "boolean", "enum", "wkt"]
"""How a field's text is converted: ``id``/``text`` stay text (ids keep leading zeros),
``number`` → Float64, ``datetime`` → naive Datetime(us), ``boolean`` → Boolean, ``enum`` →
one of the field's ``domain`` values, ``wkt`` → validated WKT LineString text."""

DTYPES: Mapping[str, pl.DataType] = MappingProxyType({
    "id": pl.Utf8(),
    "text": pl.Utf8(),
    "number": pl.Float64(),
    "datetime": pl.Datetime("us"),
    "boolean": pl.Boolean(),
    "enum": pl.Utf8(),
    "wkt": pl.Utf8(),
})

ID_LENGTH = 64
"""Longest id the model stores (``String(64)`` in :mod:`gridtopo.db.models`)."""
NAME_LENGTH = 255
"""Longest name the model stores."""


def fold(text: str) -> str:
    """Spelling-insensitive key of a header or value: NFKC (full-width → half-width), case
    folded, without spaces, underscores and hyphens.

    >>> fold("Ｃustomer_ID "), fold("In-Service"), fold("　A相")
    ('customerid', 'inservice', 'a相')
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if not (ch.isspace() or ch in "_-"))


@dataclass(frozen=True)
class Field:
    """One canonical field of a table.

    ``values`` maps source spellings (compared through :func:`fold`) to canonical values for
    ``enum`` and ``boolean`` fields; ``domain`` lists an enum's canonical values and
    ``default`` fills a blank one. ``minimum``/``maximum`` bound numbers (``minimum_inclusive``
    False makes the bound strict); ``plausible_maximum`` is the largest value that is not a
    typing accident (1e308 kVA), a rule of its own, ``implausible``. ``units`` are the
    trailing units a number may carry, with the factor to the canonical unit (``{"kva": 1.0}``,
    keys folded). ``max_length`` is the longest text the model stores; ``personal`` marks
    personal data (kept apart, maskable).
    ``repeated`` marks text with few distinct values over millions of rows (a customer's area,
    feeder and station names, status): loadable frames hold it as ``Categorical`` — a 4-byte
    code per row instead of a 16-byte string view plus its bytes, about 1.5 GB less at
    Guangdong size. ``essential`` marks a field the row cannot be used without even when it is
    not required (an edge's 常开: a switch whose state is unreadable would have to be guessed
    open or closed); ``kept_without`` marks a required field the row is still kept without (a
    customer's 户名: a customer with no name on record still loses supply when its feeder
    trips, so it stays in the model and its blank name is a finding): see
    :attr:`Table.row_fields`.
    """

    name: str
    kind: FieldKind
    aliases: tuple[str, ...] = ()
    required: bool = False
    unique: bool = False
    personal: bool = False
    domain: tuple[str, ...] = ()
    values: Mapping[str, str | bool] = field(default_factory=dict)
    default: str | None = None
    minimum: float | None = None
    minimum_inclusive: bool = True
    maximum: float | None = None
    plausible_maximum: float | None = None
    units: Mapping[str, float] = field(default_factory=dict)
    max_length: int | None = None
    repeated: bool = False
    essential: bool = False
    kept_without: bool = False

    @property
    def dtype(self) -> pl.DataType:
        """The polars dtype of the field in canonical frames."""
        return DTYPES[self.kind]

    @property
    def headers(self) -> tuple[str, ...]:
        """Every header that names this field without configuration: its name and aliases."""
        return (self.name, *self.aliases)

    def value_map(self, extra: Mapping[str, str | bool] | None = None) -> dict[str, str | bool]:
        """Folded source spelling → canonical value: the domain itself, the built-in spellings
        and ``extra`` (a profile's map, which wins)."""
        mapping: dict[str, str | bool] = {fold(v): v for v in self.domain}
        for source in (self.values, extra or {}):
            mapping.update({fold(k): v for k, v in source.items()})
        return mapping


@dataclass(frozen=True)
class Table:
    """One canonical table: its fields (key first), the system that exports it, the file
    names it is found under (matched through :func:`fold`-like rules, see
    :mod:`gridtopo.ingest.discover`) and the geometry a GIS layer of it carries.

    A value that cannot be used quarantines only its field — the row is kept with the field
    blank — unless the field is one of :attr:`row_fields` (see :mod:`gridtopo.ingest.unusable`).
    """

    name: str
    system: Literal["marketing", "distribution"]
    fields: tuple[Field, ...]
    file_names: tuple[str, ...]
    geometry: Literal["point", "line"] | None = None

    @property
    def key(self) -> str:
        """The unique identifying field."""
        return next(f.name for f in self.fields if f.unique)

    @property
    def row_fields(self) -> frozenset[str]:
        """Fields the row cannot exist without: a problem with one of them refuses the whole
        row. The key, ``essential`` fields and required ones not ``kept_without``.

        >>> sorted(TABLES["edges"].row_fields)
        ['edge_id', 'from_node', 'kind', 'normal_open', 'to_node']
        >>> sorted(TABLES["transformers"].row_fields)
        ['transformer_id']
        >>> sorted(TABLES["customers"].row_fields)
        ['area_code', 'customer_id']
        """
        return frozenset(f.name for f in self.fields if f.unique or f.essential
                         or (f.required and not f.kept_without))

    @property
    def columns(self) -> tuple[str, ...]:
        """Canonical column names in order."""
        return tuple(f.name for f in self.fields)

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """Canonical column → dtype."""
        return {f.name: f.dtype for f in self.fields}

    def field(self, name: str) -> Field:
        """The field called ``name`` (KeyError if none)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")


# --------------------------------------------------------------------------- shared vocab

KVA = MappingProxyType({"kva": 1.0, "千伏安": 1.0, "mva": 1000.0})
KV = MappingProxyType({"kv": 1.0, "千伏": 1.0, "v": 0.001, "伏": 0.001})
METRES = MappingProxyType({"m": 1.0, "米": 1.0, "km": 1000.0, "公里": 1000.0, "千米": 1000.0})
DEGREES = MappingProxyType({"°": 1.0, "度": 1.0})

CUSTOMER_STATUS = MappingProxyType({
    "正常": "active", "正常用电": "active", "在用": "active", "运行": "active",
    "normal": "active",
    "销户": "closed", "已销户": "closed", "注销": "closed", "已注销": "closed",
})
TRANSFORMER_STATUS = MappingProxyType({
    "运行": "in_service", "在运": "in_service", "投运": "in_service", "在用": "in_service",
    "正常": "in_service", "active": "in_service",
    "退役": "retired", "退运": "retired", "报废": "retired", "停运": "retired",
})
EDGE_KIND = MappingProxyType({
    "线路": "line", "架空线": "line", "架空线路": "line", "导线": "line", "导线段": "line",
    "overhead": "line",
    "电缆": "cable", "电缆线路": "cable", "电缆段": "cable",
    "开关": "switch", "负荷开关": "switch", "隔离开关": "switch", "刀闸": "switch",
    "分段开关": "switch", "联络开关": "switch",
    "断路器": "breaker", "出线开关": "breaker", "cb": "breaker",
    "熔断器": "fuse", "跌落式熔断器": "fuse", "跌落保险": "fuse",
    "重合器": "recloser",
})
PHASE = MappingProxyType({
    "a相": "A", "b相": "B", "c相": "C", "abc相": "ABC", "三相": "ABC", "3相": "ABC",
})
YES_NO: Mapping[str, bool] = MappingProxyType({
    "true": True, "false": False, "t": True, "f": False, "1": True, "0": False,
    "1.0": True, "0.0": False, "yes": True, "no": False, "y": True, "n": False,
    "是": True, "否": False, "常开": True, "常闭": False, "开": True, "闭": False,
    "分": True, "合": False, "分位": True, "合位": False, "断开": True, "闭合": False,
    "open": True, "closed": False,
})

UPDATED_AT_ALIASES = ("更新时间", "最后修改时间", "修改时间", "最后更新时间", "update_time",
                      "last_modified")


def _id(name: str, *aliases: str, required: bool = False, unique: bool = False) -> Field:
    return Field(name, "id", aliases, required=required, unique=unique, max_length=ID_LENGTH)


def _name(name: str, *aliases: str, repeated: bool = False) -> Field:
    return Field(name, "text", aliases, max_length=NAME_LENGTH, repeated=repeated)


def _personal_marked(fields: tuple[Field, ...]) -> tuple[Field, ...]:
    """``fields`` with those :data:`gridtopo.privacy.PERSONAL_FIELDS` names marked
    ``personal``: the privacy module says which fields are personal data, once."""
    return tuple(replace(f, personal=f.name in PERSONAL_FIELDS) for f in fields)


def _updated_at() -> Field:
    return Field("updated_at", "datetime", UPDATED_AT_ALIASES)


def _lon_lat() -> tuple[Field, Field]:
    return (
        Field("lon", "number", ("经度", "longitude", "lng", "x坐标"), minimum=-180.0,
              maximum=180.0, units=DEGREES),
        Field("lat", "number", ("纬度", "latitude", "y坐标"), minimum=-90.0, maximum=90.0,
              units=DEGREES),
    )


MAX_KV = 1200.0
"""Highest plausible voltage (kV): China's UHV AC lines run at 1000 kV."""
MAX_KVA = 100_000.0
"""Highest plausible capacity of a distribution transformer, 台区 or customer contract (kVA):
100 MVA is already a substation's main transformer; 1e308 kVA is a typing accident."""
MAX_LENGTH_M = 100_000.0
"""Longest plausible single line or cable section (m)."""


def _voltage_kv() -> Field:
    return Field("voltage_kv", "number", ("电压等级", "额定电压", "voltage"), minimum=0.0,
                 minimum_inclusive=False, plausible_maximum=MAX_KV, units=KV)


def _capacity(*aliases: str) -> Field:
    return Field("capacity_kva", "number", aliases, minimum=0.0, minimum_inclusive=False,
                 plausible_maximum=MAX_KVA, units=KVA)


CUSTOMERS = Table(
    "customers", "marketing",
    _personal_marked((
        _id("customer_id", "户号", "用户编号", "客户编号", "用户号", "account_no",
            required=True, unique=True),
        Field("customer_name", "text", ("户名", "用户名称", "客户名称"), required=True,
              kept_without=True, max_length=NAME_LENGTH),
        Field("address", "text", ("用电地址", "地址")),
        Field("phone", "text", ("联系电话", "手机号码", "移动电话", "电话"),
              max_length=ID_LENGTH),
        _id("area_code", "台区编号", "台区编码", required=True),
        _name("area_name", "台区名称", repeated=True),
        _name("feeder_name", "线路名称", "所属线路", repeated=True),
        _name("station_name", "变电站名称", "所属变电站", "变电站", repeated=True),
        _id("meter_id", "电能表资产号", "表计资产编号", "电表资产号"),
        Field("phase", "enum", ("相别", "接线相别"), domain=("A", "B", "C", "ABC"),
              values=PHASE, repeated=True),
        Field("voltage_class", "text", ("电压等级", "供电电压"), max_length=16, repeated=True),
        Field("contract_kva", "number", ("合同容量", "运行容量"), minimum=0.0,
              plausible_maximum=MAX_KVA, units=KVA),
        Field("status", "enum", ("用户状态", "状态"), domain=("active", "closed"),
              values=CUSTOMER_STATUS, default="active", repeated=True),
        *_lon_lat(),
        _updated_at(),
    )),
    ("customers", "customer", "用户档案", "用户", "用户信息", "客户档案", "用电客户"),
    geometry="point",
)

TRANSFORMER_AREAS = Table(
    "transformer_areas", "marketing",
    (
        _id("area_code", "台区编号", "台区编码", required=True, unique=True),
        _name("area_name", "台区名称"),
        _name("feeder_name", "线路名称", "所属线路"),
        _name("station_name", "变电站名称", "所属变电站"),
        _capacity("台区容量", "变压器容量", "配变容量"),
        _id("pms_transformer_id", "PMS设备编码", "配变设备编码", "设备编码"),
        _updated_at(),
    ),
    ("transformer_areas", "transformer_area", "areas", "台区档案", "台区", "台区信息"),
)

STATIONS = Table(
    "stations", "distribution",
    (
        _id("station_id", "设备编码", "变电站编码", required=True, unique=True),
        _name("station_name", "变电站名称"),
        _voltage_kv(),
        *_lon_lat(),
    ),
    ("stations", "station", "substations", "变电站", "变电站档案", "厂站"),
    geometry="point",
)

FEEDERS = Table(
    "feeders", "distribution",
    (
        _id("feeder_id", "线路编码", required=True, unique=True),
        _name("feeder_name", "线路名称"),
        _id("station_id", "所属变电站编码", "变电站编码"),
        _voltage_kv(),
        _id("source_node", "出线节点"),
    ),
    ("feeders", "feeder", "馈线", "线路", "10kv线路", "馈线档案", "线路档案"),
)

EDGES = Table(
    "edges", "distribution",
    (
        _id("edge_id", "设备编码", required=True, unique=True),
        Field("kind", "enum", ("设备类型",), required=True,
              domain=("line", "cable", "switch", "breaker", "fuse", "recloser"),
              values=EDGE_KIND),
        _id("feeder_id", "线路编码", "所属线路"),
        _id("from_node", "起始节点", "起点", required=True),
        _id("to_node", "终止节点", "终点", required=True),
        Field("normal_open", "boolean", ("常开", "常开状态"), values=YES_NO, essential=True),
        Field("length_m", "number", ("长度",), minimum=0.0, plausible_maximum=MAX_LENGTH_M,
              units=METRES),
        Field("geometry", "wkt", ("几何", "WKT", "geom")),
    ),
    ("edges", "edge", "设备", "边", "拓扑", "网络拓扑", "设备连接", "连接关系", "线路设备"),
    geometry="line",
)

TRANSFORMERS = Table(
    "transformers", "distribution",
    (
        _id("transformer_id", "设备编码", "配变编码", required=True, unique=True),
        _name("transformer_name", "配变名称", "设备名称"),
        _id("feeder_id", "所属线路", "线路编码"),
        _id("node", "连接节点"),
        _capacity("额定容量", "配变容量"),
        _id("marketing_area_code", "营销台区编号", "台区编号"),
        Field("status", "enum", ("运行状态", "设备状态", "状态"),
              domain=("in_service", "retired"), values=TRANSFORMER_STATUS,
              default="in_service"),
        *_lon_lat(),
        _updated_at(),
    ),
    ("transformers", "transformer", "配变", "配变档案", "配电变压器", "公变", "变压器"),
    geometry="point",
)

TABLES: Mapping[str, Table] = MappingProxyType({
    t.name: t
    for t in (STATIONS, FEEDERS, EDGES, TRANSFORMERS, TRANSFORMER_AREAS, CUSTOMERS)
})
"""Every canonical table by name, distribution tables first."""



def canonical_schema(table: str) -> dict[str, pl.DataType]:
    """Column → dtype of a loadable frame of ``table``: canonical fields (``repeated`` ones as
    ``Categorical``) plus ``_file`` (index into the bundle's files) and ``_line`` (1-based
    line, header = 1)."""
    fields = {f.name: pl.Categorical() if f.repeated else f.dtype for f in TABLES[table].fields}
    return {**fields, "_file": pl.Int32(), "_line": pl.Int64()}
