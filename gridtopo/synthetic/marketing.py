"""The marketing-system export: 台区 (transformer areas) and customer accounts, in GBK.

Areas are one per transformer, coded ``TQ`` + the city's 4-digit admin code + a 7-digit
serial that has nothing to do with distribution ids, and carry the feeder/station names as
marketing spells them (:mod:`gridtopo.synthetic.names`: every spelling class of the input
contract, each feeder and station with a habitual spelling three areas in four use); a
customer's 线路名称 is its area's, or for :data:`OTHER_SPELLING` of customers another clerk's
spelling of the same feeder. Customers are generated column-wise in chunks (never a Python loop per
customer), grouped by area in area-code order, with their defects applied to each chunk
before it is encoded and appended; ``truth/customer_links.csv`` is written alongside.
Duplicate rows (exact or conflicting) follow the last customer of the chunk their original
is in, so that they are neither adjacent to the original nor all at the end of the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from gridtopo import geo as coords
from gridtopo.progress import ProgressCallback
from gridtopo.synthetic import names
from gridtopo.synthetic.crosslinks import RECENT_S, YEAR_S, PairExport
from gridtopo.synthetic.defects import CUSTOMERS, DefectLog, DefectPlan
from gridtopo.synthetic.distribution import DistributionIds
from gridtopo.synthetic.network import Network
from gridtopo.synthetic.sizing import apportion
from gridtopo.synthetic.writer import (
    CsvFile,
    FileRecord,
    blank_as_null,
    fixed,
    flags,
    integers,
    pick,
    timestamps,
)

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MARKETING_ENCODING = "gbk"
AREA_COLUMNS = ["台区编号", "台区名称", "线路名称", "变电站名称", "台区容量", "PMS设备编码",
                "更新时间"]
CUSTOMER_COLUMNS = ["户号", "户名", "用电地址", "联系电话", "台区编号", "台区名称", "线路名称",
                    "变电站名称", "电能表资产号", "相别", "电压等级", "合同容量", "用户状态",
                    "经度", "纬度", "更新时间"]
CUSTOMER_TRUTH_COLUMNS = ["customer_id", "area_code", "transformer_id", "feeder_id",
                          "station_id", "recoverable"]
AREA_TRUTH_COLUMNS = ["area_code", "transformer_id", "recoverable", "evidence"]
CHUNK = 500_000  # customers per generated block; fixed so that output is deterministic

VARIANTS = 1 << 62  # spelling variant numbers (see gridtopo.synthetic.names)
OTHER_SPELLING = 0.1
"""Share of customers whose 线路名称 another clerk spelled: the area's feeder in an
independent spelling, not the area's own."""
ORPHAN_SERIAL = 9_000_000  # area serials at or above this are never assigned to a real area
PHONE_PREFIXES = ("130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "147",
                  "150", "151", "152", "153", "155", "156", "157", "158", "159", "166", "170",
                  "176", "177", "178", "180", "181", "182", "183", "184", "185", "186", "187",
                  "188", "189", "191", "198", "199")
BAD_TIMESTAMPS = ("未知", "2023-02-30 08:00:00", "0000-00-00 00:00:00", "2023-13-01 08:00:00")


@dataclass(frozen=True)
class Areas:
    """Marketing areas indexed by transformer number ``t`` (area ``t`` belongs to it)."""

    code: pl.Series
    name: pl.Series
    feeder_name: pl.Series
    feeder_name_other: pl.Series  # a second clerk's spelling, on OTHER_SPELLING of customers
    station_name: pl.Series
    address: pl.Series  # address prefix of its customers
    owner: pl.Series  # customer name of a dedicated (专变) area
    admin_code: pl.Series  # city admin code, for fabricating orphan codes
    customers: IntArray
    order: IntArray  # area numbers in file order (sorted by code)
    line: IntArray  # line of area t in transformer_areas.csv


