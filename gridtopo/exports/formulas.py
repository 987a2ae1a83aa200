"""Keep spreadsheets from running exported text as formulas (CSV injection).

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, WPS and LibreOffice: a customer named ``=HYPERLINK("http://…")`` would become a link,
``@SUM(A1)`` a calculation, and worse (DDE) on older versions. As OWASP recommends, the CSV
export and the GeoJSON string properties (which GIS tools turn into attribute tables and
spreadsheets) prefix such a value with a single quote ``'``, which spreadsheets read as "text
follows" and do not show. Only text columns change: numbers (a negative longitude), booleans
and date-times stay as they are, and normal data (ids, names, WKT) never starts with those
characters, so a bundle re-ingests to the same rows.

>>> neutralise_formulas(pl.DataFrame({"name": ["=1+2", "张三", None], "kv": [-10.0, 1, 2]})).rows()
[("'=1+2", -10.0), ('张三', 1.0), (None, 2.0)]
"""

from __future__ import annotations

import polars as pl

FORMULA_START = r"^[=+\-@\t\r]"
"""A text that spreadsheets take for a formula: what it begins with."""
QUOTE = "'"
"""What goes before such a text so that it stays text."""


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with each text value that begins like a formula prefixed with ``'``."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(FORMULA_START)).then(pl.lit(QUOTE) + pl.col(c))
        .otherwise(pl.col(c)).alias(c) for c in text)
