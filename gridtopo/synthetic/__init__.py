"""Synthetic marketing and distribution exports with known truth and injected defects.

``generate(outdir, customers, seed, defects)`` writes a province-sized (or toy) pair of source
exports in the layout and encodings of ``spec/sources.md`` — marketing CSVs in GBK with Chinese
headers, distribution CSVs in UTF-8 — plus ``truth/`` files saying what every link really is
and where each injected defect sits, so that ingest, reconciliation, topology and audits can
be tested and benchmarked against ground truth.

Output (``OUTDIR/``)::

    marketing/customers.csv          GBK, Chinese headers (户号, 户名, … 更新时间)
    marketing/transformer_areas.csv  GBK, Chinese headers (台区编号 … PMS设备编码, 更新时间)
    distribution/stations.csv        UTF-8: station_id, station_name, voltage_kv, lon, lat
    distribution/feeders.csv         UTF-8: feeder_id, feeder_name, station_id, voltage_kv,
                                     source_node (downstream terminal of the station breaker)
    distribution/edges.csv           UTF-8: edge_id, kind, feeder_id (blank for ties), from_node,
                                     to_node, normal_open, length_m, geometry (WKT, lon lat)
    distribution/transformers.csv    UTF-8: transformer_id … marketing_area_code, status, …
    truth/customer_links.csv         one row per distinct customer: true area_code,
                                     transformer_id, feeder_id, station_id, and recoverable
                                     (its exported 台区编号 is the true one and that area's
                                     transformer is identifiable from the exports)
    truth/area_links.csv             area_code, true transformer_id, recoverable, evidence
                                     (";"-joined surviving evidence: pms_id, area_code, name)
    truth/transformer_links.csv      transformer_id, true feeder_id, station_id, node,
                                     in_export (false for area_orphan), energized (false when
                                     an island defect cuts it off)
    truth/defects.csv                defect, table, entity_id, field, original_value,
                                     injected_value, file, line (1-based, header = 1; blank
                                     for a removed row)
    truth/manifest.json              see :class:`Manifest`

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