def build_areas(rng: np.random.Generator, net: Network, customers: int) -> Areas:
    """Codes, names and customer counts of every area."""
    n = net.tr_feeder.size
    station = net.tr_station
    city = net.station_city[station]
    admin = np.array([c.admin_code for c in names.CITIES])[city]
    serial = np.zeros(n, dtype=np.int64)
    for c in np.unique(city):
        idx = np.flatnonzero(city == c)
        serial[idx] = rng.choice(idx.size * 2 + 10, idx.size, replace=False) + 1
    code = pl.Series(admin) + pl.Series(serial).cast(pl.Utf8).str.zfill(7)
    code = ("TQ" + code).rename("")

    # Each feeder/station has a habitual marketing spelling, used by 3 areas in 4; the other
    # areas, and a second clerk's spelling some customers carry, are drawn afresh.
    fd_variant = rng.integers(0, VARIANTS, net.feeder_station.size)
    st_variant = rng.integers(0, VARIANTS, net.station_voltage.size)
    f_var = np.where(rng.random(n) < 0.75, fd_variant[net.tr_feeder], rng.integers(0, VARIANTS, n))
    s_var = np.where(rng.random(n) < 0.75, st_variant[station], rng.integers(0, VARIANTS, n))
    fd = net.tr_feeder

    def feeder_names(variants: IntArray) -> pl.Series:
        return pl.Series([names.feeder_name_marketing(net.feeder_base[f],
                                                      int(net.feeder_numeral[f]), int(v))
                          for f, v in zip(fd, variants, strict=True)], dtype=pl.Utf8)

    feeder_name = feeder_names(f_var)
    feeder_name_other = feeder_names(rng.integers(0, VARIANTS, n))
    station_name = [names.station_name_marketing(net.station_base[s],
                                                 int(net.station_voltage[s]), int(v))
                    for s, v in zip(station, s_var, strict=True)]
    area_name = [names.area_name_marketing(s, int(k), bool(d), int(v)) for s, k, d, v in
                 zip(net.tr_stem, net.tr_number, net.tr_dedicated,
                     rng.integers(0, VARIANTS, n), strict=True)]

    city_names = [c.name for c in names.CITIES]
    st_district = [names.CITIES[c].districts[int(rng.integers(len(names.CITIES[c].districts)))]
                   for c in net.station_city]
    roads = names.place_names(rng, n)
    road_sfx = rng.integers(0, len(names.ROAD_SUFFIXES), n)
    address = []
    owner = []
    for t in range(n):
        head = f"广东省{city_names[city[t]]}市{st_district[station[t]]}"
        if net.tr_dedicated[t]:
            address.append(f"{head}{roads[t]}{names.ROAD_SUFFIXES[road_sfx[t]]}")
        else:
            address.append(head + net.tr_stem[t])
        owner.append(f"{city_names[city[t]]}市{net.tr_stem[t]}")

    weights = rng.lognormal(0.0, 0.6, n) * np.where(rng.random(n) < 0.02, 3.0, 1.0)
    counts = np.ones(n, dtype=np.int64)
    public = ~net.tr_dedicated
    if customers < n:  # only for toy sizes: a few areas without customers
        counts[:] = 0
        counts[rng.choice(n, customers, replace=False)] = 1
    else:
        counts[public] = apportion(customers - int((~public).sum()), weights[public], minimum=1)
    order = np.asarray(code.arg_sort().to_numpy(), dtype=np.int64)
    line = np.empty(n, dtype=np.int64)
    line[order] = np.arange(n) + 2
    return Areas(code=code, name=pl.Series(area_name), feeder_name=feeder_name,
                 feeder_name_other=feeder_name_other,
                 station_name=pl.Series(station_name), address=pl.Series(address),
                 owner=pl.Series(owner), admin_code=pl.Series(admin), customers=counts,
                 order=order, line=line)


