"""Reconcile the marketing and distribution systems into one decided chain of links.

Input: the canonical tables that :func:`gridtopo.ingest.read_sources` returns (polars frames),
plus steward decisions. Output: one row per decided link with the method that decided it, a
confidence in [0, 1] and its evidence — customers' links as columns aligned with the customers,
the way they are stored — and one row per entity that could not be decided, with the reason.
Nothing here guesses: an area whose candidates tie stays unlinked and is reported.

How each link is decided (highest priority first):

``feeder_station``
    steward decision; the feeder's own ``station_id`` when that station exists (source_code, 1.0).
``transformer_feeder``
    steward; the transformer's ``feeder_id`` when that feeder exists (source_code, 1.0); else the
    feeder of the edges at the transformer's ``node`` when they agree on one (source_code, 0.9).
``area_transformer``
    steward; otherwise every candidate transformer of an area is scored on independent evidence —
    the area's ``pms_transformer_id`` names it (+4), the transformer's ``marketing_area_code``
    names the area (+4), normalised names equal on the area's feeder (+2), the transformer is the
    clear nearest one on that feeder to the area's customers (+1), it is on the feeder marketing
    names (+1) — and pairs are taken best score first, one transformer per area and one area per
    transformer. A transformer's feeder here is its decided ``transformer_feeder`` link (so a
    dangling feeder code does not hide it), and names are equal when their keys are
    (:mod:`gridtopo.reconcile.names`, the same test as :func:`~gridtopo.reconcile.names.same_name`
    in the audits). A best score shared by two candidates of one area is a conflict: unlinked.
    Location alone decides only under a much stricter rule (:data:`SPATIAL_DECIDE_MAX_M`).
    The method is ``cross_system_id`` when an id supports the pair, else ``name_match``, else
    ``spatial_match``; the confidence follows the evidence (see :data:`CONFIDENCE`).
``customer_transformer``
    steward; else through the customer's area: the area's transformer, with the area link's method
    and confidence (its evidence is the customer row's own ``area_code``, not repeated). A
    customer whose area is unknown or unlinked stays unlinked (the audit suggests a fix;
    reconciliation does not guess from coordinates alone).

>>> from gridtopo.ingest import read_sources
>>> bundle = read_sources(sources)
>>> result = reconcile({name: table.frame for name, table in bundle.tables.items()})
>>> customers = result.summary["customer_transformer"]
>>> customers["by_method"], customers["unlinked"]
({'cross_system_id': 2492}, 5)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from gridtopo.geo import distance_m
from gridtopo.reconcile.kinds import LINK_KINDS
from gridtopo.reconcile.names import feeder_key, station_key, transformer_key

SCORE_PMS_ID = 4
SCORE_AREA_CODE = 4
SCORE_NAME = 2
SCORE_SPATIAL = 1
SCORE_FEEDER = 1

SPATIAL_MAX_M = 400.0
"""An area's customers' median point must be this close to a transformer for spatial evidence…"""
SPATIAL_MIN_RATIO = 1.5
"""…and the second-nearest transformer on the feeder this many times farther away."""
SPATIAL_DECIDE_MAX_M = 100.0
"""Location alone decides a link only this close…"""
SPATIAL_DECIDE_MIN_RATIO = 8.0
"""…with the runner-up this many times farther. Transformers of one village stand tens of
metres apart, so a looser rule links the wrong one too often: measured on generated data with
ids and names blanked, (400 m, 1.5×) is 94 % precise, (100 m, 8×) 99.5 %."""

CONFIDENCE: tuple[tuple[str, float], ...] = (
    ("both ids", 0.99),
    ("one id + name", 0.97),
    ("one id + spatial or feeder", 0.93),
    ("one id alone", 0.85),
    ("name + spatial", 0.9),
    ("name alone", 0.8),
    ("spatial alone", 0.6),
)
"""Confidence of an area→transformer link by the evidence that supports it (documentation)."""

LINK_COLUMNS = {
    "kind": pl.Utf8,
    "from_id": pl.Utf8,
    "to_id": pl.Utf8,
    "method": pl.Utf8,
    "confidence": pl.Float64,
    "evidence": pl.Utf8,
}
CUSTOMER_LINK_COLUMNS = {
    "customer_id": pl.Utf8,
    "transformer_id": pl.Utf8,
    "link_method": pl.Utf8,
    "link_confidence": pl.Float64,
}
"""A customer's link as stored on its row (the evidence is the row's own ``area_code``)."""
UNLINKED_COLUMNS = {"kind": pl.Utf8, "entity_id": pl.Utf8, "code": pl.Utf8, "reason": pl.Utf8}
"""An undecided entity: ``code`` is a stable category (see :data:`UNLINKED_CODES`), ``reason``
the sentence a steward reads."""
UNLINKED_CODES = {
    "no_station": "the feeder's station code is blank or not a station",
    "no_feeder": "the transformer's feeder code is not a feeder and its node is on none",
    "no_candidate": "no transformer matches the area by id, name or location",
    "conflict": "two transformers have equal evidence for the area",
    "taken": "every candidate transformer is better matched to another area",
    "area_unlinked": "the customer's area is unknown or has no decided transformer",
    "steward_none": "a steward decided the entity has no link",
}
DECISION_COLUMNS = {"link_kind": pl.Utf8, "entity_id": pl.Utf8, "decision": pl.Utf8}
NO_LINK = "none"
"""A steward decision of ``none`` keeps the entity unlinked whatever the methods say."""


@dataclass(frozen=True)
class Reconciliation:
    """Decided links, undecided entities and counts by kind and method.

    ``links`` holds the feeder, transformer and area links (:data:`LINK_COLUMNS`);
    ``customer_links`` the customer links aligned row for row with the customers table
    (:data:`CUSTOMER_LINK_COLUMNS`, null where undecided) — see :func:`customer_link_rows`
    for them as link rows.
    """

    links: pl.DataFrame
    customer_links: pl.DataFrame
    unlinked: pl.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def all_links(self) -> pl.DataFrame:
        """Every decided link, the customer ones included, as link rows."""
        return pl.concat([self.links, customer_link_rows(self.customer_links)])


def _empty(schema: Mapping[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


def _table(tables: Mapping[str, pl.DataFrame], name: str, columns: dict[str, Any]) -> pl.DataFrame:
    """The named table with at least ``columns`` (absent table or column → empty/null)."""
    frame = tables.get(name)
    if frame is None:
        return _empty(columns)
    return frame.select(
        (pl.col(col) if col in frame.columns else pl.lit(None)).cast(dtype).alias(col)
        for col, dtype in columns.items()
    )


def _evidence(*columns: str) -> pl.Expr:
    return pl.struct(columns).struct.json_encode().alias("evidence")


def _links(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    return frame.with_columns(pl.lit(kind).alias("kind")).select(list(LINK_COLUMNS))


def _unlinked(
    ids: pl.DataFrame, kind: str, code: str | pl.Expr, reason: str | pl.Expr
) -> pl.DataFrame:
    code_expr = pl.lit(code) if isinstance(code, str) else code
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    return ids.select(
        pl.lit(kind).alias("kind"), pl.col("entity_id"), code_expr.alias("code"),
        reason_expr.alias("reason"),
    ).select(list(UNLINKED_COLUMNS))


# --------------------------------------------------------------------------- distribution side


def link_feeders(
    feeders: pl.DataFrame, stations: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """feeder→station from the feeder's own station code."""
    known = feeders.join(stations.select("station_id"), on="station_id", how="semi")
    links = known.select(
        pl.col("feeder_id").alias("from_id"),
        pl.col("station_id").alias("to_id"),
        pl.lit("source_code").alias("method"),
        pl.lit(1.0).alias("confidence"),
        _evidence("station_id"),
    )
    missing = feeders.join(known.select("feeder_id"), on="feeder_id", how="anti")
    unlinked = _unlinked(
        missing.rename({"feeder_id": "entity_id"}),
        "feeder_station",
        "no_station",
        pl.when(pl.col("station_id").is_null())
        .then(pl.lit("feeder has no station code"))
        .otherwise(pl.lit("station code ") + pl.col("station_id") + pl.lit(" is not a station")),
    )
    return _links(links, "feeder_station"), unlinked


