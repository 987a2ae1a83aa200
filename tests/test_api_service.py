"""The HTTP API: keys and scopes, masking, pagination, errors, limits — through TestClient and
through a real uvicorn server on 127.0.0.1 with an httpx client."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gridtopo.api.app import create_app
from gridtopo.api.keys import create_key, list_keys, revoke_key
from gridtopo.api.limits import MAX_BODY_BYTES
from gridtopo.outages.predict import MAX_CALLS
from gridtopo.topology.index import load_index
from tests.test_outage_events import Oracle, _fuse_with_customers, _switching_plan


@pytest.fixture
def api(model_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    app = create_app(model_engine, load_index(model_engine), refresh_seconds=0,
                     key_cache_seconds=0)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    keys = {
        "reader": create_key(model_engine, "reader", ["outage:read"])[0],
        "personal": create_key(model_engine, "personal", ["outage:read", "personal:read"])[0],
        "writer": create_key(model_engine, "writer", ["outage:read", "outage:write"])[0],
        "expired": create_key(model_engine, "old", ["admin"], expires_at=past)[0],
        "revoked": create_key(model_engine, "gone", ["admin"])[0],
    }
    revoke_key(model_engine, "gone")
    return {"app": app, "keys": keys, "oracle": Oracle(model_engine)}


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def test_keys_scopes_masking_pagination_and_errors(api: dict[str, Any], model_engine: Engine
                                                   ) -> None:
    keys, oracle = api["keys"], api["oracle"]
    client = TestClient(api["app"], raise_server_exceptions=False)
    fuse, below = _fuse_with_customers(oracle)
    customer = sorted(below)[0]
    assert client.get("/health").json()["status"] == "ok"
    assert all(k["key_prefix"] and "key_hash" not in k for k in list_keys(model_engine))
    with model_engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM api_keys WHERE name = 'reader'")
                              ).scalar_one()
    assert keys["reader"] not in stored and len(stored) == 64

    url = f"/v1/customers/{customer}/status"
    assert client.get(url).status_code == 401
    for name, why in (("expired", "expired"), ("revoked", "revoked")):
        r = client.get(url, headers=h(keys[name]))
        assert r.status_code == 401 and why in r.json()["detail"]
    r = client.get(url, headers=h(keys["reader"] + "x"))
    assert r.status_code == 401 and keys["reader"] not in r.text
    assert client.get(url, headers={"Authorization": f"Bearer {keys['reader']}"}).json()[
        "out"] is False

    r = client.post("/v1/outages", json={"devices": [fuse]}, headers=h(keys["reader"]))
    assert r.status_code == 403 and "outage:write" in r.json()["detail"]
    r = client.get("/v1/customers/NO-SUCH/status", headers=h(keys["reader"]))
    assert r.status_code == 404 and "NO-SUCH" in r.json()["detail"]
    r = client.post("/v1/impact", json={"devices": [fuse, "NO-DEV"]}, headers=h(keys["reader"]))
    assert r.status_code == 404 and "NO-DEV" in r.json()["detail"]
    assert client.get("/v1/outages/424242", headers=h(keys["reader"])).status_code == 404
    assert client.post("/v1/impact", content=b"{not json", headers={
        **h(keys["reader"]), "content-type": "application/json"}).status_code == 422
    assert client.get("/v1/outages?limit=100000", headers=h(keys["reader"])).status_code == 422
    huge = {"devices": ["x" * 60] * 20_000}
    assert client.post("/v1/impact", json=huge, headers=h(keys["reader"])).status_code == 413

    body = {"devices": [fuse], "list_customers": True, "limit": 7}
    masked = client.post("/v1/impact", json=body, headers=h(keys["reader"])).json()
    full = client.post("/v1/impact", json=body, headers=h(keys["personal"])).json()
    assert masked["customers"] == full["customers"] == len(below)
    first = full["customer_list"]["items"][0]
    with model_engine.connect() as conn:
        phone = conn.execute(text("SELECT phone FROM customer_personal WHERE customer_id = :c"),
                             {"c": first["customer_id"]}).scalar_one()
    assert first["phone"] == phone
    hidden = masked["customer_list"]["items"][0]
    assert hidden["customer_id"] == first["customer_id"] and hidden["phone"] != phone
    assert hidden["phone"][-4:] == phone[-4:] and "*" in hidden["phone"]
    seen: list[str] = []
    for offset in range(0, len(below), 7):
        page = client.post("/v1/impact", json={**body, "offset": offset},
                           headers=h(keys["reader"])).json()["customer_list"]
        assert page["total"] == len(below)
        seen += [c["customer_id"] for c in page["items"]]
    assert sorted(seen) == sorted(below)

    up = client.get(f"/v1/customers/{customer}/upstream", headers=h(keys["reader"])).json()
    assert fuse in up["protective_devices"]
    down = client.get(f"/v1/devices/{fuse}/downstream", headers=h(keys["reader"])).json()
    assert down["customers"] == len(below)
    assert client.get("/v1/devices/NO-DEV/downstream", headers=h(keys["reader"])
                      ).status_code == 404

    start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    event = client.post("/v1/outages", json={"devices": [fuse], "reason": "fault",
                                             "started_at": start}, headers=h(keys["writer"]))
    assert event.status_code == 201, event.text
    event_id = event.json()["id"]
    status = client.get(url, headers=h(keys["reader"])).json()
    assert status["out"] is True and status["events"][0]["id"] == event_id
    listed = client.get(f"/v1/outages/{event_id}/customers?limit=1000",
                        headers=h(keys["reader"])).json()
    assert {c["customer_id"] for c in listed["items"]} == below
    closed = client.post(f"/v1/outages/{event_id}/close", headers=h(keys["writer"]))
    assert closed.json()["status"] == "closed" and closed.json()["customer_minutes"] > 0
    again = client.post(f"/v1/outages/{event_id}/close", headers=h(keys["writer"]))
    assert again.status_code == 409
    assert client.get(url, headers=h(keys["reader"])).json()["out"] is False
    calls = client.post("/v1/predict", json={"customers": sorted(below)},
                        headers=h(keys["reader"])).json()
    assert calls["predictions"][0]["device"] == fuse or below <= oracle.out(
        [calls["predictions"][0]["device"]])
    assert client.get("/openapi.json").json()["info"]["title"] == "gridtopo outage API"


def test_switching_plans_over_http(api: dict[str, Any]) -> None:
    keys, oracle = api["keys"], api["oracle"]
    client = TestClient(api["app"], raise_server_exceptions=False)
    plan = _switching_plan(oracle)
    reader, writer = h(keys["reader"]), h(keys["writer"])
    body = {"devices": plan.opens, "close": [plan.tie], "list_customers": True, "limit": 1000}
    data = client.post("/v1/impact", json=body, headers=reader).json()
    assert data["closed"] == [plan.tie] and data["customers"] == len(plan.out)
    assert {c["customer_id"] for c in data["customer_list"]["items"]} == plan.out
    assert data["picked_up"][0]["tie"] == plan.tie
    assert data["picked_up"][0]["customers"] == len(plan.picked)

    line = next(e for e, kind, *_ in oracle.edges.iter_rows() if kind == "line")
    for wrong, code, named in (({"close": [line]}, 422, line),
                               ({"close": ["NO-TIE"]}, 404, "NO-TIE"),
                               ({"devices": [plan.tie], "close": [plan.tie]}, 422, plan.tie),
                               ({"devices": [], "close": []}, 422, "at least one device")):
        r = client.post("/v1/impact", json={"devices": plan.opens, **wrong}, headers=reader)
        assert r.status_code == code and named in r.text, (wrong, r.text)
    r = client.post("/v1/outages", json={"devices": plan.opens, "close": [line]},
                    headers=writer)
    assert r.status_code == 422 and line in r.text

    start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    r = client.post("/v1/outages", json={"devices": plan.opens, "close": [plan.tie],
                                         "kind": "planned", "started_at": start},
                    headers=writer)
    assert r.status_code == 201, r.text
    event = r.json()
    assert event["closed"] == [plan.tie] and event["customers_interrupted"] == len(plan.out)
    shown = client.get(f"/v1/outages/{event['id']}", headers=reader).json()
    assert shown["closed"] == [plan.tie] and shown["impact"]["customers"] == len(plan.out)
    listed = client.get("/v1/outages", headers=reader).json()["events"]
    assert listed[0]["closed"] == [plan.tie]
    out = client.get(f"/v1/outages/{event['id']}/customers?limit=1000", headers=reader).json()
    assert {c["customer_id"] for c in out["items"]} == plan.out
    picked = client.get(f"/v1/customers/{sorted(plan.picked)[0]}/status", headers=reader).json()
    assert picked["out"] is False and picked["transfer"]["tie"] == plan.tie
    beyond = client.get(f"/v1/customers/{sorted(plan.out)[0]}/status", headers=reader).json()
    assert beyond["out"] is True and beyond["events"][0]["id"] == event["id"]


def test_key_use_is_recorded_at_most_once_per_interval(model_engine: Engine, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    key = create_key(model_engine, "ivr", ["outage:read"])[0]
    app = create_app(model_engine, load_index(model_engine), refresh_seconds=0,
                     key_cache_seconds=0)
    service = app.state.service
    client = TestClient(app)

    def last_used() -> dt.datetime | None:
        service.finish_writes()
        return next(k["last_used_at"] for k in list_keys(model_engine) if k["name"] == "ivr")

    assert last_used() is None
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    assert client.get("/health").status_code == 200 and last_used() is None  # no key used
    assert client.get("/v1/outages", headers=h(key)).status_code == 200
    first = last_used()
    assert first is not None and first >= before
    for _ in range(3):
        client.get("/v1/customers/NO-SUCH/status", headers=h(key))
    assert last_used() == first  # within the interval: not written again
    service.touch_seconds = 0
    time.sleep(0.01)
    client.get("/v1/outages", headers=h(key))
    assert (later := last_used()) is not None and later > first


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(api: dict[str, Any]) -> Iterator[str]:
    app: FastAPI = api["app"]
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_real_server_refuses_bad_requests_and_keeps_serving(server: str, api: dict[str, Any]
                                                            ) -> None:
    keys = api["keys"]
    fuse, below = _fuse_with_customers(api["oracle"])
    with httpx.Client(base_url=server, timeout=10) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/docs").status_code == 200
        assert client.get(f"/v1/customers/{sorted(below)[0]}/status").status_code == 401
        big = b'{"devices": ["' + b"x" * (MAX_BODY_BYTES + 10) + b'"]}'
        r = client.post("/v1/impact", content=big,
                        headers={**h(keys["reader"]), "content-type": "application/json"})
        assert r.status_code == 413

        def chunks() -> Iterator[bytes]:
            for _ in range(40):
                yield b" " * 50_000

        r = client.post("/v1/impact", content=chunks(),
                        headers={**h(keys["reader"]), "content-type": "application/json"})
        assert r.status_code == 413
        r = client.post("/v1/impact", json={"devices": [fuse]}, headers=h(keys["reader"]))
        assert r.status_code == 200 and r.json()["customers"] == len(below)
        assert client.get(f"/v1/customers/{sorted(below)[0]}/status",
                          headers=h(keys["personal"])).json()["out"] is False
        assert client.get("/health").json()["status"] == "ok"


def test_every_error_answers_with_its_class_status(api: dict[str, Any]) -> None:
    """One handler: a refused key is 401 with WWW-Authenticate on the fast path and through
    the framework alike; a missing scope 403; a state conflict 409. And the trouble calls
    one prediction takes are predict's MAX_CALLS, over HTTP as from a calls file."""
    keys = api["keys"]
    client = TestClient(api["app"], raise_server_exceptions=False)
    fuse, below = _fuse_with_customers(api["oracle"])
    for url in (f"/v1/customers/{sorted(below)[0]}/status",
                f"/v1/customers/{sorted(below)[0]}/upstream"):
        r = client.get(url, headers=h(keys["revoked"]))
        assert r.status_code == 401 and r.headers["www-authenticate"] == "ApiKey", url
        assert r.json() == {"type": "urn:gridtopo:problem:authentication",
                            "title": "Unauthorized", "status": 401, "detail": "API key revoked"}
        assert r.headers["content-type"] == "application/problem+json"
    r = client.post("/v1/outages/1/close", headers=h(keys["reader"]))
    assert r.status_code == 403 and "www-authenticate" not in r.headers
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    r = client.post("/v1/outages", json={"devices": [fuse], "started_at": start,
                                         "expected_end": start}, headers=h(keys["writer"]))
    assert r.status_code == 409 and "expected end" in r.json()["detail"]
    calls = ["NO-SUCH"] * MAX_CALLS
    r = client.post("/v1/predict", json={"customers": calls}, headers=h(keys["reader"]))
    assert r.status_code == 200 and r.json()["calls"] == MAX_CALLS
    r = client.post("/v1/predict", json={"customers": [*calls, "NO-SUCH"]},
                    headers=h(keys["reader"]))
    assert r.status_code == 422