def write_areas(root: Path, net: Network, ids: DistributionIds, areas: Areas,
                pairs: PairExport) -> list[FileRecord]:
    """``marketing/transformer_areas.csv`` and ``truth/area_links.csv``, in area-code order."""
    o = pl.Series(areas.order)
    frame = pl.DataFrame([
        areas.code.gather(o), areas.name.gather(o), areas.feeder_name.gather(o),
        areas.station_name.gather(o), integers(net.tr_capacity[areas.order]),
        pairs.area_pms.gather(o), timestamps(pairs.area_updated[areas.order]),
    ], schema=AREA_COLUMNS)
    records = []
    with CsvFile(root, "marketing/transformer_areas.csv", AREA_COLUMNS,
                 MARKETING_ENCODING) as out:
        out.write(frame)
        records.append(out.close())
    truth = pl.DataFrame([
        areas.code.gather(o), ids.transformer.gather(o),
        flags(pairs.in_export[areas.order]),
        pairs.evidence.gather(o),
    ], schema=AREA_TRUTH_COLUMNS)
    with CsvFile(root, "truth/area_links.csv", AREA_TRUTH_COLUMNS, "utf-8") as out:
        out.write(blank_as_null(truth))
        records.append(out.close())
    return records


@dataclass(frozen=True)
class _Context:
    net: Network
    ids: DistributionIds
    areas: Areas
    pairs: PairExport
    plan: DefectPlan
    ref_epoch: int
    cum: IntArray  # cumulative customers per area in file order
    alt_feeder: IntArray  # a different feeder of the same station, for name_mismatch


def _alternative_feeders(net: Network) -> IntArray:
    """For each feeder, the next feeder of its station (or the next one overall); -1 if the
    province has a single feeder."""
    n = net.feeder_station.size
    if n < 2:
        return np.full(n, -1, dtype=np.int64)
    alt = np.empty(n, dtype=np.int64)
    first = np.searchsorted(net.feeder_station, net.feeder_station)
    last = np.searchsorted(net.feeder_station, net.feeder_station, side="right")
    for f in range(n):
        lo, hi = int(first[f]), int(last[f])
        candidates = [*range(f + 1, hi), *range(lo, f)] if hi - lo > 1 else []
        candidates += [(f + k) % n for k in range(1, n)]
        # A different feeder whose name cannot be a mere re-spelling of this one's.
        alt[f] = next((g for g in candidates
                       if (net.feeder_base[g], net.feeder_numeral[g])
                       != (net.feeder_base[f], net.feeder_numeral[f])), -1)
    return alt


def _person_names(rng: np.random.Generator, n: int) -> pl.Series:
    p = names.SURNAME_WEIGHTS / names.SURNAME_WEIGHTS.sum()
    surname = pick(names.SURNAMES, rng.choice(len(names.SURNAMES), n, p=p))
    g1 = pick(names.GIVEN_CHARS, rng.integers(0, len(names.GIVEN_CHARS), n))
    g2 = pick(names.GIVEN_CHARS, rng.integers(0, len(names.GIVEN_CHARS), n))
    two = pl.Series(rng.random(n) < 0.7)
    return pl.select(pl.when(two).then(surname + g1 + g2).otherwise(surname + g1)).to_series()


def _phones(rng: np.random.Generator, n: int) -> pl.Series:
    prefix = pick(PHONE_PREFIXES, rng.integers(0, len(PHONE_PREFIXES), n))
    return prefix + pl.Series(rng.integers(0, 100_000_000, n)).cast(pl.Utf8).str.zfill(8)


def _choose(rng: np.random.Generator, options: list[int], p: list[float], n: int) -> IntArray:
    return np.asarray(rng.choice(np.array(options), n, p=np.array(p) / sum(p)), dtype=np.int64)


