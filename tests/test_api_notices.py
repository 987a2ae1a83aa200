"""The notifier's API through a real HTTP server on both stores: the notice feed (scope,
masking, cursor), ETR changes and opt-out; and the CLI's ``outage etr`` and notice counts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from gridtopo.api.access_log import access_log
from gridtopo.api.app import create_app
from gridtopo.api.keys import create_key
from gridtopo.cli.main import main
from gridtopo.clock import now_seconds
from gridtopo.db.models import Customer, CustomerPersonal
from gridtopo.outages.notices import NoticeRules
from gridtopo.topology.index import load_index
from tests.test_api_calls import _serve
from tests.test_notices import reachable
from tests.test_outage_events import Oracle, _fuse_with_customers

QUIET_OFF = NoticeRules(quiet_hours=("00:00", "00:00"))


@pytest.fixture
def setting(model_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    keys = {name: create_key(model_engine, name, scopes)[0] for name, scopes in (
        ("feed", ["notify:read"]), ("sms", ["notify:read", "personal:read"]),
        ("ops", ["outage:read", "outage:write"]), ("cc", ["calls:write"]))}
    fuse, below = _fuse_with_customers(Oracle(model_engine))
    with model_engine.connect() as conn:
        phones = {c: p for c, p in conn.execute(
            select(Customer.customer_id, CustomerPersonal.phone).join(CustomerPersonal))}
    return {"keys": keys, "fuse": fuse, "below": sorted(below), "phones": phones}


def test_feed_etr_and_opt_out_over_http(model_engine: Engine, setting: dict[str, Any]) -> None:
    keys, below = setting["keys"], setting["below"]
    told = reachable(model_engine, set(below))
    quiet = sorted(told)[0]
    app = create_app(model_engine, load_index(model_engine), refresh_seconds=0,
                     key_cache_seconds=0, notice_rules=QUIET_OFF,
                     personal_per_minute=100_000)
    ops, cc = {"X-API-Key": keys["ops"]}, {"X-API-Key": keys["cc"]}
    with _serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        opted = client.put(f"/v1/customers/{quiet}/notices", json={"opt_out": True}, headers=cc)
        assert opted.status_code == 200 and opted.json() == {"customer_id": quiet,
                                                             "opt_out": True}
        assert client.put(f"/v1/customers/{quiet}/notices", json={"opt_out": "maybe"},
                          headers=cc).status_code == 422
        start = (now_seconds() - dt.timedelta(minutes=3)).isoformat()
        event = client.post("/v1/outages", json={"devices": [setting["fuse"]],
                                                 "started_at": start}, headers=ops)
        assert event.status_code == 201, event.text
        counts = event.json()["notices"]
        assert counts["acknowledged"] == len(told) - 1 and counts["opted_out"] == 1
        etr = (now_seconds() + dt.timedelta(hours=4)).isoformat()
        moved = client.post(f"/v1/outages/{event.json()['id']}/etr",
                            json={"expected_end": etr}, headers=ops)
        assert moved.status_code == 200 and moved.json()["notices"]["etr"] == len(told) - 1
        assert client.post("/v1/outages/999999/etr", json={"expected_end": etr},
                           headers=ops).status_code == 404

        assert client.get("/v1/notifications").status_code == 401
        assert client.get("/v1/notifications", headers=ops).status_code == 403
        assert client.get("/v1/notifications", params={"after": -1},
                          headers={"X-API-Key": keys["feed"]}).status_code == 422
        items, after = [], 0
        while True:
            page = client.get("/v1/notifications", params={"after": after, "limit": 50},
                              headers={"X-API-Key": keys["feed"]}).json()
            if not page["items"]:
                assert page["next"] == after
                break
            items += page["items"]
            after = page["next"]
        assert [i["seq"] for i in items] == list(range(1, 2 * (len(told) - 1) + 1))
        assert {i["customer_id"] for i in items} == told - {quiet}
        for item in items:
            assert item["recipient"] != setting["phones"][item["customer_id"]].strip()
            assert "****" in item["recipient"]
        full = client.get("/v1/notifications", params={"limit": 5},
                          headers={"X-API-Key": keys["sms"]}).json()
        assert [i["recipient"] for i in full["items"]] == [
            setting["phones"][i["customer_id"]].strip() for i in full["items"]]
        closed = client.post(f"/v1/outages/{event.json()['id']}/close", headers=ops).json()
        assert closed["notices"]["restored"] == len(told) - 1
    app.state.service.finish_writes()
    logged = access_log(model_engine, key_name="sms")
    assert logged and logged[0]["route"] == "GET /v1/notifications"
    assert len(logged[0]["customer_ids"]) == 5


def test_cli_declare_etr_close_print_notice_counts(model_engine: Engine,
                                                   setting: dict[str, Any],
                                                   tmp_path: Path) -> None:
    url = model_engine.url.render_as_string(hide_password=False)
    rules = tmp_path / "rules.toml"
    rules.write_text('quiet_hours = ["00:00", "00:00"]\netr_minutes = 10\n', encoding="utf-8")
    told = reachable(model_engine, set(setting["below"]))
    runner = CliRunner()

    def run(*args: str) -> dict[str, Any]:
        result = runner.invoke(main, ["--db", url, *args, "--notice-rules", str(rules),
                                      "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        data: dict[str, Any] = json.loads(result.output)
        return data

    event = run("outage", "declare", setting["fuse"])
    assert event["notices"]["acknowledged"] == len(told)
    etr = (now_seconds() + dt.timedelta(hours=2)).isoformat()
    assert run("outage", "etr", str(event["id"]), etr)["notices"]["etr"] == len(told)
    later = (now_seconds() + dt.timedelta(hours=2, minutes=5)).isoformat()
    assert run("outage", "etr", str(event["id"]), later)["notices"].get("etr", 0) == 0
    assert run("outage", "close", str(event["id"]))["notices"]["restored"] == len(told)
    human = runner.invoke(main, ["--db", url, "outage", "declare", setting["fuse"],
                                 "--notice-rules", str(rules)])
    assert human.exit_code == 0 and f"{len(told):,} acknowledged" in human.output
    opted = runner.invoke(main, ["--db", url, "notices", "opt-out", sorted(told)[0], "--json"])
    assert opted.exit_code == 0 and json.loads(opted.output) == {"customers": 1,
                                                                 "opt_out": True}
    page = json.loads(runner.invoke(main, ["--db", url, "notices", "feed", "--limit", "3",
                                           "--json"]).output)
    assert [i["seq"] for i in page["items"]] == [1, 2, 3] and page["next"] == 3
    assert all("****" in i["recipient"] for i in page["items"])
    human = runner.invoke(main, ["--db", url, "notices", "feed", "--after", "3", "--limit",
                                 "2", "--personal"])
    assert human.exit_code == 0 and human.output.rstrip().endswith("next 5")
    bad = tmp_path / "bad.toml"
    bad.write_text("lead = 1\n", encoding="utf-8")
    refused = runner.invoke(main, ["--db", url, "outage", "declare", setting["fuse"],
                                   "--notice-rules", str(bad)])
    assert refused.exit_code == 2 and "unknown notice rule" in refused.output
