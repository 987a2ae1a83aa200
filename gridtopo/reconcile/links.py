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
({'cross_system_id': 2494}, 5)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from gridtopo.reconcile.areas import (
    link_areas,
)
from gridtopo.reconcile.kinds import LINK_KINDS
from gridtopo.reconcile.shapes import (
    CUSTOMER_LINK_COLUMNS,
    DECISION_COLUMNS,
    NO_LINK,
    as_links,
    empty_frame,
    evidence,
    table_columns,
    unlinked_rows,
)


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
        evidence("station_id"),
    )
    missing = feeders.join(known.select("feeder_id"), on="feeder_id", how="anti")
    unlinked = unlinked_rows(
        missing.rename({"feeder_id": "entity_id"}),
        "feeder_station",
        "no_station",
        pl.when(pl.col("station_id").is_null())
        .then(pl.lit("feeder has no station code"))
        .otherwise(pl.lit("station code ") + pl.col("station_id") + pl.lit(" is not a station")),
    )
    return as_links(links, "feeder_station"), unlinked


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
        evidence("feeder_id"),
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
    unlinked = unlinked_rows(
        missing.rename({"transformer_id": "entity_id"}),
        "transformer_feeder",
        "no_feeder",
        pl.lit("feeder code ")
        + pl.col("feeder_id").fill_null("(blank)")
        + pl.lit(" is not a feeder and node ")
        + pl.col("node").fill_null("(blank)")
        + pl.lit(" is on no single feeder"),
    )
    return as_links(pl.concat([by_code, by_node]), "transformer_feeder"), unlinked


# --------------------------------------------------------------------------- customers


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
        unlinked_rows(
            pl.DataFrame([ids.filter(missing).alias("entity_id"), area.filter(missing)]),
            "customer_transformer", "area_unlinked",
            pl.lit("area ") + pl.col("area_code").fill_null("(blank)")
            + pl.lit(" has no decided transformer"),
        ),
        unlinked_rows(pl.DataFrame([refused.alias("entity_id")]),
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
    refused = unlinked_rows(mine.filter(pl.col("decision") == NO_LINK), kind, "steward_none",
                        "steward decided: no link")
    return pl.concat([kept, steward]), pl.concat([still_unlinked, refused])


def reconcile_inputs(tables: Mapping[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The columns reconciliation reads of each canonical table (stations, feeders, edges,
    transformers, transformer_areas, customers, in that order), typed; a missing table or
    column is empty or null."""
    stations = table_columns(tables, "stations", {"station_id": pl.Utf8, "station_name": pl.Utf8})
    feeders = table_columns(tables, "feeders", {"feeder_id": pl.Utf8, "feeder_name": pl.Utf8,
                                         "station_id": pl.Utf8, "source_node": pl.Utf8})
    edges = table_columns(tables, "edges", {"edge_id": pl.Utf8, "feeder_id": pl.Utf8,
                                     "from_node": pl.Utf8, "to_node": pl.Utf8})
    transformers = table_columns(tables, "transformers", {
        "transformer_id": pl.Utf8, "transformer_name": pl.Utf8, "feeder_id": pl.Utf8,
        "node": pl.Utf8, "marketing_area_code": pl.Utf8, "lon": pl.Float64, "lat": pl.Float64})
    areas = table_columns(tables, "transformer_areas", {
        "area_code": pl.Utf8, "area_name": pl.Utf8, "feeder_name": pl.Utf8,
        "station_name": pl.Utf8, "pms_transformer_id": pl.Utf8})
    customers = table_columns(tables, "customers", {"customer_id": pl.Utf8, "area_code": pl.Utf8,
                                             "lon": pl.Float64, "lat": pl.Float64})
    return {"stations": stations, "feeders": feeders, "edges": edges,
            "transformers": transformers, "transformer_areas": areas, "customers": customers}


def reconcile(
    tables: Mapping[str, pl.DataFrame], decisions: pl.DataFrame | None = None
) -> Reconciliation:
    """Decide every link of the chain from the canonical source tables.

    ``tables`` maps canonical table names to frames as ingest returns them; a missing table is
    treated as empty. ``decisions`` has columns ``link_kind, entity_id, decision``.
    """
    stations, feeders, edges, transformers, areas, customers = reconcile_inputs(tables).values()
    decided = empty_frame(DECISION_COLUMNS) if decisions is None else decisions.select(
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
