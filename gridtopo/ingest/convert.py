"""Convert a file's text rows into a canonical frame, recording every value that does not fit.

Each field's source column becomes its canonical dtype (see :mod:`gridtopo.ingest.tables`):

* ids and text: stripped, blank → null; never parsed, so ``0300123456789`` stays as it is; a
  column of few distinct values (such as 台区 codes) keeps each text once
  (:func:`shared_text`) unless the field is ``repeated`` (held as Categorical anyway);
* numbers: plain decimals at full columnar speed; the rest (``1,234.5``, full-width digits,
  a trailing unit such as ``400kVA`` or ``1.2km``) is parsed once per distinct value;
* date-times: ``YYYY-MM-DD HH:MM:SS``, then the other accepted layouts (``YYYY-MM-DD``,
  ``YYYY/MM/DD HH:MM``, ``YYYYMMDD``, ISO ``T``, fractions of seconds, ``YYYY年MM月DD日``);
* yes/no values and enums: mapped once per distinct value through the built-in spellings plus
  the profile's ``values``; a blank enum takes the field's default (``active``,
  ``in_service``); an unknown spelling is kept so the contract reports it;
* lon/lat: numbers converted from the file's coordinate system to WGS 84; a point with only
  one of the two is incomplete;
* WKT: must parse (shapely, vectorised) as a LineString; re-written in canonical form (and
  converted to WGS 84) when it is not already ``LINESTRING (...)`` in WGS 84.

The failures become *problems*: ``(_row, field, rule, detail, rank)`` rows that
:mod:`gridtopo.ingest.quarantine` turns into quarantined rows. Range, domain and required
rules are not checked here but by the contracts (:mod:`gridtopo.ingest.contracts`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl
import shapely

from gridtopo.ingest.crs import geometries_to_wgs84, is_wgs84, to_wgs84
from gridtopo.ingest.headers import HeaderMap
from gridtopo.ingest.tables import Field, Table, fold
from gridtopo.ingest.textrows import FIELDS, LINE, RawTable, detached

ROW = "_row"
"""Column of a row's index in its file's :class:`RawTable` frame."""

PROBLEM_SCHEMA: Mapping[str, pl.DataType] = {
    ROW: pl.Int64(), "field": pl.Utf8(), "rule": pl.Utf8(), "detail": pl.Utf8(),
    "rank": pl.Int32(),
}
"""A problem: the row, the canonical field (null for the whole row), a rule name, the
sentence after ``<header> (<field>) '<value>'``, and a rank (lower = reported first)."""

RANK_FIELD_COUNT = 0
RANK_PARSE = 100
RANK_COORDINATES = 200
RANK_CONTRACT = 300
RANK_DUPLICATE = 500

DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y%m%d",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y%m%d%H%M%S",
    "%Y.%m.%d",
    "%Y年%m月%d日",
    "%Y年%m月%d日 %H:%M:%S",
)
"""Accepted date-time layouts, most common first (each one tried only on what is left)."""

_NUMBER = re.compile(
    r"(?P<num>[+-]?(?:[\d,]+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>[^\d\s]*)"
)
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?(?:[eE][+-]?\d+)?")
_CANONICAL_WKT = r"^LINESTRING \("
YES_NO_HINT = "true/false, 1/0, 是/否, 常开/常闭"


def empty_problems() -> pl.DataFrame:
    """A problem frame with no rows."""
    return pl.DataFrame(schema=dict(PROBLEM_SCHEMA))


def problems_at(mask: pl.Series, field: str | None, rule: str, detail: str,
                rank: int) -> pl.DataFrame:
    """One problem for every row where ``mask`` is true."""
    rows = mask.arg_true().cast(pl.Int64)
    return pl.DataFrame({ROW: rows}).with_columns(
        pl.lit(field, pl.Utf8).alias("field"), pl.lit(rule).alias("rule"),
        pl.lit(detail).alias("detail"), pl.lit(rank, pl.Int32).alias("rank"),
    )


def normalise_text(text: str) -> str:
    """NFKC (full-width → half-width) with surrounding whitespace removed."""
    return unicodedata.normalize("NFKC", text).strip()


def clean_text(s: pl.Series) -> pl.Series:
    """Strip surrounding whitespace (ASCII and full-width spaces, tabs, line breaks) and make
    blanks null. The column is only rewritten when some value needs it (two anchored scans
    first), so a clean column is not copied; either way each value's result depends on that
    value alone, so a file read in chunks gives what it gives read whole."""
    if s.str.contains(r"^\s").any() or s.str.contains(r"\s$").any():
        s = s.str.strip_chars()
    return s.replace("", None) if (s == "").any() else s


SHARED_SAMPLE = 10_000
"""Rows of a text column looked at to decide whether :func:`shared_text` is worth it."""
INLINE_BYTES = 12
"""Polars keeps a text this long or shorter inside its 16-byte view, with no buffer space."""


def shared_text(s: pl.Series) -> pl.Series:
    """``s`` with the same values, each distinct text stored once, when a sample of it shows
    few distinct values that are not short enough to live in their views.

    Polars stores every longer text of a column in buffers, repeats included: at 14 million
    customers the 台区 codes alone would take 0.2 GB for a few hundred thousand distinct
    texts. Gathering from the compacted distinct values gives views into one small buffer
    instead; the dtype and every value are unchanged.
    """
    sample = s.head(SHARED_SAMPLE).drop_nulls()
    if (sample.n_unique() * 4 > sample.len()
            or not (sample.str.len_bytes() > INLINE_BYTES).any()):
        return s
    distinct = detached(s.drop_nulls().unique().to_frame()).to_series()
    codes = s.replace_strict(distinct, pl.int_range(distinct.len(), dtype=pl.UInt32,
                                                     eager=True), default=None)
    return distinct.gather(codes).alias(s.name)


def _fix_up(s: pl.Series, values: pl.Series, bad: pl.Series,
            parse: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """Re-parse the values where ``bad``: once per distinct text, NFKC-normalised, with
    ``parse`` (vectorised over the distinct texts); scatter what succeeds into ``values``."""
    rows = bad.arg_true()
    texts = s.gather(rows)
    distinct = texts.unique()
    normalised = pl.Series([normalise_text(t) for t in distinct.to_list()], dtype=pl.Utf8)
    parsed = parse(normalised)
    fixed = texts.replace_strict(distinct, parsed, return_dtype=values.dtype)
    return values.scatter(rows, fixed)


def _number_text(text: str, units: Mapping[str, float]) -> float | None:
    """A number written with thousands separators and/or a trailing unit, or None.

    >>> _number_text("1,234.5", {}), _number_text("400kVA", {"kva": 1.0}), _number_text("4x", {})
    (1234.5, 400.0, None)
    """
    m = _NUMBER.fullmatch(text)
    if m is None:
        return None
    number, unit = m["num"], fold(m["unit"])
    if "," in number and not _THOUSANDS.fullmatch(number):
        return None
    factor = units.get(unit) if unit else 1.0
    if factor is None:
        return None
    value = float(number.replace(",", "")) * factor
    return value if math.isfinite(value) else None


def to_number(s: pl.Series, f: Field) -> tuple[pl.Series, pl.Series]:
    """(Float64 values, rows that are not numbers)."""
    values = s.cast(pl.Float64, strict=False)
    values = values.fill_nan(None).replace([float("inf"), float("-inf")], None)

    def bad_rows(v: pl.Series) -> pl.Series:
        return v.is_null() & s.is_not_null()

    bad = bad_rows(values)
    if bad.any():
        values = _fix_up(s, values, bad, lambda texts: pl.Series(
            [_number_text(t, f.units) for t in texts.to_list()], dtype=pl.Float64))
        bad = bad_rows(values)
    return values, bad


def _datetimes(texts: pl.Series) -> pl.Series:
    values = texts.str.to_datetime(DATETIME_FORMATS[0], strict=False, time_unit="us")
    for fmt in DATETIME_FORMATS[1:]:
        left = values.is_null() & texts.is_not_null()
        if not left.any():
            break
        rows = left.arg_true()
        parsed = texts.gather(rows).str.to_datetime(fmt, strict=False, time_unit="us")
        values = values.scatter(rows, parsed)
    return values


def to_datetime(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(naive Datetime(us) values, rows that are not date-times)."""
    values = _datetimes(s)
    bad = values.is_null() & s.is_not_null()
    if bad.any():
        values = _fix_up(s, values, bad, _datetimes)
        bad = values.is_null() & s.is_not_null()
    return values, bad


