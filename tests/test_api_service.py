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

from gridtopo.api.app import MAX_BODY_BYTES, create_app
from gridtopo.api.keys import create_key, list_keys, revoke_key
from gridtopo.topology.index import load_index
from tests.test_outage_events import Oracle, _fuse_with_customers


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
