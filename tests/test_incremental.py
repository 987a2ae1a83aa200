"""Change-proportional ingest: a re-export and a change file give the model of a fresh ingest.

THE equivalence test: over a seeded sequence of random changes to generated sources (phones,
customers moving area, new and closed accounts, transformers moved between feeders, switches
and edges changed or removed, PMS ids changed), each step is applied to one database as a full
re-export (a) and to another as a change file (b), and compared with a fresh full ingest of the
same sources into an empty database (c): links, methods, confidences, customer links,
findings and outage answers of sampled devices — the last from the index each database keeps
up to date itself, never rebuilt for the comparison. Both stores.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine

from gridtopo.db import open_engine, upgrade
from gridtopo.db.models import SWITCHING_KINDS
from gridtopo.db.read.frames import read_frame
from gridtopo.db.runs import model_run
from gridtopo.errors import InputError
from gridtopo.pipeline import ingest
from gridtopo.quality.audit import run_audit
from gridtopo.quality.config import load_config, parse_now
from gridtopo.synthetic import generate
from gridtopo.topology import queries
from gridtopo.topology.index import build_index, index_dir, load_index, read_index
from tests.test_switching_index import same_arrays

FILES = {"customers": "marketing/customers.csv",
         "transformer_areas": "marketing/transformer_areas.csv",
         "stations": "distribution/stations.csv", "feeders": "distribution/feeders.csv",
         "edges": "distribution/edges.csv", "transformers": "distribution/transformers.csv"}
STEPS = 4


def read_export(folder: Path) -> dict[str, pl.DataFrame]:
    """Every table file of ``folder`` as text columns, exactly as written (key first)."""
    tables = {}
    for table, name in FILES.items():
        data = (folder / name).read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("gbk")
        tables[table] = pl.read_csv(text.encode(), infer_schema=False)
    return tables


def write_export(tables: dict[str, pl.DataFrame], folder: Path) -> None:
    for table, frame in tables.items():
        (folder / FILES[table]).parent.mkdir(parents=True, exist_ok=True)
        frame.write_csv(folder / FILES[table])


def write_change_file(old: dict[str, pl.DataFrame], new: dict[str, pl.DataFrame],
                      folder: Path) -> None:
    """The 增量 between two exports: changed and new rows, and the removed keys."""
    for table, frame in new.items():
        key = frame.columns[0]
        rows = frame.join(old[table], on=frame.columns, how="anti", nulls_equal=True)
        if rows.height:
            (folder / FILES[table]).parent.mkdir(parents=True, exist_ok=True)
            rows.write_csv(folder / FILES[table])
        gone = old[table].select(key).join(frame.select(key), on=key, how="anti")
        if gone.height:
            (folder / "deletions").mkdir(parents=True, exist_ok=True)
            gone.write_csv(folder / "deletions" / f"{table}.csv")


def _set(frame: pl.DataFrame, rows: list[int], column: str, values: list[str | None]
         ) -> pl.DataFrame:
    series = frame[column].to_list()
    for row, value in zip(rows, values, strict=True):
        series[row] = value
    return frame.with_columns(pl.Series(column, series, dtype=pl.Utf8))


def mutate(tables: dict[str, pl.DataFrame], rng: random.Random, step: int
           ) -> dict[str, pl.DataFrame]:
    """One day of changes in both systems (a few percent of the rows)."""
    t = dict(tables)
    customers = t["customers"]
    n = customers.height
    picks = rng.sample(range(n), max(4, n // 50))
    quarter = len(picks) // 4
    phones, moved = picks[:quarter], picks[quarter:2 * quarter]
    closed = picks[2 * quarter:3 * quarter]
    areas = t["transformer_areas"]["台区编号"].to_list()
    customers = _set(customers, phones, "联系电话",
                     [f"139{rng.randrange(10**8):08d}" for _ in phones])
    customers = _set(customers, moved, "台区编号", [rng.choice(areas) for _ in moved])
    customers = _set(customers, closed, "用户状态", ["销户" for _ in closed])
    removed = set(picks[3 * quarter:3 * quarter + max(1, quarter // 2)])
    new = customers[sorted(rng.sample(range(n), max(2, quarter)))].with_columns(
        (pl.lit(f"09{step}") + pl.col("户号").str.slice(3)).alias("户号"))
    customers = pl.concat([customers.filter(~pl.Series(
        [i in removed for i in range(n)])), new])
    t["customers"] = customers

    transformers = t["transformers"]
    feeders = t["feeders"]["feeder_id"].to_list()
    moved_t = rng.sample(range(transformers.height), max(2, transformers.height // 40))
    t["transformers"] = _set(transformers, moved_t, "feeder_id",
                             [rng.choice(feeders) for _ in moved_t])

    edges = t["edges"]
    switches = [i for i, k in enumerate(edges["kind"].to_list())
                if k in ("switch", "breaker", "load_break_switch", "disconnector")]
    flip = rng.sample(switches, max(1, len(switches) // 40))
    t["edges"] = _set(edges, flip, "normal_open",
                      ["false" if edges["normal_open"][i] == "true" else "true" for i in flip])
    lines = [i for i, k in enumerate(edges["kind"].to_list()) if k in ("line", "cable")]
    cut = set(rng.sample(lines, 1))
    t["edges"] = t["edges"].filter(~pl.Series([i in cut for i in range(edges.height)]))

    ta = t["transformer_areas"]
    ids = t["transformers"]["transformer_id"].to_list()
    repointed = rng.sample(range(ta.height), max(2, ta.height // 40))
    t["transformer_areas"] = _set(ta, repointed, "PMS设备编码",
                                  [rng.choice([*ids, None]) for _ in repointed])
    return t


def _fresh(url: str) -> Engine:
    engine = open_engine(url, create=True)
    upgrade(engine)
    return engine


def _model(engine: Engine) -> dict[str, object]:
    """Everything the equivalence compares, of ``engine``'s live model and its saved index."""
    with engine.connect() as conn:
        links = read_frame(conn, "SELECT kind, from_id, to_id, method, confidence FROM links",
                           {"kind": pl.Utf8, "from_id": pl.Utf8, "to_id": pl.Utf8,
                            "method": pl.Utf8, "confidence": pl.Float64})
        customers = read_frame(
            conn, "SELECT customer_id, transformer_id, link_method, link_confidence, status, "
            "area_code FROM customers",
            {"customer_id": pl.Utf8, "transformer_id": pl.Utf8, "link_method": pl.Utf8,
             "link_confidence": pl.Float64, "status": pl.Utf8, "area_code": pl.Utf8})
        phones = read_frame(conn, "SELECT customer_id, phone FROM customer_personal",
                            {"customer_id": pl.Utf8, "phone": pl.Utf8})
    audit = run_audit(engine, load_config(None, now=parse_now("2024-12-31")), gx=False)
    findings = audit.findings.select("rule", "entity_type", "entity_id", "severity")
    return {"links": links.sort(links.columns), "customers": customers.sort("customer_id"),
            "phones": phones.sort("customer_id"), "findings": findings.sort(findings.columns)}


