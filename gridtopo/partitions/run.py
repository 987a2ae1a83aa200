"""The driver of a partitioned run: the partitions of a source, the steps of
:mod:`~gridtopo.partitions.steps` run by an :class:`~gridtopo.partitions.stage.Executor`, and the
cross-partition work between them — broadcasting stations and feeders, routing each
partition's needs, assigning the candidate pieces that span partitions, refusing a key found
in two partitions.

:class:`PartitionedRun` offers the two halves :func:`gridtopo.pipeline.ingest` calls —
``read(source, profile, progress)`` and ``reconcile(tables, decisions)`` — so the run record,
the fingerprint and the one-transaction load stay the pipeline's. Its answer is the
single-machine one on the same sources (``tests/test_partitions.py`` checks links, methods,
confidences, unlinked reasons and quarantine accounting).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from gridtopo.errors import InputError
from gridtopo.ingest import TABLES, FileAccount, SourceBundle, TableData
from gridtopo.ingest.discover import discover
from gridtopo.partitions import steps
from gridtopo.partitions.stage import Context, Executor, InProcess, Outputs, Step
from gridtopo.progress import ProgressCallback
from gridtopo.reconcile.areas import assign_areas
from gridtopo.reconcile.links import Reconciliation, summarise
from gridtopo.reconcile.shapes import DECISION_COLUMNS


class PartitionOverlapError(InputError):
    """A key is exported by two partitions (a customer in two regions' files): the partitioned
    run does not yet resolve duplicates across partitions."""


def partitions_of(source: Path) -> dict[str, Path]:
    """Partition key → source directory: each immediate subdirectory of ``source`` holding
    exports of both systems (a region's or province's files), by name; ``source`` itself when
    none does (its ``marketing/`` and ``distribution/`` halves are no partitions).

    >>> partitions_of(Path("/nonexistent"))
    {'/nonexistent': PosixPath('/nonexistent')}
    """
    found = {}
    if source.is_dir():
        for sub in sorted(p for p in source.iterdir() if p.is_dir()):
            tables, _ = discover(sub, None)
            if {TABLES[t].system for t in tables} == {"marketing", "distribution"}:
                found[sub.name] = sub
    return found or {str(source): source}


def _gather(results: Mapping[str, Outputs], name: str) -> pl.DataFrame | None:
    frames = [out[name].with_columns(pl.lit(key).alias("partition"))
              for key, out in results.items() if name in out]
    return pl.concat(frames) if frames else None


class PartitionedRun:
    """One partitioned ingest of ``source`` on ``executor`` (in this process by default),
    staging under ``stage`` (a temporary directory, removed by :meth:`close`, by default)."""

    def __init__(self, executor: Executor | None = None, stage: Path | None = None) -> None:
        self.executor = executor or InProcess()
        self._own_stage = stage is None
        self.stage = Path(tempfile.mkdtemp(prefix="gridtopo-stage-")) if stage is None else stage
        self.keys: list[str] = []
        self.ctx = Context(self.stage, {})
        self.owners = pl.DataFrame(schema={"table": pl.Utf8, "id": pl.Utf8,
                                           "partition": pl.Utf8})
        self.seconds: dict[str, float] = {}

    def close(self) -> None:
        """Remove the staging directory if this run made it."""
        if self._own_stage:
            shutil.rmtree(self.stage, ignore_errors=True)

    def _map(self, step: Step, ctx: Context) -> dict[str, Outputs]:
        return self.executor.map(step, self.keys, ctx)

    def read(self, source: Path, profile: object | None = None,
             progress: ProgressCallback | None = None) -> SourceBundle:
        """Step 1 on every partition, then the bundle the pipeline records and loads: every
        partition's files, rows and quarantine, ``_file`` indexes renumbered in order."""
        parts = partitions_of(Path(source))
        self.keys = list(parts)
        profile_path = getattr(profile, "path", None)
        self.ctx = Context(self.stage, {k: str(v) for k, v in parts.items()},
                           str(profile_path) if profile_path else None)
        results = self._map(steps.read, self.ctx)
        keys = _gather(results, "keys")
        assert keys is not None
        twice = keys.filter(pl.struct("table", "id").is_duplicated())
        if twice.height:
            first = twice.sort("table", "id").row(0, named=True)
            where = twice.filter((pl.col("table") == first["table"])
                                 & (pl.col("id") == first["id"]))["partition"].to_list()
            raise PartitionOverlapError(
                f"{first['table']} {first['id']} is exported by partitions "
                f"{', '.join(where)} ({twice.height} rows of keys in more than one partition); "
                "resolving duplicates across partitions is not supported yet")
        self.owners = keys
        stations, feeders = _gather(results, "stations"), _gather(results, "feeders")
        assert stations is not None and feeders is not None
        self.ctx = self.ctx.with_shared(stations=stations.drop("partition"),
                                        feeders=feeders.drop("partition"))
        return self._bundle(results)

    def _bundle(self, results: Mapping[str, Outputs]) -> SourceBundle:
        bundle = SourceBundle()
        tables: dict[str, list[pl.DataFrame]] = {}
        quarantines: dict[str, list[pl.DataFrame]] = {}
        for key in self.keys:
            offset = len(bundle.files)
            files = results[key].get("files")
            if files is not None:
                bundle.files.extend(FileAccount(**row) for row in files.iter_rows(named=True))
            bundle.warnings.extend(results[key]["warnings"]["warning"].to_list())
            for name in steps.INPUTS:
                frame = self.ctx.load(key, f"table.{name}")
                quarantine = self.ctx.load(key, f"quarantine.{name}")
                if frame is None or quarantine is None:
                    continue
                tables.setdefault(name, []).append(
                    frame.with_columns(pl.col("_file") + offset))
                quarantines.setdefault(name, []).append(
                    quarantine.with_columns(pl.col("file") + offset))
        for name, frames in tables.items():
            bundle.tables[name] = TableData(name, pl.concat(frames),
                                            pl.concat(quarantines[name]))
        return bundle

    def reconcile(self, tables: Mapping[str, pl.DataFrame],
                  decisions: pl.DataFrame | None = None) -> Reconciliation:
        """Steps 2–7 on the frames :meth:`read` staged (``tables`` are those frames, as the
        pipeline holds them) with ``decisions``, each given to the partition of its entity;
        one for an entity no partition has goes to the first partition, as a single run would
        still apply it."""
        decided = (pl.DataFrame(schema=DECISION_COLUMNS) if decisions is None
                   else decisions.select(list(DECISION_COLUMNS)))
        owner = self.owners.filter(pl.col("table").is_in(list(steps.KIND_TABLE.values())))
        owner = owner.with_columns(
            pl.col("table").replace_strict({t: k for k, t in steps.KIND_TABLE.items()})
            .alias("link_kind")).select("link_kind", pl.col("id").alias("entity_id"),
                                        "partition")
        decided = decided.join(owner, on=["link_kind", "entity_id"], how="left").with_columns(
            pl.col("partition").fill_null(self.keys[0]))
        ctx = self.ctx.with_shared(decisions=decided)

        needs = self._map(steps.needs, ctx)
        routed = pl.concat([
            out[kind].with_columns(pl.lit(key).alias("partition"), pl.lit(kind).alias("kind"))
            for key, out in needs.items() for kind in out
        ]).select("partition", "kind", "id")
        self._map(steps.halo, ctx.with_shared(needs=routed))
        linked = _gather(self._map(steps.link, ctx), "transformers")
        assert linked is not None
        shared = linked.filter(pl.col("id").is_duplicated()).select("id").unique()
        crossing = _gather(self._map(steps.assign, ctx.with_shared(shared=shared)), "crossing")
        assert crossing is not None
        picked, ties = assign_areas(crossing.drop("partition"))
        area_links = _gather(self._map(steps.decide, ctx.with_shared(picked=picked, ties=ties)),
                             "area_links")
        assert area_links is not None
        self._map(steps.customers, ctx.with_shared(area_links=area_links.drop("partition")))
        return self._reconciliation()

    def _reconciliation(self) -> Reconciliation:
        def staged(name: str) -> pl.DataFrame:
            frames = [self.ctx.load(key, name) for key in self.keys]
            return pl.concat([f for f in frames if f is not None])

        links = pl.concat([staged(f"{n}_links") for n in ("feeder", "tx", "area")])
        customer_links = staged("customer_links")
        unlinked = pl.concat([staged(f"{n}_unlinked") for n in ("feeder", "tx", "area",
                                                                  "customer")])
        return Reconciliation(links=links, customer_links=customer_links, unlinked=unlinked,
                              summary=summarise(links, customer_links, unlinked))

