"""Scorecards: completeness, accuracy and timeliness per feeder, station, region and province.

Scores look at the chain from the customer's side (站线变户): a customer counts as

* **complete** when it has a decided transformer, feeder and station and no completeness
  finding is open on it, its area, its transformer or its feeder;
* **accurate** when none of those carries a validity, uniqueness, consistency, accuracy or
  topology finding;
* **timely** when none of those carries a timeliness finding.

Each score is the share of customers that pass, in [0, 1]; ``overall`` is their mean. Findings
of severity ``info`` and findings a steward ``waived`` do not count. A customer without a chain
is scored on the feeder its area's or its own 线路名称 names (or only in the province when none
matches). Region: see :mod:`gridtopo.topology.regions`.

>>> from gridtopo.quality.audit import run_audit
>>> from gridtopo.quality.config import load_config
>>> cards = run_audit(engine, load_config(None), gx=False).scorecards
>>> cards.filter(pl.col("level") == "feeder")["entity_id"].sort().to_list()
['XL-000001', 'XL-000002']
"""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection

from gridtopo.db.bulk import bulk_insert
from gridtopo.db.read.frames import read_frame
from gridtopo.quality.facts import Facts
from gridtopo.reconcile.areas import match_area_feeders
from gridtopo.topology.regions import station_regions

SCORES = ("completeness", "accuracy", "timeliness")
DIMENSION_SCORE = {"completeness": "completeness", "timeliness": "timeliness"}
"""Finding dimension → score; every other dimension counts against accuracy."""
PROVINCE = "province"


def _flags(chain: pl.DataFrame, findings: pl.DataFrame, score: str) -> pl.Expr:
    """True for customers whose chain carries a counted finding of ``score``."""
    mine = findings.filter(pl.col("score") == score)
    expr = pl.lit(False)
    for entity, column in (("customer", "customer_id"), ("area", "area_code"),
                           ("transformer", "transformer_id"), ("feeder", "feeder_id")):
        ids = mine.filter(pl.col("entity_type") == entity)["entity_id"].unique()
        expr = expr | pl.col(column).is_in(ids.implode()).fill_null(False)
    return expr


def customer_frame(facts: Facts, findings: pl.DataFrame) -> pl.DataFrame:
    """One row per customer: the feeder/station/region it is scored on and its three flags."""
    m = facts.model
    counted = findings.filter(pl.col("severity") != "info").with_columns(
        pl.col("dimension").replace_strict(DIMENSION_SCORE, default="accuracy").alias("score"))
    area_feeder = match_area_feeders(m.areas, m.feeders, m.stations).rename(
        {"feeder_id": "named_feeder"})
    chain = facts.chain.join(area_feeder, on="area_code", how="left").with_columns(
        pl.coalesce("feeder_id", "named_feeder").alias("score_feeder"))
    feeders = m.feeders.select(pl.col("feeder_id").alias("score_feeder"),
                               pl.col("station_id").alias("score_station"))
    regions = station_regions(m.stations).rename({"station_id": "score_station"})
    unchained = (pl.col("transformer_id").is_null() | pl.col("feeder_id").is_null()
                 | pl.col("station_id").is_null())
    return chain.join(feeders, on="score_feeder", how="left").join(
        regions, on="score_station", how="left"
    ).select(
        "customer_id", "score_feeder", "score_station",
        "region",
        (~(_flags(chain, counted, "completeness") | unchained)).alias("completeness"),
        (~_flags(chain, counted, "accuracy")).alias("accuracy"),
        (~_flags(chain, counted, "timeliness")).alias("timeliness"),
    )


def scorecards(facts: Facts, findings: pl.DataFrame) -> pl.DataFrame:
    """Scores of every feeder, station, region and the province (columns of ``scorecards``)."""
    m = facts.model
    customers = customer_frame(facts, findings)
    per_feeder = findings.group_by("feeder_id").len("findings")
    agg = [pl.len().alias("customers"), *(pl.col(s).mean().alias(s) for s in SCORES),
           *((~pl.col(s)).sum().alias(f"failing_{s}") for s in SCORES)]
    names = {
        "feeder": m.feeders.select(pl.col("feeder_id").alias("entity_id"),
                                   pl.col("feeder_name").alias("entity_name")),
        "station": m.stations.select(pl.col("station_id").alias("entity_id"),
                                     pl.col("station_name").alias("entity_name")),
    }
    frames = []
    for level, key in (("feeder", "score_feeder"), ("station", "score_station"),
                       ("region", "region"), (PROVINCE, None)):
        grouped = (customers.group_by(key).agg(agg).rename({key: "entity_id"}) if key
                   else customers.select(agg).with_columns(pl.lit(PROVINCE).alias("entity_id")))
        grouped = grouped.drop_nulls("entity_id")
        if level in names:
            grouped = grouped.join(names[level], on="entity_id", how="left")
        else:
            grouped = grouped.with_columns(pl.col("entity_id").alias("entity_name"))
        if level == "feeder":
            grouped = grouped.join(per_feeder.rename({"feeder_id": "entity_id"}),
                                   on="entity_id", how="left")
        else:
            grouped = grouped.with_columns(pl.lit(None, pl.UInt32).alias("findings"))
        frames.append(grouped.with_columns(pl.lit(level).alias("level")))
    cards = pl.concat(frames, how="diagonal_relaxed")
    return cards.with_columns(
        pl.mean_horizontal(*SCORES).alias("overall"),
        pl.struct("customers", *(f"failing_{s}" for s in SCORES), "findings")
        .struct.json_encode().alias("counts"),
    ).select("level", "entity_id", "entity_name", *SCORES, "overall", "counts")


def store_scorecards(conn: Connection, run_id: int, cards: pl.DataFrame) -> int:
    """Insert ``cards`` as the scorecards of audit run ``run_id``."""
    return bulk_insert(conn, "scorecards",
                       cards.with_columns(pl.lit(run_id).alias("audit_run_id")))


TREND_SQL = (
    "SELECT s.audit_run_id, {started}, s.level, s.entity_id, s.completeness, s.accuracy, "
    "s.timeliness, s.overall FROM scorecards s JOIN audit_runs r ON r.id = s.audit_run_id "
    "WHERE r.status = 'succeeded' AND s.level IN ('province', 'region') ORDER BY s.audit_run_id"
)


def trend(conn: Connection) -> pl.DataFrame:
    """Province and region scores of every succeeded audit run, oldest first."""
    started = ("to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
               if conn.dialect.name == "postgresql" else "substr(r.started_at, 1, 16)")
    return read_frame(conn, TREND_SQL.format(started=started), {
        "audit_run_id": pl.Int64, "started_at": pl.Utf8, "level": pl.Utf8,
        "entity_id": pl.Utf8, "completeness": pl.Float64, "accuracy": pl.Float64,
        "timeliness": pl.Float64, "overall": pl.Float64})