def _answers(index: object, devices: list[str]) -> list[dict[str, object]]:
    answers = []
    for device in devices:
        result = queries.impact(index, [device]).to_dict()  # type: ignore[arg-type]
        answers.append({k: v for k, v in result.items() if k != "positions"})
    return answers


def _equal(left: dict[str, object], right: dict[str, object], label: str) -> None:
    for part, frame in right.items():
        other = left[part]
        assert isinstance(frame, pl.DataFrame) and isinstance(other, pl.DataFrame)
        extra = other.join(frame, on=frame.columns, how="anti", nulls_equal=True)
        missing = frame.join(other, on=frame.columns, how="anti", nulls_equal=True)
        assert other.equals(frame), f"{label}: {part} differ\nextra {extra}\nmissing {missing}"


def _url(backend: str, tmp_path: Path, name: str, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / name}.db"
    from tests.conftest import _create_pg_database, _drop_pg_database, _pg_url

    admin = request.getfixturevalue("pg_admin")
    database = _create_pg_database(admin)
    request.addfinalizer(lambda: _drop_pg_database(admin, database))
    return _pg_url(database)


def test_reexport_and_change_files_equal_a_fresh_ingest(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # PostgreSQL keeps index and sources in the working directory
    base = tmp_path / "day0"
    generate(base, 2000, seed=7)
    shutil.rmtree(base / "truth")
    exports = read_export(base)
    write_export(exports, base)  # the same rows, UTF-8: later days rewrite only what changed
    reexport = _fresh(_url(backend, tmp_path, "reexport", request))
    changes = _fresh(_url(backend, tmp_path, "changes", request))
    for engine in (reexport, changes):
        assert ingest(engine, base).status == "loaded"
        load_index(engine)  # saved: every later run must keep it up to date
    rng = random.Random(20261207)
    for step in range(1, STEPS + 1):
        new = mutate(exports, rng, step)
        full, delta = tmp_path / f"day{step}", tmp_path / f"changes{step}"
        write_export(new, full)
        write_change_file(exports, new, delta)
        exports = new
        a = ingest(reexport, full)
        b = ingest(changes, delta, changes=True)
        assert a.status == b.status == "loaded"
        assert {a.index, b.index} <= {"reattached", "switched", "rebuilt"}
        assert a.loaded["customers"] < len(new["customers"]) // 4  # only what changed
        fresh = _fresh(_url(backend, tmp_path, f"fresh{step}", request))
        ingest(fresh, full)
        truth = _model(fresh)
        fresh_index = build_index(fresh)
        devices = rng.sample([d.decode() for d in fresh_index.edge_ids.tolist()], 25)
        expected = _answers(fresh_index, devices)
        for label, engine in (("re-export", reexport), ("change file", changes)):
            _equal(_model(engine), truth, f"day {step}, {label}")
            kept = read_index(index_dir(engine))
            assert kept.meta["ingest_run"] == model_run(engine)
            assert _answers(kept, devices) == expected, f"day {step}, {label}: answers"
        fresh.dispose()
    # a re-export changes only what changed: the unchanged rows keep their first run
    with reexport.connect() as conn:
        kept_rows = conn.exec_driver_sql(
            "SELECT count(*) FROM customers WHERE valid_from_run = 1").scalar()
    assert kept_rows and kept_rows > 1000
    reexport.dispose()
    changes.dispose()


def test_a_switching_only_day_searches_again_only_the_trees_it_touches(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A day whose network changed only in its normal switching state (and in what the index
    does not hold, lengths) brings the saved index over by searching again only the touched
    trees; a lengths-only day just stamps it. Either way the kept index is, array for array,
    the one a fresh build of the model gives."""
    monkeypatch.chdir(tmp_path)
    base = tmp_path / "day0"
    generate(base, 2000, seed=11)
    shutil.rmtree(base / "truth")
    exports = read_export(base)
    write_export(exports, base)
    reexport = _fresh(_url(backend, tmp_path, "reexport", request))
    changes = _fresh(_url(backend, tmp_path, "changes", request))
    for engine in (reexport, changes):
        ingest(engine, base)
        load_index(engine)
    rng = random.Random(11)
    kinds = exports["edges"]["kind"].to_list()
    switches = [i for i, k in enumerate(kinds) if k in SWITCHING_KINDS]
    lines = [i for i, k in enumerate(kinds) if k in ("line", "cable")]
    for step, (flips, longer, expected) in enumerate([(6, 10, "switched"), (0, 10, "stamped")],
                                                      start=1):
        edges = exports["edges"]
        flip, grown = rng.sample(switches, flips), rng.sample(lines, longer)
        edges = _set(edges, flip, "normal_open",
                     ["false" if edges["normal_open"][i] == "true" else "true" for i in flip])
        edges = _set(edges, grown, "length_m",
                     [f"{float(edges['length_m'][i] or 0) + 1:.1f}" for i in grown])
        new = {**exports, "edges": edges}
        full, delta = tmp_path / f"day{step}", tmp_path / f"changes{step}"
        write_export(new, full)
        write_change_file(exports, new, delta)
        exports = new
        assert ingest(reexport, full).index == expected
        assert ingest(changes, delta, changes=True).index == expected
        for engine in (reexport, changes):
            kept = read_index(index_dir(engine))
            assert kept.meta["ingest_run"] == model_run(engine)
            same_arrays(kept, build_index(engine))
    reexport.dispose()
    changes.dispose()


def _base_model(backend: str, tmp_path: Path, request: pytest.FixtureRequest
                ) -> tuple[Engine, dict[str, pl.DataFrame]]:
    base = tmp_path / "base"
    generate(base, 500, seed=3)
    shutil.rmtree(base / "truth")
    engine = _fresh(_url(backend, tmp_path, "model", request))
    ingest(engine, base)
    return engine, read_export(base)


def test_a_bad_change_file_applies_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    engine, exports = _base_model(backend, tmp_path, request)
    before = _model(engine)
    run = model_run(engine)
    feeder = exports["transformers"]["feeder_id"][0]
    cases = {
        "unknown": ("customers", "户号", [exports["customers"]["户号"][5], "NO-SUCH-CUSTOMER"], 3,
                    "NO-SUCH-CUSTOMER"),
        "feeder": ("feeders", "feeder_id", [feeder], 2, feeder),
    }
    for name, (table, header, keys, line, named) in cases.items():
        folder = tmp_path / name
        changed = exports["customers"].head(3).with_columns(pl.lit("13900000000").alias("联系电话"))
        write_export({"customers": changed}, folder)
        (folder / "deletions").mkdir()
        pl.DataFrame({header: keys}).write_csv(folder / "deletions" / f"{table}.csv")
        with pytest.raises(InputError) as caught:
            ingest(engine, folder, changes=True)
        message = str(caught.value)
        assert f"deletions/{table}.csv:{line}" in message and named in message, message
        assert model_run(engine) == run
    _equal(_model(engine), before, "after refused change files")
    engine.dispose()


def test_cli_change_file_errors_exit_2_and_apply_applies(tmp_path: Path) -> None:
    base = tmp_path / "base"
    generate(base, 300, seed=5)
    db = f"sqlite:///{tmp_path / 'm.db'}"
    cli = [str(Path(sys.executable).parent / "gridtopo"), "--db", db]
    assert subprocess.run([*cli, "ingest", str(base)], capture_output=True).returncode == 0
    exports = read_export(base)
    folder = tmp_path / "bad"
    (folder / "deletions").mkdir(parents=True)
    pl.DataFrame({"edge_id": ["SB-NOPE"]}).write_csv(folder / "deletions" / "edges.csv")
    bad = subprocess.run([*cli, "ingest", "--changes", str(folder)], capture_output=True,
                         text=True)
    assert bad.returncode == 2, bad.stderr
    assert "deletions/edges.csv:2" in bad.stderr and "SB-NOPE" in bad.stderr
    good = tmp_path / "good"
    gone = exports["customers"]["户号"][0]
    (good / "deletions").mkdir(parents=True)
    pl.DataFrame({"户号": [gone]}).write_csv(good / "deletions" / "customers.csv")
    done = subprocess.run([*cli, "ingest", "--changes", str(good), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    engine = open_engine(db)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM customers WHERE customer_id = ?",
                                    (gone,)).scalar() == 0
    again = subprocess.run([*cli, "ingest", "--changes", str(good), "--json"],
                           capture_output=True, text=True)
    assert again.returncode == 0 and '"unchanged"' in again.stdout
    engine.dispose()
