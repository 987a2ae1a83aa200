"""Personal data over the API: a per-key limit answering 429 with Retry-After (across workers,
through the access log), and the access log itself — rows written in the background, read
with `gridtopo apikey access-log`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from gridtopo.api.access_log import Access, access_log, record_access
from gridtopo.api.app import create_app
from gridtopo.api.keys import create_key
from gridtopo.cli import main
from gridtopo.topology.index import load_index
from tests.test_outage_events import Oracle, _fuse_with_customers

LIMIT = 10


@pytest.fixture
def personal(model_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    app = create_app(model_engine, load_index(model_engine), refresh_seconds=0,
                     key_cache_seconds=0, personal_per_minute=LIMIT)
    fuse, below = _fuse_with_customers(Oracle(model_engine))
    keys = {name: create_key(model_engine, name, scopes)[0] for name, scopes in (
        ("sms", ["outage:read", "personal:read"]), ("wechat", ["outage:read", "personal:read"]),
        ("ivr", ["outage:read"]), ("ops", ["outage:read", "outage:write"]))}
    return {"app": app, "service": app.state.service, "fuse": fuse, "below": below,
            "keys": keys, "client": TestClient(app, raise_server_exceptions=False)}


def _list(personal: dict[str, Any], key: str, limit: int, offset: int = 0) -> Any:
    return personal["client"].post(
        "/v1/impact", json={"devices": [personal["fuse"]], "list_customers": True,
                            "limit": limit, "offset": offset},
        headers={"X-API-Key": personal["keys"][key]})


def test_personal_data_is_limited_per_key_with_retry_after(personal: dict[str, Any]) -> None:
    first = _list(personal, "sms", 6)
    assert first.status_code == 200 and first.json()["customer_list"]["personal_data"] == "full"
    refused = _list(personal, "sms", 6, offset=6)
    assert refused.status_code == 429 and refused.headers["content-type"] == \
        "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    doc = refused.json()
    assert doc["type"] == "urn:gridtopo:problem:personal-data-limit" and "sms" in doc["detail"]
    assert "phone" not in refused.text and "customer_list" not in doc
    assert _list(personal, "sms", 4, offset=6).status_code == 200  # exactly the limit
    assert _list(personal, "sms", 1).status_code == 429
    assert _list(personal, "wechat", LIMIT).status_code == 200  # another key: its own limit
    too_big = _list(personal, "wechat", LIMIT + 1)
    assert too_big.status_code == 429 and "smaller pages" in too_big.json()["detail"]
    for _ in range(3):  # masked answers are not personal data: never limited
        masked = _list(personal, "ivr", 100)
        assert masked.status_code == 200
        assert masked.json()["customer_list"]["personal_data"] == "masked"
    # counts only (no list) reveal nothing
    counts = personal["client"].post("/v1/impact", json={"devices": [personal["fuse"]]},
                                     headers={"X-API-Key": personal["keys"]["sms"]})
    assert counts.status_code == 200


def test_every_unmasked_listing_is_logged_in_the_background(personal: dict[str, Any],
                                                            model_engine: Engine) -> None:
    client, keys = personal["client"], personal["keys"]
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    listed = _list(personal, "sms", 3).json()["customer_list"]["items"]
    _list(personal, "ivr", 50)  # masked: not logged
    _list(personal, "sms", LIMIT)  # refused: nothing revealed, not logged
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    event = client.post("/v1/outages", json={"devices": [personal["fuse"]], "started_at": start},
                        headers={"X-API-Key": keys["ops"]}).json()
    page = client.get(f"/v1/outages/{event['id']}/customers?limit=2&offset=1",
                      headers={"X-API-Key": keys["wechat"]}).json()
    personal["service"].finish_writes()

    rows = access_log(model_engine)
    assert [(r["key_name"], r["route"], r["customers"]) for r in rows] == [
        ("wechat", "GET /v1/outages/{event_id}/customers", 2), ("sms", "POST /v1/impact", 3)]
    assert rows[0]["path"] == f"/v1/outages/{event['id']}/customers"
    assert rows[0]["customer_ids"] == [c["customer_id"] for c in page["items"]]
    assert rows[1]["customer_ids"] == [c["customer_id"] for c in listed]
    assert all(r["read_at"] >= before and r["worker"] for r in rows)
    with model_engine.connect() as conn:  # ids only: no personal data in the log
        stored = conn.exec_driver_sql("SELECT * FROM personal_access_log").all()
    assert not any(item["phone"] in repr(stored) for item in listed if item.get("phone"))

    def cli(*args: str) -> list[dict[str, Any]]:
        result = CliRunner().invoke(main, ["--db", model_engine.url.render_as_string(
            hide_password=False), "apikey", "access-log", "--json", *args],
            catch_exceptions=False)
        assert result.exit_code == 0, result.output
        found: list[dict[str, Any]] = json.loads(result.output)
        return found

    assert [r["key_name"] for r in cli()] == ["wechat", "sms"]
    assert [r["customers"] for r in cli("--key", "sms")] == [3]
    assert cli("--since", (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat()) == []
    assert [r["key_name"] for r in cli("--customer", listed[0]["customer_id"])] == ["sms"]
    assert len(cli("--limit", "1")) == 1
    human = CliRunner().invoke(main, ["--db", model_engine.url.render_as_string(
        hide_password=False), "apikey", "access-log", "--key", "sms"])
    assert "sms" in human.output and "3 customers" in human.output


def test_the_limit_counts_what_other_workers_logged(personal: dict[str, Any],
                                                    model_engine: Engine) -> None:
    """With several workers, each one's reads reach the others through the access log."""
    now = dt.datetime.now(dt.UTC)
    record_access(model_engine, Access("sms", "POST /v1/impact", "/v1/impact",
                                       [f"C{i}" for i in range(LIMIT - 2)], read_at=now,
                                       worker="other-host:4242"))
    record_access(model_engine, Access("sms", "POST /v1/impact", "/v1/impact",
                                       [f"C{i}" for i in range(LIMIT)],
                                       read_at=now - dt.timedelta(minutes=2),
                                       worker="other-host:4242"))  # outside the window
    assert _list(personal, "sms", 3).status_code == 429
    assert _list(personal, "sms", 2).status_code == 200
    assert _list(personal, "wechat", 3).status_code == 200
