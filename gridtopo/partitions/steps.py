"""The steps of a partitioned run for one partition, each the library's own functions on the
partition's rows plus the few rows of other partitions they need (its *halo*).

In order (the driver's cross-partition work between them is in :mod:`~gridtopo.partitions.run`):

1. :func:`read` — :func:`~gridtopo.ingest.read_sources` on the partition's exports (read,
   validate, deduplicate, quarantine); returns its stations, feeders (small: broadcast to all)
   and keys (to find which partition owns what).
2. :func:`needs` — the marketing feeder each own area names, against every feeder; returns the
   ids the partition needs from others: its transformers' nodes, its areas' PMS ids, codes and
   feeders.
3. :func:`halo` — stages for every other partition the own rows that partition asked for:
   edges at its nodes (ties between feeders of two partitions), transformers its areas may link
   to, customers naming its areas (a customer moved across).
4. :func:`link` — feeder and transformer links of own entities and the candidates of own
   areas, on own rows + halo; returns the transformers among the candidates.
5. :func:`assign` — assigns the candidate pieces that touch no transformer another partition
   also considers; returns the rest for the driver to assign in one piece.
6. :func:`decide` — area links (local picks + the driver's), steward decisions on own entities;
   returns own area links (broadcast for the customers).
7. :func:`customers` — customer links through their area.

Each is exact: every link depends only on rows the halo brings, and the greedy area assignment
decides each connected piece of the candidate graph independently of the others.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import polars as pl

from gridtopo.ingest import load_profile, read_sources
from gridtopo.partitions.stage import Context, Outputs
from gridtopo.reconcile.areas import (
    area_candidates,
    area_centroids,
    assign_areas,
    decide_areas,
    match_area_feeders,
)
from gridtopo.reconcile.links import (
    apply_decisions,
    link_customers,
    link_feeders,
    link_transformers,
    reconcile_inputs,
)

INPUTS = ("stations", "feeders", "edges", "transformers", "transformer_areas", "customers")
HALO = ("edges", "transformers", "customers")
KIND_TABLE = {"feeder_station": "feeders", "transformer_feeder": "transformers",
              "area_transformer": "transformer_areas", "customer_transformer": "customers"}
"""The table whose row owns a link (and its steward decision)."""


def _own(key: str, ctx: Context) -> dict[str, pl.DataFrame]:
    frames = {name: ctx.load(key, f"input.{name}") for name in INPUTS}
    return {name: frame for name, frame in frames.items() if frame is not None}


def _halo(key: str, ctx: Context, table: str) -> pl.DataFrame | None:
    parts = sorted((ctx.stage / f"partition={key}").glob(f"halo.*.{table}.parquet"))
    return pl.concat([pl.read_parquet(p) for p in parts]) if parts else None


def _with_halo(key: str, ctx: Context, own: pl.DataFrame, table: str) -> pl.DataFrame:
    extra = _halo(key, ctx, table)
    return own if extra is None else pl.concat([own, extra])


def _ids(series: pl.Series) -> pl.DataFrame:
    return series.drop_nulls().unique().to_frame("id")


def read(key: str, ctx: Context) -> Outputs:
    """Step 1: read, validate and deduplicate the partition's exports."""
    profile = load_profile(Path(ctx.profile)) if ctx.profile else None
    bundle = read_sources(Path(ctx.sources[key]), profile)
    tables = {name: t.frame for name, t in bundle.tables.items()}
    inputs = reconcile_inputs(tables)
    ctx.save(key, {f"table.{name}": frame for name, frame in tables.items()})
    ctx.save(key, {f"quarantine.{name}": t.quarantine for name, t in bundle.tables.items()})
    ctx.save(key, {f"input.{name}": frame for name, frame in inputs.items()})
    keys = pl.concat([
        inputs[name].select(pl.lit(name).alias("table"), pl.col(column).alias("id"))
        for name, column in (("stations", "station_id"), ("feeders", "feeder_id"),
                             ("edges", "edge_id"), ("transformers", "transformer_id"),
                             ("transformer_areas", "area_code"), ("customers", "customer_id"))
    ])
    files = pl.DataFrame([asdict(f) for f in bundle.files],
                         schema_overrides={"encoding": pl.Utf8}) if bundle.files else None
    out: Outputs = {"stations": inputs["stations"], "feeders": inputs["feeders"], "keys": keys,
                    "warnings": pl.DataFrame({"warning": bundle.warnings}, schema={
                        "warning": pl.Utf8})}
    if files is not None:
        out["files"] = files
    return out


def needs(key: str, ctx: Context) -> Outputs:
    """Step 2: match own areas to feeders (all of them); say what the partition needs."""
    own = _own(key, ctx)
    areas = own["transformer_areas"]
    area_feeder = match_area_feeders(areas, ctx.shared["feeders"], ctx.shared["stations"])
    ctx.save(key, {"area_feeder": area_feeder})
    return {
        "nodes": _ids(own["transformers"]["node"]),
        "pms": _ids(areas["pms_transformer_id"]),
        "areas": _ids(areas["area_code"]),
        "area_feeders": _ids(area_feeder["feeder_id"]),
    }


