"""The catalogue of injectable export defects, their rates, and where each instance went.

Every kind has a *population* (the rows it can hit) and a rate; the number injected is
``round(rate × population)``. Within one population the kinds are mutually exclusive — a
customer is at most one of duplicate / orphan / misplaced / …, a transformer–area pair carries
at most one of the pair defects, a feeder at most one of island / loop — so the truth never has
to say which of two defects explains a row. ``stale_record`` spans customers, areas and
transformers: its count is taken over all three and split between them in proportion.

An instance that needs a second object (a *wrong* link needs another transformer, a
``name_mismatch`` another feeder) is skipped when the province has none; the manifest's defect
counts always report what was actually injected.

:class:`DefectLog` collects one row per injected instance for ``truth/defects.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from gridtopo.synthetic.sizing import Sizes, apportion
from gridtopo.synthetic.writer import CsvFile, FileRecord, blank_as_null

IntArray = npt.NDArray[np.int64]

CUSTOMERS = "customers"
AREAS = "transformer_areas"
TRANSFORMERS = "transformers"
EDGES = "edges"

FILES = {
    CUSTOMERS: "marketing/customers.csv",
    AREAS: "marketing/transformer_areas.csv",
    TRANSFORMERS: "distribution/transformers.csv",
    EDGES: "distribution/edges.csv",
}


@dataclass(frozen=True)
class DefectKind:
    """One kind of export defect.

    ``table`` is the table whose rows carry it (``|``-joined when several); ``population``
    is what its rate is a share of: ``customers`` (distinct accounts), ``pairs`` (transformer
    ↔ 台区 pairs, one per transformer), ``feeders`` or ``records`` (customers + areas +
    transformers).
    """

    name: str
    table: str
    description: str
    default_rate: float
    detected_by: str
    population: str

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables as a tuple."""
        return tuple(self.table.split("|"))


_KINDS = (
    DefectKind("area_missing_pms_id", AREAS,
               "台区 row with a blank PMS设备编码 (no cross-system id to its transformer).",
               0.02, "reconciliation links it through the transformer's marketing_area_code "
               "(recoverable) or by name", "pairs"),
    DefectKind("area_wrong_pms_id", AREAS,
               "台区 PMS设备编码 names another existing transformer, on the same feeder when "
               "there is one.", 0.005,
               "reconciliation: the two systems' ids disagree; the transformer's own "
               "marketing_area_code still points back at the true area (recoverable)", "pairs"),
    DefectKind("transformer_missing_area_code", TRANSFORMERS,
               "Transformer with a blank marketing_area_code.", 0.02,
               "reconciliation links it through the area's PMS设备编码 (recoverable)", "pairs"),
    DefectKind("transformer_wrong_area_code", TRANSFORMERS,
               "Transformer marketing_area_code names another 台区, on the same feeder when "
               "there is one.", 0.005,
               "reconciliation: id conflict; the area's PMS设备编码 still names the true "
               "transformer (recoverable)", "pairs"),
    DefectKind("area_orphan", AREAS,
               "台区 whose transformer is absent from transformers.csv, so its PMS设备编码 "
               "dangles and no name or coordinate identifies it.", 0.002,
               "reconciliation leaves the area and its customers unlinked (not recoverable); "
               "completeness audit", "pairs"),
    DefectKind("transformer_orphan_feeder", TRANSFORMERS,
               "Transformer whose feeder_id names no feeder.", 0.002,
               "ingest referential check; topology still places it through its node", "pairs"),
    DefectKind("transformer_bad_value", TRANSFORMERS,
               "Transformer with a negative capacity_kva or an unknown status.", 0.002,
               "ingest quarantines the field and loads the transformer without it, so its "
               "customers keep their chain; validity audit (field_unreadable)", "pairs"),
    DefectKind("transformer_gcj02", TRANSFORMERS,
               "Transformer lon/lat in GCJ-02 instead of WGS 84 (a few hundred metres off).",
               0.01, "accuracy audit: offset consistent with the GCJ-02 shift", "pairs"),
    DefectKind("retired_transformer_live_customers", TRANSFORMERS,
               "Transformer status retired although its 台区 still has active customers.",
               0.002, "consistency audit (status vs. live customers)", "pairs"),
    DefectKind("customer_orphan_area", CUSTOMERS,
               "Customer whose 台区编号 matches no 台区.", 0.002,
               "reconciliation leaves it unlinked (not recoverable by code); completeness audit",
               "customers"),
    DefectKind("customer_duplicate_exact", CUSTOMERS,
               "A customer row repeated byte for byte.", 0.001,
               "ingest de-duplicates identical rows", "customers"),
    DefectKind("customer_duplicate_conflict", CUSTOMERS,
               "A second row with the same 户号 and one differing value.", 0.0005,
               "ingest uniqueness check quarantines the conflicting row", "customers"),
    DefectKind("customer_missing_required", CUSTOMERS,
               "Blank 户名 or blank 台区编号.", 0.001,
               "ingest required-field check: a blank 台区编号 refuses the row; a blank 户名 is "
               "quarantined as a field and the customer kept with its chain (field_unreadable)",
               "customers"),
    DefectKind("customer_bad_value", CUSTOMERS,
               "Negative 合同容量, 相别 D, or an unparseable 更新时间.", 0.001,
               "ingest quarantines the field and loads the customer without it, so it keeps "
               "its chain; validity audit (field_unreadable)", "customers"),
    DefectKind("customer_gcj02", CUSTOMERS,
               "Customer 经度/纬度 in GCJ-02 instead of WGS 84.", 0.01,
               "accuracy audit: offset consistent with the GCJ-02 shift", "customers"),
    DefectKind("customer_misplaced", CUSTOMERS,
               "Customer coordinates 2–20 km away from its transformer.", 0.002,
               "accuracy audit: distance to the linked transformer", "customers"),
    DefectKind("name_mismatch", CUSTOMERS,
               "Customer 线路名称 names another feeder, of its station when it has one (a "
               "different base or ordinal, in any marketing spelling; not a spelling "
               "variant of its own feeder).", 0.005,
               "consistency audit customer_feeder_name_mismatch: marketing feeder name vs. "
               "the reconciled chain", "customers"),
    DefectKind("stale_record", f"{CUSTOMERS}|{AREAS}|{TRANSFORMERS}",
               "更新时间/updated_at three to seven years before the reference date.", 0.01,
               "timeliness audit", "records"),
    DefectKind("island", EDGES,
               "A conducting edge of a feeder is missing, cutting off a subtree with "
               "transformers.", 0.03,
               "topology audit: transformers not energized from any source", "feeders"),
    DefectKind("loop", EDGES,
               "An extra normally-closed line between two nodes of the same feeder, making a "
               "cycle.", 0.02, "topology audit: cycle in a radial feeder", "feeders"),
)

