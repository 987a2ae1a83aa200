"""Vocabulary and the spelling habits of the two systems.

Names are what reconciliation falls back on when codes are missing, so they must look like
the real thing: place names built from common Cantonese/Hakka/Teochew toponym syllables,
people's names from the commonest Guangdong surnames, and — above all — the *same* object
spelled the way each system spells it: distribution one way (``10kV龙华Ⅱ线``, ``龙华村1号配变``),
marketing in every spelling class of the input contract at the rates of the tables below
(:data:`SPELLING_CLASSES`), e.g. ``龙华2号线``, ``１０ＫＶ龙华线路（２）``, ``龙华村 #1公变台区``.

>>> feeder_name_marketing("龙华", 2, 49), area_name_marketing("龙华村", 1, False, 49)
('10Kv龙华线(2)', '龙华村 (1)配变台区')

Every string here is encodable in GBK; the test-suite checks that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --- places -------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    """A prefecture-level city of Guangdong served by the reference model."""

    name: str          # without the 市 suffix
    admin_code: str    # first four digits of the GB/T 2260 code, used in 台区 codes
    lon: float
    lat: float
    weight: float      # share of customers (≈ population, millions)
    spread_deg: float  # standard deviation of station positions around the centre
    cable_share: float  # share of feeder conductors that are cable (urban cores)
    district_list: str  # space-separated districts/counties/towns used in addresses

    @property
    def districts(self) -> tuple[str, ...]:
        """The districts (区/县/镇) used in customer addresses."""
        return tuple(self.district_list.split())


# The reference model excludes Guangzhou and Shenzhen, so they are not here.
CITIES: tuple[City, ...] = (
    City("佛山", "4406", 113.122, 23.021, 9.6, 0.14, 0.6,
         "禅城区 南海区 顺德区 三水区 高明区"),
    City("东莞", "4419", 113.752, 23.021, 10.5, 0.13, 0.6,
         "南城街道 东城街道 长安镇 虎门镇 常平镇 塘厦镇"),
    City("惠州", "4413", 114.416, 23.112, 6.0, 0.25, 0.3,
         "惠城区 惠阳区 博罗县 惠东县 龙门县"),
    City("珠海", "4404", 113.577, 22.271, 2.5, 0.09, 0.6,
         "香洲区 斗门区 金湾区"),
    City("中山", "4420", 113.392, 22.517, 4.4, 0.10, 0.5,
         "石岐街道 东区街道 小榄镇 古镇镇 坦洲镇"),
    City("江门", "4407", 113.082, 22.579, 4.8, 0.25, 0.3,
         "蓬江区 江海区 新会区 台山市 开平市 鹤山市 恩平市"),
    City("汕头", "4405", 116.682, 23.354, 5.5, 0.12, 0.4,
         "金平区 龙湖区 濠江区 潮阳区 潮南区 澄海区"),
    City("潮州", "4451", 116.622, 23.657, 2.6, 0.12, 0.3,
         "湘桥区 潮安区 饶平县"),
    City("揭阳", "4452", 116.372, 23.550, 5.6, 0.18, 0.2,
         "榕城区 揭东区 揭西县 惠来县 普宁市"),
    City("汕尾", "4415", 115.375, 22.786, 2.7, 0.18, 0.2,
         "城区 海丰县 陆河县 陆丰市"),
    City("湛江", "4408", 110.359, 21.271, 7.0, 0.30, 0.2,
         "赤坎区 霞山区 坡头区 麻章区 遂溪县 徐闻县 廉江市 雷州市 吴川市"),
    City("茂名", "4409", 110.925, 21.663, 6.2, 0.25, 0.2,
         "茂南区 电白区 高州市 化州市 信宜市"),
    City("阳江", "4417", 111.983, 21.858, 2.6, 0.20, 0.2,
         "江城区 阳东区 阳西县 阳春市"),
    City("肇庆", "4412", 112.465, 23.047, 4.1, 0.30, 0.2,
         "端州区 鼎湖区 高要区 四会市 广宁县 怀集县 德庆县"),
    City("云浮", "4453", 112.044, 22.915, 2.4, 0.22, 0.15,
         "云城区 云安区 新兴县 郁南县 罗定市"),
    City("清远", "4418", 113.056, 23.682, 4.0, 0.30, 0.2,
         "清城区 清新区 佛冈县 英德市 连州市 阳山县"),
    City("韶关", "4402", 113.597, 24.810, 2.9, 0.30, 0.2,
         "武江区 浈江区 曲江区 乐昌市 南雄市 仁化县"),
    City("河源", "4416", 114.700, 23.744, 2.8, 0.30, 0.15,
         "源城区 东源县 和平县 龙川县 紫金县 连平县"),
    City("梅州", "4414", 116.122, 24.289, 3.9, 0.30, 0.15,
         "梅江区 梅县区 兴宁市 五华县 平远县 蕉岭县 大埔县 丰顺县"),
)

# Guangdong's bounding box (WGS 84); generated points are clipped into it.
LON_MIN, LON_MAX = 109.75, 117.25
LAT_MIN, LAT_MAX = 20.25, 25.45

# Two-syllable toponyms: a first syllable and a second one. Combinations are plausible
# (龙华, 石岗, 新塘, 沙坪…) and numerous enough (~2,000) to be mostly unique within a station.
_PLACE_FIRST = tuple(
    "龙华新东西南北金银石沙大小长高平安德福祥和兴隆丰永泰富宝凤鹤松竹桂荷莲梅"
    "青黄白红碧云水田岗坑塘湖河江海洲湾圩潭岭峰林园乐康宁顺昌盛嘉怡"
)
_PLACE_SECOND = tuple(
    "华山湖江岗岭田坑塘围洲头口坪湾岸城埔沙圩桥溪浦洞寨庄坝陂涌滘沥步岗冲"
    "基尾边心前后上下中里"
)
VILLAGE_SUFFIXES = ("村", "村", "村", "社区", "新村", "花园", "小区", "工业区")
ROAD_SUFFIXES = ("路", "路", "大道", "街", "大街")
INDUSTRIES = ("五金", "塑料", "家具", "陶瓷", "电子", "纺织", "制衣", "食品", "印刷", "机械",
              "灯饰", "建材", "模具", "玩具", "鞋业", "包装", "化工", "水泥", "木业", "饲料")
SHOP_SUFFIXES = ("五金店", "商行", "餐厅", "超市", "便利店", "茶餐厅", "理发店", "药店",
                 "汽修店", "士多店", "粮油店", "酒楼", "幼儿园", "诊所")

# --- people -------------------------------------------------------------------------------

# The commonest surnames in Guangdong, with rough relative frequencies.
SURNAMES: tuple[str, ...] = tuple(
    "陈李黄张梁林刘吴罗何郑杨谢郭邓冯曾周蔡许叶苏朱卢钟潘赖彭丘范江余方温庄"
    "古莫徐胡邱廖沈欧姚戴严谭麦孔柯龚洪袁"
)
# Zipf-like frequencies: 陈 is about twelve times as common as the fortieth surname.
SURNAME_WEIGHTS = 1.0 / np.arange(1, len(SURNAMES) + 1, dtype=np.float64) ** 0.9
GIVEN_CHARS: tuple[str, ...] = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华慧巧美兰霞平刚桂玲建文辉国荣健"
    "志红金玉波婷燕宇浩俊峰斌鹏飞雪琳晓欣嘉怡子豪振家宏展锦添坤财发智淑珍凤"
    "妹娣彩銮雄永耀基裕炳权汉德伦"
)

# --- spelling habits --------------------------------------------------------------------------
#
# The distribution system spells names one way (``10kV龙华Ⅱ线``, ``110kV龙华站``, ``龙华村1号配变``,
# ``X厂专变``). Marketing clerks spell them in every class of the input contract (sources.md,
# "How names are spelled in real exports"); each class below is drawn independently, at the
# stated rates (percent of marketing names of the family that can show it), so that a name
# often combines several (``１０ＫＶ 龙华（２）线路``). The tables are written from the contract,
# not from what the normaliser accepts: reconciliation must meet them, not the other way round.

Table = tuple[tuple[str, int], ...]
"""A spelling class: its forms with relative frequencies (percent)."""

WIDTH: Table = (("half", 96), ("full", 4))
"""width and case: 4 % typed in full-width mode (``１０ｋＶ``, ``＃``, ``（``, ideographic
space)."""
VOLTAGE: Table = (("", 50), ("{kv}kV", 15), ("{kv}KV", 14), ("{kv}kv", 8), ("{kv}Kv", 3),
                  ("{kv}千伏", 10))
"""voltage prefix of feeder and station names: none in half, ``10kV``/``10KV``/``10kv``/``10Kv``
/``10千伏`` otherwise (the feeder's or station's own voltage)."""
FEEDER_ORDINAL: Table = (("roman", 28), ("latin", 8), ("latin_lower", 2), ("arabic", 18),
                         ("hao", 12), ("hash", 10), ("hash_fw", 4), ("hash_after", 2),
                         ("chinese", 8), ("paren", 5), ("paren_fw", 3))
"""ordinal of a feeder (``Ⅲ``, ``III``, ``iii``, ``3``, ``3号``, ``#3``, ``＃3``, ``3#``, ``三``,
``(3)``, ``（3）``)."""
AREA_ORDINAL: Table = (("hash", 22), ("hash_fw", 5), ("hash_after", 14), ("hao", 22),
                       ("arabic", 8), ("chinese", 5), ("chinese_hao", 4), ("roman", 5),
                       ("latin", 3), ("paren", 8), ("paren_fw", 4))
"""ordinal of a public 台区 (``#3``, ``＃3``, ``3#``, ``3号``, ``3``, ``三``, ``三号``, ``Ⅲ``,
``III``, ``(3)``, ``（3）``)."""
ORDINAL_PLACE: Table = (("before", 85), ("after", 15))
"""the ordinal before the kind word (``城东3号线``) or after it (``城东线3号``,
``竹云社区公变#2``)."""
FEEDER_KIND: Table = (("线", 65), ("线路", 20), ("回", 10), ("回线", 5))
STATION_KIND: Table = (("变电站", 35), ("站", 30), ("变", 20), ("变电所", 15))
PUBLIC_AREA_KIND: Table = (("台区", 35), ("公变", 20), ("公变台区", 18), ("配变", 10),
                           ("公用变压器", 10), ("配变台区", 4), ("台区公变", 3))
DEDICATED_AREA_KIND: Table = (("专变台区", 35), ("专变", 25), ("台区", 15), ("专用变压器", 12),
                              ("(专变)", 8), ("（专变）", 5))
"""kind words, alone or stacked; a dedicated 台区 may carry its kind as a bracketed remark."""
SPACES: Table = (("none", 90), ("outer", 4), ("inner", 6))
"""spaces: leading and/or trailing, or one inner space between two parts (``竹云社区 2号公变``)."""
REMARK: Table = (("", 96), ("(公用)", 1), ("（备用）", 1), ("(改造)", 1), ("【新】", 1))
"""a bracketed remark after the name."""

SPELLING_CLASSES: dict[str, tuple[Table, ...]] = {
    "width and case": (WIDTH, VOLTAGE),
    "voltage prefix": (VOLTAGE,),
    "ordinal": (FEEDER_ORDINAL, AREA_ORDINAL, ORDINAL_PLACE),
    "kind words": (FEEDER_KIND, STATION_KIND, PUBLIC_AREA_KIND, DEDICATED_AREA_KIND),
    "spaces and brackets": (SPACES, REMARK),
}
"""The classes of sources.md and the tables that draw them."""

ROMAN = ("", "Ⅰ", "Ⅱ", "Ⅲ", "Ⅳ", "Ⅴ", "Ⅵ", "Ⅶ", "Ⅷ", "Ⅸ", "Ⅹ", "Ⅺ", "Ⅻ")
_CHINESE_DIGITS = "一二三四五六七八九"
_FULLWIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F)} | {0x20: 0x3000}
_MASK = (1 << 64) - 1


