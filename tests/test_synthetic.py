"""Tests of the synthetic source generator: layout, encodings, realism, topology, truth, defects.

Each property is checked from the written files (what ingest will see), not from the
generator's internals, so a regression in any module shows up here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import polars as pl
import pytest

from gridtopo.geo import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    haversine_m,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from gridtopo.synthetic import (
    DEFAULT_RATES,
    DEFECT_KINDS,
    OutputExistsError,
    generate,
    parse_defect_rates,
)
from gridtopo.synthetic import marketing as marketing_module
from gridtopo.synthetic import names as names_module

N = 50_000
HEADERS = {
    "marketing/customers.csv": ["户号", "户名", "用电地址", "联系电话", "台区编号", "台区名称",
                                "线路名称", "变电站名称", "电能表资产号", "相别", "电压等级",
                                "合同容量", "用户状态", "经度", "纬度", "更新时间"],
    "marketing/transformer_areas.csv": ["台区编号", "台区名称", "线路名称", "变电站名称",
                                        "台区容量", "PMS设备编码", "更新时间"],
    "distribution/stations.csv": ["station_id", "station_name", "voltage_kv", "lon", "lat"],
    "distribution/feeders.csv": ["feeder_id", "feeder_name", "station_id", "voltage_kv",
                                 "source_node"],
    "distribution/edges.csv": ["edge_id", "kind", "feeder_id", "from_node", "to_node",
                               "normal_open", "length_m", "geometry"],
    "distribution/transformers.csv": ["transformer_id", "transformer_name", "feeder_id", "node",
                                      "capacity_kva", "marketing_area_code", "status", "lon",
                                      "lat", "updated_at"],
}
ENCODING = {p: ("gbk" if p.startswith("marketing/") else "utf-8") for p in HEADERS}
# Heavier topology defects than the defaults so that a 41-feeder province has several of each.
RATES = "default,island=0.2,loop=0.2"


def read(root: Path, rel: str) -> pl.DataFrame:
    """A generated CSV as all-string columns; blanks as empty strings."""
    enc = "gbk" if rel.startswith("marketing/") else "utf-8"
    text = (root / rel).read_bytes().decode(enc)
    return pl.read_csv(io.StringIO(text), infer_schema=False).fill_null("")


class Province:
    """One generated output directory with its tables loaded lazily."""

    def __init__(self, root: Path, manifest: object) -> None:
        self.root = root
        self.manifest = manifest
        self._cache: dict[str, pl.DataFrame] = {}

    def __getitem__(self, rel: str) -> pl.DataFrame:
        if rel not in self._cache:
            self._cache[rel] = read(self.root, rel)
        return self._cache[rel]


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Province:
    """N customers with defects, written in 7,000-customer chunks to exercise chunk joins."""
    root = tmp_path_factory.mktemp("prov") / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(marketing_module, "CHUNK", 7_000)
        manifest = generate(root, N, seed=7, defects=parse_defect_rates(RATES))
    return Province(root, manifest)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Province:
    root = tmp_path_factory.mktemp("clean") / "out"
    return Province(root, generate(root, 20_000, seed=3, defects={}))


def defects_of(p: Province, kind: str) -> pl.DataFrame:
    return p["truth/defects.csv"].filter(pl.col("defect") == kind)


# --- layout, encodings, manifest --------------------------------------------------------------


def test_headers_and_encodings(province: Province) -> None:
    for rel, header in HEADERS.items():
        raw = (province.root / rel).read_bytes()
        text = raw.decode(ENCODING[rel])
        assert text.split("\n", 1)[0] == ",".join(header), rel
        assert text.endswith("\n") and "\r" not in text
        assert '""' not in text  # blanks are empty fields, quoting only where needed
        if ENCODING[rel] == "gbk":
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")


def test_manifest_matches_files(province: Province) -> None:
    data = json.loads((province.root / "truth/manifest.json").read_text(encoding="utf-8"))
    assert data["seed"] == 7 and data["customers_requested"] == N
    assert data["reference_date"] == "2024-12-31 00:00:00"
    for rel in ("truth/defects.csv", "truth/area_links.csv"):
        assert '""' not in (province.root / rel).read_text(encoding="utf-8")
    listed = {f["path"]: f for f in data["files"]}
    assert set(HEADERS) <= set(listed)
    for rel, entry in listed.items():
        raw = (province.root / rel).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == entry["sha256"], rel
        assert raw.count(b"\n") - 1 == entry["rows"], rel
    for rel in HEADERS:
        table = Path(rel).stem
        assert data["table_counts"][table] == province[rel].height
    logged = Counter(province["truth/defects.csv"]["defect"].to_list())
    assert {k: v for k, v in data["defect_counts"].items() if v} == dict(logged)


def test_refuses_non_empty_dir_and_overwrite_keeps_foreign_files(tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        generate(out, 300, seed=1)
    assert issubclass(OutputExistsError, FileExistsError)
    first = generate(out, 300, seed=1, overwrite=True)
    second = generate(out, 300, seed=2, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert first.files[0].sha256 != second.files[0].sha256


def test_determinism(tmp_path: Path, clean: Province) -> None:
    again = generate(tmp_path / "a", 20_000, seed=3, defects={})
    other = generate(tmp_path / "b", 20_000, seed=4, defects={})
    for rel in HEADERS:
        assert (tmp_path / "a" / rel).read_bytes() == (clean.root / rel).read_bytes(), rel
    assert {f.path: f.sha256 for f in again.files} == {f.path: f.sha256 for f in
                                                       clean.manifest.files}  # type: ignore[attr-defined]
    assert all((tmp_path / "b" / rel).read_bytes() != (clean.root / rel).read_bytes()
               for rel in HEADERS)
    assert other.seed == 4


def test_progress_and_string_defect_spec(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    m = generate(tmp_path / "p", 2_000, seed=5, defects="none",
                 progress=lambda s, d, t: calls.append((s, d, t)))
    assert ("customers", 2_000, 2_000) in calls
    assert all(0 <= d <= t for _, d, t in calls)
    assert sum(m.defect_counts.values()) == 0 and set(m.defect_rates.values()) == {0.0}


@pytest.mark.parametrize("n", [1, 10, 150])
def test_tiny_provinces_have_one_of_everything(tmp_path: Path, n: int) -> None:
    generate(tmp_path / "t", n, seed=0)
    p = Province(tmp_path / "t", None)
    assert p["distribution/stations.csv"].height >= 1
    assert p["distribution/feeders.csv"].height >= 1
    assert p["marketing/transformer_areas.csv"].height >= 1
    assert p["truth/customer_links.csv"].height == n


# --- realism ----------------------------------------------------------------------------------


def test_proportions(province: Province) -> None:
    feeders = province["distribution/feeders.csv"].height
    areas = province["marketing/transformer_areas.csv"].height
    stations = province["distribution/stations.csv"].height
    assert abs(feeders - N / 1214) <= 0.05 * N / 1214 + 1
    assert abs(areas - N / 68.5) <= 0.02 * N / 68.5
    assert 8 <= feeders / stations <= 14
    per_area = province["truth/customer_links.csv"].group_by("area_code").len()["len"]
    assert per_area.sum() == N
    assert abs(per_area.mean() - 68.5) < 3  # type: ignore[operator]
    assert per_area.max() > 3 * 68.5  # a few big areas  # type: ignore[operator]
    assert per_area.min() >= 1  # type: ignore[operator]


def test_ids_formats_and_uniqueness(province: Province) -> None:
    patterns = {
        ("distribution/stations.csv", "station_id"): r"^BDZ-\d{4}$",
        ("distribution/feeders.csv", "feeder_id"): r"^XL-\d{6}$",
        ("distribution/transformers.csv", "transformer_id"): r"^PB-\d{7}$",
        ("distribution/edges.csv", "edge_id"): r"^SB-\d{8}$",
        ("marketing/transformer_areas.csv", "台区编号"): r"^TQ\d{11}$",
        ("truth/customer_links.csv", "customer_id"): r"^03\d{11}$",
    }
    for (rel, col), pattern in patterns.items():
        s = province[rel][col]
        assert s.str.contains(pattern).all(), (rel, col)
        assert s.n_unique() == s.len(), (rel, col)
    edges = province["distribution/edges.csv"]
    nodes = pl.concat([edges["from_node"], edges["to_node"]])
    assert nodes.str.contains(r"^N\d{8}$").all()


def test_coordinates_in_guangdong_and_customers_near_their_transformer(province: Province
                                                                       ) -> None:
    for rel, lon, lat in [("distribution/stations.csv", "lon", "lat"),
                          ("distribution/transformers.csv", "lon", "lat"),
                          ("marketing/customers.csv", "经度", "纬度")]:
        f = province[rel]
        assert f[lon].str.contains(r"^\d{3}\.\d{6}$").all()
        lo, la = f[lon].cast(pl.Float64), f[lat].cast(pl.Float64)
        assert lo.min() >= 109.7 and lo.max() <= 117.3  # type: ignore[operator]
        assert la.min() >= 20.2 and la.max() <= 25.5  # type: ignore[operator]
    shifted = set(pl.concat([defects_of(province, k)["entity_id"] for k in
                             ("customer_gcj02", "customer_misplaced")]).to_list())
    tr = province["distribution/transformers.csv"].select("transformer_id", "lon", "lat")
    cust = (province["marketing/customers.csv"].unique("户号", keep="first")
            .join(province["truth/customer_links.csv"], left_on="户号", right_on="customer_id")
            .join(tr, on="transformer_id")
            .filter(~pl.col("户号").is_in(list(shifted))))
    tr_gcj = set(defects_of(province, "transformer_gcj02")["entity_id"].to_list())
    cust = cust.filter(~pl.col("transformer_id").is_in(list(tr_gcj)))
    num = cust.select(pl.col("经度", "纬度", "lon", "lat").cast(pl.Float64)).to_numpy()
    d = haversine_m(num[:, 0], num[:, 1], num[:, 2], num[:, 3])
    assert d.max() < 301 and d.min() > 9


def test_customer_values_look_real(province: Province) -> None:
    bad = set(pl.concat([defects_of(province, k)["entity_id"] for k in
                         ("customer_bad_value", "customer_missing_required",
                          "customer_duplicate_conflict", "stale_record")]).to_list())
    c = province["marketing/customers.csv"].filter(~pl.col("户号").is_in(list(bad)))
    assert c["联系电话"].str.contains(r"^1[3-9]\d{9}$").all()
    assert c["用电地址"].str.starts_with("广东省").all()
    assert c["户名"].str.len_chars().min() >= 2  # type: ignore[operator]
    assert set(c["相别"].unique()) == {"A", "B", "C", "ABC"}
    assert set(c["电压等级"].unique()) == {"220V", "380V", "10kV"}
    assert set(c["用户状态"].unique()) == {"正常", "销户"}
    assert (c["用户状态"] == "正常").mean() > 0.95  # type: ignore[operator]
    single = c.filter(pl.col("相别") != "ABC")
    assert (single["电压等级"] == "220V").all()
    assert (c["合同容量"].cast(pl.Int64) > 0).all()
    assert c["更新时间"].str.contains(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$").all()
    # Updated within the two years before the reference date, never after it.
    assert c["更新时间"].max() <= "2024-12-31 00:00:00"  # type: ignore[operator]
    assert c["更新时间"].min() >= "2022-12-31 00:00:00"  # type: ignore[operator]


def test_names_spelled_differently_but_recognisably(province: Province) -> None:
    fd = province["distribution/feeders.csv"]
    assert fd["feeder_name"].str.contains(r"^10kV.+线$").all()
    areas = province["marketing/transformer_areas.csv"]
    spellings = areas["线路名称"]
    assert spellings.str.starts_with("10kV").mean() < 0.5  # type: ignore[operator]
    assert spellings.str.contains("１０ｋＶ|10KV").any()
    # Every marketing feeder spelling still contains the base of some distribution feeder.
    bases = {n[4:].rstrip("线").rstrip("ⅠⅡⅢⅣ") for n in fd["feeder_name"].to_list()}
    assert all(any(b in s for b in bases) for s in spellings.unique().to_list())
    assert province["distribution/stations.csv"]["station_name"].str.contains(
        r"^(110|35)kV.+站$").all()
    assert areas["台区名称"].str.contains("台区|公变|专变|配变|变压器").all()
    assert province["distribution/transformers.csv"]["transformer_name"].str.contains(
        "配变$|公变$|专变$").all()


def test_spelling_tables_state_rates_in_percent() -> None:
    tables = {id(t): t for ts in names_module.SPELLING_CLASSES.values() for t in ts}
    assert len(tables) == 11
    for table in tables.values():
        assert sum(w for _, w in table) == 100, table
        assert all(w > 0 for _, w in table)


# Each spelling class of sources.md, as a pattern that only that class produces.
SPELLING_SIGNS = {
    "full width": "[０-９ｋＫＶ＃（）]",
    "10KV": "^ ?10KV",
    "10kv": "^ ?10kv",
    "千伏": "千伏",
    "Roman character": "[ⅠⅡⅢⅣⅤ]",
    "Latin capitals": "[^A-Za-z](I|II|III|IV|V)(线|回|号|台|公|配)",
    "Latin lower case": "[^A-Za-z]i{1,3}(线|回)",
    "#n": "#[0-9]",
    "＃n": "＃[0-9０-９]",
    "n#": "[0-9]#",
    "n号": "[0-9]号",
    "Chinese numeral": "[一二三四五六七八九十](线|回|号|台|公|配)",
    "(n)": r"\([0-9]\)",
    "（n）": "（[0-9０-９]+）",
    "ordinal after kind": "(线|回|台区|公变)[#＃(（]?[0-9]",
    "线路": "线路",
    "回": "回",
    "变电所": "变电所",
    "公用变压器": "公用变压器",
    "专用变压器": "专用变压器",
    "stacked": "公变台区",
    "bracketed kind": "[(（]专变[)）]",
    "leading space": "^ ",
    "trailing space": " $",
    "inner space": "[^ ] [^ ]",
    "remark": "[(（【](公用|备用|改造|新)[)）】]",
}


def test_marketing_spellings_show_every_class(province: Province) -> None:
    areas = province["marketing/transformer_areas.csv"]
    marketing = pl.concat([areas["台区名称"], areas["线路名称"], areas["变电站名称"],
                           province["marketing/customers.csv"]["线路名称"].unique()])
    missing = [c for c, sign in SPELLING_SIGNS.items() if not marketing.str.contains(sign).any()]
    assert not missing


def test_spellings_follow_the_stated_rates() -> None:
    feeders = pl.Series([names_module.feeder_name_marketing("龙华", 2, v) for v in range(20_000)])
    areas = pl.Series([names_module.area_name_marketing("龙华村", 3, False, v)
                       for v in range(20_000)])

    def share(names: pl.Series, pattern: str) -> float:
        return float(names.str.contains(pattern).mean())  # type: ignore[arg-type]

    assert share(feeders, "^ ?(10|１０)") == pytest.approx(0.50, abs=0.015)
    assert share(feeders, "千伏") == pytest.approx(0.10 * 0.96, abs=0.01)
    assert share(feeders, "^ ?１０") == pytest.approx(0.50 * 0.04, abs=0.005)
    assert share(feeders, "Ⅱ") == pytest.approx(0.28, abs=0.015)
    assert share(feeders, "线路") == pytest.approx(0.20, abs=0.015)
    assert share(areas, "[^0-9]3#|３＃") == pytest.approx(0.14, abs=0.01)
    assert share(areas, "公变台区") == pytest.approx(0.18, abs=0.015)
    assert share(areas, "(台区|公变|配变|变压器)[ 　]?[#＃(（]?[3３三Ⅲ]") == pytest.approx(
        0.15, abs=0.015)


def test_vocabulary_is_gbk_encodable() -> None:
    pool = (list(names_module.SURNAMES) + list(names_module.GIVEN_CHARS)
            + list(names_module.VILLAGE_SUFFIXES) + list(names_module.ROAD_SUFFIXES)
            + list(names_module.INDUSTRIES) + list(names_module.SHOP_SUFFIXES)
            + [c.name + c.district_list for c in names_module.CITIES]
            + names_module.place_names(np.random.default_rng(0), names_module.vocabulary_size())
            + [names_module.feeder_name_marketing("龙华", k, v) for k in range(5)
               for v in range(100)]
            + [names_module.area_name_marketing("龙华村", k, d, v) for d in (True, False)
               for k in (1, 12, 40) for v in range(100)]
            + [names_module.station_name_marketing("龙华", 110, v) for v in range(100)])
    for text in pool:
        text.encode("gbk")


# --- topology ---------------------------------------------------------------------------------


def _feeder_graphs(p: Province) -> dict[str, nx.MultiGraph]:
    loops = set(defects_of(p, "loop")["entity_id"].to_list())
    graphs: dict[str, nx.MultiGraph] = {}
    edges = p["distribution/edges.csv"].filter(pl.col("feeder_id") != "")
    for row in edges.iter_rows(named=True):
        if row["edge_id"] in loops:
            continue
        assert row["normal_open"] in ("false", "")
        graphs.setdefault(row["feeder_id"], nx.MultiGraph()).add_edge(
            row["from_node"], row["to_node"], key=row["edge_id"])
    return graphs


def test_feeders_are_radial_from_their_breaker(province: Province) -> None:
    graphs = _feeder_graphs(province)
    fd = province["distribution/feeders.csv"]
    edges = province["distribution/edges.csv"]
    island_feeders = set()
    removed = set(defects_of(province, "island")["entity_id"].to_list())
    assert removed and not (set(edges["edge_id"].to_list()) & removed)
    components = {f: nx.number_connected_components(g) for f, g in graphs.items()}
    island_feeders = {f for f, c in components.items() if c > 1}
    assert len(island_feeders) == len(removed)
    for row in fd.iter_rows(named=True):
        g = graphs[row["feeder_id"]]
        assert nx.is_forest(nx.Graph(g)) and g.number_of_edges() == nx.Graph(g).number_of_edges()
        source = row["source_node"]
        breaker = edges.filter((pl.col("kind") == "breaker")
                               & (pl.col("feeder_id") == row["feeder_id"]))
        assert breaker.height == 1 and breaker["to_node"].item() == source
        assert components[row["feeder_id"]] == (2 if row["feeder_id"] in island_feeders else 1)


def test_loops_make_exactly_one_cycle(province: Province) -> None:
    loops = province["distribution/edges.csv"].filter(
        pl.col("edge_id").is_in(defects_of(province, "loop")["entity_id"].to_list()))
    assert loops.height >= 3
    graphs = _feeder_graphs(province)
    for row in loops.iter_rows(named=True):
        assert row["kind"] == "line" and row["normal_open"] == ""
        g = nx.Graph(graphs[row["feeder_id"]])
        assert g.has_node(row["from_node"]) and g.has_node(row["to_node"])
        g.add_edge(row["from_node"], row["to_node"])
        assert len(nx.cycle_basis(g)) == 1


def test_ties_are_open_switches_between_different_feeders(province: Province) -> None:
    edges = province["distribution/edges.csv"]
    node_feeder = {}
    for row in edges.filter(pl.col("feeder_id") != "").iter_rows(named=True):
        node_feeder[row["from_node"]] = row["feeder_id"]
        node_feeder[row["to_node"]] = row["feeder_id"]
    ties = edges.filter(pl.col("feeder_id") == "")
    assert ties.height > 0
    assert (ties["kind"] == "switch").all() and (ties["normal_open"] == "true").all()
    tied = set()
    for row in ties.iter_rows(named=True):
        a, b = node_feeder[row["from_node"]], node_feeder[row["to_node"]]
        assert a != b
        tied |= {a, b}
    assert len(tied) >= 0.7 * province["distribution/feeders.csv"].height
    assert (edges.filter(pl.col("feeder_id") != "")["normal_open"] != "true").all()
    kinds = set(edges["kind"].unique())
    assert kinds == {"line", "cable", "switch", "breaker", "fuse", "recloser"}
    switching = edges.filter(pl.col("kind").is_in(["line", "cable"]))
    assert (switching["normal_open"] == "").all()


def test_edge_geometry_and_length(province: Province) -> None:
    e = province["distribution/edges.csv"]
    coords = e["geometry"].str.extract_groups(
        r"^LINESTRING \(([\d.]+) ([\d.]+), ([\d.]+) ([\d.]+)\)$")
    parts = [coords.struct.field(str(i)).cast(pl.Float64).to_numpy() for i in (1, 2, 3, 4)]
    assert not any(np.isnan(x).any() for x in parts)
    length = e["length_m"].cast(pl.Float64).to_numpy()
    approx = haversine_m(*parts)
    assert np.allclose(length, approx, rtol=0.01, atol=0.2)
    assert np.median(length[e["kind"].is_in(["line", "cable"]).to_numpy()]) > 100


def test_truth_energized_matches_exported_topology(province: Province) -> None:
    edges = province["distribution/edges.csv"]
    closed = edges.filter(pl.col("normal_open") != "true")
    g = nx.Graph()
    g.add_edges_from(zip(closed["from_node"], closed["to_node"], strict=True))
    sources = province["distribution/feeders.csv"]["source_node"].to_list()
    live = set().union(*(nx.node_connected_component(g, s) for s in sources))
    truth = province["truth/transformer_links.csv"]
    assert (truth["energized"] == "false").sum() > 0
    for row in truth.iter_rows(named=True):
        assert (row["node"] in live) == (row["energized"] == "true"), row


# --- referential integrity and truth ----------------------------------------------------------


def test_every_reference_resolves_unless_a_defect_says_otherwise(province: Province) -> None:
    st = set(province["distribution/stations.csv"]["station_id"].to_list())
    fd = province["distribution/feeders.csv"]
    tr = province["distribution/transformers.csv"]
    areas = province["marketing/transformer_areas.csv"]
    cust = province["marketing/customers.csv"]
    edges = province["distribution/edges.csv"]
    feeder_ids = set(fd["feeder_id"].to_list())
    nodes = set(edges["from_node"].to_list()) | set(edges["to_node"].to_list())
    assert set(fd["station_id"].to_list()) <= st
    assert set(fd["source_node"].to_list()) <= nodes
    assert set(edges["feeder_id"].to_list()) - {""} <= feeder_ids
    assert set(tr["node"].to_list()) <= nodes

    def excused(*kinds: str) -> set[str]:
        return set(pl.concat([defects_of(province, k)["entity_id"] for k in kinds]).to_list())

    bad_feeder = tr.filter(~pl.col("feeder_id").is_in(list(feeder_ids)))["transformer_id"]
    assert set(bad_feeder.to_list()) == excused("transformer_orphan_feeder")
    area_codes = set(areas["台区编号"].to_list())
    bad_code = tr.filter(~pl.col("marketing_area_code").is_in(list(area_codes)))
    assert set(bad_code["transformer_id"].to_list()) == excused("transformer_missing_area_code")
    tr_ids = set(tr["transformer_id"].to_list())
    bad_pms = areas.filter(~pl.col("PMS设备编码").is_in(list(tr_ids)))["台区编号"]
    assert set(bad_pms.to_list()) == excused("area_missing_pms_id", "area_orphan")
    bad_cust = cust.filter(~pl.col("台区编号").is_in(list(area_codes)))["户号"]
    orphans = excused("customer_orphan_area")
    blanks = set(defects_of(province, "customer_missing_required").filter(
        pl.col("field") == "台区编号")["entity_id"].to_list())
    assert set(bad_cust.to_list()) == orphans | blanks


def test_truth_links_and_recoverability(province: Province) -> None:
    links = province["truth/customer_links.csv"]
    cust = province["marketing/customers.csv"]
    assert links.height == N == cust["户号"].n_unique()
    assert set(links["customer_id"].to_list()) == set(cust["户号"].to_list())
    area_truth = province["truth/area_links.csv"]
    orphan_areas = set(defects_of(province, "area_orphan")["entity_id"].to_list())
    assert set(area_truth.filter(pl.col("recoverable") == "false")["area_code"].to_list()) == \
        orphan_areas
    # The truth pairing is consistent between files.
    pairs = dict(zip(area_truth["area_code"], area_truth["transformer_id"], strict=True))
    assert all(pairs[a] == t for a, t in zip(links["area_code"], links["transformer_id"],
                                             strict=True))
    tr_truth = province["truth/transformer_links.csv"]
    feeder_of = dict(zip(tr_truth["transformer_id"], tr_truth["feeder_id"], strict=True))
    assert all(feeder_of[t] == f for t, f in zip(links["transformer_id"], links["feeder_id"],
                                                 strict=True))
    lost = (set(defects_of(province, "customer_orphan_area")["entity_id"].to_list())
            | set(defects_of(province, "customer_missing_required").filter(
                pl.col("field") == "台区编号")["entity_id"].to_list())
            | set(links.filter(pl.col("area_code").is_in(list(orphan_areas)))["customer_id"]
                  .to_list()))
    unrecoverable = set(links.filter(pl.col("recoverable") == "false")["customer_id"].to_list())
    assert unrecoverable == lost
    # Wrong/missing ids leave the other system's id intact, so the evidence still names one.
    for kind, needed in [("area_missing_pms_id", "area_code"), ("area_wrong_pms_id", "area_code"),
                         ("transformer_missing_area_code", "pms_id"),
                         ("transformer_wrong_area_code", "pms_id")]:
        ids = defects_of(province, kind)["entity_id"].to_list()
        if kind.startswith("transformer"):
            ids = area_truth.filter(pl.col("transformer_id").is_in(ids))["area_code"].to_list()
        ev = area_truth.filter(pl.col("area_code").is_in(ids))["evidence"]
        assert ev.len() == len(ids) > 0
        assert ev.str.contains(needed).all(), kind


def test_wrong_links_prefer_the_same_feeder(province: Province) -> None:
    tr = province["truth/transformer_links.csv"]
    feeder_of = dict(zip(tr["transformer_id"], tr["feeder_id"], strict=True))
    wrong = defects_of(province, "area_wrong_pms_id")
    same = [feeder_of[a] == feeder_of[b] for a, b in
            zip(wrong["original_value"], wrong["injected_value"], strict=True)]
    assert sum(same) >= 0.8 * len(same) and all(
        a != b for a, b in zip(wrong["original_value"], wrong["injected_value"], strict=True))


# --- defects ----------------------------------------------------------------------------------


def _expected_count(kind: str, rate: float, n: int, t: int, f: int) -> int:
    population = {"customers": n, "pairs": t, "feeders": f, "records": n + 2 * t}
    return math.floor(rate * population[DEFECT_KINDS[kind].population] + 0.5)


def test_defect_counts_follow_rates(province: Province) -> None:
    rates = parse_defect_rates(RATES)
    t = province["truth/area_links.csv"].height
    f = province["distribution/feeders.csv"].height
    got = Counter(province["truth/defects.csv"]["defect"].to_list())
    for kind, rate in rates.items():
        assert abs(got[kind] - _expected_count(kind, rate, N, t, f)) <= 1, kind
        assert got[kind] > 0, kind


def test_defects_point_at_lines_showing_the_injected_value(province: Province) -> None:
    lines: dict[str, list[str]] = {}
    for rel in HEADERS:
        lines[rel] = (province.root / rel).read_bytes().decode(ENCODING[rel]).split("\n")
    log = province["truth/defects.csv"]
    assert log.height > 1000
    for row in log.iter_rows(named=True):
        rel = row["file"]
        if row["line"] == "":
            assert row["defect"] == "island"
            assert not any(x.startswith(row["entity_id"] + ",") for x in lines[rel])
            continue
        header = lines[rel][0].split(",")
        values = next(csv.reader([lines[rel][int(row["line"]) - 1]]))
        record = dict(zip(header, values, strict=True))
        key = header[0] if row["table"] != "transformer_areas" else "台区编号"
        assert record[key] == row["entity_id"], row
        fields = row["field"].split("|")
        injected = row["injected_value"].split("|") if len(fields) > 1 else [
            row["injected_value"]]
        assert [record[fl] for fl in fields] == injected, row
        assert row["original_value"] != row["injected_value"] or row["defect"] in (
            "area_orphan",), row


def test_defect_values_are_what_their_kind_says(province: Province) -> None:
    gcj = defects_of(province, "customer_gcj02")
    orig = np.array([v.split("|") for v in gcj["original_value"]], dtype=float)
    new = np.array([v.split("|") for v in gcj["injected_value"]], dtype=float)
    exp_lon, exp_lat = wgs84_to_gcj02(orig[:, 0], orig[:, 1])
    assert np.allclose(new[:, 0], exp_lon, atol=2e-6) and np.allclose(new[:, 1], exp_lat,
                                                                       atol=2e-6)
    mis = defects_of(province, "customer_misplaced")
    o = np.array([v.split("|") for v in mis["original_value"]], dtype=float)
    m = np.array([v.split("|") for v in mis["injected_value"]], dtype=float)
    assert haversine_m(o[:, 0], o[:, 1], m[:, 0], m[:, 1]).min() > 1_500
    stale = defects_of(province, "stale_record")
    assert set(stale["table"].unique()) == {"customers", "transformer_areas", "transformers"}
    assert (stale["injected_value"] < "2021-12-31").all()
    bad = defects_of(province, "customer_bad_value")
    assert set(bad["field"].unique()) <= {"合同容量", "相别", "更新时间"}
    tbad = defects_of(province, "transformer_bad_value")
    assert all(v.startswith("-") or v == "unknown" for v in tbad["injected_value"])
    retired = defects_of(province, "retired_transformer_live_customers")["entity_id"].to_list()
    links = province["truth/customer_links.csv"].filter(pl.col("transformer_id").is_in(retired))
    status = province["marketing/customers.csv"].filter(
        pl.col("户号").is_in(links["customer_id"].to_list()))["用户状态"]
    assert status.len() > 0 and (status == "正常").all()
    mismatch = defects_of(province, "name_mismatch")
    assert (mismatch["original_value"] != mismatch["injected_value"]).all()
    dup = province["marketing/customers.csv"]["户号"].value_counts().filter(pl.col("count") > 1)
    n_dup = (defects_of(province, "customer_duplicate_exact").height
             + defects_of(province, "customer_duplicate_conflict").height)
    assert dup.height == n_dup and (dup["count"] == 2).all()


def test_defect_kinds_are_exclusive_per_row(province: Province) -> None:
    log = province["truth/defects.csv"].filter(pl.col("defect") != "stale_record")
    per_entity = log.group_by("table", "entity_id").agg(pl.col("defect").n_unique())
    assert (per_entity["defect"] == 1).all()


def test_clean_mode_has_no_defects_and_everything_recoverable(clean: Province) -> None:
    assert clean["truth/defects.csv"].height == 0
    assert (clean["truth/customer_links.csv"]["recoverable"] == "true").all()
    assert (clean["truth/area_links.csv"]["evidence"] == "pms_id;area_code;name").all()
    assert (clean["truth/transformer_links.csv"]["energized"] == "true").all()
    assert clean["marketing/customers.csv"].height == 20_000
    tr = clean["distribution/transformers.csv"]
    areas = clean["marketing/transformer_areas.csv"]
    assert dict(zip(areas["PMS设备编码"], areas["台区编号"], strict=True)) == dict(
        zip(tr["transformer_id"], tr["marketing_area_code"], strict=True))
    assert all(v == 0 for v in clean.manifest.defect_counts.values())  # type: ignore[attr-defined]


# --- defect-rate parsing -----------------------------------------------------------------------


def test_parse_defect_rates() -> None:
    assert parse_defect_rates("none") == dict.fromkeys(DEFECT_KINDS, 0.0)
    assert parse_defect_rates("default") == dict(DEFAULT_RATES)
    r = parse_defect_rates("customer_orphan=0.01,stale_record=0.02")
    assert r["customer_orphan_area"] == 0.01 and r["stale_record"] == 0.02
    assert sum(r.values()) == pytest.approx(0.03)
    r = parse_defect_rates("default, island=0.5")
    assert r["island"] == 0.5 and r["loop"] == DEFAULT_RATES["loop"]
    for spec, needle in [("bogus=0.1", "bogus"), ("island=1.5", "1.5"), ("loop=-0.1", "-0.1"),
                         ("loop=abc", "abc"), ("customer_duplicate=0.1", "ambiguous"),
                         ("island", "island"), ("", "empty"),
                         ("island=0.7,loop=0.6", "feeders")]:
        with pytest.raises(ValueError, match=needle):
            parse_defect_rates(spec)
    with pytest.raises(ValueError, match="nope"):
        generate(Path("/nonexistent/never-written"), 10, defects={"nope": 0.1})


def test_defect_kinds_are_documented() -> None:
    assert len(DEFECT_KINDS) >= 20
    for name, kind in DEFECT_KINDS.items():
        assert kind.name == name and kind.description and kind.detected_by
        assert 0.0001 <= kind.default_rate <= 0.05
        assert set(kind.tables) <= {"customers", "transformer_areas", "transformers", "edges"}


# --- coordinate transforms --------------------------------------------------------------------


def test_gcj02_published_reference_values() -> None:
    # Test vectors of the reference "eviltransform" implementation (WGS 84 → GCJ-02).
    for wgs, gcj in [((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
                     ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
                     ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
                     ((116.404, 39.915), (116.41024449916938, 39.91640428150164))]:
        lon, lat = wgs84_to_gcj02(*wgs)
        assert lon == pytest.approx(gcj[0], abs=1e-9) and lat == pytest.approx(gcj[1], abs=1e-9)
    lon, lat = wgs84_to_gcj02(116.397128, 39.916527)  # Tian'anmen, as in the brief
    assert (lon, lat) == (pytest.approx(116.40337, abs=1e-5), pytest.approx(39.91793, abs=1e-5))
    bd = gcj02_to_bd09(123.0, 45.0)  # gcoord's published GCJ-02 → BD-09 value
    assert bd == (pytest.approx(123.00636499, abs=1e-7), pytest.approx(45.00636899, abs=1e-7))
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)  # outside China: unchanged


def test_gcj02_and_bd09_round_trips() -> None:
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(109.7, 117.3, 20_000), rng.uniform(20.2, 25.5, 20_000)
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    shift = haversine_m(lon, lat, g_lon, g_lat)
    assert shift.min() > 100 and shift.max() < 1_000  # the famous few-hundred-metre offset
    back = gcj02_to_wgs84(g_lon, g_lat)
    assert haversine_m(lon, lat, *back).max() < 0.5
    assert haversine_m(lon, lat, *bd09_to_wgs84(*wgs84_to_bd09(lon, lat))).max() < 0.5
    assert haversine_m(g_lon, g_lat, *bd09_to_gcj02(*gcj02_to_bd09(g_lon, g_lat))).max() < 0.5