DEFECT_KINDS: Mapping[str, DefectKind] = {k.name: k for k in _KINDS}
DEFAULT_RATES: Mapping[str, float] = {k.name: k.default_rate for k in _KINDS}

# stale_record is drawn from two exclusive pools (see the module docstring).
STALE_AREA = "stale_record@" + AREAS
STALE_TRANSFORMER = "stale_record@" + TRANSFORMERS


def round_half_up(x: float) -> int:
    """Conventional rounding (Python's round() is banker's)."""
    return math.floor(x + 0.5)


def _kind_name(token: str) -> str:
    """Resolve a kind name or an unambiguous prefix of one (``customer_orphan``)."""
    if token in DEFECT_KINDS:
        return token
    matches = [k for k in DEFECT_KINDS if k.startswith(token)] if token else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"ambiguous defect kind {token!r}: could be {', '.join(matches)}")
    raise ValueError(f"unknown defect kind {token!r}; known kinds: {', '.join(DEFECT_KINDS)}")


def _rate(kind: str, value: object) -> float:
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"defect rate for {kind} is not a number: {value!r}") from None
    if not 0.0 <= rate <= 1.0 or math.isnan(rate):
        raise ValueError(f"defect rate for {kind} must be within [0, 1], got {value!r}")
    return rate


def parse_defect_rates(text: str) -> dict[str, float]:
    """Parse ``--defects``: ``none``, ``default``, or ``kind=rate,…``.

    A list of ``kind=rate`` starts from all-zero rates unless it includes the word
    ``default`` (``default,island=0.05`` = defaults with one override). Kinds may be given by
    an unambiguous prefix. Returns the rate of every kind. Raises ValueError naming the bad
    kind or value.
    """
    rates = {k: 0.0 for k in DEFECT_KINDS}
    tokens = [t.strip() for t in text.split(",") if t.strip()]
    if not tokens:
        raise ValueError("empty defect specification; use 'none', 'default' or kind=rate,...")
    for token in tokens:
        low = token.lower()
        if low == "none":
            rates = {k: 0.0 for k in DEFECT_KINDS}
        elif low == "default":
            rates.update(DEFAULT_RATES)
        elif "=" in token:
            name, _, value = token.partition("=")
            kind = _kind_name(name.strip())
            rates[kind] = _rate(kind, value.strip())
        else:
            raise ValueError(f"bad defect spec {token!r}: expected kind=rate, 'none' or "
                             "'default'")
    check_exclusive(rates)
    return rates


def resolve_rates(defects: Mapping[str, float] | str | None) -> dict[str, float]:
    """Full, validated rate table from what :func:`generate` was given (None = defaults)."""
    if defects is None:
        rates = dict(DEFAULT_RATES)
    elif isinstance(defects, str):
        return parse_defect_rates(defects)
    else:
        rates = {k: 0.0 for k in DEFECT_KINDS}
        for name, value in defects.items():
            kind = _kind_name(name)
            rates[kind] = _rate(kind, value)
    check_exclusive(rates)
    return rates


