"""The cross-system links between a transformer and its 台区, as each system exports them.

Marketing's ``transformer_areas.PMS设备编码`` should name the transformer and distribution's
``transformers.marketing_area_code`` should name the area. This module starts from the true
pairing (transformer ``t`` ↔ area ``t``), applies the pair-population defects, and says for
every area which evidence of its true transformer survives in the exported files:

* ``pms_id`` — the area's PMS设备编码 still names it;
* ``area_code`` — the transformer's marketing_area_code still names the area;
* ``name`` — the transformer is exported, on the feeder the area's 线路名称 spells, under a
  name that differs from the area's only in spelling habit.

An area is *recoverable* when any evidence survives, i.e. for every area except an
``area_orphan``, whose transformer is absent from the distribution export.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from gridtopo import geo as coords
from gridtopo.synthetic.defects import (
    AREAS,
    STALE_AREA,
    STALE_TRANSFORMER,
    TRANSFORMERS,
    DefectLog,
    DefectPlan,
)
from gridtopo.synthetic.writer import fixed, timestamps

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

YEAR_S = 365 * 86400
RECENT_S = 2 * YEAR_S  # normal records were updated within two years of the reference date


@dataclass
class PairExport:
    """Exported values, indexed by transformer number ``t`` (= its area's number)."""

    area_pms: pl.Series
    area_updated: IntArray
    tr_area_code: pl.Series
    tr_feeder_id: pl.Series
    tr_capacity: pl.Series
    tr_status: pl.Series
    tr_lon: FloatArray
    tr_lat: FloatArray
    tr_updated: IntArray
    in_export: BoolArray  # transformer row present in transformers.csv
    retired: BoolArray
    evidence: pl.Series  # ";"-joined surviving evidence of the area → transformer link
    tr_line: IntArray  # line of transformer t in transformers.csv (0 when absent)


def _fmt_pair(lon: FloatArray, lat: FloatArray) -> pl.Series:
    return fixed(lon, 6) + "|" + fixed(lat, 6)


def _other_in_feeder(rng: np.random.Generator, t: int, tr_feeder: IntArray,
                     allowed: BoolArray) -> int:
    """Another allowed transformer index, on the same feeder when possible, else the nearest
    allowed index; -1 when there is none."""
    lo = int(np.searchsorted(tr_feeder, tr_feeder[t]))
    hi = int(np.searchsorted(tr_feeder, tr_feeder[t], side="right"))
    same = [u for u in range(lo, hi) if u != t and allowed[u]]
    if same:
        return same[int(rng.integers(len(same)))]
    n = tr_feeder.size
    for step in range(1, n):
        for u in (t - step, t + step):
            if 0 <= u < n and allowed[u]:
                return u
    return -1


def apply_pair_defects(rng: np.random.Generator, plan: DefectPlan, log: DefectLog, *,
                       tr_id: pl.Series, area_code: pl.Series, tr_feeder: IntArray,
                       feeder_id: pl.Series, tr_capacity: IntArray, tr_lon: FloatArray,
                       tr_lat: FloatArray, area_line: IntArray, ref_epoch: int,
                       ) -> PairExport:
    """Build the exported link columns of both tables and log every pair defect."""
    n = tr_id.len()
    p = plan.pairs
    in_export = np.ones(n, dtype=np.bool_)
    in_export[p["area_orphan"]] = False
    tr_line = np.where(in_export, np.cumsum(in_export) + 1, 0).astype(np.int64)

    area_pms = tr_id.clone()
    tr_code = area_code.clone()
    tr_feeder_id = feeder_id.gather(pl.Series(tr_feeder))
    capacity = pl.Series(tr_capacity).cast(pl.Utf8)
    status = pl.Series(["in_service"] * n, dtype=pl.Utf8)
    lon, lat = tr_lon.copy(), tr_lat.copy()
    area_updated = ref_epoch - rng.integers(0, RECENT_S, n)
    tr_updated = ref_epoch - rng.integers(0, RECENT_S, n)
    retired = np.zeros(n, dtype=np.bool_)

    def area_rec(kind: str, idx: IntArray, field: str, old: pl.Series, new: pl.Series) -> None:
        log.add(kind, AREAS, area_code.gather(idx), field, old, new, area_line[idx])

    def tr_rec(kind: str, idx: IntArray, field: str, old: pl.Series, new: pl.Series) -> None:
        log.add(kind, TRANSFORMERS, tr_id.gather(idx), field, old, new, tr_line[idx])

    idx = p["area_orphan"]
    area_rec("area_orphan", idx, "PMS设备编码", tr_id.gather(idx), tr_id.gather(idx))

    idx = p["area_missing_pms_id"]
    area_rec("area_missing_pms_id", idx, "PMS设备编码", tr_id.gather(idx),
             pl.Series([""] * idx.size))
    area_pms = area_pms.scatter(idx, None) if idx.size else area_pms

    idx = p["area_wrong_pms_id"]
    targets = np.array([_other_in_feeder(rng, int(t), tr_feeder, in_export) for t in idx],
                       dtype=np.int64)
    idx, targets = idx[targets >= 0], targets[targets >= 0]
    area_rec("area_wrong_pms_id", idx, "PMS设备编码", tr_id.gather(idx), tr_id.gather(targets))
    if idx.size:
        area_pms = area_pms.scatter(idx, tr_id.gather(targets))

    idx = p["transformer_missing_area_code"]
    tr_rec("transformer_missing_area_code", idx, "marketing_area_code", area_code.gather(idx),
           pl.Series([""] * idx.size))
    tr_code = tr_code.scatter(idx, None) if idx.size else tr_code

    idx = p["transformer_wrong_area_code"]
    everyone = np.ones(n, dtype=np.bool_)
    targets = np.array([_other_in_feeder(rng, int(t), tr_feeder, everyone) for t in idx],
                       dtype=np.int64)
    idx, targets = idx[targets >= 0], targets[targets >= 0]
    tr_rec("transformer_wrong_area_code", idx, "marketing_area_code", area_code.gather(idx),
           area_code.gather(targets))
    if idx.size:
        tr_code = tr_code.scatter(idx, area_code.gather(targets))

    idx = p["transformer_orphan_feeder"]
    max_feeder = int(feeder_id.str.slice(3).cast(pl.Int64).to_numpy().max(initial=0))
    bogus = pl.Series(np.arange(idx.size) + max_feeder + 1).cast(pl.Utf8).str.zfill(6)
    bogus = "XL-" + bogus
    tr_rec("transformer_orphan_feeder", idx, "feeder_id", tr_feeder_id.gather(idx), bogus)
    if idx.size:
        tr_feeder_id = tr_feeder_id.scatter(idx, bogus)

    idx = p["transformer_bad_value"]
    neg = rng.random(idx.size) < 0.5
    i_cap, i_st = idx[neg], idx[~neg]
    tr_rec("transformer_bad_value", i_cap, "capacity_kva", capacity.gather(i_cap),
           "-" + capacity.gather(i_cap))
    tr_rec("transformer_bad_value", i_st, "status", status.gather(i_st),
           pl.Series(["unknown"] * i_st.size))
    if i_cap.size:
        capacity = capacity.scatter(i_cap, "-" + capacity.gather(i_cap))
    if i_st.size:
        status = status.scatter(i_st, "unknown")

    idx = p["transformer_gcj02"]
    g_lon, g_lat = coords.wgs84_to_gcj02(lon[idx], lat[idx])
    tr_rec("transformer_gcj02", idx, "lon|lat", _fmt_pair(lon[idx], lat[idx]),
           _fmt_pair(g_lon, g_lat))
    lon[idx], lat[idx] = g_lon, g_lat

    idx = p["retired_transformer_live_customers"]
    tr_rec("retired_transformer_live_customers", idx, "status", status.gather(idx),
           pl.Series(["retired"] * idx.size))
    if idx.size:
        status = status.scatter(idx, "retired")
    retired[idx] = True

    idx = p[STALE_AREA]
    old = timestamps(area_updated[idx])
    area_updated[idx] = ref_epoch - rng.integers(3 * YEAR_S + 86400, 7 * YEAR_S, idx.size)
    area_rec("stale_record", idx, "更新时间", old, timestamps(area_updated[idx]))
    idx = p[STALE_TRANSFORMER]
    old = timestamps(tr_updated[idx])
    tr_updated[idx] = ref_epoch - rng.integers(3 * YEAR_S + 86400, 7 * YEAR_S, idx.size)
    tr_rec("stale_record", idx, "updated_at", old, timestamps(tr_updated[idx]))

    pms_ok = (area_pms == tr_id).fill_null(False).to_numpy() & in_export
    code_ok = (tr_code == area_code).fill_null(False).to_numpy() & in_export
    evidence = pl.DataFrame({
        "p": np.where(pms_ok, "pms_id", ""), "c": np.where(code_ok, "area_code", ""),
        "n": np.where(in_export, "name", ""),
    }).select(pl.concat_list("p", "c", "n").list.eval(pl.element().filter(pl.element() != ""))
              .list.join(";")).to_series()
    evidence = pl.select(pl.when(evidence != "").then(evidence)).to_series()
    return PairExport(area_pms=area_pms, area_updated=area_updated, tr_area_code=tr_code,
                      tr_feeder_id=tr_feeder_id, tr_capacity=capacity, tr_status=status,
                      tr_lon=lon, tr_lat=lat, tr_updated=tr_updated, in_export=in_export,
                      retired=retired, evidence=evidence, tr_line=tr_line)
