"""Orchestration: build one synthetic province and write its exports, truth and manifest.

Every random draw comes from a numpy generator seeded with ``(seed, stage)`` (and the chunk
number for customers), so the same ``customers`` and ``seed`` give byte-identical files on any
machine, independently of progress reporting or wall-clock time. Timestamps are relative to
:data:`REFERENCE_DATE`, never to today.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import gridtopo
from gridtopo.errors import OutputExistsError
from gridtopo.progress import ProgressCallback
from gridtopo.synthetic.crosslinks import apply_pair_defects
from gridtopo.synthetic.defects import DefectLog, plan_defects, resolve_rates
from gridtopo.synthetic.distribution import make_ids, plan_topology_defects, write_distribution
from gridtopo.synthetic.marketing import build_areas, write_areas, write_customers
from gridtopo.synthetic.network import build_network
from gridtopo.synthetic.sizing import sizes_for
from gridtopo.synthetic.writer import FileRecord

REFERENCE_DATE = datetime(2024, 12, 31, 0, 0, 0)
# Every path the generator writes, relative to OUTDIR: what ``overwrite`` may delete.
OUTPUT_FILES = (
    "marketing/customers.csv",
    "marketing/transformer_areas.csv",
    "distribution/stations.csv",
    "distribution/feeders.csv",
    "distribution/edges.csv",
    "distribution/transformers.csv",
    "truth/customer_links.csv",
    "truth/area_links.csv",
    "truth/transformer_links.csv",
    "truth/defects.csv",
    "truth/manifest.json",
)
TABLE_OF_FILE = {
    "marketing/customers.csv": "customers",
    "marketing/transformer_areas.csv": "transformer_areas",
    "distribution/stations.csv": "stations",
    "distribution/feeders.csv": "feeders",
    "distribution/edges.csv": "edges",
    "distribution/transformers.csv": "transformers",
}
# Random streams, one per stage (customers add the chunk number).
_NETWORK, _AREAS, _PLAN, _PAIRS, _TOPOLOGY, _CUSTOMERS, _IDS = range(1, 8)



@dataclass(frozen=True)
class Manifest:
    """What was generated; also written as ``truth/manifest.json``.

    ``table_counts`` are data rows actually written per source table (duplicates included);
    ``defect_counts`` are instances actually injected per kind; ``files`` lists every written
    file except the manifest itself, with its sha256 and encoding.
    """

    gridtopo_version: str
    seed: int
    customers_requested: int
    reference_date: str
    defect_rates: Mapping[str, float]
    table_counts: Mapping[str, int]
    defect_counts: Mapping[str, int]
    files: tuple[FileRecord, ...]
    elapsed_seconds: float
    sizes: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["files"] = [asdict(f) for f in self.files]
        return out


def _prepare(outdir: Path, overwrite: bool) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise OutputExistsError(f"{outdir} exists and is not a directory")
    if outdir.exists() and any(outdir.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{outdir} is not empty (use overwrite to replace a "
                                    "previous generation)")
        for rel in OUTPUT_FILES:
            (outdir / rel).unlink(missing_ok=True)
    outdir.mkdir(parents=True, exist_ok=True)


def generate(outdir: Path | str, customers: int, seed: int = 0,
             defects: Mapping[str, float] | str | None = None,
             progress: ProgressCallback | None = None, *, overwrite: bool = False) -> Manifest:
    """Generate a synthetic province of ``customers`` accounts into ``outdir``.

    ``defects`` maps kind → rate (None = each kind's default rate, ``{}`` or ``"none"`` =
    clean data; a string is parsed by :func:`parse_defect_rates`). ``progress`` receives
    ``(stage, done, total)``. Refuses a non-empty ``outdir`` with :class:`OutputExistsError`
    unless ``overwrite``, which deletes only the files this generator writes.
    """
    started = time.perf_counter()
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    rates = resolve_rates(defects)
    root = Path(outdir)
    _prepare(root, overwrite)
    ref_epoch = int(REFERENCE_DATE.replace(tzinfo=UTC).timestamp())

    def rng(stream: int) -> np.random.Generator:
        return np.random.default_rng([seed, stream])

    sizes = sizes_for(customers)
    net = build_network(rng(_NETWORK), sizes, progress)
    ids = make_ids(rng(_IDS), net)
    areas = build_areas(rng(_AREAS), net, customers)
    plan = plan_defects(rng(_PLAN), sizes, rates)
    log = DefectLog()
    pairs = apply_pair_defects(
        rng(_PAIRS), plan, log, tr_id=ids.transformer, area_code=areas.code,
        tr_feeder=net.tr_feeder, feeder_id=ids.feeder, tr_capacity=net.tr_capacity,
        tr_lon=net.node_lon[net.tr_node], tr_lat=net.node_lat[net.tr_node],
        area_line=areas.line, ref_epoch=ref_epoch)
    topo = plan_topology_defects(rng(_TOPOLOGY), net, plan)
    if progress is not None:
        progress("distribution", 0, 1)
    files = write_distribution(root, net, ids, pairs, topo, log)
    files += write_areas(root, net, ids, areas, pairs)
    files += write_customers(root, net, ids, areas, pairs, plan, log, seed=seed,
                             ref_epoch=ref_epoch, stream=_CUSTOMERS, progress=progress)
    files.append(log.write(root))
    files.sort(key=lambda f: OUTPUT_FILES.index(f.path))

    manifest = Manifest(
        gridtopo_version=gridtopo.__version__,
        seed=seed,
        customers_requested=customers,
        reference_date=REFERENCE_DATE.strftime("%Y-%m-%d %H:%M:%S"),
        defect_rates=rates,
        table_counts={TABLE_OF_FILE[f.path]: f.rows for f in files if f.path in TABLE_OF_FILE},
        defect_counts=log.counts(),
        files=tuple(files),
        elapsed_seconds=round(time.perf_counter() - started, 3),
        sizes={"stations": sizes.stations, "feeders": sizes.feeders,
               "transformers": sizes.transformers, "customers": sizes.customers},
    )
    (root / "truth" / "manifest.json").write_text(
        json.dumps(manifest.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if progress is not None:
        progress("done", 1, 1)
    return manifest
