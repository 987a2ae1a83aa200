"""The partitioned pipeline on Apache Spark (``local[2]``) gives the single-machine answer on
the same sources, and ``gridtopo ingest --engine spark`` loads the same model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from gridtopo.cli import main
from gridtopo.db.engine import open_engine
from gridtopo.ingest import read_sources
from gridtopo.partitions import PartitionedRun
from gridtopo.reconcile.links import reconcile
from tests.partitioned_sources import accounts, assert_same_reconciliation, make_regions

pytestmark = pytest.mark.slow
pyspark = pytest.importorskip("pyspark")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from gridtopo.spark import spark_session

    session = spark_session("local[2]", "gridtopo-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_regions(tmp_path_factory.mktemp("spark"))


def test_spark_reconciles_as_one_machine(spark: Any, regions: Path) -> None:
    from gridtopo.spark import SparkExecutor

    single_bundle = read_sources(regions)
    single = reconcile({n: t.frame for n, t in single_bundle.tables.items()})
    run = PartitionedRun(SparkExecutor(spark))
    try:
        bundle = run.read(regions)
        result = run.reconcile({n: t.frame for n, t in bundle.tables.items()})
    finally:
        run.close()
    assert_same_reconciliation(single, result)
    assert accounts(bundle) == accounts(single_bundle)


def test_ingest_engine_spark_loads_the_same_model(spark: Any, regions: Path,
                                                  tmp_path: Path) -> None:
    """The command starts its own session (getOrCreate: the test's) and stops it at the end;
    the embedded default on the same sources stores the same links."""
    stored = {}
    for name, extra in (("embedded", []), ("spark", ["--engine", "spark", "--master",
                                                     "local[2]"])):
        url = f"sqlite:///{tmp_path / name}.db"
        result = CliRunner().invoke(main, ["--db", url, "ingest", str(regions), "--json",
                                           *extra])
        assert result.exit_code == 0, result.output
        engine = open_engine(url)
        with engine.connect() as conn:
            stored[name] = (
                conn.execute(text("SELECT kind, from_id, to_id, method, confidence, evidence "
                                  "FROM links ORDER BY 1, 2")).all(),
                conn.execute(text("SELECT customer_id, transformer_id, link_method, "
                                  "link_confidence FROM customers ORDER BY 1")).all(),
                conn.execute(text("SELECT count(*), sum(row_kept) FROM quarantined_rows"))
                .one(),
            )
        engine.dispose()
    assert stored["spark"] == stored["embedded"]
    assert len(stored["spark"][1]) > 10_000
