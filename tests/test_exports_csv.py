"""CSV bundle: re-imports through ingest to the same model; masking; refusal; a full disk."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine, text

from gridtopo.db import open_engine
from gridtopo.db.load import LOAD_ORDER
from gridtopo.db.read.scope import Scope
from gridtopo.errors import OutputExistsError
from gridtopo.exports.csv import export_csv
from gridtopo.ingest.tables import TABLES
from gridtopo.pipeline import ingest
from tests.conftest import _create_pg_database, _drop_pg_database, _pg_url


@pytest.fixture
def second_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A second fresh, migrated database on ``backend`` (beside ``model_db_url``)."""
    if backend == "sqlite":
        path = tmp_path / "reimport.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    admin = request.getfixturevalue("pg_admin")
    name = _create_pg_database(admin, template=request.getfixturevalue("pg_template"))
    try:
        yield _pg_url(name)
    finally:
        _drop_pg_database(admin, name)


def model_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every source table's content (geometry as WKT) and the decided links, sorted."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in LOAD_ORDER:
            columns = [f.name for f in TABLES[table].fields
                       if f.name not in ("lon", "lat", "geometry", "customer_name", "address",
                                         "phone")]
            geom = ", ST_AsText(geom)" if table not in ("feeders", "transformer_areas") else ""
            sql = f'SELECT {", ".join(columns)}{geom} FROM {table} ORDER BY 1'
            rows[table] = [tuple(r) for r in conn.execute(text(sql))]
        rows["customer_personal"] = [tuple(r) for r in conn.execute(text(
            "SELECT customer_id, customer_name, address, phone FROM customer_personal "
            "ORDER BY 1"))]
        rows["links"] = [tuple(r) for r in conn.execute(text(
            "SELECT kind, from_id, to_id, method FROM links ORDER BY 1, 2"))]
    return rows


def test_csv_reimports_to_the_same_model(model_engine: Engine, second_db_url: str,
                                         tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    counts = export_csv(model_engine, out, personal=True)
    assert counts["customers.csv"] == counts["customer_links.csv"] > 0
    copy = open_engine(second_db_url)
    report = ingest(copy, out)
    assert report.totals["rows_quarantined"] == 0
    assert "chain" not in {f["table"] for f in report.files}
    before, after = model_rows(model_engine), model_rows(copy)
    for table, rows in before.items():
        assert after[table] == rows, table
    copy.dispose()


def test_masking_filters_and_refusal(model_engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "masked"
    reports: list[tuple[str, int, int]] = []
    counts = export_csv(model_engine, out, progress=lambda *r: reports.append(r))
    last = {stage: (done, total) for stage, done, total in reports}
    assert last["export customers.csv"] == (counts["customers.csv"],) * 2
    customers = pl.read_csv(out / "customers.csv", infer_schema=False)
    names = customers["customer_name"].drop_nulls()
    assert names.str.ends_with("**").all()
    assert customers["phone"].drop_nulls().str.contains(r"^\d{3}\*{4}\d{4}$").all()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_csv(model_engine, out)
    feeder = pl.read_csv(out / "feeders.csv", infer_schema=False)["feeder_id"][0]
    scoped = export_csv(model_engine, out, Scope(feeders=(feeder,)), overwrite=True)
    edges = pl.read_csv(out / "edges.csv", infer_schema=False)
    assert set(edges["feeder_id"]) == {feeder} and scoped["edges.csv"] == edges.height
    chain = pl.read_csv(out / "customer_links.csv", infer_schema=False)
    assert set(chain["feeder_id"].drop_nulls()) <= {feeder}


def test_full_disk_leaves_no_file_under_the_final_name(
    model_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "full"
    real = pl.DataFrame.write_csv

    def failing(self: pl.DataFrame, file: Any = None, **kwargs: Any) -> Any:
        if kwargs.get("include_header") is False and "area_code" in self.columns \
                and "meter_id" in self.columns:  # the disk fills up within customers.csv
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, file, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_csv", failing)
    with pytest.raises(OSError, match="No space left"):
        export_csv(model_engine, out)
    monkeypatch.undo()
    written = sorted(p.name for p in out.iterdir())
    assert not [n for n in written if n.startswith(".")], written  # no partial file left
    assert written == ["edges.csv", "feeders.csv", "stations.csv", "transformer_areas.csv",
                       "transformers.csv"]  # complete files before it; customers.csv never