class _Dice:
    """Successive weighted picks decoded from one variant number: the same variant always
    gives the same spelling, and different picks of one name are independent."""

    def __init__(self, variant: int) -> None:
        z = (variant * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK  # splitmix64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        self._bits = z ^ (z >> 31)

    def index(self, n: int) -> int:
        """A uniform pick in ``range(n)``."""
        self._bits, at = divmod(self._bits, n)
        return at

    def pick(self, table: Table) -> str:
        """One form of ``table``, with its relative frequency."""
        at = self.index(sum(w for _, w in table))
        for form, weight in table:
            if at < weight:
                return form
            at -= weight
        raise AssertionError("unreachable")


def place_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` two-syllable place names, unique as long as ``n`` is below the vocabulary size."""
    total = len(_PLACE_FIRST) * len(_PLACE_SECOND)
    picks = rng.choice(total, size=n, replace=n > total)
    out = []
    for p in picks.tolist():
        first = _PLACE_FIRST[p // len(_PLACE_SECOND)]
        second = _PLACE_SECOND[p % len(_PLACE_SECOND)]
        out.append(first + second if first != second else first + "田")
    return out


def vocabulary_size() -> int:
    """How many distinct two-syllable place names :func:`place_names` can make."""
    return len(_PLACE_FIRST) * len(_PLACE_SECOND)


def to_fullwidth(text: str) -> str:
    """Every ASCII character full-width, as typed with a Chinese IME in full-width mode."""
    return text.translate(_FULLWIDTH)


def chinese_numeral(n: int) -> str:
    """``n`` (1–99) in Chinese numerals: 三, 十二, 二十."""
    tens, units = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _CHINESE_DIGITS[tens - 1] + "十")
    return head + (_CHINESE_DIGITS[units - 1] if units else "")


def latin_numeral(n: int) -> str:
    """``n`` (1–39) in Latin capitals: III, XIV."""
    units = ("", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX")
    return "X" * (n // 10) + units[n % 10]


def ordinal(n: int, form: str) -> str:
    """Ordinal ``n`` written in ``form`` of :data:`FEEDER_ORDINAL` / :data:`AREA_ORDINAL`
    (forms a number has no way to write, such as Roman above XXXIX, fall back to ``n号``)."""
    if (form in ("roman", "latin", "latin_lower") and n > 39) or (
            form.startswith("chinese") and n > 99):
        form = "hao"
    if form == "roman" and n >= len(ROMAN):
        form = "latin"
    written = {
        "roman": ROMAN[n] if n < len(ROMAN) else "", "latin": latin_numeral(n),
        "latin_lower": latin_numeral(n).lower(), "arabic": str(n), "hao": f"{n}号",
        "hash": f"#{n}", "hash_fw": f"＃{n}", "hash_after": f"{n}#", "chinese": chinese_numeral(n),
        "chinese_hao": f"{chinese_numeral(n)}号", "paren": f"({n})", "paren_fw": f"（{n}）",
    }
    return written[form]


def _spell(dice: _Dice, voltage: str, base: str, number: str, kind: str) -> str:
    """Assemble one marketing spelling from its parts with the class-wide habits (ordinal
    place, spaces, remark, width) drawn from ``dice``."""
    after = number and dice.pick(ORDINAL_PLACE) == "after"
    parts = [p for p in (voltage, base, *((kind, number) if after else (number, kind))) if p]
    spaces = dice.pick(SPACES)
    if spaces == "inner" and len(parts) > 1:
        parts[dice.index(len(parts) - 1)] += " "
    text = "".join(parts) + dice.pick(REMARK)
    if spaces == "outer":
        lead, trail = ((" ", ""), ("", " "), (" ", " "))[dice.index(3)]
        text = lead + text + trail
    return to_fullwidth(text) if dice.pick(WIDTH) == "full" else text


def station_name_distribution(base: str, voltage_kv: int) -> str:
    """Distribution-system station name, e.g. ``110kV龙华站``."""
    return f"{voltage_kv}kV{base}站"


def station_name_marketing(base: str, voltage_kv: int, variant: int) -> str:
    """One marketing spelling of a station: ``龙华变电站``, ``110KV龙华站``, ``１１０ｋＶ龙华变``
    …"""
    dice = _Dice(variant)
    voltage = dice.pick(VOLTAGE).format(kv=voltage_kv)
    return _spell(dice, voltage, base, "", dice.pick(STATION_KIND))


def feeder_name_distribution(base: str, numeral: int) -> str:
    """Distribution-system feeder name, e.g. ``10kV龙华线`` or ``10kV龙华Ⅱ线``."""
    return f"10kV{base}{ROMAN[numeral]}线"


def feeder_name_marketing(base: str, numeral: int, variant: int) -> str:
    """One marketing spelling of a feeder: ``龙华2号线``, ``10KV龙华#2线路``, ``龙华线(二)``…"""
    dice = _Dice(variant)
    voltage = dice.pick(VOLTAGE).format(kv=10)
    number = ordinal(numeral, dice.pick(FEEDER_ORDINAL)) if numeral else ""
    return _spell(dice, voltage, base, number, dice.pick(FEEDER_KIND))


def transformer_name_distribution(stem: str, number: int, dedicated: bool, variant: int) -> str:
    """Distribution-system transformer name: ``龙华村1号配变``, ``龙华村1号公变``, ``X厂专变``."""
    if dedicated:
        return f"{stem}专变"
    return f"{stem}{number}号配变" if variant % 3 else f"{stem}{number}号公变"


def area_name_marketing(stem: str, number: int, dedicated: bool, variant: int) -> str:
    """Marketing 台区 name of a transformer: ``龙华村#1台区``, ``龙华村 1#公变台区``,
    ``X厂(专变)``…"""
    dice = _Dice(variant)
    if dedicated:
        return _spell(dice, "", stem, "", dice.pick(DEDICATED_AREA_KIND))
    return _spell(dice, "", stem, ordinal(number, dice.pick(AREA_ORDINAL)),
                  dice.pick(PUBLIC_AREA_KIND))
