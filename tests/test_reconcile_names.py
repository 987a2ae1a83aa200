"""Name normalisation: every spelling class of sources.md compares equal, different names stay
different — as properties over random names, as hand-written edge cases, and on the
generator's own output.

The spellings here are written from the input contract's list of classes (sources.md, "How
names are spelled in real exports"), independently of both the normaliser and the generator.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridtopo.reconcile.names import (
    NameKind,
    feeder_key,
    name_key,
    parse_name,
    same_name,
    station_key,
    transformer_key,
)

# Characters a base name is made of: common toponym characters, none of which is a numeral, a
# kind-word character or a sign the contract gives a meaning (those would make the name itself
# ambiguous, e.g. a base ending in 回 before 线).
BASE_CHARS = "龙华城东西南北新塘石岗沙田竹云社兴康桂洞福宁隆平湖江洲湾坪头尾边心基围浦桥溪坑岭山园"
KIND_WORDS: dict[NameKind, list[str]] = {
    "feeder": ["线", "线路", "回", "回线"],
    "station": ["站", "变", "变电站", "变电所"],
    "transformer": ["台区", "公变", "专变", "配变", "公用变压器", "专用变压器", "公变台区",
                    "配变台区", "专变台区", "台区公变"],
}
VOLTAGES: dict[NameKind, list[str]] = {
    "feeder": ["10kV", "10KV", "10kv", "10Kv", "20kV", "10千伏", "１０ｋＶ", "１０ＫＶ"],
    "station": ["110kV", "110KV", "35kV", "220kv", "110千伏", "１１０ｋＶ"],
    "transformer": ["0.4kV", "10kV", "０.４ｋＶ"],
}
ROMAN_CHARS = "ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩⅪⅫ"
CHINESE_DIGITS = "一二三四五六七八九"
REMARKS = ["(专变)", "（备用）", "(公用)", "【改造】", "[新]"]


def chinese(n: int) -> str:
    tens, units = divmod(n, 10)
    head = "" if not tens else ("十" if tens == 1 else CHINESE_DIGITS[tens - 1] + "十")
    return head + (CHINESE_DIGITS[units - 1] if units else "")


def latin(n: int) -> str:
    units = ("", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX")
    return "X" * (n // 10) + units[n % 10]


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def ordinal_forms(n: int) -> list[str]:
    """Every way the contract writes ordinal ``n`` (1–39)."""
    forms = [f"#{n}", f"＃{fullwidth(str(n))}", f"{n}号", str(n), f"{n}#", f"({n})",
             f"（{n}）", chinese(n), chinese(n) + "号", latin(n), latin(n).lower()]
    if n <= len(ROMAN_CHARS):
        forms.append(ROMAN_CHARS[n - 1])
    return forms


@st.composite
def base_names(draw: st.DrawFn) -> str:
    """A base: 1–4 characters, sometimes with an inner number (工业区3栋)."""
    head = draw(st.text(BASE_CHARS, min_size=1, max_size=4))
    if draw(st.booleans()) and draw(st.integers(0, 4)) == 0:
        return head + str(draw(st.integers(1, 99))) + draw(st.text(BASE_CHARS, min_size=1,
                                                                   max_size=2))
    return head


@st.composite
def spellings(draw: st.DrawFn, kind: NameKind, base: str, ordinal: int | None) -> str:
    """One spelling of (base, ordinal) drawn from every class of the contract at once."""
    word = draw(st.sampled_from(KIND_WORDS[kind]))
    number = draw(st.sampled_from(ordinal_forms(ordinal))) if ordinal else ""
    after = bool(number) and draw(st.booleans())
    parts = [base, *((word, number) if after else (number, word))]
    parts = [p for p in parts if p]
    if draw(st.booleans()):
        parts.insert(0, draw(st.sampled_from(VOLTAGES[kind])))
    gaps = [draw(st.sampled_from(["", "", "", " ", "  ", "\u3000"])) for _ in parts[1:]]
    text = parts[0] + "".join(g + p for g, p in zip(gaps, parts[1:], strict=True))
    if draw(st.integers(0, 3)) == 0:
        text += draw(st.sampled_from(REMARKS))
    if draw(st.integers(0, 4)) == 0:
        text = fullwidth(text)
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " "]))


KINDS = st.sampled_from(["feeder", "station", "transformer"])
ORDINALS = st.one_of(st.none(), st.integers(1, 39))


@settings(max_examples=400, deadline=None)
@given(data=st.data(), kind=KINDS, base=base_names(), ordinal=ORDINALS)
def test_every_spelling_of_one_name_has_one_key(data: st.DataObject, kind: NameKind, base: str,
                                                ordinal: int | None) -> None:
    if kind == "station":
        ordinal = None  # the contract gives stations no ordinal
    first = data.draw(spellings(kind, base, ordinal))
    second = data.draw(spellings(kind, base, ordinal))
    expected = base if ordinal is None else f"{base}#{ordinal}"
    assert name_key(kind, first) == name_key(kind, second) == expected, (first, second)


@st.composite
def different_names(draw: st.DrawFn) -> tuple[tuple[str, int | None], tuple[str, int | None]]:
    """Two names that differ in their base or their ordinal, often only just (城东 / 城东新,
    #3 / #13, no ordinal / #1)."""
    base, ordinal = draw(base_names()), draw(ORDINALS)
    how = draw(st.sampled_from(["base", "extend", "ordinal", "digit", "drop"]))
    if how == "base":
        other = (draw(base_names().filter(lambda b: b != base)), ordinal)
    elif how == "extend":
        other = (base + draw(st.text(BASE_CHARS, min_size=1, max_size=2)), ordinal)
    elif how == "ordinal":
        other = (base, draw(st.integers(1, 39).filter(lambda n: n != ordinal)))
    elif how == "digit":
        n = ordinal or 3
        other, ordinal = (base, n + 10 * draw(st.integers(1, 2))), n
    else:
        other = (base, None if ordinal else draw(st.integers(1, 39)))
    return (base, ordinal), other


@settings(max_examples=400, deadline=None)
@given(data=st.data(), kind=st.sampled_from(["feeder", "transformer"]), pair=different_names())
def test_different_names_keep_different_keys(
    data: st.DataObject, kind: NameKind,
    pair: tuple[tuple[str, int | None], tuple[str, int | None]],
) -> None:
    (a_base, a_ord), (b_base, b_ord) = pair
    a = data.draw(spellings(kind, a_base, a_ord))
    b = data.draw(spellings(kind, b_base, b_ord))
    assert name_key(kind, a) != name_key(kind, b), (a, b)


@pytest.mark.parametrize(("kind", "names"), [
    ("feeder", ["城东3号线", "城东#3线", "城东3线", "城东三线", "城东Ⅲ线", "城东III线",
                "城东(3)线", "城东（3）线", "城东＃３线", "城东线#3", "城东线路3号", "10kV城东三回",
                " 城东 3号线 "]),
    ("feeder", ["10kV龙华Ⅰ线", "龙华1线", "１０ＫＶ龙华I线", "10千伏龙华一线", "龙华线(1)"]),
    ("feeder", ["10kV兴康3号线", "兴康#3线", "兴康3线路"]),
    ("transformer", ["竹云社区#2公变", "竹云社区2号台区", "竹云社区＃2公变台区", "竹云社区 2号公变",
                     "竹云社区2#公用变压器", "竹云社区台区（二）"]),
    ("transformer", ["石岗五金厂专变", "石岗五金厂(专变)", "石岗五金厂专变台区", "石岗五金厂台区"]),
    ("station", ["110kV龙华站", "龙华变电站", "110KV 龙华变", "龙华变电所", "１１０ｋＶ龙华站"]),
])
def test_spellings_from_the_contract_compare_equal(kind: NameKind, names: list[str]) -> None:
    keys = {name_key(kind, n) for n in names}
    assert len(keys) == 1 and None not in keys, keys


@pytest.mark.parametrize(("kind", "a", "b"), [
    ("feeder", "兴康3号", "兴康13号"),
    ("feeder", "城东线", "城西线"),
    ("feeder", "城东#1线", "城东#2线"),
    ("feeder", "城东线", "城东1线"),
    ("feeder", "三水线", "水线"),       # 三 begins the base, it is no ordinal here
    ("feeder", "十里线", "里线"),
    ("feeder", "taxi线", "ta线"),       # xi after a Latin letter is no Roman numeral
    ("transformer", "龙华村3 1号配变", "龙华村31号配变"),  # a space keeps two numbers apart
    ("transformer", "龙华村1号配变", "龙华村专变"),
    ("station", "龙华站", "龙岗站"),
])
def test_different_names_stay_different(kind: NameKind, a: str, b: str) -> None:
    assert name_key(kind, a) != name_key(kind, b)


def test_parse_keeps_every_part() -> None:
    parsed = parse_name("transformer", " 0.4kV 竹云社区公变台区＃２（改造） ")
    assert (parsed.voltage, parsed.base, parsed.ordinal, parsed.kind, parsed.brackets) == (
        "0.4kv", "竹云社区", 2, "公变台区", ("改造",))
    assert parse_name("feeder", "线").key is None and name_key("feeder", None) is None
    assert parse_name("feeder", "城东3线(2)").ordinal == 3  # the bracket is a remark then


def test_polars_keys_match_the_scalar_parser_on_every_row() -> None:
    names = ["10kV龙华Ⅱ线", "龙华2号线", None, "龙华线", "龙华2号线", "线",
             "１０ＫＶ龙华＃２线"] * 50
    frame = pl.DataFrame({"name": names, "other": ["龙华#2线"] * len(names)})
    out = frame.select(feeder_key(pl.col("name")).alias("key"),
                       same_name("feeder", pl.col("name"), pl.col("other")).alias("same"))
    assert out["key"].to_list() == [name_key("feeder", n) for n in names]
    assert out["same"].to_list() == [None if name_key("feeder", n) is None
                                     else name_key("feeder", n) == "龙华#2" for n in names]
    stations = pl.DataFrame({"s": ["110kV龙华站", "龙华变"]}).select(station_key(pl.col("s")))
    assert stations["s"].to_list() == ["龙华", "龙华"]
    areas = pl.DataFrame({"a": ["龙华村#1台区"]}).select(transformer_key(pl.col("a")))
    assert areas["a"].to_list() == ["龙华村#1"]


def _read(root: Path, rel: str) -> pl.DataFrame:
    encoding = "gbk" if rel.startswith("marketing/") else "utf-8"
    return pl.read_csv(io.StringIO((root / rel).read_bytes().decode(encoding)),
                       infer_schema=False)


@pytest.fixture(scope="module")
def spelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean province (no defects) large enough to show every spelling class."""
    from gridtopo.synthetic import generate

    root = tmp_path_factory.mktemp("spelled") / "out"
    generate(root, 40_000, seed=11, defects={})
    return root


def test_generated_marketing_spellings_key_like_the_distribution_names(spelled: Path) -> None:
    truth = _read(spelled, "truth/area_links.csv")
    feeders = _read(spelled, "distribution/feeders.csv")
    stations = _read(spelled, "distribution/stations.csv")
    transformers = _read(spelled, "distribution/transformers.csv")
    areas = _read(spelled, "marketing/transformer_areas.csv").join(
        truth.select(pl.col("area_code").alias("台区编号"), "transformer_id"), on="台区编号")
    chain = areas.join(transformers, on="transformer_id").join(
        feeders.rename({"feeder_name": "dist_feeder"}), on="feeder_id").join(
        stations.rename({"station_name": "dist_station"}), on="station_id")
    assert chain.height == areas.height > 500
    same = chain.select(
        same_name("transformer", pl.col("台区名称"), pl.col("transformer_name")).alias("area"),
        same_name("feeder", pl.col("线路名称"), pl.col("dist_feeder")).alias("feeder"),
        same_name("station", pl.col("变电站名称"), pl.col("dist_station")).alias("station"))
    assert same.select(pl.all().all()).row(0) == (True, True, True)
    customers = _read(spelled, "marketing/customers.csv").join(
        chain.select("台区编号", pl.col("线路名称").alias("area_feeder"), "dist_feeder"),
        on="台区编号")
    assert customers.select(same_name("feeder", pl.col("线路名称"), pl.col("dist_feeder"))
                            .all()).item()
    # A tenth of customers spell the feeder otherwise than their area does.
    other = (customers["线路名称"] != customers["area_feeder"]).mean()
    assert 0.05 < other < 0.12  # type: ignore[operator]