def halo(key: str, ctx: Context) -> Outputs:
    """Step 3: stage for each other partition the own rows it needs (``shared["needs"]``:
    partition, kind, id)."""
    own = _own(key, ctx)
    wanted = ctx.shared["needs"].filter(pl.col("partition") != key)

    def asked(kind: str, frame: pl.DataFrame, column: str) -> pl.DataFrame:
        ids = wanted.filter(pl.col("kind") == kind).select("partition", pl.col("id").alias(column))
        return frame.join(ids, on=column, how="inner")

    edges, transformers = own["edges"], own["transformers"]
    rows = {
        "edges": pl.concat([asked("nodes", edges, "from_node"), asked("nodes", edges, "to_node")])
        .unique(subset=["partition", "edge_id"], keep="first"),
        "transformers": pl.concat([
            asked("pms", transformers, "transformer_id"),
            asked("areas", transformers, "marketing_area_code"),
            asked("area_feeders", transformers, "feeder_id"),
        ]).unique(subset=["partition", "transformer_id"], keep="first"),
        "customers": asked("areas", own["customers"], "area_code"),
    }
    for table, frame in rows.items():
        for (target,), part in frame.partition_by("partition", as_dict=True).items():
            ctx.save(str(target), {f"halo.{key}.{table}": part.drop("partition")})
    return {}


def link(key: str, ctx: Context) -> Outputs:
    """Step 4: feeder and transformer links of own entities, candidates of own areas."""
    own = _own(key, ctx)
    feeders, stations = ctx.shared["feeders"], ctx.shared["stations"]
    feeder_links, feeder_unlinked = link_feeders(own["feeders"], stations)
    tx_links, tx_unlinked = link_transformers(own["transformers"], feeders,
                                              _with_halo(key, ctx, own["edges"], "edges"))
    area_feeder = ctx.load(key, "area_feeder")
    assert area_feeder is not None
    candidates = area_candidates(
        own["transformer_areas"], _with_halo(key, ctx, own["transformers"], "transformers"),
        area_feeder, area_centroids(_with_halo(key, ctx, own["customers"], "customers")))
    ctx.save(key, {"feeder_links": feeder_links, "feeder_unlinked": feeder_unlinked,
                   "tx_links": tx_links, "tx_unlinked": tx_unlinked, "candidates": candidates})
    return {"transformers": _ids(candidates["transformer_id"])}


def assign(key: str, ctx: Context) -> Outputs:
    """Step 5: assign the pieces of own candidates that touch no transformer of
    ``shared["shared"]`` (candidates of other partitions too); return the others."""
    candidates = ctx.load(key, "candidates")
    assert candidates is not None
    shared = ctx.shared["shared"]["id"].implode()
    areas = candidates.filter(pl.col("transformer_id").is_in(shared))["area_code"].unique()
    while True:  # close over the piece: the areas of its transformers, their transformers...
        tx = candidates.filter(pl.col("area_code").is_in(areas.implode()))["transformer_id"]
        grown = candidates.filter(pl.col("transformer_id").is_in(tx.implode()))["area_code"]
        grown = grown.unique()
        if grown.len() == areas.len():
            break
        areas = grown
    crossing = pl.col("area_code").is_in(areas.implode())
    picked, ties = assign_areas(candidates.filter(~crossing))
    ctx.save(key, {"picked": picked, "ties": ties})
    return {"crossing": candidates.filter(crossing)}


def _decisions(key: str, ctx: Context) -> pl.DataFrame:
    decisions = ctx.shared["decisions"]
    return decisions.filter(pl.col("partition") == key).drop("partition")


def decide(key: str, ctx: Context) -> Outputs:
    """Step 6: own area links from the local and the driver's picks; steward decisions."""
    own = _own(key, ctx)
    candidates, picked, ties = (ctx.load(key, n) for n in ("candidates", "picked", "ties"))
    assert candidates is not None and picked is not None and ties is not None
    areas = own["transformer_areas"]["area_code"].implode()
    picked = pl.concat([picked, ctx.shared["picked"].filter(pl.col("area_code").is_in(areas))])
    ties = pl.concat([ties, ctx.shared["ties"].filter(pl.col("area_code").is_in(areas))])
    decisions = _decisions(key, ctx)
    steps = {"feeder_station": "feeder", "transformer_feeder": "tx"}
    for kind, name in steps.items():
        links, unlinked = (ctx.load(key, f"{name}_{part}") for part in ("links", "unlinked"))
        assert links is not None and unlinked is not None
        links, unlinked = apply_decisions(links, unlinked, decisions, kind)
        ctx.save(key, {f"{name}_links": links, f"{name}_unlinked": unlinked})
    area_links, area_unlinked = apply_decisions(
        *decide_areas(own["transformer_areas"], candidates, picked, ties), decisions,
        "area_transformer")
    ctx.save(key, {"area_links": area_links, "area_unlinked": area_unlinked})
    return {"area_links": area_links}


def customers(key: str, ctx: Context) -> Outputs:
    """Step 7: customer links through their area's link (``shared["area_links"]``, all)."""
    own = _own(key, ctx)
    links, unlinked = link_customers(own["customers"], ctx.shared["area_links"],
                                     _decisions(key, ctx))
    ctx.save(key, {"customer_links": links, "customer_unlinked": unlinked})
    return {}