def _customer_block(rng: np.random.Generator, ctx: _Context, lo: int, hi: int
                    ) -> tuple[dict[str, pl.Series], IntArray]:
    """Clean rows for customers ``lo..hi-1`` (file order) and their area numbers."""
    net, areas, n = ctx.net, ctx.areas, hi - lo
    i = np.arange(lo, hi, dtype=np.int64)
    t = areas.order[np.searchsorted(ctx.cum, i, side="right")]
    ts = pl.Series(t)
    ded = net.tr_dedicated[t]
    commercial = ~ded & (rng.random(n) < 0.06)
    res_abc = ~ded & ~commercial & (rng.random(n) < 0.05)
    com_single = commercial & (rng.random(n) < 0.3)
    abc = ded | res_abc | (commercial & ~com_single)

    shop = areas.owner.gather(ts).str.slice(3, 2) + pick(
        names.SHOP_SUFFIXES, rng.integers(0, len(names.SHOP_SUFFIXES), n))
    name = pl.select(pl.when(pl.Series(ded)).then(areas.owner.gather(ts))
                     .when(pl.Series(commercial)).then(shop)
                     .otherwise(_person_names(rng, n))).to_series()
    lane = pl.Series(rng.integers(1, 31, n)).cast(pl.Utf8)
    house = pl.Series(rng.integers(1, 121, n)).cast(pl.Utf8)
    address = pl.select(pl.when(pl.Series(ded)).then(areas.address.gather(ts) + house + "号")
                        .otherwise(areas.address.gather(ts) + lane + "巷" + house + "号")
                        ).to_series()

    phase = np.where(abc, 3, rng.integers(0, 3, n))
    voltage = np.where(ded, 2, np.where(abc, 1, 0))
    contract = np.where(ded, net.tr_capacity[t],
                        np.where(commercial, _choose(rng, [10, 16, 20, 30, 50, 80, 100],
                                                     [3, 3, 3, 2, 2, 1, 1], n),
                                 np.where(res_abc, _choose(rng, [10, 15, 20], [2, 2, 1], n),
                                          _choose(rng, [4, 6, 8, 10, 12], [6, 6, 5, 2, 1], n))))
    closed = (rng.random(n) < 0.012) & ~ctx.pairs.retired[t]
    dist = np.where(ded, rng.uniform(10, 60, n), np.clip(rng.lognormal(4.6, 0.5, n), 30, 300))
    angle = rng.uniform(0, 2 * np.pi, n)
    node = net.tr_node[t]
    lon, lat = coords.offset_m(net.node_lon[node], net.node_lat[node], dist * np.cos(angle),
                               dist * np.sin(angle))
    cols = {
        "户号": "03" + pl.Series(100_000_000 + 3 * i + rng.integers(0, 3, n)).cast(
            pl.Utf8).str.zfill(11),
        "户名": name,
        "用电地址": address,
        "联系电话": _phones(rng, n),
        "台区编号": areas.code.gather(ts),
        "台区名称": areas.name.gather(ts),
        "线路名称": pl.select(pl.when(pl.Series(rng.random(n) < OTHER_SPELLING))
                          .then(areas.feeder_name_other.gather(ts))
                          .otherwise(areas.feeder_name.gather(ts))).to_series(),
        "变电站名称": areas.station_name.gather(ts),
        "电能表资产号": "0310" + pl.Series(8_000_000_000 + 7 * i + rng.integers(0, 7, n)).cast(
            pl.Utf8).str.zfill(18),
        "相别": pick(("A", "B", "C", "ABC"), phase),
        "电压等级": pick(("220V", "380V", "10kV"), voltage),
        "合同容量": integers(contract),
        "用户状态": pick(("正常", "销户"), closed.astype(np.int64)),
        "经度": fixed(lon, 6),
        "纬度": fixed(lat, 6),
        "更新时间": timestamps(ctx.ref_epoch - rng.integers(0, RECENT_S, n)),
    }
    return {k: v.rename(k) for k, v in cols.items()}, t


def _local(plan: Mapping[str, IntArray], kind: str, lo: int, hi: int) -> tuple[IntArray, int]:
    """Positions of ``kind``'s instances inside the block, and the rank of the first one."""
    idx = plan[kind]
    a, b = int(np.searchsorted(idx, lo)), int(np.searchsorted(idx, hi))
    return idx[a:b] - lo, a


