"""The call-centre API through real HTTP servers on both stores: finding callers (masked,
personal data logged), trouble calls (answers, idempotency, conflicts), meter events, and
predictions kept by two workers on one database — surviving a restart of both."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, select

from gridtopo.api.access_log import access_log
from gridtopo.api.app import create_app
from gridtopo.api.keys import create_key
from gridtopo.db.models import Customer, CustomerPersonal
from gridtopo.topology.index import load_index
from tests.test_api_service import _free_port
from tests.test_outage_events import Oracle, _fuse_with_customers

WAIT_SECONDS = 60.0
"""How long a test waits for the background prediction loop (not a timing assertion)."""


@contextmanager
def _serve(app: FastAPI) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _app(engine: Engine) -> FastAPI:
    return create_app(engine, load_index(engine), refresh_seconds=0, key_cache_seconds=0,
                      predict_seconds=0.2)


def _until(client: httpx.Client, url: str, key: str, test: Any) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        body = client.get(url, headers={"X-API-Key": key}).json()
        if test(body):
            return body
        assert time.monotonic() < deadline, f"{url} never showed it: {body}"
        time.sleep(0.1)


@pytest.fixture
def setting(model_engine: Engine, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
            ) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    keys = {name: create_key(model_engine, name, scopes)[0] for name, scopes in (
        ("ivr", ["outage:read"]), ("sms", ["outage:read", "personal:read"]),
        ("cc", ["calls:write"]), ("ops", ["outage:read", "outage:write"]))}
    fuse, below = _fuse_with_customers(Oracle(model_engine))
    with model_engine.connect() as conn:
        people = dict(conn.execute(select(Customer.customer_id, CustomerPersonal.phone)
                                   .join(CustomerPersonal)).all())
        meters = dict(conn.execute(select(Customer.customer_id, Customer.meter_id)).all())
    return {"keys": keys, "fuse": fuse, "below": sorted(below), "phones": people,
            "meters": meters}


def test_find_callers_masked_and_logged(model_engine: Engine, setting: dict[str, Any]) -> None:
    keys = setting["keys"]
    customer = setting["below"][0]
    phone = setting["phones"][customer]
    app = _app(model_engine)
    with _serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        masked = client.get("/v1/customers", params={"phone": phone},
                            headers={"X-API-Key": keys["ivr"]})
        assert masked.status_code == 200 and masked.json()["personal_data"] == "masked"
        item = next(i for i in masked.json()["items"] if i["customer_id"] == customer)
        assert item["phone"] != phone and "****" in item["phone"]
        full = client.get("/v1/customers", params={"meter": setting["meters"][customer]},
                          headers={"X-API-Key": keys["sms"]}).json()
        assert [i["customer_id"] for i in full["items"]] == [customer]
        assert full["items"][0]["phone"] == phone
        near = client.get("/v1/customers", params={"near": "100.0,30.0"},
                          headers={"X-API-Key": keys["ivr"]}).json()
        assert near["items"] == [] and near["in_territory"] is False
        assert client.get("/v1/customers", params={"phone": phone}).status_code == 401
        assert client.get("/v1/customers", params={"phone": phone},
                          headers={"X-API-Key": keys["cc"]}).status_code == 403
        for params in ({"phone": phone, "meter": "x"}, {}, {"near": "east,north"},
                       {"q": "a\x00b"}):
            bad = client.get("/v1/customers", params=params, headers={"X-API-Key": keys["ivr"]})
            assert bad.status_code == 422 and bad.headers["content-type"] == \
                "application/problem+json"
    app.state.service.finish_writes()
    logged = access_log(model_engine, key_name="sms")
    assert [row["customer_ids"] for row in logged] == [[customer]]
    assert logged[0]["route"] == "GET /v1/customers"


def test_calls_and_last_gasps_through_two_workers_survive_a_restart(
        model_engine: Engine, setting: dict[str, Any]) -> None:
    keys, below = setting["keys"], setting["below"]
    callers = random.Random(7).sample(below, len(below) // 10 + 2)
    cc, ops = {"X-API-Key": keys["cc"]}, {"X-API-Key": keys["ops"]}
    with _serve(_app(model_engine)) as one, _serve(_app(model_engine)) as two, \
            httpx.Client(timeout=30) as client:
        first = {"call_id": "95598-1", "phone": setting["phones"][callers[0]],
                 "trouble": "no_supply", "channel": "95598", "at": "2026-12-07T08:00:00+08:00",
                 "text": "家里没电了"}
        taken = client.post(f"{one}/v1/calls", json=first, headers=cc)
        assert taken.status_code == 201, taken.text
        assert taken.json()["status"] == "predicting"
        assert taken.json()["customer_id"] == callers[0]
        again = client.post(f"{two}/v1/calls", json=first, headers=cc)  # a retry, elsewhere
        assert again.status_code == 200 and again.json() == taken.json()
        conflict = client.post(f"{two}/v1/calls", json={**first, "trouble": "flicker"},
                               headers=cc)
        assert conflict.status_code == 409 and "different body" in conflict.json()["detail"]
        assert client.post(f"{one}/v1/calls", json={"call_id": "x", "trouble": "no_supply"},
                           headers=cc).status_code == 422
        assert client.post(f"{one}/v1/calls", json={**first, "call_id": "y"},
                           headers={"X-API-Key": keys["ivr"]}).status_code == 403
        for i, customer in enumerate(callers[1:]):
            r = client.post(f"{(one, two)[i % 2]}/v1/calls", headers=cc, json={
                "call_id": f"app-{i}", "customer_id": customer, "trouble": "no_supply",
                "channel": "app", "at": "2026-12-07T00:05:00Z", "photo": f"oss://p/{i}.jpg"})
            assert r.status_code == 201, r.text
        gasping = random.Random(8).sample(below, len(below) * 6 // 10)  # most meters gasp
        gasps = [{"meter_id": setting["meters"][c], "kind": "power_off",
                  "at": "2026-12-07T00:01:00Z"} for c in gasping]
        stored = client.post(f"{two}/v1/meter-events", json={"events": gasps + gasps[:3]},
                             headers=cc).json()
        assert stored["stored"] == len(gasping) and stored["duplicates"] == 3
        listed = _until(client, f"{one}/v1/predictions", keys["ops"],
                        lambda b: b["items"] and b["items"][0]["calls"] >= len(callers) - 2)
        [predicted] = listed["items"]
        assert predicted["device"] == setting["fuse"] or predicted["customers_below"] >= len(
            below)
        joined = _until(client, f"{two}/v1/calls/app-0", keys["ops"],
                        lambda b: b.get("prediction_id") is not None)
        assert joined["prediction_id"] == predicted["id"]
        confirmed = client.post(f"{two}/v1/predictions/{predicted['id']}/confirm",
                                json={"expected_end": "2026-12-07T06:00:00Z"}, headers=ops)
        assert confirmed.status_code == 200, confirmed.text
        event = confirmed.json()["event"]
        assert client.post(f"{one}/v1/predictions/{predicted['id']}/cancel",
                           headers=ops).status_code == 409
        assert client.post(f"{one}/v1/predictions/999999/confirm",
                           headers=ops).status_code == 404
        late = client.post(f"{one}/v1/calls", headers=cc, json={
            "call_id": "late", "customer_id": below[-1], "trouble": "no_supply"}).json()
        assert late["status"] == "in_event" and late["event_id"] == event["id"]
        assert late["etr"].startswith("2026-12-07T06:00")
    # both workers stopped; a new one reads the same state
    with _serve(_app(model_engine)) as url, httpx.Client(base_url=url, timeout=30) as client:
        done = client.get("/v1/predictions", params={"status": "confirmed"}, headers=ops).json()
        assert [p["id"] for p in done["items"]] == [predicted["id"]]
        assert done["items"][0]["event_id"] == event["id"]
        replay = client.post("/v1/calls", json=first, headers=cc)
        assert replay.status_code == 200 and replay.json() == taken.json()
