"""Normalised names, so that the two systems' spellings of one thing compare equal.

The marketing and distribution systems spell the same feeder ``10kV龙华Ⅰ线`` and ``龙华1线``,
the same station ``110kV龙华站`` and ``龙华变电站``, a transformer ``龙华村1号配变`` and its area
``龙华村#1台区``. Each normaliser is a polars expression (columnar, no Python loop per row) that
applies NFKC (full-width to half-width, ``Ⅰ`` to ``I``), lower-cases, drops voltage prefixes,
writes numerals as digits and strips the kind words (线, 站, 配变, 台区, …).

>>> import polars as pl
>>> df = pl.DataFrame({"a": ["10kV龙华Ⅱ线", "龙华2线", "10KV龙华II线", "１０ｋＶ龙华２线"]})
>>> df.select(feeder_key(pl.col("a")))["a"].to_list()
['龙华2', '龙华2', '龙华2', '龙华2']
>>> names = ["龙华村1号配变", "龙华村#1台区", "龙华村1#公变台区", "龙华村１号台区"]
>>> df = pl.DataFrame({"a": names})
>>> df.select(transformer_key(pl.col("a")))["a"].to_list()
['龙华村1', '龙华村1', '龙华村1', '龙华村1']
>>> df = pl.DataFrame({"a": ["110kV龙华站", "龙华变电站", "110KV龙华站", "龙华变"]})
>>> df.select(station_key(pl.col("a")))["a"].to_list()
['龙华', '龙华', '龙华', '龙华']
"""

from __future__ import annotations

import polars as pl

_VOLTAGE = r"\d+(?:\.\d+)?\s*kv"
_PUNCTUATION = r"[\s\-_·.,，。()（）\[\]【】/\\'\"]+"
_CHINESE_DIGITS = {"一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "六": "6",
                   "七": "7", "八": "8", "九": "9", "十": "10"}
_LATIN_NUMERALS = (("iv", "4"), ("iii", "3"), ("ii", "2"), ("i", "1"))


def _base(expr: pl.Expr) -> pl.Expr:
    """NFKC, lower case, no voltage prefix, no punctuation or spaces."""
    return (
        expr.cast(pl.Utf8)
        .str.normalize("NFKC")
        .str.to_lowercase()
        .str.replace_all(_VOLTAGE, "")
        .str.replace_all(_PUNCTUATION, "")
    )


def _numerals_before(expr: pl.Expr, marker: str) -> pl.Expr:
    """Write a Latin or Chinese numeral directly before ``marker`` as Arabic digits."""
    for latin, digit in _LATIN_NUMERALS:
        expr = expr.str.replace(f"(?:^|([^a-z])){latin}{marker}", f"${{1}}{digit}{marker}")
    for chinese, digit in _CHINESE_DIGITS.items():
        expr = expr.str.replace(f"{chinese}{marker}", f"{digit}{marker}", literal=True)
    return expr


def feeder_key(expr: pl.Expr) -> pl.Expr:
    """Comparable key of a feeder name: ``10kV龙华Ⅱ线`` → ``龙华2``."""
    return _numerals_before(_base(expr), "线").str.replace(r"(?:线路|线|回)$", "")


def station_key(expr: pl.Expr) -> pl.Expr:
    """Comparable key of a substation name: ``110kV龙华站`` → ``龙华``."""
    return _base(expr).str.replace(r"(?:变电站|变电所|站|变)$", "")


def transformer_key(expr: pl.Expr) -> pl.Expr:
    """Comparable key of a transformer or transformer-area name: ``龙华村#1台区`` → ``龙华村1``."""
    return (
        _numerals_before(_base(expr), "号")
        .str.replace(r"台区$", "")
        .str.replace(r"(?:公用变压器|专用变压器|变压器|公变|专变|配变)$", "")
        .str.replace_all(r"[#＃号]", "")
    )
