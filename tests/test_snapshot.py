"""Snapshots on both stores: list, --as-of (run id and date), diff, and their CLI errors.

One test per store ingests a second run on the shared 3,000-customer model — from the same
sources with one customer moved to another area, one removed, one transformer moved to the
other feeder and one switch normally opened — and checks everything against it (an ingest
costs seconds, so the scenarios share it).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select, text

from gridtopo.cli.main import main
from gridtopo.db import open_engine
from gridtopo.db.models import Link
from gridtopo.db.read.asof import SnapshotNotFoundError, list_snapshots, resolve_as_of
from gridtopo.exports.snapshot import diff


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _rewrite_gbk(path: Path, change: object) -> None:
    frame = pl.read_csv(io.StringIO(path.read_bytes().decode("gbk")), infer_schema=False)
    path.write_bytes(change(frame).write_csv().encode("gbk"))  # type: ignore[operator]


def modified_sources(sources: Path, out: Path, engine: Engine) -> dict[str, str]:
    """A copy of ``sources`` with the four changes; returns the ids involved."""
    shutil.copytree(sources, out)
    with engine.connect() as conn:
        links = {(k, f): t for k, f, t in conn.execute(select(Link.kind, Link.from_id,
                                                              Link.to_id))}
        links.update((("customer_transformer", c), t) for c, t in conn.execute(text(
            "SELECT customer_id, transformer_id FROM customers "
            "WHERE transformer_id IS NOT NULL")))
        feeders = [r[0] for r in conn.execute(text("SELECT feeder_id FROM feeders "
                                                   "ORDER BY feeder_id"))]
    customers = out / "marketing" / "customers.csv"
    frame = pl.read_csv(io.StringIO(customers.read_bytes().decode("gbk")), infer_schema=False)
    linked = frame.filter(pl.col("户号").map_elements(
        lambda c: ("customer_transformer", c) in links, return_dtype=pl.Boolean))
    mover, removed = linked["户号"][0], linked["户号"][1]
    old_area = linked["台区编号"][0]
    target = next(a for (k, a), t in sorted(links.items()) if k == "area_transformer"
                  and t != links[("customer_transformer", mover)] and a != old_area)
    _rewrite_gbk(customers, lambda f: f.filter(pl.col("户号") != removed).with_columns(
        pl.when(pl.col("户号") == mover).then(pl.lit(target)).otherwise(pl.col("台区编号"))
        .alias("台区编号")))
    transformers = out / "distribution" / "transformers.csv"
    tf = pl.read_csv(transformers, infer_schema=False)
    moved_tr = tf["transformer_id"][0]
    new_feeder = next(f for f in feeders if f != tf["feeder_id"][0])
    tf.with_columns(pl.when(pl.col("transformer_id") == moved_tr).then(pl.lit(new_feeder))
                    .otherwise(pl.col("feeder_id")).alias("feeder_id")).write_csv(transformers)
    edges_path = out / "distribution" / "edges.csv"
    edges = pl.read_csv(edges_path, infer_schema=False)
    switch = edges.filter(pl.col("kind") == "switch",
                          pl.col("normal_open").fill_null("false") != "true")["edge_id"][0]
    edges.with_columns(pl.when(pl.col("edge_id") == switch).then(pl.lit("true"))
                       .otherwise(pl.col("normal_open")).alias("normal_open")).write_csv(edges_path)
    return {"mover": mover, "removed": removed, "target_area": target,
            "transformer": moved_tr, "feeder": new_feeder, "switch": switch,
            "old_transformer": links[("customer_transformer", mover)],
            "new_transformer": links[("area_transformer", target)]}


def test_snapshots_as_of_and_diff(model_db_url: str, synthetic_sources: Path,
                                  tmp_path: Path) -> None:
    from gridtopo.pipeline import ingest

    engine = open_engine(model_db_url)
    ids = modified_sources(synthetic_sources, tmp_path / "run2", engine)
    ingest(engine, tmp_path / "run2")
    shots = list_snapshots(engine)
    assert len(shots) == 2
    first, second = (s.run_id for s in shots)
    assert shots[1].counts["customers"]["removed"] == 1

    # as-of: run id, a date (end of that day), a date-time between the two, and errors
    with engine.connect() as conn:
        assert resolve_as_of(conn, None) is None
        assert resolve_as_of(conn, str(first)) == first
        today = shots[1].created_at.date().isoformat()
        assert resolve_as_of(conn, today) == second
        between = shots[0].created_at + (shots[1].created_at - shots[0].created_at) / 2
        assert resolve_as_of(conn, between.isoformat()) == first
        with pytest.raises(SnapshotNotFoundError, match="precedes the first snapshot"):
            resolve_as_of(conn, (shots[0].created_at - dt.timedelta(days=1)).date().isoformat())
        with pytest.raises(SnapshotNotFoundError, match="neither a run id nor a date"):
            resolve_as_of(conn, "yesterday")

    # an export as of the first run holds the earlier rows
    old, new = tmp_path / "old", tmp_path / "new"
    assert run("--db", model_db_url, "export", "csv", str(old), "--as-of", str(first),
               "--personal").exit_code == 0
    assert run("--db", model_db_url, "export", "csv", str(new), "--personal").exit_code == 0
    old_customers = pl.read_csv(old / "customers.csv", infer_schema=False)
    new_customers = pl.read_csv(new / "customers.csv", infer_schema=False)
    assert ids["removed"] in old_customers["customer_id"].to_list()
    assert ids["removed"] not in new_customers["customer_id"].to_list()
    assert old_customers.height == new_customers.height + 1
    old_edges = pl.read_csv(old / "edges.csv", infer_schema=False)
    new_edges = pl.read_csv(new / "edges.csv", infer_schema=False)
    assert old_edges.filter(pl.col("edge_id") == ids["switch"])["normal_open"][0] == "false"
    assert new_edges.filter(pl.col("edge_id") == ids["switch"])["normal_open"][0] == "true"
    old_chain = pl.read_csv(old / "customer_links.csv", infer_schema=False)
    assert old_chain.filter(pl.col("customer_id") == ids["mover"])["transformer_id"][0] \
        == ids["old_transformer"]

    # diff, library and CLI (both directions)
    d = diff(engine, str(first), str(second))
    assert d.customers_removed["customer_id"].to_list() == [ids["removed"]]
    assert d.customers_added.height == 0
    assert d.customers_moved.rows() == [(ids["mover"], ids["old_transformer"],
                                         ids["new_transformer"])]
    assert d.transformers_moved["transformer_id"].to_list() == [ids["transformer"]]
    assert d.transformers_moved["to_feeder"].to_list() == [ids["feeder"]]
    assert d.switches_changed.select("edge_id", "normal_open_before", "normal_open_after"
                                     ).rows() == [(ids["switch"], False, True)]
    back = diff(engine, str(second), str(first))
    assert back.customers_added["customer_id"].to_list() == [ids["removed"]]
    assert back.customers_moved["to_transformer"].to_list() == [ids["old_transformer"]]
    result = run("--db", model_db_url, "snapshot", "diff", str(first), today, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["counts"]["customers_moved"] == 1
    assert report["switches_changed"][0]["edge_id"] == ids["switch"]
    human = run("--db", model_db_url, "snapshot", "diff", str(first), str(second))
    assert ids["mover"] in human.stdout and ids["switch"] in human.stdout

    listed = run("--db", model_db_url, "snapshot", "list", "--json")
    assert [s["run_id"] for s in json.loads(listed.stdout)] == [first, second]
    assert str(second) in run("--db", model_db_url, "snapshot", "list").stdout

    too_early = run("--db", model_db_url, "export", "csv", str(tmp_path / "x"), "--as-of",
                    "2000-01-01")
    assert too_early.exit_code == 2
    assert too_early.stderr.startswith("Error: --as-of 2000-01-01 precedes the first snapshot")
    assert run("--db", model_db_url, "snapshot", "diff", "0", str(second)).exit_code == 2
    engine.dispose()