def _map_distinct(s: pl.Series, mapping: Mapping[str, str | bool], dtype: pl.DataType,
                  keep_unknown: bool) -> pl.Series:
    """Map every distinct value through ``mapping`` (keys folded); blank ones become null,
    unknown ones stay as they are, stripped (``keep_unknown``), or become null. A text column
    already in canonical spelling is returned as it is (not copied)."""
    distinct = s.drop_nulls().unique().to_list()
    targets = [mapping.get(key, v.strip() if keep_unknown else None) if (key := fold(v)) else None
               for v in distinct]
    if dtype == pl.Utf8 and targets == distinct:
        return s
    return s.replace_strict(distinct, pl.Series(targets, dtype=dtype), default=None,
                            return_dtype=dtype)


def to_boolean(s: pl.Series, mapping: Mapping[str, str | bool]) -> tuple[pl.Series, pl.Series]:
    """(Boolean values, rows that are not a yes/no spelling)."""
    values = _map_distinct(s, mapping, pl.Boolean(), keep_unknown=False)
    return values, values.is_null() & s.is_not_null()


def to_enum(s: pl.Series, f: Field, mapping: Mapping[str, str | bool]) -> pl.Series:
    """Canonical enum values; unknown spellings kept (the contract rejects them), blank →
    the field's default."""
    values = _map_distinct(s, mapping, pl.Utf8(), keep_unknown=True)
    return values.fill_null(f.default) if f.default is not None else values


