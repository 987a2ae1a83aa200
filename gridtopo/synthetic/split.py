"""Split one generated province into regional exports: one source directory per partition.

Utilities export by region (each 地市 its own files); :func:`split_by_feeder` makes that layout
from a generated set, for the partitioned pipeline's tests and benchmarks. Feeders are sorted
by id and cut into ``parts`` contiguous blocks (a region is a set of feeders); every row goes
to the partition of the feeder it truly belongs to (``truth/``), so the defects that point
elsewhere — a customer whose 台区编号 is another area's, a PMS id naming another feeder's
transformer, a tie edge between two feeders — become cross-partition facts, as they are in
real regional exports. A row whose feeder is unknown (a tie edge has none; a row made
unreadable by a defect) goes to the partition named by its key's hash, the first one when it
has no key either. ``moved`` (a fraction) sends that share of rows, chosen by their key's hash,
to the next partition instead: rows exported by a region other than their feeder's (a customer
moved across, a transformer re-assigned), which makes cross-partition facts of every kind.

Files are split line by line as bytes, so encoding, BOM, quoting and defects stay exactly as
generated (the generator writes one record per line); each part repeats the header.
``OUT/part-00/marketing/customers.csv`` … together hold exactly the rows of the original files.
"""

from __future__ import annotations

import csv
import zlib
from pathlib import Path

import polars as pl

from gridtopo.synthetic.generate import OUTPUT_FILES

_ENCODINGS = {"marketing": "gbk", "distribution": "utf-8"}


def _feeder_blocks(source: Path, parts: int) -> dict[str, int]:
    feeders = sorted(pl.read_csv(source / "distribution/feeders.csv", infer_schema=False)
                     ["feeder_id"].drop_nulls().unique().to_list())
    return {f: i * parts // max(1, len(feeders)) for i, f in enumerate(feeders)}


def _owners(source: Path, parts: int) -> dict[str, dict[str, int]]:
    """Per source file stem: entity key → partition, from the true links."""
    block = _feeder_blocks(source, parts)
    truth = source / "truth"
    tx = pl.read_csv(truth / "transformer_links.csv", infer_schema=False)
    areas = pl.read_csv(truth / "area_links.csv", infer_schema=False)
    customers = pl.read_csv(truth / "customer_links.csv", infer_schema=False)
    tx_part = {t: block[f] for t, f in zip(tx["transformer_id"], tx["feeder_id"], strict=True)
               if f in block}
    feeders = pl.read_csv(source / "distribution/feeders.csv", infer_schema=False)
    station_part: dict[str, int] = {}
    for f, s in zip(feeders["feeder_id"], feeders["station_id"], strict=True):
        if f in block and s is not None:
            station_part.setdefault(s, block[f])
    edges = pl.read_csv(source / "distribution/edges.csv", infer_schema=False)
    return {
        "stations": station_part,
        "feeders": block,
        "edges": {e: block[f] for e, f in zip(edges["edge_id"], edges["feeder_id"], strict=True)
                  if f in block},
        "transformers": tx_part,
        "transformer_areas": {a: tx_part[t] for a, t in
                              zip(areas["area_code"], areas["transformer_id"], strict=True)
                              if t in tx_part},
        "customers": {c: block[f] for c, f in
                      zip(customers["customer_id"], customers["feeder_id"], strict=True)
                      if f in block},
    }


def split_by_feeder(source: Path | str, out: Path | str, parts: int,
                    moved: float = 0.0) -> list[Path]:
    """Write ``parts`` regional source directories under ``out`` (``part-00`` …) holding the
    rows of the generated set ``source``; return them in order. ``truth/`` stays whole in
    ``source``: it describes the province."""
    source, out = Path(source), Path(out)
    owners = _owners(source, parts)
    dirs = [out / f"part-{i:02d}" for i in range(parts)]
    for relative in OUTPUT_FILES:
        path = source / relative
        if path.parent.name not in _ENCODINGS or not path.exists():
            continue
        owner = owners[path.stem]
        header, *lines = path.read_bytes().splitlines(keepends=True)
        chunks: list[list[bytes]] = [[header] for _ in dirs]
        encoding = _ENCODINGS[path.parent.name]
        for line in lines:
            fields = next(csv.reader([line.decode(encoding, errors="replace")]), [])
            key = fields[0] if fields else ""
            digest = zlib.crc32(key.encode())
            part = owner.get(key, digest % parts if key else 0)
            if key and (digest >> 8) % 10_000 < moved * 10_000:
                part = (part + 1) % parts
            chunks[part].append(line)
        for directory, chunk in zip(dirs, chunks, strict=True):
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"".join(chunk))
    return dirs
