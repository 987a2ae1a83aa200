"""Synthetic marketing and distribution exports with known truth and injected defects.

``generate(outdir, customers, seed, defects)`` writes a province-sized (or toy) pair of source
exports in the layout and encodings of ``spec/sources.md`` — marketing CSVs in GBK with Chinese
headers, distribution CSVs in UTF-8 — plus ``truth/`` files saying what every link really is
and where each injected defect sits, so that ingest, reconciliation, topology and audits can
be tested and benchmarked against ground truth.

Modules: ``sizing`` (counts from N), ``names`` (vocabulary, spelling habits), ``coords``
(GCJ-02/BD-09, distances), ``network`` (true topology), ``defects`` (catalogue, rates, log),
``crosslinks`` (transformer ↔ 台区 ids), ``distribution`` / ``marketing`` (the exports),
``writer`` (CSV output), ``generate`` (orchestration and manifest).
"""

from gridtopo.synthetic.defects import (
    DEFAULT_RATES,
    DEFECT_KINDS,
    DefectKind,
    parse_defect_rates,
)
from gridtopo.synthetic.generate import (
    OUTPUT_FILES,
    REFERENCE_DATE,
    Manifest,
    OutputExistsError,
    generate,
)
from gridtopo.synthetic.writer import FileRecord

__all__ = [
    "DEFAULT_RATES",
    "DEFECT_KINDS",
    "OUTPUT_FILES",
    "REFERENCE_DATE",
    "DefectKind",
    "FileRecord",
    "Manifest",
    "OutputExistsError",
    "generate",
    "parse_defect_rates",
]
