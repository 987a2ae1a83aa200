"""The pandapower export computes: its load model is the documented one, and
``pandapower.runpp`` converges on the whole generated model and on every feeder alone, with
both load models, on both stores."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandapower as pp
import pytest
from sqlalchemy import Engine, text

from gridtopo.db.read.scope import Scope
from gridtopo.exports import electrical
from gridtopo.exports.demand import COINCIDENCE, POWER_FACTOR, UTILISATION
from gridtopo.exports.pandapower import export_pandapower

# the generator writes these voltage classes (gridtopo/synthetic/marketing.py)
CLASS_OF = {"220V": "residential", "380V": "low_voltage", "10kV": "medium_voltage"}


def expected_loads(engine: Engine) -> dict[str, tuple[float, float, str]]:
    """``{transformer: (p_mw, q_mvar, source)}`` computed from the rows as the README says."""
    with engine.connect() as conn:
        customers = conn.execute(text(
            "SELECT transformer_id, voltage_class, contract_kva FROM customers "
            "WHERE transformer_id IS NOT NULL AND status = 'active'")).all()
        transformers = conn.execute(text(
            "SELECT transformer_id, capacity_kva FROM transformers "
            "WHERE status = 'in_service' AND node IS NOT NULL")).all()
    p_kw: dict[str, float] = defaultdict(float)
    q_kvar: dict[str, float] = defaultdict(float)
    for tid, voltage_class, kva in customers:
        cls = CLASS_OF[voltage_class]
        p = (kva or 0.0) * COINCIDENCE[cls]
        p_kw[tid] += p
        q_kvar[tid] += p * (1 / POWER_FACTOR[cls] ** 2 - 1) ** 0.5
    loads = {}
    for tid, rating in transformers:
        if p_kw.get(tid, 0.0) > 0:
            scale = min(1.0, rating / p_kw[tid]) if rating else 1.0
            loads[tid] = (p_kw[tid] * scale / 1000, q_kvar[tid] * scale / 1000, "contract")
        else:
            p = (rating or 0.0) * UTILISATION / 1000
            loads[tid] = (p, p * (1 / 0.92**2 - 1) ** 0.5, "rating")
    return loads


def run(path: Path) -> pp.pandapowerNet:
    net = pp.from_json(str(path))
    pp.runpp(net, numba=False)
    assert net.converged
    live = net.res_bus.vm_pu.dropna()
    assert len(live) > 0 and live.between(0.8, 1.01).all()
    return net


def test_contract_load_model(feeders_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "net.json"
    export_pandapower(feeders_engine, path)
    net = pp.from_json(str(path))
    expected = expected_loads(feeders_engine)
    got = {name: (p, q, source) for name, p, q, source in
           net.load[["name", "p_mw", "q_mvar", "load_source"]].itertuples(index=False)}
    assert got.keys() == expected.keys()
    for tid, (p, q, source) in expected.items():
        assert got[tid][2] == source, tid
        assert got[tid][0] == pytest.approx(p, rel=1e-9, abs=1e-12), tid
        assert got[tid][1] == pytest.approx(q, rel=1e-9, abs=1e-12), tid
    sources = {s for _, _, s in expected.values()}
    assert "contract" in sources
    with feeders_engine.connect() as conn:  # capped: no load above its rating
        ratings = dict(conn.execute(text("SELECT transformer_id, capacity_kva FROM "
                                         "transformers")).all())
    assert all(p <= ratings[t] / 1000 + 1e-12 for t, (p, _, _) in got.items() if ratings[t])
    assert any(p == pytest.approx(ratings[t] / 1000) for t, (p, _, _) in got.items())


def test_runpp_converges_whole_and_per_feeder(feeders_engine: Engine, tmp_path: Path) -> None:
    with feeders_engine.connect() as conn:
        feeders = [r[0] for r in conn.execute(text("SELECT feeder_id FROM feeders "
                                                   "ORDER BY feeder_id"))]
    assert len(feeders) >= 8
    export_pandapower(feeders_engine, tmp_path / "all.json")
    whole = run(tmp_path / "all.json")
    assert set(whole.line["conductor"]) <= {t.name for t in electrical.LINE_TYPES.values()}
    assert whole.res_ext_grid.p_mw.sum() > whole.res_load.p_mw.sum() > 0  # losses come on top
    rating = tmp_path / "rating.json"
    export_pandapower(feeders_engine, rating, load_model="rating")
    assert set(run(rating).load["load_source"]) == {"rating"}
    supplied = 0
    for feeder in feeders:  # a feeder whose station is out of service has no supply to run
        path = tmp_path / f"{feeder}.json"
        if export_pandapower(feeders_engine, path, Scope(feeders=(feeder,)))["ext_grid"]:
            assert run(path).res_load.p_mw.sum() > 0, feeder
            supplied += 1
    assert supplied >= len(feeders) - 1
