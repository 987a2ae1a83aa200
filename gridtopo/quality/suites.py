"""Great Expectations suites over the stored model, run as one checkpoint per audit.

Five suites, one per dimension the regime names (完整性、准确性、时效性 plus validity and
uniqueness), validate frames the audit has already read:

============  ================================================================================
suite         expectations
============  ================================================================================
completeness  customers have an area, a transformer, a feeder and a station (the chain
              completion rate, ``mostly`` = 0.99); transformers a feeder; feeders a station
validity      coordinates inside the territory box; status, capacity and kVA value domains
uniqueness    customer ids, meter numbers, transformer ids and area codes are unique
consistency   a customer's 线路名称 names the feeder of its transformer (``mostly`` 0.99)
timeliness    records are younger than ``record_stale.max_age_days`` (``mostly`` 0.95)
============  ================================================================================

**Full vs sampled.** Transformers, areas and feeders (≈ 0.2 M rows province-wide) are validated
in full. Customers (14.3 M) are validated on a uniform random sample of ``gx_sample`` rows
(default 200,000; seed fixed, so runs compare): GX's pandas engine would need minutes and
gigabytes for the full table, while the audit's own rules check every customer. The sample
size and population are recorded with the results.

Frames are written as Parquet under the GX project (``<report dir>/gx/data``) and read through a
pandas filesystem data source; with a report the project is a file context and its data docs
are built next to the report (``gx/uncommitted/data_docs/local_site/index.html``).

>>> from gridtopo.quality.config import load_config
>>> from gridtopo.quality.facts import Facts
>>> from gridtopo.quality.model import load_model
>>> summary = run_suites(Facts.of(load_model(engine), load_config(None)), Path("gx"))
>>> sorted(summary["suites"]), summary["sampled"], Path(summary["data_docs"]).exists()
(['completeness', 'consistency', 'timeliness', 'uniqueness', 'validity'], False, True)
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from gridtopo.clock import naive_utc
from gridtopo.quality.facts import Facts
from gridtopo.reconcile.names import same_name

SEED = 20241231
DOCS_INDEX = "uncommitted/data_docs/local_site/index.html"


def _frames(facts: Facts) -> tuple[dict[str, pl.DataFrame], int]:
    """The frames GX validates: a customer sample with its chain, and the small tables."""
    m, cfg = facts.model, facts.config
    population = facts.customers.height
    sample = (facts.customers.sample(n=cfg.gx_sample, seed=SEED)
              if population > cfg.gx_sample else facts.customers)
    now = naive_utc(cfg.now)
    customers = sample.join(
        m.feeders.select("feeder_id", pl.col("feeder_name").alias("chain_name")),
        on="feeder_id", how="left",
    ).select(
        "customer_id", "area_code", "meter_id", "contract_kva", "status", "lon", "lat",
        "transformer_id", "feeder_id", "station_id",
        (pl.lit(now) - pl.col("updated_at")).dt.total_days().alias("age_days"),
        (pl.col("feeder_name").is_null() | (pl.col("feeder_name") == pl.col("feeder_id"))
         | same_name("feeder", pl.col("feeder_name"), pl.col("chain_name")))
        .alias("feeder_name_consistent"),
    )
    transformers = facts.transformers.select(
        "transformer_id", "linked_feeder", "capacity_kva", "status", "lon", "lat",
        (pl.lit(now) - pl.col("updated_at")).dt.total_days().alias("age_days"))
    areas = m.areas.select("area_code", "capacity_kva",
                           (pl.lit(now) - pl.col("updated_at")).dt.total_days()
                           .alias("age_days"))
    feeders = m.feeders.join(m.feeder_links.rename({"from_id": "feeder_id",
                                                    "to_id": "linked_station"}),
                             on="feeder_id", how="left").select("feeder_id", "linked_station")
    return ({"customers": customers, "transformers": transformers, "areas": areas,
             "feeders": feeders}, population)


def _expectations(facts: Facts) -> dict[str, dict[str, list[Any]]]:
    """suite → table → expectations."""
    import great_expectations.expectations as gxe

    x0, y0, x1, y1 = facts.config.territory
    max_age = facts.config.threshold("record_stale", "max_age_days")

    def in_box() -> list[Any]:
        return [gxe.ExpectColumnValuesToBeBetween(column="lon", min_value=x0, max_value=x1),
                gxe.ExpectColumnValuesToBeBetween(column="lat", min_value=y0, max_value=y1)]

    def fresh() -> list[Any]:
        return [gxe.ExpectColumnValuesToBeBetween(column="age_days", max_value=max_age,
                                                  mostly=0.95)]

    return {
        "completeness": {
            "customers": [gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=0.99)
                          for c in ("area_code", "transformer_id", "feeder_id", "station_id")],
            "transformers": [gxe.ExpectColumnValuesToNotBeNull(column="linked_feeder",
                                                                mostly=0.99)],
            "feeders": [gxe.ExpectColumnValuesToNotBeNull(column="linked_station")],
        },
        "validity": {
            "customers": [*in_box(),
                          gxe.ExpectColumnValuesToBeInSet(column="status",
                                                          value_set=["active", "closed"]),
                          gxe.ExpectColumnValuesToBeBetween(column="contract_kva", min_value=0)],
            "transformers": [*in_box(),
                             gxe.ExpectColumnValuesToBeInSet(column="status",
                                                             value_set=["in_service",
                                                                        "retired"]),
                             gxe.ExpectColumnValuesToBeBetween(column="capacity_kva",
                                                               min_value=0,
                                                               strict_min=True)],
        },
        "uniqueness": {
            "customers": [gxe.ExpectColumnValuesToBeUnique(column="customer_id"),
                          gxe.ExpectColumnValuesToBeUnique(column="meter_id")],
            "transformers": [gxe.ExpectColumnValuesToBeUnique(column="transformer_id")],
            "areas": [gxe.ExpectColumnValuesToBeUnique(column="area_code")],
        },
        "consistency": {
            "customers": [gxe.ExpectColumnValuesToBeInSet(column="feeder_name_consistent",
                                                          value_set=[True], mostly=0.99)],
        },
        "timeliness": {"customers": fresh(), "transformers": fresh(), "areas": fresh()},
    }


def _summary(result: Any) -> dict[str, Any]:
    """Compact JSON of one validation result: per expectation its outcome and counts."""
    expectations = []
    for r in result.results:
        config = r.expectation_config
        expectations.append({
            "expectation": config.type, "column": config.kwargs.get("column"),
            "success": bool(r.success),
            "element_count": r.result.get("element_count"),
            "unexpected_count": r.result.get("unexpected_count"),
        })
    stats = result.statistics
    return {"success": bool(result.success),
            "evaluated": int(stats["evaluated_expectations"]),
            "successful": int(stats["successful_expectations"]),
            "expectations": expectations}


def run_suites(facts: Facts, project_dir: Path | None = None) -> dict[str, Any]:
    """Run every suite as one checkpoint; return a JSON summary (stored with the audit run).

    With ``project_dir`` the GX project (suites, results, data docs) is kept there; without,
    an ephemeral context on a temporary directory is used and discarded.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    for name in ("great_expectations", "tqdm"):
        logging.getLogger(name).setLevel(logging.ERROR)
    frames, population = _frames(facts)
    with tempfile.TemporaryDirectory(prefix="gridtopo-gx-") as scratch:
        context: Any
        if project_dir is not None:
            project_dir.mkdir(parents=True, exist_ok=True)
            context = gx.get_context(mode="file", project_root_dir=project_dir)
            root = Path(context.root_directory)
        else:
            context = gx.get_context(mode="ephemeral")
            root = Path(scratch)
        context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
        data = root / "data"
        data.mkdir(parents=True, exist_ok=True)
        for table, frame in frames.items():
            frame.write_parquet(data / f"{table}.parquet")
        source = context.data_sources.add_or_update_pandas_filesystem(
            "gridtopo_model", base_directory=data)
        definitions = []
        for suite_name, tables in _expectations(facts).items():
            for table, expectations in tables.items():
                try:
                    asset = source.get_asset(table)
                except LookupError:
                    asset = source.add_parquet_asset(table)
                batch = (asset.get_batch_definition("file") if asset.batch_definitions
                         else asset.add_batch_definition_path("file", f"{table}.parquet"))
                suite = context.suites.add_or_update(gx.ExpectationSuite(
                    name=f"{suite_name}.{table}", expectations=expectations))
                definitions.append(context.validation_definitions.add_or_update(
                    gx.ValidationDefinition(name=f"{suite_name}.{table}", data=batch,
                                            suite=suite)))
        actions: list[Any] = ([gx.checkpoint.UpdateDataDocsAction(name="data_docs")]
                   if project_dir is not None else [])
        checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name="gridtopo_audit", validation_definitions=definitions, actions=actions,
            result_format="SUMMARY"))
        result = checkpoint.run()
    suites: dict[str, Any] = {}
    for run in result.run_results.values():
        suite_name, _, table = run.suite_name.partition(".")
        entry = suites.setdefault(suite_name, {"success": True, "tables": {}})
        entry["tables"][table] = _summary(run)
        entry["success"] = entry["success"] and bool(run.success)
    return {
        "success": bool(result.success),
        "customers_validated": frames["customers"].height,
        "customers_population": population,
        "sampled": frames["customers"].height < population,
        "data_docs": str(root / DOCS_INDEX) if project_dir is not None else None,
        "suites": suites,
    }