def node_feeders(edges: pl.DataFrame, feeders: pl.DataFrame) -> pl.DataFrame:
    """Each connectivity node with the single feeder its edges (or source node) belong to."""
    ends = pl.concat([
        edges.select(pl.col("from_node").alias("node"), "feeder_id"),
        edges.select(pl.col("to_node").alias("node"), "feeder_id"),
        feeders.select(pl.col("source_node").alias("node"), "feeder_id"),
    ]).drop_nulls().unique()
    return (
        ends.group_by("node")
        .agg(pl.col("feeder_id").first(), pl.col("feeder_id").n_unique().alias("n"))
        .filter(pl.col("n") == 1)
        .drop("n")
    )


def link_transformers(
    transformers: pl.DataFrame, feeders: pl.DataFrame, edges: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """transformer→feeder from the transformer's feeder code, else from its node's edges."""
    known = transformers.join(feeders.select("feeder_id"), on="feeder_id", how="semi")
    by_code = known.select(
        pl.col("transformer_id").alias("from_id"),
        pl.col("feeder_id").alias("to_id"),
        pl.lit("source_code").alias("method"),
        pl.lit(1.0).alias("confidence"),
        _evidence("feeder_id"),
    )
    rest = transformers.join(known.select("transformer_id"), on="transformer_id", how="anti")
    via_node = rest.drop("feeder_id").join(node_feeders(edges, feeders), on="node", how="inner")
    by_node = via_node.select(
        pl.col("transformer_id").alias("from_id"),
        pl.col("feeder_id").alias("to_id"),
        pl.lit("source_code").alias("method"),
        pl.lit(0.9).alias("confidence"),
        pl.struct(pl.col("node").alias("via_node")).struct.json_encode().alias("evidence"),
    )
    missing = rest.join(via_node.select("transformer_id"), on="transformer_id", how="anti")
    unlinked = _unlinked(
        missing.rename({"transformer_id": "entity_id"}),
        "transformer_feeder",
        "no_feeder",
        pl.lit("feeder code ")
        + pl.col("feeder_id").fill_null("(blank)")
        + pl.lit(" is not a feeder and node ")
        + pl.col("node").fill_null("(blank)")
        + pl.lit(" is on no single feeder"),
    )
    return _links(pl.concat([by_code, by_node]), "transformer_feeder"), unlinked


# --------------------------------------------------------------------------- cross-system


def match_area_feeders(
    areas: pl.DataFrame, feeders: pl.DataFrame, stations: pl.DataFrame
) -> pl.DataFrame:
    """The distribution feeder each marketing area names (area_code, feeder_id), where unique.

    By code first (marketing sometimes carries the distribution feeder code as its name), then
    by normalised feeder name within the normalised station name, then by feeder name alone when
    it is unique province-wide.
    """
    dist = feeders.join(
        stations.select("station_id", "station_name"), on="station_id", how="left"
    ).select(
        "feeder_id",
        feeder_key(pl.col("feeder_name")).alias("fkey"),
        station_key(pl.col("station_name")).alias("skey"),
    )
    mk = areas.select(
        "area_code",
        pl.col("feeder_name"),
        feeder_key(pl.col("feeder_name")).alias("fkey"),
        station_key(pl.col("station_name")).alias("skey"),
    )
    by_code = mk.join(
        feeders.select(pl.col("feeder_id")), left_on="feeder_name", right_on="feeder_id",
        how="inner",
    ).select("area_code", pl.col("feeder_name").alias("feeder_id"))

    def unique_match(left: pl.DataFrame, on: list[str]) -> pl.DataFrame:
        hits = left.join(dist.unique(subset=[*on, "feeder_id"]), on=on, how="inner")
        return (
            hits.group_by("area_code")
            .agg(pl.col("feeder_id").first(), pl.col("feeder_id").n_unique().alias("n"))
            .filter(pl.col("n") == 1)
            .select("area_code", "feeder_id")
        )

    rest = mk.join(by_code, on="area_code", how="anti")
    by_station = unique_match(rest.drop_nulls(["fkey", "skey"]), ["skey", "fkey"])
    rest = rest.join(by_station, on="area_code", how="anti")
    by_name = unique_match(rest.drop_nulls(["fkey"]), ["fkey"])
    return pl.concat([by_code, by_station, by_name])


def area_centroids(customers: pl.DataFrame) -> pl.DataFrame:
    """Median customer position per area: robust to a few misplaced or offset customers."""
    return (
        customers.drop_nulls(["lon", "lat"])
        .group_by("area_code")
        .agg(pl.col("lon").median().alias("a_lon"), pl.col("lat").median().alias("a_lat"))
    )


def area_candidates(
    areas: pl.DataFrame,
    transformers: pl.DataFrame,
    area_feeder: pl.DataFrame,
    centroids: pl.DataFrame,
) -> pl.DataFrame:
    """Every (area, transformer) pair some evidence supports, with that evidence and a score."""
    t = transformers.select("transformer_id", "feeder_id", "marketing_area_code",
                            transformer_key(pl.col("transformer_name")).alias("tkey"),
                            "lon", "lat")
    a = areas.select("area_code", "pms_transformer_id",
                     transformer_key(pl.col("area_name")).alias("akey")).join(
        area_feeder, on="area_code", how="left"
    )
    pairs = pl.concat([
        a.join(t.select("transformer_id"), left_on="pms_transformer_id",
               right_on="transformer_id", how="inner")
         .select("area_code", pl.col("pms_transformer_id").alias("transformer_id")),
        t.join(a.select("area_code"), left_on="marketing_area_code", right_on="area_code",
               how="inner")
         .select(pl.col("marketing_area_code").alias("area_code"), "transformer_id"),
        a.drop_nulls(["feeder_id", "akey"])
         .join(t.drop_nulls(["tkey"]), left_on=["feeder_id", "akey"],
               right_on=["feeder_id", "tkey"], how="inner")
         .select("area_code", "transformer_id"),
        nearest_transformers(a, t, centroids).select("area_code", "transformer_id"),
    ]).unique()
    nearest = nearest_transformers(a, t, centroids).select(
        "area_code", "transformer_id", pl.col("distance_m").alias("spatial_m"),
        "runner_up_m",
    )
    scored = (
        pairs.join(a, on="area_code", how="left")
        .join(t.rename({"feeder_id": "t_feeder"}), on="transformer_id", how="left")
        .join(nearest, on=["area_code", "transformer_id"], how="left")
        .with_columns(
            (pl.col("pms_transformer_id") == pl.col("transformer_id")).fill_null(False)
            .alias("by_pms_id"),
            (pl.col("marketing_area_code") == pl.col("area_code")).fill_null(False)
            .alias("by_area_code"),
            ((pl.col("akey") == pl.col("tkey")) & (pl.col("feeder_id") == pl.col("t_feeder")))
            .fill_null(False).alias("by_name"),
            pl.col("spatial_m").is_not_null().alias("by_spatial"),
            (pl.col("feeder_id") == pl.col("t_feeder")).fill_null(False).alias("same_feeder"),
        )
        .filter(
            pl.col("by_pms_id") | pl.col("by_area_code") | pl.col("by_name")
            | ((pl.col("spatial_m") <= SPATIAL_DECIDE_MAX_M)
               & (pl.col("runner_up_m").is_null()
                  | (pl.col("runner_up_m") >= pl.col("spatial_m") * SPATIAL_DECIDE_MIN_RATIO)))
        )
        .with_columns(
            (
                pl.col("by_pms_id").cast(pl.Int32) * SCORE_PMS_ID
                + pl.col("by_area_code").cast(pl.Int32) * SCORE_AREA_CODE
                + pl.col("by_name").cast(pl.Int32) * SCORE_NAME
                + pl.col("by_spatial").cast(pl.Int32) * SCORE_SPATIAL
                + pl.col("same_feeder").cast(pl.Int32) * SCORE_FEEDER
            ).alias("score")
        )
    )
    return scored.select("area_code", "transformer_id", "score", "by_pms_id", "by_area_code",
                         "by_name", "by_spatial", "same_feeder", "spatial_m")


def nearest_transformers(
    areas: pl.DataFrame, transformers: pl.DataFrame, centroids: pl.DataFrame
) -> pl.DataFrame:
    """For each area with a feeder and customers, the clearly nearest transformer on that feeder.

    "Clearly": within :data:`SPATIAL_MAX_M` and the runner-up at least :data:`SPATIAL_MIN_RATIO`
    times farther away, so that spatial evidence never decides between two close transformers.
    """
    located = areas.drop_nulls(["feeder_id"]).join(centroids, on="area_code", how="inner")
    pairs = (
        located.select("area_code", "feeder_id", "a_lon", "a_lat")
        .join(transformers.drop_nulls(["lon", "lat"]).select("transformer_id", "feeder_id",
                                                             "lon", "lat"),
              on="feeder_id", how="inner")
        .with_columns(
            distance_m(pl.col("a_lon"), pl.col("a_lat"), pl.col("lon"), pl.col("lat"))
            .alias("distance_m")
        )
        .sort(["area_code", "distance_m", "transformer_id"])
    )
    ranked = pairs.group_by("area_code", maintain_order=True).agg(
        pl.col("transformer_id").first(),
        pl.col("distance_m").first(),
        pl.col("distance_m").get(1, null_on_oob=True).alias("runner_up_m"),
    )
    return ranked.filter(
        (pl.col("distance_m") <= SPATIAL_MAX_M)
        & (pl.col("runner_up_m").is_null()
           | (pl.col("runner_up_m") >= pl.col("distance_m") * SPATIAL_MIN_RATIO))
    ).select("area_code", "transformer_id", "distance_m", "runner_up_m")


def _method_and_confidence(frame: pl.DataFrame) -> pl.DataFrame:
    ids = pl.col("by_pms_id").cast(pl.Int32) + pl.col("by_area_code").cast(pl.Int32)
    name, spatial, feeder = pl.col("by_name"), pl.col("by_spatial"), pl.col("same_feeder")
    return frame.with_columns(
        pl.when(ids > 0).then(pl.lit("cross_system_id"))
        .when(name).then(pl.lit("name_match"))
        .otherwise(pl.lit("spatial_match")).alias("method"),
        pl.when(ids == 2).then(0.99)
        .when((ids == 1) & name).then(0.97)
        .when((ids == 1) & (spatial | feeder)).then(0.93)
        .when(ids == 1).then(0.85)
        .when(name & spatial).then(0.9)
        .when(name).then(0.8)
        .otherwise(0.6).alias("confidence"),
    )


def assign_areas(candidates: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pick one transformer per area, best score first, each transformer used once.

    An area whose best remaining score is shared by two transformers is a conflict and is left
    unlinked (returned as the second frame with its tied candidates), never decided arbitrarily.
    Runs in O(candidates) Python over the sorted pairs — one row per candidate pair, a few per
    area, not per customer.
    """
    ordered = candidates.sort(["score", "area_code", "transformer_id"],
                              descending=[True, False, False])
    taken_areas: set[str] = set()
    taken_transformers: set[str] = set()
    conflicted: dict[str, list[str]] = {}
    chosen: list[int] = []
    rows = ordered.select("area_code", "transformer_id", "score").rows()
    i = 0
    while i < len(rows):
        area, _, score = rows[i]
        group_end = i
        while (group_end < len(rows) and rows[group_end][0] == area
               and rows[group_end][2] == score):
            group_end += 1
        if area not in taken_areas and area not in conflicted:
            free = [j for j in range(i, group_end) if rows[j][1] not in taken_transformers]
            if len(free) == 1:
                chosen.append(free[0])
                taken_areas.add(area)
                taken_transformers.add(rows[free[0]][1])
            elif len(free) > 1:
                conflicted[area] = [rows[j][1] for j in free]
        i = group_end
    picked = ordered[chosen] if chosen else ordered.clear()
    ties = pl.DataFrame(
        {"area_code": list(conflicted), "tied": [", ".join(v) for v in conflicted.values()]},
        schema={"area_code": pl.Utf8, "tied": pl.Utf8},
    )
    return picked, ties


def link_areas(
    areas: pl.DataFrame,
    transformers: pl.DataFrame,
    feeders: pl.DataFrame,
    stations: pl.DataFrame,
    customers: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """area→transformer links, scored and assigned (see the module docstring)."""
    area_feeder = match_area_feeders(areas, feeders, stations)
    candidates = area_candidates(areas, transformers, area_feeder, area_centroids(customers))
    picked, ties = assign_areas(candidates)
    links = _method_and_confidence(picked).select(
        pl.col("area_code").alias("from_id"),
        pl.col("transformer_id").alias("to_id"),
        "method",
        "confidence",
        pl.struct("score", "by_pms_id", "by_area_code", "by_name", "by_spatial",
                  "same_feeder", pl.col("spatial_m").round(1))
        .struct.json_encode().alias("evidence"),
    )
    rest = areas.select(pl.col("area_code").alias("entity_id")).join(
        links.select(pl.col("from_id").alias("entity_id")), on="entity_id", how="anti"
    )
    with_reason = rest.join(ties.rename({"area_code": "entity_id"}), on="entity_id", how="left")
    had_candidates = candidates.select(pl.col("area_code").alias("entity_id")).unique()
    unlinked = _unlinked(
        with_reason.join(had_candidates.with_columns(pl.lit(True).alias("cand")),
                         on="entity_id", how="left"),
        "area_transformer",
        pl.when(pl.col("tied").is_not_null()).then(pl.lit("conflict"))
        .when(pl.col("cand").fill_null(False)).then(pl.lit("taken"))
        .otherwise(pl.lit("no_candidate")),
        pl.when(pl.col("tied").is_not_null())
        .then(pl.lit("conflict: equal evidence for ") + pl.col("tied"))
        .when(pl.col("cand").fill_null(False))
        .then(pl.lit("every candidate transformer is better matched to another area"))
        .otherwise(pl.lit("no transformer matches by id, name or location")),
    )
    return _links(links, "area_transformer"), unlinked


def link_customers(
    customers: pl.DataFrame, area_links: pl.DataFrame, decisions: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """customer→transformer through the customer's area and that area's link, then steward
    decisions on top: ``(CUSTOMER_LINK_COLUMNS aligned row for row with customers, unlinked)``.

    The links stay aligned with the customers instead of becoming one row per link: at 14
    million customers that saves a copy of every customer id and a join to put the links back
    on the customer rows they are stored with.
    """
    ids, area = customers["customer_id"], customers["area_code"]
    via = area_links.select("from_id", "to_id", "method", "confidence")
    aligned = pl.DataFrame([ids, *(
        area.replace_strict(via["from_id"], via[source], default=None, return_dtype=dtype)
        .alias(name)
        for source, (name, dtype) in zip(("to_id", "method", "confidence"),
                                         list(CUSTOMER_LINK_COLUMNS.items())[1:], strict=True)
    )])
    mine = decisions.filter(pl.col("link_kind") == "customer_transformer")
    missing = aligned["transformer_id"].is_null()
    refused = ids.clear()
    if not mine.is_empty():  # a ruling per customer (null: none) only when there are rulings
        ruling = ids.replace_strict(mine["entity_id"], mine["decision"], default=None,
                                    return_dtype=pl.Utf8)
        keep, link = pl.lit(ruling).is_null(), pl.lit(ruling) != NO_LINK
        aligned = aligned.with_columns(
            pl.when(keep).then(pl.col(name)).when(link).then(value).alias(name)
            for name, value in (("transformer_id", pl.lit(ruling)),
                                ("link_method", pl.lit("steward")),
                                ("link_confidence", pl.lit(1.0)))
        )
        missing = aligned["transformer_id"].is_null() & ruling.is_null()
        refused = ids.filter(ruling == NO_LINK)
    unlinked = pl.concat([
        _unlinked(
            pl.DataFrame([ids.filter(missing).alias("entity_id"), area.filter(missing)]),
            "customer_transformer", "area_unlinked",
            pl.lit("area ") + pl.col("area_code").fill_null("(blank)")
            + pl.lit(" has no decided transformer"),
        ),
        _unlinked(pl.DataFrame([refused.alias("entity_id")]),
                  "customer_transformer", "steward_none", "steward decided: no link"),
    ])
    return aligned, unlinked


# --------------------------------------------------------------------------- steward decisions


def apply_decisions(
    links: pl.DataFrame, unlinked: pl.DataFrame, decisions: pl.DataFrame, kind: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Override the links of ``kind`` with steward decisions (``none`` removes the link)."""
    mine = decisions.filter(pl.col("link_kind") == kind).select(
        pl.col("entity_id"), pl.col("decision")
    )
    if mine.is_empty():
        return links, unlinked
    kept = links.join(mine, left_on="from_id", right_on="entity_id", how="anti")
    steward = mine.filter(pl.col("decision") != NO_LINK).select(
        pl.lit(kind).alias("kind"),
        pl.col("entity_id").alias("from_id"),
        pl.col("decision").alias("to_id"),
        pl.lit("steward").alias("method"),
        pl.lit(1.0).alias("confidence"),
        pl.struct(pl.col("decision")).struct.json_encode().alias("evidence"),
    )
    still_unlinked = unlinked.join(mine, on="entity_id", how="anti")
    refused = _unlinked(mine.filter(pl.col("decision") == NO_LINK), kind, "steward_none",
                        "steward decided: no link")
    return pl.concat([kept, steward]), pl.concat([still_unlinked, refused])


def reconcile(
    tables: Mapping[str, pl.DataFrame], decisions: pl.DataFrame | None = None
) -> Reconciliation:
    """Decide every link of the chain from the canonical source tables.

    ``tables`` maps canonical table names to frames as ingest returns them; a missing table is
    treated as empty. ``decisions`` has columns ``link_kind, entity_id, decision``.
    """
    stations = _table(tables, "stations", {"station_id": pl.Utf8, "station_name": pl.Utf8})
    feeders = _table(tables, "feeders", {"feeder_id": pl.Utf8, "feeder_name": pl.Utf8,
                                         "station_id": pl.Utf8, "source_node": pl.Utf8})
    edges = _table(tables, "edges", {"edge_id": pl.Utf8, "feeder_id": pl.Utf8,
                                     "from_node": pl.Utf8, "to_node": pl.Utf8})
    transformers = _table(tables, "transformers", {
        "transformer_id": pl.Utf8, "transformer_name": pl.Utf8, "feeder_id": pl.Utf8,
        "node": pl.Utf8, "marketing_area_code": pl.Utf8, "lon": pl.Float64, "lat": pl.Float64})
    areas = _table(tables, "transformer_areas", {
        "area_code": pl.Utf8, "area_name": pl.Utf8, "feeder_name": pl.Utf8,
        "station_name": pl.Utf8, "pms_transformer_id": pl.Utf8})
    customers = _table(tables, "customers", {"customer_id": pl.Utf8, "area_code": pl.Utf8,
                                             "lon": pl.Float64, "lat": pl.Float64})
    decided = _empty(DECISION_COLUMNS) if decisions is None else decisions.select(
        list(DECISION_COLUMNS)
    )

    feeder_links, feeder_un = apply_decisions(*link_feeders(feeders, stations), decided,
                                              "feeder_station")
    tx_links, tx_un = apply_decisions(*link_transformers(transformers, feeders, edges), decided,
                                      "transformer_feeder")
    # Areas are matched to transformers on the feeder decided above, not on the raw feeder
    # code: a transformer with a dangling code still stands on the feeder of its node.
    placed = transformers.drop("feeder_id").join(
        tx_links.select(pl.col("from_id").alias("transformer_id"),
                        pl.col("to_id").alias("feeder_id")),
        on="transformer_id", how="left")
    area_links, area_un = apply_decisions(
        *link_areas(areas, placed, feeders, stations, customers), decided,
        "area_transformer",
    )
    customer_links, cust_un = link_customers(customers, area_links, decided)
    links = pl.concat([feeder_links, tx_links, area_links])
    unlinked = pl.concat([feeder_un, tx_un, area_un, cust_un])
    return Reconciliation(links=links, customer_links=customer_links, unlinked=unlinked,
                          summary=summarise(links, customer_links, unlinked))


def customer_link_rows(customer_links: pl.DataFrame) -> pl.DataFrame:
    """The decided customer links of :attr:`Reconciliation.customer_links` as link rows
    (:data:`LINK_COLUMNS`), e.g. to list or compare them with the other kinds."""
    return customer_links.filter(pl.col("transformer_id").is_not_null()).select(
        pl.lit("customer_transformer").alias("kind"), pl.col("customer_id").alias("from_id"),
        pl.col("transformer_id").alias("to_id"), pl.col("link_method").alias("method"),
        pl.col("link_confidence").alias("confidence"), pl.lit(None, pl.Utf8).alias("evidence"),
    )


def summarise(links: pl.DataFrame, customer_links: pl.DataFrame,
              unlinked: pl.DataFrame) -> dict[str, Any]:
    """Per link kind: linked and unlinked counts, links by method, unlinked by code."""
    summary: dict[str, Any] = {}
    customers = customer_links.select(pl.col("link_method").alias("method")).drop_nulls()
    for kind in LINK_KINDS:
        mine = customers if kind == "customer_transformer" else links.filter(
            pl.col("kind") == kind)
        missing = unlinked.filter(pl.col("kind") == kind)
        by_method = mine.group_by("method").len().sort("method")
        reasons = missing.group_by("code").len().sort(["len", "code"], descending=[True, False])
        summary[kind] = {
            "linked": mine.height,
            "unlinked": missing.height,
            "by_method": dict(by_method.iter_rows()),
            "unlinked_by_code": dict(reasons.iter_rows()),
        }
    return summary
