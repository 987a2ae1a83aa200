"""Steward decisions: a data steward's ruling on a link, which overrides every method.

A decisions file is a CSV (UTF-8 or GBK) with the columns ``entity, link, decision`` and an
optional ``note``: ``entity`` is the lower entity's id (customer, area, transformer or feeder),
``link`` the link kind (``customer_transformer``, ``area_transformer``, ``transformer_feeder``,
``feeder_station``, or the short forms ``customer``, ``area``, ``transformer``, ``feeder``) and
``decision`` the id to link to, or ``none`` to keep the entity unlinked. Decisions are stored in
the database (:mod:`gridtopo.db.decisions`), so they survive re-runs: a later file updates them,
it does not replace them.

>>> import io
>>> read_decisions(io.BytesIO(b"entity,link,decision\\nTQ1,area,PB-7\\n"), "d.csv").row(0)
('area_transformer', 'TQ1', 'PB-7', None)
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import polars as pl

from gridtopo.errors import InputError
from gridtopo.reconcile.kinds import LINK_KINDS

SHORT_KINDS = {kind.split("_")[0]: kind for kind in LINK_KINDS}
REQUIRED = ("entity", "link", "decision")


def _decode(raw: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{name}: not UTF-8 or GBK text")


def read_decisions(source: Path | IO[bytes], name: str | None = None) -> pl.DataFrame:
    """Read a decisions CSV into ``link_kind, entity_id, decision, note``; errors name the row."""
    label = name or str(source)
    try:
        raw = source.read_bytes() if isinstance(source, Path) else source.read()
    except OSError as err:
        raise InputError(f"{label}: cannot read steward decisions: {err.strerror}") from err
    try:
        frame = pl.read_csv(_decode(raw, label).encode(), infer_schema=False)
    except pl.exceptions.PolarsError as err:
        raise InputError(f"{label}: not a CSV file: {err}") from err
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(f"{label}: missing column(s) {', '.join(missing)}; expected "
                         "entity, link, decision[, note]")
    if "note" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("note"))
    frame = frame.select(
        pl.col("link").str.strip_chars().str.to_lowercase()
        .replace(SHORT_KINDS).alias("link_kind"),
        pl.col("entity").str.strip_chars().alias("entity_id"),
        pl.col("decision").str.strip_chars().alias("decision"),
        pl.col("note"),
    ).with_row_index("line", offset=2)
    bad = frame.filter(
        ~pl.col("link_kind").is_in(LINK_KINDS) | pl.col("entity_id").is_null()
        | pl.col("decision").is_null()
    )
    if bad.height:
        line, kind, entity, decision = bad.select("line", "link_kind", "entity_id",
                                                  "decision").row(0)
        problem = (f"unknown link {kind!r} (use one of {', '.join(LINK_KINDS)})"
                   if kind not in LINK_KINDS else f"blank entity or decision ({entity!r}, "
                   f"{decision!r})")
        raise InputError(f"{label}: line {line}: {problem}")
    duplicated = frame.filter(pl.struct("link_kind", "entity_id").is_duplicated())
    if duplicated.height:
        line, kind, entity = duplicated.select("line", "link_kind", "entity_id").row(-1)
        raise InputError(f"{label}: line {line}: a second decision for {kind} {entity}")
    return frame.drop("line")