def _apply_customer_defects(rng: np.random.Generator, ctx: _Context, cols: dict[str, pl.Series],
                            t: IntArray, lo: int, first_line: int, log: DefectLog
                            ) -> tuple[pl.DataFrame, BoolArray]:
    """Inject this block's customer defects; returns the rows to write (duplicates appended)
    and which rows lost their true area code."""
    hi = lo + t.size
    plan = ctx.plan.customers
    cid = cols["户号"]
    lost = np.zeros(t.size, dtype=np.bool_)

    def change(kind: str, pos: IntArray, field: str, new: pl.Series | str | None) -> None:
        """Set ``field`` of rows ``pos`` to ``new`` (None = blank) and log it."""
        if not pos.size:
            return
        new_s = new if isinstance(new, pl.Series) else pl.Series([new] * pos.size,
                                                                   dtype=pl.Utf8)
        log.add(kind, CUSTOMERS, cid.gather(pos), field, cols[field].gather(pos), new_s,
                first_line + pos)
        cols[field] = cols[field].scatter(pos, new_s)

    def change_pair(kind: str, pos: IntArray, lon: npt.NDArray[np.float64],
                    lat: npt.NDArray[np.float64]) -> None:
        if not pos.size:
            return
        old = cols["经度"].gather(pos) + "|" + cols["纬度"].gather(pos)
        new_lon, new_lat = fixed(lon, 6), fixed(lat, 6)
        log.add(kind, CUSTOMERS, cid.gather(pos), "经度|纬度", old, new_lon + "|" + new_lat,
                first_line + pos)
        cols["经度"] = cols["经度"].scatter(pos, new_lon)
        cols["纬度"] = cols["纬度"].scatter(pos, new_lat)

    pos, rank = _local(plan, "customer_orphan_area", lo, hi)
    serial = pl.Series(ORPHAN_SERIAL + rank + np.arange(pos.size)).cast(pl.Utf8).str.zfill(7)
    change("customer_orphan_area", pos, "台区编号",
           "TQ" + ctx.areas.admin_code.gather(pl.Series(t[pos])) + serial)
    lost[pos] = True

    pos, _ = _local(plan, "customer_missing_required", lo, hi)
    blank_area = rng.random(pos.size) < 0.4
    change("customer_missing_required", pos[~blank_area], "户名", None)
    change("customer_missing_required", pos[blank_area], "台区编号", None)
    lost[pos[blank_area]] = True

    pos, _ = _local(plan, "customer_bad_value", lo, hi)
    variant = rng.integers(0, 3, pos.size)
    p0 = pos[variant == 0]
    change("customer_bad_value", p0, "合同容量", "-" + cols["合同容量"].gather(p0))
    change("customer_bad_value", pos[variant == 1], "相别", "D")
    p2 = pos[variant == 2]
    change("customer_bad_value", p2, "更新时间",
           pick(BAD_TIMESTAMPS, rng.integers(0, len(BAD_TIMESTAMPS), p2.size)))

    pos, _ = _local(plan, "customer_gcj02", lo, hi)
    lon = cols["经度"].gather(pos).cast(pl.Float64).to_numpy()
    lat = cols["纬度"].gather(pos).cast(pl.Float64).to_numpy()
    change_pair("customer_gcj02", pos, *coords.wgs84_to_gcj02(lon, lat))

    pos, _ = _local(plan, "customer_misplaced", lo, hi)
    node = ctx.net.tr_node[t[pos]]
    dist = rng.uniform(2_000, 20_000, pos.size)
    angle = rng.uniform(0, 2 * np.pi, pos.size)
    change_pair("customer_misplaced", pos, *coords.offset_m(
        ctx.net.node_lon[node], ctx.net.node_lat[node], dist * np.cos(angle),
        dist * np.sin(angle)))

    pos, _ = _local(plan, "name_mismatch", lo, hi)
    alt = ctx.alt_feeder[ctx.net.tr_feeder[t[pos]]]
    pos, alt = pos[alt >= 0], alt[alt >= 0]
    wrong = [names.feeder_name_marketing(ctx.net.feeder_base[f], int(ctx.net.feeder_numeral[f]),
                                         int(v))
             for f, v in zip(alt, rng.integers(0, VARIANTS, alt.size), strict=True)]
    change("name_mismatch", pos, "线路名称", pl.Series(wrong, dtype=pl.Utf8))

    pos, _ = _local(plan, "stale_record", lo, hi)
    change("stale_record", pos, "更新时间", timestamps(
        ctx.ref_epoch - rng.integers(3 * YEAR_S + 86400, 7 * YEAR_S, pos.size)))

    frame = pl.DataFrame(list(cols.values()))
    dup_line = first_line + t.size
    pos, _ = _local(plan, "customer_duplicate_exact", lo, hi)
    exact = frame[pos]
    log.add("customer_duplicate_exact", CUSTOMERS, cid.gather(pos), "户号", "", cid.gather(pos),
            dup_line + np.arange(pos.size))
    dup_line += pos.size

    pos, _ = _local(plan, "customer_duplicate_conflict", lo, hi)
    conflict = frame[pos]
    which = rng.integers(0, 4, pos.size)
    other_name = _person_names(rng, pos.size)
    replacements = {
        "联系电话": _phones(rng, pos.size),
        "合同容量": integers(conflict["合同容量"].cast(pl.Int64).to_numpy()
                         + rng.integers(1, 4, pos.size)),
        "用电地址": conflict["用电地址"] + "之" + pl.Series(rng.integers(1, 9, pos.size)).cast(
            pl.Utf8),
        "户名": pl.select(pl.when(other_name == conflict["户名"]).then(other_name + "华")
                        .otherwise(other_name)).to_series(),
    }
    for k, (field, new) in enumerate(replacements.items()):
        rows = np.flatnonzero(which == k)
        if not rows.size:
            continue
        log.add("customer_duplicate_conflict", CUSTOMERS, conflict["户号"].gather(rows), field,
                conflict[field].gather(rows), new.gather(rows), dup_line + rows)
        conflict = conflict.with_columns(conflict[field].scatter(rows, new.gather(rows)))
    return pl.concat([frame, exact, conflict]), lost


