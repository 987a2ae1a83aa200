"""Live switching state on both stores: `gridtopo switching apply` and `POST /v1/switching`
record field changes (who, when, why, a run and snapshot of their own) and update the query
index to what a fresh build gives; bad input names file, line and device and applies nothing;
the next ingest keeps a change done after its export, yields to a newer export, and never
overrides a pinned change."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from gridtopo.api.app import create_app
from gridtopo.api.keys import create_key
from gridtopo.cli import main
from gridtopo.db.models import Edge, IngestRun, Snapshot, SwitchingChange
from gridtopo.pipeline import ingest
from gridtopo.topology.index import QueryIndex, build_index, load_index
from gridtopo.topology.index.store import ARRAYS
from tests.test_outage_events import Oracle, _fuse_with_customers

HEADER = "edge_id,normal_open,in_service,at,note\n"


def _cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False)


def _edge(engine: Engine, edge_id: str) -> tuple[bool, bool]:
    with engine.connect() as conn:
        row = conn.execute(select(Edge.normal_open, Edge.in_service)
                           .where(Edge.edge_id == edge_id)).one()
    return bool(row[0]), bool(row[1])


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return (conn.scalar(select(func.count()).select_from(SwitchingChange)) or 0,
                conn.scalar(select(func.count()).select_from(IngestRun)) or 0,
                conn.scalar(select(func.count()).select_from(Snapshot)) or 0)


def _same_index(got: QueryIndex, want: QueryIndex) -> None:
    assert got.n_energized == want.n_energized
    for name in ARRAYS:
        assert np.array_equal(getattr(got, name), getattr(want, name)), name


def _dead(index: QueryIndex, customers: set[str]) -> set[str]:
    numbers = index.customer_indices(sorted(customers))
    return {c for c, n in zip(sorted(customers), numbers.tolist(), strict=True)
            if index.customer_position(n) >= index.n_energized}


@pytest.fixture
def fuse(model_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
         ) -> tuple[str, set[str]]:
    monkeypatch.chdir(tmp_path)  # a PostgreSQL index is written to the working directory
    load_index(model_engine)
    return _fuse_with_customers(Oracle(model_engine))


def test_cli_records_a_change_and_updates_the_index(model_engine: Engine, model_db_url: str,
                                                    fuse: tuple[str, set[str]],
                                                    tmp_path: Path) -> None:
    device, below = fuse
    ops = tmp_path / "ops.csv"
    ops.write_text(HEADER + f"{device},,false,2026-12-07T08:15:00+08:00,fuse link burnt\n")
    before = _counts(model_engine)
    result = _cli(model_db_url, "switching", "apply", str(ops), "--by", "dispatcher Li",
                  "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.output)
    assert done["edges_changed"] == 1 and done["index"] == "updated"
    assert done["edges"] == {device: {"normal_open": False, "in_service": False}}
    assert _edge(model_engine, device) == (False, False)
    assert _counts(model_engine) == (before[0] + 1, before[1] + 1, before[2] + 1)

    index = load_index(model_engine)  # the saved update is current: not rebuilt
    assert index.meta["switching_version"] == done["switching_version"]
    assert index.meta["ingest_run"] == done["run_id"] and "updated_at" in index.meta
    _same_index(index, build_index(model_engine))
    assert _dead(index, below) == below

    listed = json.loads(_cli(model_db_url, "switching", "list", "--json").output)
    assert listed[0] | {"recorded_at": None} == {
        "id": done["changes"][0], "device": device, "normal_open": None, "in_service": False,
        "at": "2026-12-07T00:15:00+00:00", "note": "fuse link burnt",
        "recorded_by": "dispatcher Li", "recorded_at": None, "origin": str(ops), "line": 2,
        "run_id": done["run_id"], "pinned": False, "status": "active", "ended_run": None}
    with model_engine.connect() as conn:  # the former state is history, as for any change
        history = conn.execute(text("SELECT in_service, valid_to_run FROM edges_history "
                                    "WHERE edge_id = :e"), {"e": device}).one()
    assert bool(history[0]) is True and history[1] == done["run_id"]

    ops.write_text(HEADER + f"{device},,true,,fuse replaced\n")
    back = json.loads(_cli(model_db_url, "switching", "apply", str(ops), "--json").output)
    assert back["replaced"] == done["changes"] and back["edges_changed"] == 1
    index = load_index(model_engine)
    _same_index(index, build_index(model_engine))
    assert _dead(index, below) == set()


def test_bad_input_names_file_line_and_device_and_applies_nothing(
        model_engine: Engine, model_db_url: str, fuse: tuple[str, set[str]],
        tmp_path: Path) -> None:
    device, _ = fuse
    with model_engine.connect() as conn:
        line = conn.scalar(select(Edge.edge_id).where(Edge.kind == "line").limit(1))
    ops = tmp_path / "ops.csv"
    ops.write_text(HEADER + f"NOPE-1,true,,,\n{line},true,,,\n{device},,false,,fine\n")
    before, state = _counts(model_engine), _edge(model_engine, device)
    result = _cli(model_db_url, "switching", "apply", str(ops))
    assert result.exit_code == 2
    assert "ops.csv line 2: device NOPE-1: unknown device" in result.output
    assert f"ops.csv line 3: device {line}: a line is not a switching device: only " \
           "in_service applies" in result.output
    assert _counts(model_engine) == before and _edge(model_engine, device) == state

    ops.write_text(HEADER + f"{device},maybe,,,\n{device},,,yesterday,\n")
    result = _cli(model_db_url, "switching", "apply", str(ops))
    assert result.exit_code == 2
    assert f"ops.csv line 2: device {device}: normal_open 'maybe' is not true or false" \
        in result.output
    assert f"ops.csv line 3: device {device}: neither normal_open nor in_service" \
        in result.output
    ops.write_text("edge_id,state\nX,1\n")
    result = _cli(model_db_url, "switching", "apply", str(ops))
    assert result.exit_code == 2 and "ops.csv line 1: unknown column(s) state" in result.output
    assert _counts(model_engine) == before


def _export_at(sources: Path, when: dt.datetime) -> None:
    stamp = when.timestamp()
    os.utime(sources / "distribution" / "edges.csv", (stamp, stamp))


def test_the_next_export_yields_to_later_and_pinned_changes(
        model_engine: Engine, model_db_url: str, fuse: tuple[str, set[str]],
        synthetic_sources: Path, tmp_path: Path) -> None:
    device, below = fuse
    switches = [(e, nopen) for e, k, _f, _u, _v, nopen, _s
                in Oracle(model_engine).edges.iter_rows() if k == "switch"]
    tie = next(e for e, nopen in switches if nopen == 1)
    closed, other = [e for e, nopen in switches if nopen == 0][:2]
    sources = tmp_path / "sources"
    shutil.copytree(synthetic_sources, sources)
    _export_at(sources, dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    ops = tmp_path / "ops.csv"
    ops.write_text(HEADER
                   + f"{device},,false,,after the export\n"          # now: wins
                   + f"{tie},false,,2024-01-01T00:00,before it\n"  # the export wins
                   + f"{closed},false,,2024-01-01T00:00,same as it\n")  # confirmed
    assert _cli(model_db_url, "switching", "apply", str(ops)).exit_code == 0
    ops.write_text(HEADER + f"{other},true,,2024-01-01T00:00,pinned\n")
    assert _cli(model_db_url, "switching", "apply", str(ops), "--pin").exit_code == 0

    def statuses() -> dict[str, str]:
        listed = json.loads(_cli(model_db_url, "switching", "list", "--json").output)
        return {c["device"]: c["status"] for c in listed}

    run = ingest(model_engine, sources, force=True).run_id
    assert statuses() == {device: "active", tie: "overridden", closed: "confirmed",
                          other: "active"}
    assert _edge(model_engine, device) == (False, False)
    assert _edge(model_engine, tie) == (True, True)
    assert _edge(model_engine, other) == (True, True)
    index = load_index(model_engine)
    assert index.meta["ingest_run"] == run and _dead(index, below) == below

    _export_at(sources, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))  # a newer export
    ingest(model_engine, sources, force=True)
    assert statuses() == {device: "overridden", tie: "overridden", closed: "confirmed",
                          other: "active"}
    assert _edge(model_engine, device) == (False, True)
    assert _edge(model_engine, other) == (True, True)
    pinned = json.loads(_cli(model_db_url, "switching", "list", "--json", "--status",
                             "active").output)[0]["id"]
    assert _cli(model_db_url, "switching", "unpin", str(pinned)).exit_code == 0
    ingest(model_engine, sources, force=True)
    assert statuses()[other] == "overridden" and _edge(model_engine, other) == (False, True)
    assert _dead(load_index(model_engine), below) == set()
    result = _cli(model_db_url, "switching", "pin", str(pinned))
    assert result.exit_code == 2 and "no longer active" in result.output


def test_api_records_changes_with_its_scope_all_or_nothing(
        model_engine: Engine, fuse: tuple[str, set[str]]) -> None:
    device, below = fuse
    app = create_app(model_engine, load_index(model_engine), refresh_seconds=0,
                     key_cache_seconds=0)
    client = TestClient(app, raise_server_exceptions=False)
    reader = {"X-API-Key": create_key(model_engine, "reader", ["outage:read"])[0]}
    writer = {"X-API-Key": create_key(model_engine, "gis", ["outage:read", "network:write"])[0]}
    customer = sorted(below)[0]
    body: dict[str, Any] = {"changes": [{"device": device, "in_service": False,
                                         "note": "fuse out"}]}
    assert client.post("/v1/switching", json=body, headers=reader).status_code == 403
    before = _counts(model_engine)
    bad = client.post("/v1/switching", headers=writer, json={"changes": [
        {"device": device, "in_service": False}, {"device": "NOPE-1", "normal_open": True}]})
    assert bad.status_code == 422
    assert "request change 2: device NOPE-1: unknown device" in bad.json()["detail"]
    empty = client.post("/v1/switching", headers=writer, json={"changes": [{"device": device}]})
    assert empty.status_code == 422 and "normal_open and/or in_service" in empty.text
    assert _counts(model_engine) == before
    assert client.get(f"/v1/customers/{customer}/status", headers=reader).json()["out"] is False

    done = client.post("/v1/switching", json=body, headers=writer)
    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["edges_changed"] == 1 and done.headers["x-gridtopo-run"] == str(
        answer["run_id"])
    health = client.get("/health").json()
    assert health["model"]["switching_version"] == answer["switching_version"]
    assert health["model"]["ingest_run"] == answer["run_id"]
    status = client.get(f"/v1/customers/{customer}/status", headers=reader).json()
    assert status["out"] is True and status["reason"] == \
        "not energized in the normal switching state"
    listed = client.get("/v1/switching", headers=reader).json()["changes"]
    assert listed[0]["recorded_by"] == "api:gis" and listed[0]["note"] == "fuse out"