def to_wkt(s: pl.Series, crs: str | None) -> tuple[pl.Series, pl.Series]:
    """(WKT LineStrings in WGS 84, rows whose text is not a LineString)."""
    text = clean_text(s)
    geoms = shapely.from_wkt(text.to_numpy(), on_invalid="ignore")
    ok = (shapely.get_type_id(geoms) == 1) & ~shapely.is_empty(geoms)
    bad = pl.Series(~ok) & text.is_not_null()
    rewrite = pl.Series(ok)
    if is_wgs84(crs):
        rewrite &= ~text.str.contains(_CANONICAL_WKT).fill_null(False)
    if rewrite.any():
        rows = rewrite.arg_true().to_numpy()
        converted = geometries_to_wgs84(geoms[rows], crs)
        wkt = shapely.to_wkt(converted, rounding_precision=-1, output_dimension=2)
        text = text.scatter(rows, pl.Series(wkt, dtype=pl.Utf8))
    return text.set(bad, None), bad


@dataclass(frozen=True)
class Converted:
    """A file's rows in canonical form (every row, with :data:`ROW` and ``_line``) and the
    problems found converting them."""

    frame: pl.DataFrame
    problems: pl.DataFrame


def _field_count_problems(raw: RawTable) -> pl.DataFrame:
    counts = raw.frame[FIELDS]
    rows = counts.is_not_null().arg_true().cast(pl.Int64)
    width = len(raw.headers)
    return pl.DataFrame({
        ROW: rows,
        "field": pl.repeat(None, rows.len(), dtype=pl.Utf8, eager=True),
        "rule": pl.repeat("field_count", rows.len(), dtype=pl.Utf8, eager=True),
        "detail": "has " + counts.gather(rows).cast(pl.Utf8)
        + f" fields but the header has {width}",
        "rank": pl.repeat(RANK_FIELD_COUNT, rows.len(), dtype=pl.Int32, eager=True),
    }, schema=dict(PROBLEM_SCHEMA))


