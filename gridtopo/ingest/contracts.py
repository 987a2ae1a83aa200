"""The data contracts: one pandera (polars) schema per canonical table, built from
:mod:`gridtopo.ingest.tables`, and the quarantine problems of the rows that break them.

A contract declares each column's dtype, which fields are required (not null), the unique
key, enum domains, numeric ranges (``contract_kva ≥ 0``, ``capacity_kva > 0``, lon/lat in
degrees…) and the longest text the model stores. Ingest validates each file's converted rows
with ``lazy=True`` and turns pandera's failure cases (which carry the row index) into problems;
uniqueness is left out of that row pass because :mod:`gridtopo.ingest.dedupe` resolves
repeated keys (merge or conflict) — after which every loadable frame satisfies the full
contract, uniqueness included, once its ``repeated`` fields (stored as ``Categorical``) are
read as text. The limits of the run (:mod:`gridtopo.ingest.limits`) add two checks of the
same kind, :func:`limit_problems`: text longer than ``field_chars`` (``too_long``) and points
outside the service ``region`` (``outside_region``) — both field-level, like every value rule.

>>> from gridtopo.ingest.sources import read_sources
>>> stations = read_sources(sources).tables["stations"].frame
>>> contract("stations").validate(stations).height
1
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from gridtopo.ingest.convert import (
    PROBLEM_SCHEMA,
    RANK_CONTRACT,
    ROW,
    empty_problems,
    problems_at,
)
from gridtopo.ingest.limits import Limits
from gridtopo.ingest.tables import TABLES, Field, Table

RANK_LIMITS = RANK_CONTRACT + 150
"""Rank of :func:`limit_problems`: after a blank required field, with the value rules."""


@dataclass(frozen=True)
class Rule:
    """A pandera check with the quarantine rule it stands for and the sentence that explains
    a failure (after ``<header> (<field>) '<value>'``)."""

    check: pa.Check
    rule: str
    detail: str


def _bound(value: float) -> str:
    return f"{value:g}"


def field_rules(f: Field) -> list[Rule]:
    """The checks of one field, in the order they are reported."""
    rules: list[Rule] = []
    if f.domain:
        rules.append(Rule(pa.Check.isin(list(f.domain)), "not_in_domain",
                          f"is not one of {', '.join(f.domain)}"))
    if f.minimum is not None and f.maximum is not None:
        rules.append(Rule(
            pa.Check.in_range(f.minimum, f.maximum, include_min=f.minimum_inclusive),
            "out_of_range", f"is not between {_bound(f.minimum)} and {_bound(f.maximum)}"))
    elif f.minimum is not None:
        check = pa.Check.ge(f.minimum) if f.minimum_inclusive else pa.Check.gt(f.minimum)
        sign = "≥" if f.minimum_inclusive else ">"
        rules.append(Rule(check, "out_of_range", f"must be {sign} {_bound(f.minimum)}"))
    if f.plausible_maximum is not None:
        rules.append(Rule(pa.Check.le(f.plausible_maximum), "implausible",
                          f"is implausibly large (more than {f.plausible_maximum:,.0f})"))
    if f.max_length is not None:
        rules.append(Rule(pa.Check.str_length(max_value=f.max_length), "too_long",
                          f"is longer than {f.max_length} characters"))
    return rules


@cache
def contract(table: str, unique: bool = True) -> pa.DataFrameSchema:
    """The pandera schema of canonical table ``table`` (a loadable frame: canonical columns,
    ``_file`` and ``_line``); ``unique=False`` leaves out the key's uniqueness."""
    spec = TABLES[table]
    columns = {
        f.name: pa.Column(
            f.dtype,
            checks=[r.check for r in field_rules(f)],
            nullable=not f.required,
            unique=f.unique and unique,
        )
        for f in spec.fields
    }
    columns["_file"] = pa.Column(pl.Int32, nullable=False)
    columns["_line"] = pa.Column(pl.Int64, nullable=False)
    return pa.DataFrameSchema(columns, name=table, strict=True, ordered=True)