def write_customers(root: Path, net: Network, ids: DistributionIds, areas: Areas,
                    pairs: PairExport, plan: DefectPlan, log: DefectLog, *, seed: int,
                    ref_epoch: int, stream: int,
                    progress: ProgressCallback | None = None) -> list[FileRecord]:
    """``marketing/customers.csv`` and ``truth/customer_links.csv``, one chunk at a time."""
    total = int(areas.customers.sum())
    ctx = _Context(net=net, ids=ids, areas=areas, pairs=pairs, plan=plan, ref_epoch=ref_epoch,
                   cum=np.cumsum(areas.customers[areas.order]),
                   alt_feeder=_alternative_feeders(net))
    area_ok = pairs.in_export
    with CsvFile(root, "marketing/customers.csv", CUSTOMER_COLUMNS, MARKETING_ENCODING) as out, \
            CsvFile(root, "truth/customer_links.csv", CUSTOMER_TRUTH_COLUMNS, "utf-8") as truth:
        for chunk, lo in enumerate(range(0, total, CHUNK)):
            hi = min(total, lo + CHUNK)
            rng = np.random.default_rng([seed, stream, chunk])
            cols, t = _customer_block(rng, ctx, lo, hi)
            customer_id = cols["户号"]
            frame, lost = _apply_customer_defects(rng, ctx, cols, t, lo, out.line + 1, log)
            out.write(frame)
            ts = pl.Series(t)
            truth.write(pl.DataFrame([
                customer_id, areas.code.gather(ts), ids.transformer.gather(ts),
                ids.feeder.gather(pl.Series(net.tr_feeder[t])),
                ids.station.gather(pl.Series(net.tr_station[t])),
                flags(area_ok[t] & ~lost),
            ], schema=CUSTOMER_TRUTH_COLUMNS))
            if progress is not None:
                progress("customers", hi, total)
        return [out.close(), truth.close()]
