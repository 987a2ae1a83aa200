"""The load model of the exports that compute: a demand per distribution transformer.

Two models (``--load-model``):

* ``contract`` (default): the sum over the transformer's active customers (linked by
  reconciliation, ``customers.transformer_id``) of ``contract_kva`` × the **coincidence
  factor** of the customer's class, capped by the transformer's rating. A transformer with no
  linked active customer (an unlinked 台区, a transformer the marketing system does not know)
  falls back to the ``rating`` model, so its feeder is not shown lighter than it is.
* ``rating``: rating × :data:`UTILISATION` for every in-service transformer.

Customer classes, from ``voltage_class`` (else ``phase``), with their coincidence factor (the
share of the summed contract capacity expected at the transformer's peak) and power factor:

==============  ===========================================  ===========  ============
class           customers                                    coincidence  power factor
==============  ===========================================  ===========  ============
residential     220 V, single phase (A, B or C)              0.30         0.95
low_voltage     380 V / 0.4 kV, three phase (ABC)            0.50         0.90
medium_voltage  10 kV and above (a dedicated transformer)    0.60         0.90
unknown         no voltage class or phase                    0.40         0.92
==============  ===========================================  ===========  ============

These are planning assumptions of the usual order for Chinese distribution networks
(households draw about a third of their contracted kVA at the coincident peak; commercial and
dedicated industrial customers more), not measurements: where metered peaks exist, they should
replace this model. Retired transformers carry no load.

>>> customer_class("220V", "A"), customer_class("380V", None), customer_class("10kV", "ABC")
('residential', 'low_voltage', 'medium_voltage')
>>> customer_class(None, "ABC"), customer_class("", None)
('low_voltage', 'unknown')
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import polars as pl
from sqlalchemy import Connection, Select, func, or_, select

from gridtopo.db.read.asof import versioned
from gridtopo.db.read.scope import View
from gridtopo.exports import layers

LoadModel = Literal["contract", "rating"]
LOAD_MODELS: tuple[LoadModel, ...] = ("contract", "rating")
UTILISATION = 0.4
"""Peak load as a share of the rating in the ``rating`` model (and the fallback)."""

COINCIDENCE = {"residential": 0.30, "low_voltage": 0.50, "medium_voltage": 0.60,
               "unknown": 0.40}
POWER_FACTOR = {"residential": 0.95, "low_voltage": 0.90, "medium_voltage": 0.90,
                "unknown": 0.92}
RATING_POWER_FACTOR = 0.92

_VOLTS = re.compile(r"(\d+(?:\.\d+)?)\s*(k?)v", re.IGNORECASE)

DEMAND_SCHEMA: layers.Schema = {"transformer_id": pl.Utf8, "p_mw": pl.Float64,
                                "q_mvar": pl.Float64, "customers": pl.Int64,
                                "load_source": pl.Utf8}
_GROUP_SCHEMA: layers.Schema = {"transformer_id": pl.Utf8, "voltage_class": pl.Utf8,
                                "phase": pl.Utf8, "customers": pl.Int64,
                                "contract_kva": pl.Float64}


def customer_class(voltage_class: str | None, phase: str | None) -> str:
    """The class of a customer (see the module doc) from its voltage class and phase."""
    match = _VOLTS.search(voltage_class or "")
    if match:
        volts = float(match.group(1)) * (1000 if match.group(2) else 1)
        if volts >= 1000:
            return "medium_voltage"
        return "low_voltage" if volts >= 300 else "residential"
    phase = (phase or "").strip().upper()
    if phase == "ABC":
        return "low_voltage"
    return "residential" if phase in ("A", "B", "C") else "unknown"


def _groups(view: View) -> Select[Any]:
    """Active customers with a reconciled transformer, summed per transformer, voltage class
    and phase (a few rows per transformer, whatever the number of customers)."""
    c = versioned("customers", view.run)
    query = (
        select(c.c.transformer_id, c.c.voltage_class, c.c.phase,
               func.count().label("customers"), func.sum(c.c.contract_kva).label("contract_kva"))
        .where(c.c.transformer_id.is_not(None),
               or_(c.c.status.is_(None), c.c.status == "active"))
        .group_by(c.c.transformer_id, c.c.voltage_class, c.c.phase)
        .order_by(c.c.transformer_id)
    )
    if view.feeder_ids is not None or view.bbox is not None:
        in_scope = layers.transformers(view, None).subquery()
        query = query.where(c.c.transformer_id.in_(select(in_scope.c.transformer_id)))
    return query


def _q(p: pl.Expr, power_factor: pl.Expr | float) -> pl.Expr:
    if isinstance(power_factor, float):
        return p * math.tan(math.acos(power_factor))
    return p * power_factor.arccos().tan()


def transformer_demand(conn: Connection, view: View, transformers: pl.DataFrame,
                       model: LoadModel = "contract") -> pl.DataFrame:
    """``transformer_id, p_mw, q_mvar, customers, load_source`` for every in-service
    transformer of ``transformers`` (a frame with ``transformer_id``, ``capacity_kva``,
    ``status``); ``load_source`` is ``contract`` or ``rating``."""
    if model not in LOAD_MODELS:
        raise ValueError(f"load model {model!r}: expected one of {', '.join(LOAD_MODELS)}")
    live = transformers.filter(pl.col("status") == "in_service").select(
        "transformer_id", rating_kva=pl.col("capacity_kva"))
    rating_p = pl.col("rating_kva").fill_null(0.0) * UTILISATION / 1000
    by_rating = live.with_columns(p_mw=rating_p, q_mvar=_q(rating_p, RATING_POWER_FACTOR))
    if model == "rating":
        return by_rating.select("transformer_id", "p_mw", "q_mvar",
                                customers=pl.lit(0, pl.Int64), load_source=pl.lit("rating"))
    frames = list(layers.iter_frames(conn, _groups(view), _GROUP_SCHEMA))
    groups = pl.concat(frames) if frames else pl.DataFrame(schema=_GROUP_SCHEMA)
    classes = groups.select("voltage_class", "phase").unique().with_columns(
        cls=pl.struct("voltage_class", "phase").map_elements(
            lambda r: customer_class(r["voltage_class"], r["phase"]), return_dtype=pl.Utf8))
    factors = pl.DataFrame({"cls": list(COINCIDENCE),
                            "coincidence": list(COINCIDENCE.values()),
                            "power_factor": [POWER_FACTOR[k] for k in COINCIDENCE]})
    per_class = (groups.join(classes, on=["voltage_class", "phase"], how="left", nulls_equal=True)
                 .join(factors, on="cls")
                 .with_columns(p_kw=pl.col("contract_kva").fill_null(0.0) * pl.col("coincidence")))
    summed = per_class.group_by("transformer_id").agg(
        customers=pl.col("customers").sum(), p_kw=pl.col("p_kw").sum(),
        q_kvar=_q(pl.col("p_kw"), pl.col("power_factor")).sum())
    demand = live.join(summed, on="transformer_id", how="left")
    capped = pl.min_horizontal("p_kw", pl.col("rating_kva").fill_null(float("inf")))
    scale = pl.when(pl.col("p_kw") > 0).then(capped / pl.col("p_kw")).otherwise(0.0)
    by_contract = demand.with_columns(p_mw=capped / 1000, q_mvar=pl.col("q_kvar") * scale / 1000)
    fallback = pl.col("customers").is_null() | (pl.col("p_kw") <= 0)
    return (by_contract.join(by_rating.select("transformer_id", rating_p_mw="p_mw",
                                              rating_q_mvar="q_mvar"), on="transformer_id")
            .select("transformer_id",
                    p_mw=pl.when(fallback).then("rating_p_mw").otherwise("p_mw"),
                    q_mvar=pl.when(fallback).then("rating_q_mvar").otherwise("q_mvar"),
                    customers=pl.col("customers").fill_null(0).cast(pl.Int64),
                    load_source=pl.when(fallback).then(pl.lit("rating"))
                    .otherwise(pl.lit("contract"))))