def contract_problems(frame: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Problems of the rows of ``frame`` (canonical columns, :data:`ROW`, ``_line``) that
    break the contract of ``table`` (uniqueness aside); one per failed check."""
    schema = contract(table.name, unique=False)
    rows = pl.DataFrame([*(frame[c] for c in table.columns),
                         pl.repeat(0, frame.height, dtype=pl.Int32, eager=True).alias("_file"),
                         frame["_line"]])
    try:
        schema.validate(rows, lazy=True)
    except SchemaErrors as err:
        cases = err.failure_cases
    else:
        return empty_problems()
    if cases["index"].null_count():
        raise RuntimeError(f"{table.name}: canonical frame breaks its contract as a whole:\n"
                           f"{cases.filter(pl.col('index').is_null())}")
    lookup: list[dict[str, object]] = []
    for order, f in enumerate(table.fields):
        lookup.append({"column": f.name, "check_number": None, "rule": "missing_required",
                       "detail": "is blank but required", "rank": RANK_CONTRACT + order})
        lookup.extend({"column": f.name, "check_number": number, "rule": r.rule,
                       "detail": r.detail, "rank": RANK_CONTRACT + 100 + order}
                      for number, r in enumerate(field_rules(f)))
    rules = pl.DataFrame(lookup, schema={"column": pl.Utf8, "check_number": pl.Int32,
                                         "rule": pl.Utf8, "detail": pl.Utf8,
                                         "rank": pl.Int32})
    cases = cases.with_columns(
        pl.when(pl.col("check") == "not_nullable").then(None)
        .otherwise(pl.col("check_number")).cast(pl.Int32).alias("check_number")
    )
    found = cases.join(rules, on=["column", "check_number"], how="left", nulls_equal=True)
    if found["rule"].null_count():
        raise RuntimeError(f"{table.name}: unexpected contract failures:\n"
                           f"{found.filter(pl.col('rule').is_null())}")
    return found.select(
        frame[ROW].gather(found["index"].cast(pl.Int64)).alias(ROW),
        pl.col("column").alias("field"), "rule", "detail", "rank",
    ).cast(dict(PROBLEM_SCHEMA))


def limit_problems(frame: pl.DataFrame, table: Table, limits: Limits) -> pl.DataFrame:
    """Problems of the rows of ``frame`` (as for :func:`contract_problems`) that break the
    run's ``limits``: a text field with no length of its own longer than
    ``limits.field_chars``, and a point outside ``limits.region`` (on both lon and lat)."""
    found = [empty_problems()]
    for f in table.fields:
        if f.kind == "text" and f.max_length is None and f.name in frame.columns:
            long = (frame[f.name].cast(pl.Utf8).str.len_chars() > limits.field_chars)
            found.append(problems_at(long.fill_null(False), f.name, "too_long",
                                     f"is longer than {limits.field_chars:,} characters (the "
                                     "field_chars limit)", RANK_LIMITS))
    if "lon" in table.columns and "lat" in frame.columns:
        x0, y0, x1, y1 = limits.region
        lon, lat = frame["lon"], frame["lat"]
        degrees = lon.is_between(-180, 180) & lat.is_between(-90, 90)  # else out_of_range
        outside = (degrees & ~(lon.is_between(x0, x1) & lat.is_between(y0, y1))).fill_null(False)
        detail = (f"puts the point outside the service region (lon {x0:g}–{x1:g}, lat "
                  f"{y0:g}–{y1:g})")
        found += [problems_at(outside, name, "outside_region", detail, RANK_LIMITS)
                  for name in ("lon", "lat")]
    problems = pl.concat(found)
    return problems.with_columns(frame[ROW].gather(problems[ROW]).cast(pl.Int64).alias(ROW))
