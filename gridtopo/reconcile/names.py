"""Normalised names, so that every spelling of one feeder, station or area compares equal.

The marketing and distribution systems — and different clerks within one — spell one
feeder ``10kV龙华Ⅱ线``, ``龙华2号线``, ``１０ＫＶ龙华＃２线`` or ``龙华线(2)``, one area
``竹云社区#2公变``, ``竹云社区2号台区`` or ``竹云社区 二号公变台区``. The spelling classes are
listed in the input contract (``sources.md``, "How names are spelled in real exports").
Instead of a chain of regex replacements, each name is parsed by one small grammar into its
parts::

    name    = base (ordinal [kind] | kind [ordinal] | ) {bracket}   (spaces anywhere between)
    voltage = digits ["." digits] ("kv" | "千伏")        10kV, 10KV, １０ｋＶ, 0.4kV, 110千伏
              (removed wherever it stands, before the rest is parsed)
    ordinal = ["#"] number ["号" | "#"]                  #3, ＃３, 3号, 3#, 3, 三, Ⅲ, III
    number  = arabic | chinese (一 … 九十九) | roman (I … XXXIX, not after a Latin letter)
    kind    = the family's kind suffix, stripped once:   线 / 线路 / 回 (回线);
              站 / 变 / 变电站 / 变电所;  台区 / 公变 / 专变 / 配变 / 公用变压器 / 专用变压器 /
              配电变压器 / 变压器, alone or stacked with 台区 (公变台区, 台区公变)
    bracket = "(" text ")"                               an ordinal ((3), （3）) or a remark

after NFKC (full-width to half-width, ``Ⅲ`` to ``III``) and lower-casing. The *key* of a name
is its base (spaces and punctuation removed) and its ordinal as an integer: ``龙华#2``. The
voltage, the kind word and bracketed remarks (``(专变)``, ``(备用)``) are not part of it. A
bracketed ordinal counts only when the name has no other ordinal. The shortest base that
leaves a valid ordinal and kind wins, so ``兴康13号`` is ``兴康#13`` and never ``兴康1#3``.

Two names are the same name exactly when their keys are equal (:func:`same_name`); a name
whose key is empty (blank, or only a kind word) is no name and equals nothing.

>>> parse_name("feeder", "１０ｋＶ 城东＃３线（备用）")
ParsedName(voltage='10kv', base='城东', ordinal=3, kind='线', brackets=('备用',))
>>> [name_key("feeder", n) for n in ("10kV城东#3线", "城东3号线", "城东三线", "城东Ⅲ线",
...                                  "城东(3)线", "城东线路III", "城东13号线")]
['城东#3', '城东#3', '城东#3', '城东#3', '城东#3', '城东#3', '城东#13']
>>> {name_key("transformer", n) for n in ("竹云社区#2公变", "竹云社区2号台区",
...                                       "竹云社区＃2公变台区", "竹云社区 2号公变")}
{'竹云社区#2'}
>>> import polars as pl
>>> df = pl.DataFrame({"a": ["110kV龙华站", "龙华变电站", "110KV 龙华变", None],
...                    "b": ["龙华站", "龙华变电所", "龙岗站", "龙华站"]})
>>> df.select(station_key(pl.col("a")).alias("key"),
...           same_name("station", pl.col("a"), pl.col("b")).alias("same"))
shape: (4, 2)
┌──────┬───────┐
│ key  ┆ same  │
│ ---  ┆ ---   │
│ str  ┆ bool  │
╞══════╪═══════╡
│ 龙华 ┆ true  │
│ 龙华 ┆ true  │
│ 龙华 ┆ false │
│ null ┆ null  │
└──────┴───────┘

The polars functions parse each *distinct* name once (names repeat across millions of
customers) and map the keys back onto the column, so they stay columnar; use them in
``select``/``with_columns``/``filter``, not inside a ``group_by`` aggregation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import polars as pl

NameKind = Literal["feeder", "station", "transformer"]
"""The name families: feeders, substations, and distribution transformers with their 台区."""

_TRANSFORMER_WORDS = "公用变压器|专用变压器|配电变压器|变压器|公变|专变|配变"
KIND_SUFFIXES: dict[NameKind, str] = {
    "feeder": "回?(?:线路|线)|回",
    "station": "变电站|变电所|站|变",
    "transformer": f"(?:{_TRANSFORMER_WORDS})(?:台区)?|台区(?:{_TRANSFORMER_WORDS})?",
}
"""Per family, the kind suffix (a regex over the NFKC, lower-cased name) stripped once."""

_DIGITS = "一二三四五六七八九"
_CHINESE = f"(?:[{_DIGITS[1:]}]?十[{_DIGITS}]?|[{_DIGITS}])"
_ROMAN = "(?<![a-z])(?=[ivx])x{0,3}(?:ix|iv|v?i{0,3})(?![a-z])"
_NUMBER = f"(?:[0-9]+|{_CHINESE}|{_ROMAN})"
_ORDINAL = f"#?\\s*{_NUMBER}\\s*[号#]?"
_VOLTAGE = re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+)?\s*(?:kv|千伏)")
_BRACKET = re.compile(r"\(([^()]*)\)")
_TO_PARENS = str.maketrans("【】〔〕[]{}", "()()()()")
_PUNCTUATION = re.compile(r"[-_·・.,，。、/\\'\"“”‘’:：;；~～]+")
_LEFTOVER = re.compile(r"[\s#()]+")
_GRAMMAR: dict[NameKind, re.Pattern[str]] = {
    kind: re.compile(
        rf"\s*(?P<base>.*?)\s*(?:(?P<ord1>{_ORDINAL})\s*(?P<kind1>{suffix})?"
        rf"|(?P<kind2>{suffix})\s*(?P<ord2>{_ORDINAL})?)?\s*"
    )
    for kind, suffix in KIND_SUFFIXES.items()
}
_ORDINAL_ONLY = re.compile(rf"\s*{_ORDINAL}\s*")
_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10}


@dataclass(frozen=True)
class ParsedName:
    """The parts of one name (normalised text; ``None`` where the name has no such part)."""

    voltage: str | None
    """The first voltage prefix found, e.g. ``10kv``, ``110千伏``."""
    base: str
    """What identifies the object within its family, without spaces or punctuation."""
    ordinal: int | None
    """The ordinal number written as ``#3``, ``3号``, ``三``, ``Ⅲ``, ``(3)`` …"""
    kind: str | None
    """The kind suffix that was stripped, e.g. ``线路``, ``公变台区``."""
    brackets: tuple[str, ...]
    """Every bracketed part, in order (an ordinal among them sets :attr:`ordinal`)."""

    @property
    def key(self) -> str | None:
        """``base#ordinal`` (or the base alone): equal keys mean the same name; ``None`` when
        there is neither a base nor an ordinal."""
        if self.ordinal is None:
            return self.base or None
        return f"{self.base}#{self.ordinal}"


