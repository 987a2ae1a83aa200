"""Change-proportional ingest: a re-export or a change file (增量) costs what changed.

Both kinds of run end with the model a fresh full ingest of the same sources would give, by
construction: the run reconciles the **complete** canonical tables of the new sources — a
full re-export as read, or the kept tables of the last run (:mod:`gridtopo.db.sourcestate`)
with the change file applied — with the same :func:`~gridtopo.reconcile.reconcile`, then
writes only the rows whose content differs from what is stored
(:func:`gridtopo.db.delta.write_changes`), and re-attaches the query index instead of
rebuilding it when the network did not change (:mod:`gridtopo.topology.index.refresh`).

What a changed row can affect (the closure the write and the index follow, from
:mod:`gridtopo.reconcile.links`): a **station** the feeder→station links of the feeders naming
it and, through the station name, which feeder an area names; a **feeder** its station link,
the feeder links of transformers naming it or standing on nodes its edges own, the areas whose
feeder name matches its old or new name (that match is unique province-wide) and the supply
forest; an **edge** the feeder of its two end nodes, hence the transformers there; a
**transformer** its feeder link and the area candidates that name it (PMS id, its 营销台区编号,
name or nearness on its old and new feeder); an **area** its candidates; a **customer** its own
link and its old and new area's centroid, hence that area's spatial candidate. Areas are then
assigned one to one best score first, so a changed candidate reaches every area of its
connected component of the candidate graph, and every customer of an area whose link changed
is relinked. Reconciling that closure alone would need the candidate graph of the previous run;
the whole reconciliation costs about a second per million customers (``seconds.reconcile`` of
the report), so the run reconciles everything — identical to a fresh run by construction — and
makes the writes and the index proportional, which are what cost.

A **change file** is a folder in the usual layout — the same file names and headers as a full
export, any subset of the tables; a table that is absent did not change — whose rows are the new
and changed rows (新增和变更: a row whose key is stored replaces it whole, any other row is new),
plus, for removed rows (删除), one file per table under ``deletions/`` with the table's key
column (``deletions/customers.csv`` with ``customer_id`` or ``户号``, ``deletions/edges.csv``
with ``edge_id`` or ``设备编码``, …; UTF-8 or GBK). It is applied whole or not at all: a
deletion of a key that is not stored (or also listed as a changed row), or of a feeder that a
transformer still names, is an :class:`~gridtopo.errors.InputError` naming file, line and id,
and nothing of the file is applied.

>>> deletion_key("customers", ["户号"]), deletion_key("edges", ["edge_id"])
('customer_id', 'edge_id')
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import polars as pl
from sqlalchemy import Connection, Engine, text

from gridtopo import __version__
from gridtopo.db import versioning
from gridtopo.db.decisions import stored_decisions
from gridtopo.db.delta import DeltaResult, personal_hashes, write_changes
from gridtopo.db.load import LoadResult, model_frames, replace_frames
from gridtopo.db.sourcestate import KeptState, restamp_state, save_state, state_dir
from gridtopo.errors import InputError
from gridtopo.ingest import TABLES, Profile, SourceBundle, load_profile
from gridtopo.ingest.discover import discover
from gridtopo.ingest.encoding import sniff_encoding
from gridtopo.ingest.headers import alias_index, normalise_header
from gridtopo.ingest.textrows import sha256_of
from gridtopo.privacy import PERSONAL_FIELDS
from gridtopo.progress import ProgressCallback
from gridtopo.reconcile.links import Reconciliation
from gridtopo.topology.index.refresh import refresh_index

DELETIONS = "deletions"
"""Sub-folder of a change file that lists removed keys, one file per table."""


def deletion_key(table: str, header: Sequence[str]) -> str:
    """The key field of ``table`` that a deletion file's ``header`` names (its first column,
    by any alias of the input contract); :class:`InputError` otherwise."""
    key = TABLES[table].key
    if header and alias_index(TABLES[table]).get(normalise_header(header[0])) == key:
        return key
    raise InputError(f"deletions/{table}: the first column must be the key {key} of {table} "
                     f"(found {header[0] if header else 'no header'!r})")


@dataclass(frozen=True)
class Deletions:
    """Keys to remove per table, each with its file and line (for errors)."""

    keys: dict[str, pl.DataFrame]
    files: dict[str, Path]
    digest: str


def read_deletions(source: Path) -> Deletions:
    """The key lists of ``source/deletions/`` (see the module docstring)."""
    folder = source / DELETIONS
    keys: dict[str, pl.DataFrame] = {}
    files: dict[str, Path] = {}
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        table = path.stem
        if table not in TABLES:
            raise InputError(f"{path}: not a table name (one of {', '.join(TABLES)})")
        data = path.read_bytes()
        digest.update(f"{table}:".encode() + hashlib.sha256(data).digest())
        lines = data.decode(sniff_encoding(path, data[:65536], complete=len(data) <= 65536)
                            ).lstrip("\ufeff").splitlines()
        key = deletion_key(table, [c.strip() for c in lines[0].split(",")] if lines else [])
        values = [(line.split(",")[0].strip(), number)
                  for number, line in enumerate(lines[1:], start=2) if line.strip()]
        keys[table] = pl.DataFrame(values, schema={key: pl.Utf8, "_line": pl.Int64},
                                   orient="row")
        files[table] = path
    return Deletions(keys=keys, files=files, digest=digest.hexdigest())


def _refuse(path: Path, line: int, key: str, value: str, why: str) -> InputError:
    return InputError(f"{path}:{line}: {key} {value}: {why}; nothing of this change file was "
                      "applied")


def with_file_ids(tables: Mapping[str, pl.DataFrame], file_ids: Sequence[int]
                  ) -> dict[str, pl.DataFrame]:
    """``tables`` with ``_file`` (index into one run's files) replaced by the ingest-file id,
    so that rows of several runs can be mixed (:mod:`gridtopo.db.sourcestate`)."""
    return {name: frame.with_columns(
        pl.col("_file").replace_strict(list(range(len(file_ids))), list(file_ids),
                                       return_dtype=pl.Int64)) if "_file" in frame.columns
        else frame for name, frame in tables.items()}


def apply_changes(kept: KeptState, changed: Mapping[str, pl.DataFrame],
                  deletions: Deletions) -> dict[str, pl.DataFrame]:
    """The complete canonical tables after a change file: ``kept`` with the rows of
    ``changed`` replacing or joining theirs and the keys of ``deletions`` removed. A replaced
    row keeps its place, so that the tables read as a re-export of the same data would."""
    for table, keys in deletions.keys.items():
        key, path = TABLES[table].key, deletions.files[table]
        stored = kept.tables.get(table, pl.DataFrame(schema={key: pl.Utf8}))
        unknown = keys.join(stored.select(key), on=key, how="anti")
        if unknown.height:
            value, line = unknown.row(0)
            raise _refuse(path, line, key, value, f"no stored {table} row has this key")
        if table in changed:
            both = keys.join(changed[table].select(key), on=key, how="semi")
            if both.height:
                value, line = both.row(0)
                raise _refuse(path, line, key, value, "the change file also lists it as a "
                              "changed row")
    tables: dict[str, pl.DataFrame] = {}
    for table in kept.tables.keys() | changed.keys():
        key = TABLES[table].key
        frame = kept.tables.get(table)
        rows = changed.get(table)
        if rows is not None:
            rows = rows.drop([f for f in PERSONAL_FIELDS if f in rows.columns])
        if frame is None:
            frame = rows
        elif rows is not None:
            added = rows.join(frame.select(key), on=key, how="anti")
            frame = pl.concat([frame.update(rows, on=key, how="left", include_nulls=True),
                               added], how="diagonal_relaxed")
        assert frame is not None
        if table in deletions.keys:
            frame = frame.join(deletions.keys[table].select(key), on=key, how="anti")
        tables[table] = frame
    feeders = deletions.keys.get("feeders")
    if feeders is not None and "transformers" in tables:
        named = tables["transformers"].join(feeders, left_on="feeder_id", right_on="feeder_id",
                                            how="inner")
        if named.height:
            first = named.row(0, named=True)
            raise _refuse(deletions.files["feeders"], first["_line_right"], "feeder_id",
                          first["feeder_id"], f"transformer {first['transformer_id']} (and "
                          f"{named.height - 1} more) still names this feeder")
    return tables


def read_extract(reader: Callable[[Path, Profile | None, ProgressCallback | None],
                                  SourceBundle],
                 source: Path, profile: Profile | None, progress: ProgressCallback | None
                 ) -> SourceBundle:
    """The rows of a change file as ``reader`` reads a full export; none when the change file
    holds only deletions (a folder with no table file is an error only for a full export)."""
    if (source / DELETIONS).is_dir() and not any(
            p.is_file() for p in source.rglob("*") if DELETIONS not in p.relative_to(source).parts):
        return SourceBundle()
    return reader(source, profile, progress)


def fingerprint(files: Sequence[tuple[str, str, str]], profile: Path | None,
                decisions: pl.DataFrame) -> str:
    """Fingerprint of everything a run's model depends on: the files (``table, path,
    sha256``), the profile, the steward decisions and the gridtopo version."""
    digest = hashlib.sha256(__version__.encode())
    for table, _, sha in sorted(files, key=lambda f: (f[0], f[1])):
        digest.update(f"{table}:{sha}".encode())
    if profile is not None:
        digest.update(profile.read_bytes())
    digest.update(decisions.sort(decisions.columns).write_csv().encode())
    return digest.hexdigest()


def same_files(conn: Connection, source: Path, profile: Path | None, last: str | None
               ) -> bool:
    """Whether the files under ``source`` are byte for byte those of the run whose fingerprint
    is ``last`` (same profile and decisions): checked by checksum, before any file is parsed,
    so that an unchanged re-run costs reading the bytes once, not validating every row."""
    if last is None:
        return False
    found, _ = discover(source, load_profile(profile) if profile else None)
    files = [(table, str(f.path), sha256_of(f.path)) for table, inputs in found.items()
             for f in inputs]
    return fingerprint(files, profile, stored_decisions(conn)) == last


@dataclass(frozen=True)
class RunSources:
    """The complete canonical tables a run reconciles, the customers rows whose personal
    fields it read, the run's fingerprint and (for a change file) the extract's."""

    tables: dict[str, pl.DataFrame]
    personal: pl.DataFrame
    fingerprint: str
    extract: str | None


def carry_quarantine(conn: Connection, previous: int, run_id: int, replaced: pl.DataFrame
                     ) -> None:
    """Copy the quarantine of run ``previous`` to ``run_id``, but for the rows ``replaced``
    (``table_name, entity_id``: rows a change file lists, quarantines or deletes): the model
    after a change file is still made of the older rows, and so are their set-aside fields
    (the audit's ``field_unreadable`` findings) and refused rows, with their file and line."""
    columns = "file_id, line, field, value, rule, message, raw, row_kept, entity_id"
    with versioning.key_table(conn, replaced) as temporary:
        conn.execute(text(
            f"INSERT INTO quarantined_rows (run_id, {columns}) "
            f"SELECT :run, {', '.join('q.' + c.strip() for c in columns.split(','))} "
            "FROM quarantined_rows q JOIN ingest_files f ON f.id = q.file_id "
            f'WHERE q.run_id = :previous AND NOT EXISTS (SELECT 1 FROM "{temporary}" k '
            "WHERE k.table_name = f.table_name AND k.entity_id = q.entity_id) ORDER BY q.id"
        ), {"run": run_id, "previous": previous})


def prepare_sources(conn: Connection, run_id: int, bundle: SourceBundle,
                    file_ids: Sequence[int], kept: KeptState | None, source: Path,
                    fingerprint: str, last_fingerprint: str | None,
                    last_extract: str | None = None) -> RunSources:
    """What a run reconciles: a full export's tables as read, or with ``kept`` (a change
    file) the kept tables with the change applied — fingerprinted as the previous model plus
    the extract, so that applying the same extract twice is ``unchanged`` — and then the
    quarantine of the rows the change file leaves as they were carried over
    (:func:`carry_quarantine`)."""
    tables = with_file_ids({name: t.frame for name, t in bundle.tables.items()}, file_ids)
    personal = tables.get("customers", pl.DataFrame(schema={"customer_id": pl.Utf8}))
    if kept is None:
        return RunSources(tables, personal, fingerprint, None)
    deletions = read_deletions(source)
    extract = hashlib.sha256((fingerprint + deletions.digest).encode()).hexdigest()
    replaced = [
        *(frame.select(pl.lit(name).alias("table_name"),
                       pl.col(TABLES[name].key).alias("entity_id"))
          for name, frame in tables.items()),
        *(table.quarantine.select(pl.lit(name).alias("table_name"),
                                  pl.col("entity_id").cast(pl.Utf8))
          for name, table in bundle.tables.items() if "entity_id" in table.quarantine.columns),
        *(keys.select(pl.lit(name).alias("table_name"),
                      pl.col(TABLES[name].key).alias("entity_id"))
          for name, keys in deletions.keys.items()),
    ]
    carry_quarantine(conn, kept.run_id, run_id,
                     pl.concat(replaced).drop_nulls().unique() if replaced else
                     pl.DataFrame(schema={"table_name": pl.Utf8, "entity_id": pl.Utf8}))
    if extract == last_extract:  # applied already: the run is unchanged
        return RunSources(dict(kept.tables), personal.clear(), str(last_fingerprint), extract)
    return RunSources(apply_changes(kept, tables, deletions), personal,
                      hashlib.sha256((str(last_fingerprint) + extract).encode()).hexdigest(),
                      extract)


def load(
    conn: Connection,
    tables: Mapping[str, pl.DataFrame],
    reconciliation: Reconciliation,
    run_id: int,
    kept: KeptState | None,
    personal_known: pl.DataFrame,
    progress: ProgressCallback | None = None,
) -> tuple[LoadResult, KeptState, pl.DataFrame | None]:
    """Write the model of ``tables`` (``_file`` as ingest-file ids, :func:`with_file_ids`):
    only the difference when ``kept`` describes the stored model, else whole. Returns what
    was written and the state to keep for the next run. ``personal_known`` are the customers
    rows whose personal fields this run read (the whole customers table of a full export).
    The third value is the customers as the query index holds them, as just written (so that
    the index update need not read them back)."""
    ids = [int(i) for frame in tables.values() if "_file" in frame.columns
           for i in frame["_file"].drop_nulls().unique()]
    identity = list(range(max(ids, default=0) + 1))
    frames = model_frames(conn, tables, identity, reconciliation, run_id)
    present = [c for c in ("customer_id", *PERSONAL_FIELDS) if c in personal_known.columns]
    frames["customer_personal"] = personal_known.select(present)
    if kept is None:
        result = replace_frames(conn, frames, run_id, progress)
        personal = personal_hashes(frames["customer_personal"])
    else:
        delta: DeltaResult = write_changes(conn, frames, run_id, kept.nodes, kept.personal,
                                           progress)
        result, personal = delta.load, delta.personal
    state = KeptState(
        run_id=run_id,
        tables={name: frame.drop([f for f in PERSONAL_FIELDS if f in frame.columns])
                for name, frame in tables.items()},
        nodes=frames["nodes"], personal=personal)
    customers = frames["customers"]
    index_customers = customers.select(
        "customer_id", "transformer_id",
        (pl.col("status") != "closed").fill_null(True).cast(pl.Int8).alias("active"),
    ) if "status" in customers.columns else None
    return result, state, index_customers


def changed_tables(conn: Connection, result: LoadResult, run_id: int) -> tuple[set[str], bool]:
    """The versioned tables a load changed, and whether a feeder→station link did (those
    decide the supply sources of the index; the other links do not shape the network)."""
    changed = {name for name, counts in result.changes.items() if any(counts.values())}
    if "links" not in changed:
        return changed, False
    moved = conn.execute(text(
        "SELECT (SELECT count(*) FROM links WHERE kind = 'feeder_station' AND "
        "valid_from_run = :run) + (SELECT count(*) FROM links_history WHERE "
        "kind = 'feeder_station' AND valid_to_run = :run)"), {"run": run_id}).scalar()
    return changed, bool(moved)


class _Reported(Protocol):
    run_id: int
    index: str
    warnings: list[str]
    seconds: dict[str, float]


def after_run(engine: Engine, report: _Reported, state: KeptState | None,
              touched: tuple[set[str], bool], customers: pl.DataFrame | None = None) -> None:
    """After run ``report.run_id`` is recorded: keep its sources (``state``; None: the model
    did not change, only the stamp moves) and bring a saved query index up to date. Neither
    can undo the committed run: a failure is a warning, and the next run loads whole (no kept
    sources) or the first query rebuilds the index (``report.index`` ``stale``)."""
    started = time.perf_counter()
    directory = state_dir(engine)
    try:
        if state is None:
            restamp_state(directory, report.run_id)
        else:
            save_state(state, directory)
    except OSError as err:
        report.warnings.append(f"the sources were not kept at {directory} ({err}): the next "
                               "run loads whole and a change file needs a full ingest first")
    report.seconds["keep sources"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    try:
        report.index = refresh_index(engine, *touched, customers=customers)
    except Exception as err:
        report.index = "stale"
        report.warnings.append(f"the query index was not updated ({type(err).__name__}: "
                               f"{err}): the first query rebuilds it")
    report.seconds["index"] = round(time.perf_counter() - started, 3)