def _coordinates(lon: pl.Series, lat: pl.Series, blank_lon: pl.Series, blank_lat: pl.Series,
                 crs: str | None) -> tuple[pl.Series, pl.Series, pl.DataFrame]:
    """Convert lon/lat to WGS 84; problems for a point that gives only one of the two."""
    found = [
        problems_at(~blank_lon & blank_lat, "lon", "incomplete_coordinates",
                    "has no latitude (lat) with it", RANK_COORDINATES),
        problems_at(~blank_lat & blank_lon, "lat", "incomplete_coordinates",
                    "has no longitude (lon) with it", RANK_COORDINATES),
    ]
    if not is_wgs84(crs):
        both = (lon.is_not_null() & lat.is_not_null()).to_numpy()
        x = lon.to_numpy().astype(np.float64)
        y = lat.to_numpy().astype(np.float64)
        x[both], y[both] = to_wgs84(x[both], y[both], crs)
        # a point outside a projection's domain converts to NaN/inf: the range check fails it
        x[both & ~np.isfinite(x)] = np.inf
        y[both & ~np.isfinite(y)] = np.inf
        lon = pl.Series("lon", x).set(lon.is_null(), None)
        lat = pl.Series("lat", y).set(lat.is_null(), None)
    return lon, lat, pl.concat(found)


def convert(raw: RawTable, table: Table, headers: HeaderMap, crs: str | None = None,
            values: Mapping[str, Mapping[str, str | bool]] | None = None) -> Converted:
    """Convert ``raw`` (a file of ``table`` whose columns ``headers`` maps) to canonical
    columns; ``crs`` is the coordinate system of its lon/lat or WKT, ``values`` the profile's
    value maps."""
    n = raw.frame.height
    columns: dict[str, pl.Series] = {}
    found = [_field_count_problems(raw)]
    for f in table.fields:
        source = headers.header_of(f.name)
        if source is None:
            default = f.default if f.kind == "enum" else None
            columns[f.name] = pl.repeat(default, n, dtype=f.dtype, eager=True).alias(f.name)
            continue
        s = raw.frame[source]
        bad: pl.Series | None = None
        if f.kind in ("id", "text"):
            value = clean_text(s)
            if not f.repeated:  # repeated text is kept as Categorical: each text once already
                value = shared_text(value)
        elif f.kind == "number":
            value, bad = to_number(s, f)
            rule, detail = "not_a_number", "is not a number"
        elif f.kind == "datetime":
            value, bad = to_datetime(s)
            rule, detail = "not_a_date", "is not a date-time (e.g. 2024-12-31 23:59:59)"
        elif f.kind == "boolean":
            value, bad = to_boolean(s, f.value_map((values or {}).get(f.name)))
            rule, detail = "not_a_boolean", f"is not a yes/no value ({YES_NO_HINT})"
        elif f.kind == "enum":
            value = to_enum(s, f, f.value_map((values or {}).get(f.name)))
        else:
            value, bad = to_wkt(s, crs)
            rule, detail = "bad_geometry", "is not a WKT LineString"
        if bad is not None and bad.any():
            found.append(problems_at(bad, f.name, rule, detail, RANK_PARSE))
        columns[f.name] = value.alias(f.name)
    if "lon" in columns:
        blank = {
            name: raw.frame[source].is_null() if (source := headers.header_of(name))
            else pl.repeat(True, n, eager=True)
            for name in ("lon", "lat")
        }
        columns["lon"], columns["lat"], coordinate_problems = _coordinates(
            columns["lon"], columns["lat"], blank["lon"], blank["lat"], crs)
        found.append(coordinate_problems)
    frame = pl.DataFrame([*columns.values(), pl.int_range(n, dtype=pl.Int64, eager=True)
                          .alias(ROW), raw.frame[LINE]])
    return Converted(frame, pl.concat(found))
