"""The partitioned pipeline (in this process) gives the single-machine answer on the same
sources: regions of a generated province with rows exported across regions."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, text

from gridtopo.ingest import read_sources
from gridtopo.partitions import PartitionedRun, PartitionOverlapError, partitions_of
from gridtopo.pipeline import ingest
from gridtopo.reconcile.links import reconcile
from tests.partitioned_sources import (
    PARTS,
    accounts,
    assert_same_reconciliation,
    make_regions,
    quarantine_rows,
    sorted_frame,
)


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_regions(tmp_path_factory.mktemp("partitioned"))


@pytest.fixture(scope="module")
def decisions(regions: Path) -> pl.DataFrame:
    """Steward decisions on entities of two partitions, and one on an entity none exports."""
    bundle = read_sources(regions / "part-01")
    customer = bundle.tables["customers"].frame["customer_id"][0]
    area = bundle.tables["transformer_areas"].frame["area_code"][0]
    feeder = read_sources(regions / "part-02").tables["feeders"].frame["feeder_id"][0]
    return pl.DataFrame({
        "link_kind": ["customer_transformer", "area_transformer", "feeder_station",
                      "transformer_feeder"],
        "entity_id": [customer, area, feeder, "PB-NOWHERE"],
        "decision": ["none", "none", "BDZ-0001", "XL-000001"],
    })


def test_partitions_are_the_subdirectories_with_exports(regions: Path) -> None:
    assert list(partitions_of(regions)) == [f"part-{i:02d}" for i in range(PARTS)]
    assert partitions_of(regions / "part-00") == {str(regions / "part-00"): regions / "part-00"}


def test_same_links_unlinked_and_quarantine_as_one_machine(regions: Path,
                                                           decisions: pl.DataFrame) -> None:
    single_bundle = read_sources(regions)
    single = reconcile({n: t.frame for n, t in single_bundle.tables.items()}, decisions)
    run = PartitionedRun()
    try:
        bundle = run.read(regions)
        result = run.reconcile({n: t.frame for n, t in bundle.tables.items()}, decisions)
        # the sources do have facts crossing partitions, and the second step resolved them
        halo = list(run.stage.glob("partition=*/halo.*.parquet"))
        assert {p.name.split(".")[2] for p in halo} == {"edges", "transformers", "customers"}
        assert sum(pl.read_parquet(p).height for p in halo) > 100
        assert run.ctx.shared["feeders"].height == single_bundle.tables["feeders"].frame.height
    finally:
        run.close()
    assert_same_reconciliation(single, result)
    assert "steward" in result.summary["feeder_station"]["by_method"]
    assert accounts(bundle) == accounts(single_bundle)
    assert quarantine_rows(bundle).equals(quarantine_rows(single_bundle))
    for name, table in single_bundle.tables.items():
        mine = bundle.tables[name].frame.drop("_file")
        assert sorted_frame(mine.cast({c: pl.Utf8 for c, d in mine.schema.items()
                                       if d == pl.Categorical})).equals(
            sorted_frame(table.frame.drop("_file").cast(
                {c: pl.Utf8 for c, d in table.frame.schema.items() if d == pl.Categorical})))


def test_areas_competing_across_partitions_are_assigned_by_the_driver(regions: Path) -> None:
    """A transformer that areas of two partitions both consider is assigned in one piece:
    without it, each partition could give it to its own area."""
    run = PartitionedRun()
    try:
        bundle = run.read(regions)
        run.reconcile({n: t.frame for n, t in bundle.tables.items()})
        considered = pl.concat([
            pl.read_parquet(p).select("transformer_id").unique()
            for p in sorted(run.stage.glob("partition=*/candidates.parquet"))])
        assert considered["transformer_id"].is_duplicated().any()
    finally:
        run.close()


def test_a_key_in_two_partitions_is_refused(regions: Path, tmp_path: Path) -> None:
    for part, distribution in (("a", "part-00"), ("b", "part-01")):
        for relative, origin in (("marketing/customers.csv", "part-00"),
                                 ("distribution/feeders.csv", distribution)):
            (tmp_path / part / relative).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / part / relative).write_bytes((regions / origin / relative).read_bytes())
    run = PartitionedRun()
    try:
        with pytest.raises(PartitionOverlapError, match=r"customers \S+ is exported by "
                                                        r"partitions a, b"):
            run.read(tmp_path)
    finally:
        run.close()


def test_partitioned_ingest_loads_the_same_model(engine: Engine, regions: Path) -> None:
    run = PartitionedRun()
    try:
        report = ingest(engine, regions, reader=run.read, reconciler=run.reconcile)
    finally:
        run.close()
    single = reconcile({n: t.frame for n, t in read_sources(regions).tables.items()})
    assert report.status == "loaded"
    assert report.reconciliation == single.summary
    with engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT count(*), count(transformer_id) FROM customers")).one()
        links = conn.execute(text("SELECT count(*) FROM links")).scalar_one()
    assert stored == (report.loaded["customers"],
                      single.summary["customer_transformer"]["linked"])
    assert links == single.links.height