def _number(text: str) -> int:
    """The value of an arabic, Chinese or Roman numeral as :data:`_NUMBER` matches it."""
    if text.isdigit():
        return int(text)
    if "十" in text:  # 十, 十二, 二十, 二十三
        tens, _, units = text.partition("十")
        return (_number(tens) if tens else 1) * 10 + (_number(units) if units else 0)
    if text in _DIGITS:
        return _DIGITS.index(text) + 1
    total = 0
    for i, ch in enumerate(text):
        value = _ROMAN_VALUES[ch]
        following = _ROMAN_VALUES[text[i + 1]] if i + 1 < len(text) else 0
        total += -value if value < following else value
    return total


def _ordinal(text: str | None) -> int | None:
    """The number of an :data:`_ORDINAL` match (``#3``, ``3号``, ``三``, ``iii`` …)."""
    if not text:
        return None
    return _number(re.sub(r"[#号\s]", "", text))


@lru_cache(maxsize=1 << 16)
def parse_name(kind: NameKind, name: str) -> ParsedName:
    """Parse ``name`` of the ``kind`` family by the grammar of the module docstring.

    >>> parse_name("transformer", "龙华村1#公变台区")
    ParsedName(voltage=None, base='龙华村', ordinal=1, kind='公变台区', brackets=())
    >>> parse_name("transformer", "石岗五金厂(专变)")
    ParsedName(voltage=None, base='石岗五金厂', ordinal=None, kind=None, brackets=('专变',))
    >>> parse_name("feeder", "三水线").key, parse_name("feeder", "兴康13号").key
    ('三水', '兴康#13')
    """
    text = unicodedata.normalize("NFKC", name).lower().translate(_TO_PARENS)
    brackets = tuple(part.strip() for part in _BRACKET.findall(text))
    text = _BRACKET.sub(" ", text)
    voltage = _VOLTAGE.search(text)
    text = _PUNCTUATION.sub(" ", _VOLTAGE.sub(" ", text))
    parts = _GRAMMAR[kind].fullmatch(text)
    assert parts is not None  # the base alone matches any text
    ordinal = _ordinal(parts["ord1"] or parts["ord2"])
    if ordinal is None:
        ordinal = next((_ordinal(b) for b in brackets if _ORDINAL_ONLY.fullmatch(b)), None)
    return ParsedName(
        voltage=re.sub(r"\s", "", voltage[0]) if voltage else None,
        base=_LEFTOVER.sub("", parts["base"]), ordinal=ordinal,
        kind=parts["kind1"] or parts["kind2"],
        brackets=brackets,
    )


def name_key(kind: NameKind, name: str | None) -> str | None:
    """The comparable key of one name (``None`` for no name): ``10kV龙华Ⅱ线`` → ``龙华#2``."""
    return None if name is None else parse_name(kind, name).key


def _keys(kind: NameKind, names: pl.Series) -> pl.Series:
    """Keys of a column of names, each distinct name parsed once."""
    names = names.cast(pl.Utf8).rename("name")
    distinct = names.drop_nulls().unique()
    keys = pl.DataFrame([distinct, pl.Series("key", [name_key(kind, n) for n in distinct],
                                             dtype=pl.Utf8)])
    return names.to_frame().join(keys, on="name", how="left", maintain_order="left")["key"]


def key_expr(kind: NameKind, expr: pl.Expr) -> pl.Expr:
    """The polars expression of the keys of the names in ``expr`` (see :func:`name_key`)."""
    return expr.map_batches(lambda names: _keys(kind, names), return_dtype=pl.Utf8)


def feeder_key(expr: pl.Expr) -> pl.Expr:
    """Comparable key of a feeder name: ``10kV龙华Ⅱ线`` → ``龙华#2``."""
    return key_expr("feeder", expr)


def station_key(expr: pl.Expr) -> pl.Expr:
    """Comparable key of a substation name: ``110kV龙华站`` → ``龙华``."""
    return key_expr("station", expr)


def transformer_key(expr: pl.Expr) -> pl.Expr:
    """Comparable key of a transformer or 台区 name: ``龙华村#1台区`` → ``龙华村#1``."""
    return key_expr("transformer", expr)


def same_name(kind: NameKind, a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """Whether ``a`` and ``b`` name the same ``kind`` of object: their keys are equal (null
    when either has no key). The one definition every comparison of names uses."""
    return key_expr(kind, a) == key_expr(kind, b)