def check_exclusive(rates: Mapping[str, float]) -> None:
    """Kinds of one population are exclusive, so their rates must not add up to more than 1."""
    for population in ("customers", "pairs", "feeders"):
        members = [k for k, d in DEFECT_KINDS.items() if d.population == population]
        total = sum(rates[k] for k in members)
        if population != "feeders":
            total += rates["stale_record"]
        if total > 1.0 + 1e-12:
            raise ValueError(f"defect rates over the {population} population add up to "
                             f"{total:.4g} > 1 ({', '.join(members)}): kinds are exclusive")


@dataclass(frozen=True)
class DefectPlan:
    """Which rows each kind hits: sorted indices into customers (file order), transformers
    (= their 台区) and feeders. Stale areas/transformers are under :data:`STALE_AREA` and
    :data:`STALE_TRANSFORMER` in ``pairs``."""

    rates: Mapping[str, float]
    customers: Mapping[str, IntArray]
    pairs: Mapping[str, IntArray]
    feeders: Mapping[str, IntArray]


def _partition(rng: np.random.Generator, population: int,
               wanted: Mapping[str, int]) -> dict[str, IntArray]:
    """Draw disjoint random index sets of the wanted sizes from ``range(population)``."""
    total = sum(wanted.values())
    picks = rng.choice(population, size=total, replace=False) if total else np.empty(0)
    out: dict[str, IntArray] = {}
    at = 0
    for key, k in wanted.items():
        out[key] = np.sort(picks[at:at + k]).astype(np.int64)
        at += k
    return out


def plan_defects(rng: np.random.Generator, sizes: Sizes, rates: Mapping[str, float]) -> DefectPlan:
    """Decide how many instances of each kind and which rows they hit."""
    n, t, f = sizes.customers, sizes.transformers, sizes.feeders
    per_pop = {"customers": n, "pairs": t, "feeders": f}
    wanted: dict[str, dict[str, int]] = {"customers": {}, "pairs": {}, "feeders": {}}
    for name, kind in DEFECT_KINDS.items():
        if kind.population == "records":
            continue
        wanted[kind.population][name] = round_half_up(rates[name] * per_pop[kind.population])
    stale_total = round_half_up(rates["stale_record"] * (n + 2 * t))
    stale_c, stale_a, stale_t = apportion(stale_total, [n, t, t]).tolist()
    wanted["customers"]["stale_record"] = stale_c
    wanted["pairs"][STALE_AREA] = stale_a
    wanted["pairs"][STALE_TRANSFORMER] = stale_t
    return DefectPlan(
        rates=dict(rates),
        customers=_partition(rng, n, wanted["customers"]),
        pairs=_partition(rng, t, wanted["pairs"]),
        feeders=_partition(rng, f, wanted["feeders"]),
    )


class DefectLog:
    """Rows of ``truth/defects.csv``, collected as small frames while tables are written.

    ``line`` is the 1-based line of the row showing the defect in ``file`` (header = 1), or
    null for a removed row (``island``). Multi-field values (coordinates) are ``|``-joined in
    field order, e.g. field ``经度|纬度`` and value ``113.120000|23.020000``.
    """

    COLUMNS = ("defect", "table", "entity_id", "field", "original_value", "injected_value",
               "file", "line")

    def __init__(self) -> None:
        self._frames: list[pl.DataFrame] = []

    def add(self, defect: str, table: str, entity_id: pl.Series | list[str], field: str,
            original: pl.Series | list[str] | str, injected: pl.Series | list[str] | str,
            line: npt.ArrayLike | None) -> None:
        """Record the instances of one kind in one table (vectorised over rows)."""
        ids = pl.Series(entity_id, dtype=pl.Utf8)
        n = ids.len()
        if n == 0:
            return

        def col(v: pl.Series | list[str] | str) -> pl.Series:
            return pl.Series([v] * n, dtype=pl.Utf8) if isinstance(v, str) else pl.Series(
                v, dtype=pl.Utf8)

        lines = (pl.Series([None] * n, dtype=pl.Int64) if line is None
                 else pl.Series(np.asarray(line, dtype=np.int64)))
        self._frames.append(pl.DataFrame({
            "defect": [defect] * n, "table": [table] * n, "entity_id": ids, "field": [field] * n,
            "original_value": col(original), "injected_value": col(injected),
            "file": [FILES[table]] * n, "line": lines,
        }))

    def frame(self) -> pl.DataFrame:
        """All records, ordered by file and line."""
        if not self._frames:
            return pl.DataFrame(schema={c: (pl.Int64 if c == "line" else pl.Utf8)
                                        for c in self.COLUMNS})
        return pl.concat(self._frames).sort(["file", "line", "defect"], nulls_last=True)

    def counts(self) -> dict[str, int]:
        """Injected instances per kind (every kind listed, zeros included)."""
        counts = dict.fromkeys(DEFECT_KINDS, 0)
        for fr in self._frames:
            counts[fr["defect"][0]] += fr.height
        return counts

    def write(self, root: Path) -> FileRecord:
        """Write ``truth/defects.csv`` (UTF-8)."""
        fr = blank_as_null(self.frame().with_columns(pl.col("line").cast(pl.Utf8)))
        with CsvFile(root, "truth/defects.csv", list(self.COLUMNS), "utf-8") as out:
            out.write(fr)
            return out.close()
