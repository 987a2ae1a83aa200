"""The public outage feed and map: no key, counts only, no personal data, escaped text,
cached per (model, outage state) — checked against networkx (the Oracle) on both stores,
through real uvicorn servers, and rendered by headless chromium."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from gridtopo.api.app import create_app
from gridtopo.api.keys import create_key
from gridtopo.api.map_page import CURRENT_COLOUR, EXTENT_GREY, PLANNED_COLOUR, embed_json
from gridtopo.api.public_routes import PUBLIC_PATHS
from gridtopo.db.models import Customer, CustomerPersonal, Feeder, Transformer
from gridtopo.outages import events as outages
from gridtopo.topology.index import QueryIndex, load_index
from tests.browser import chromium, colour_box, count_colour
from tests.test_api_calls import _serve
from tests.test_outage_events import Oracle, _fuse_with_customers

HOSTILE = ('<img src=x onerror="document.body.setAttribute(\'data-pwned\',1)">'
           '<script>document.body.setAttribute("data-pwned",2)</script>&amp;"\'')
GEOJSON = "application/geo+json"


def _disjoint_device(oracle: Oracle, taken: set[str], avoid: str) -> tuple[str, set[str]]:
    """A protective device cutting some customers, none of ``taken``."""
    for device in oracle.protective():
        out = oracle.out([device])
        if device != avoid and out and not out & taken and len(out) < len(oracle.customer_node) / 3:
            return device, out
    raise AssertionError("no second protective device with customers")


@pytest.fixture
def world(model_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> dict[str, Any]:
    """The model's index, an oracle and two devices with disjoint customers below."""
    monkeypatch.chdir(tmp_path)  # the PostgreSQL model's index goes to the working directory
    oracle = Oracle(model_engine)
    fuse, below = _fuse_with_customers(oracle)
    other, other_below = _disjoint_device(oracle, below, fuse)
    return {"index": load_index(model_engine), "oracle": oracle, "fuse": fuse, "below": below,
            "other": other, "other_below": other_below}


def _app(engine: Engine, index: QueryIndex) -> FastAPI:
    return create_app(engine, index, refresh_seconds=0, key_cache_seconds=0)


def _by(feed: dict[str, Any], level: str, status: str) -> list[dict[str, Any]]:
    return [f for f in feed["features"] if f["properties"]["level"] == level
            and f["properties"]["status"] == status]


def _transformers_of(engine: Engine, customers: set[str]) -> dict[str, int]:
    """Transformer id → how many of ``customers`` it serves (from the rows)."""
    with engine.connect() as conn:
        rows = conn.execute(select(Customer.customer_id, Customer.transformer_id)).all()
    counts: dict[str, int] = {}
    for customer, transformer in rows:
        if customer in customers:
            counts[transformer] = counts.get(transformer, 0) + 1
    return counts


def test_feed_shows_current_and_planned_outages_with_counts(model_engine: Engine,
                                                            world: dict[str, Any]) -> None:
    index, fuse, other = world["index"], world["fuse"], world["other"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    current = outages.declare(model_engine, index, [fuse], reason="cable fault 电缆故障",
                              expected_end=now + dt.timedelta(hours=3))
    tomorrow = now + dt.timedelta(days=1)
    planned = outages.declare(model_engine, index, [other], kind="planned", reason="检修",
                              started_at=tomorrow, expected_end=tomorrow + dt.timedelta(hours=4))
    closed = outages.declare(model_engine, index, [other], reason="closed already")
    outages.close(model_engine, closed["id"])
    client = TestClient(_app(model_engine, index))
    answer = client.get("/v1/outages.geojson")
    assert answer.status_code == 200 and answer.headers["content-type"] == GEOJSON
    feed = answer.json()
    assert feed["type"] == "FeatureCollection"
    assert all(closed["id"] not in f["properties"]["event_ids"] for f in feed["features"])

    feeders = _by(feed, "feeder", "current")
    assert feeders and all(f["properties"]["event_ids"] == [current["id"]] for f in feeders)
    assert sum(f["properties"]["customers_out"] for f in feeders) == len(world["below"]) \
        == current["customers_interrupted"]
    first = feeders[0]["properties"]
    assert first["kind"] == "unplanned" and first["cause"] == "cable fault 电缆故障"
    assert dt.datetime.fromisoformat(first["etr"]) == now + dt.timedelta(hours=3)
    assert dt.datetime.fromisoformat(first["started_at"]) <= dt.datetime.now(dt.UTC)
    with model_engine.connect() as conn:
        names = dict(conn.execute(select(Feeder.feeder_id, Feeder.feeder_name)).all())
    assert all(f["properties"]["feeder_name"] == names[f["properties"]["feeder_id"]]
               for f in feeders)
    assert {f["geometry"]["type"] for f in feeders} <= {"MultiLineString", "Polygon",
                                                        "MultiPoint"}
    areas = _by(feed, "area", "current")
    expected = _transformers_of(model_engine, world["below"])
    shown = {f["properties"]["transformer_id"]: f["properties"]["customers_out"] for f in areas}
    assert {t: n for t, n in shown.items() if n} == expected
    assert all(f["geometry"] is None or f["geometry"]["type"] == "Point" for f in areas)

    upcoming = _by(feed, "feeder", "planned")
    assert upcoming and all(f["properties"]["event_ids"] == [planned["id"]] for f in upcoming)
    assert sum(f["properties"]["customers_out"] for f in upcoming) == \
        len(world["other_below"]) == planned["customers_interrupted"]
    props = upcoming[0]["properties"]
    assert (props["kind"], props["cause"]) == ("planned", "检修")
    assert dt.datetime.fromisoformat(props["started_at"]) == tomorrow
    assert dt.datetime.fromisoformat(props["etr"]) == tomorrow + dt.timedelta(hours=4)
    assert {f["properties"]["transformer_id"]: f["properties"]["customers_out"]
            for f in _by(feed, "area", "planned") if f["properties"]["customers_out"]} == \
        _transformers_of(model_engine, world["other_below"])

    outages.close(model_engine, current["id"])
    after = client.get("/v1/outages.geojson").json()
    assert not _by(after, "feeder", "current") and _by(after, "feeder", "planned")


def test_feed_and_page_hold_no_personal_data_and_need_no_key(model_engine: Engine,
                                                             world: dict[str, Any]) -> None:
    index = world["index"]
    outages.declare(model_engine, index, [world["fuse"]], reason="fault")
    outages.declare(model_engine, index, [world["other"]], kind="planned",
                    started_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=5))
    with model_engine.connect() as conn:
        people = conn.execute(select(Customer.customer_id, Customer.meter_id,
                                     CustomerPersonal.customer_name, CustomerPersonal.address,
                                     CustomerPersonal.phone).outerjoin(CustomerPersonal)).all()
    reader = create_key(model_engine, "reader", ["outage:read"])[0]
    with _serve(_app(model_engine, index)) as url, httpx.Client(base_url=url) as client:
        for path in ("/v1/outages.geojson", "/map"):
            bare = client.get(path)
            assert bare.status_code == 200, bare.text
            keyed = client.get(path, headers={"X-API-Key": reader})
            bad = client.get(path, headers={"X-API-Key": "gt_not_a_key"})
            assert keyed.content == bare.content == bad.content  # a key changes nothing
            text = bare.text
            assert "customers_out" in text or path == "/map"
            affected = world["below"] | world["other_below"]
            assert len(affected) > 10
            for customer, meter, name, address, phone in people:
                assert customer not in text, customer
                assert not meter or meter not in text, meter
                assert not phone or phone not in text, phone
                assert not address or address not in text, address
                if customer in affected and name and len(name) >= 3:
                    assert name not in text, name
        document = client.get("/openapi.json").json()
    for path in PUBLIC_PATHS:
        operation = document["paths"][path]["get"]
        assert "security" not in operation and "x-required-scope" not in operation, path
    assert "security" not in document  # no global requirement either
    feed_schema = document["paths"]["/v1/outages.geojson"]["get"]["responses"]["200"]
    assert "customers_out" in json.dumps(feed_schema)
    assert document["paths"]["/v1/outages"]["get"]["security"]  # the keyed ones still are


def test_one_computation_per_model_and_outage_state(model_engine: Engine,
                                                    world: dict[str, Any]) -> None:
    index = world["index"]
    outages.declare(model_engine, index, [world["fuse"]], reason="fault")
    app = _app(model_engine, index)
    with _serve(app) as url, httpx.Client(base_url=url) as client:
        answers = [client.get("/v1/outages.geojson") for _ in range(20)]
        page = client.get("/map")
        assert len({a.content for a in answers}) == 1
        assert app.state.public_feed.computed == 1  # the page comes from the same answer
        assert page.headers["x-gridtopo-run"] == answers[0].headers["x-gridtopo-run"]
        tag = answers[0].headers["etag"]
        assert client.get("/v1/outages.geojson",
                          headers={"If-None-Match": tag}).status_code == 304
        second = outages.declare(model_engine, index, [world["other"]], reason="second")
        fresh = client.get("/v1/outages.geojson")
        assert fresh.headers["etag"] != tag and app.state.public_feed.computed == 2
        assert any(second["id"] in f["properties"]["event_ids"]
                   for f in _by(fresh.json(), "feeder", "current"))


def test_a_hostile_reason_is_escaped(model_engine: Engine, world: dict[str, Any],
                                     backend: str) -> None:
    index = world["index"]
    outages.declare(model_engine, index, [world["fuse"]], reason=HOSTILE)
    with _serve(_app(model_engine, index)) as url:
        page = httpx.get(f"{url}/map").text
        feed = httpx.get(f"{url}/v1/outages.geojson").json()
        assert {f["properties"]["cause"] for f in feed["features"]} == {HOSTILE}
        assert "<img" not in page and "<script>document" not in page
        embedded = page.split('<script id="feed" type="application/json">')[1]
        assert json.loads(embedded.split("</script>")[0])["features"] == feed["features"]
        if backend != "sqlite":
            return  # the page does not depend on the store: one browser run is enough
        dom = chromium("--virtual-time-budget=3000", "--dump-dom", f"{url}/map").stdout
    assert re.search(r"<body[^>]*>", dom).group(0) == "<body>"  # neither handler ran
    assert "<img" not in dom
    causes = re.findall(r'<td class="cause">(.*?)</td>', dom)
    assert causes and all(c == HOSTILE.replace("&", "&amp;").replace("<", "&lt;")
                          .replace(">", "&gt;") for c in causes), causes[:1]


def test_embedded_json_cannot_end_its_script() -> None:
    hostile = json.dumps({"cause": "</script><script>alert(1)</script>\u2028"}).encode()
    safe = embed_json(hostile)
    assert b"<" not in safe and b">" not in safe and json.loads(safe) == json.loads(hostile)


@pytest.fixture
def browser_world(model_engine: Engine, world: dict[str, Any], backend: str
                  ) -> Iterator[dict[str, Any]]:
    if backend != "sqlite":
        pytest.skip("the page does not depend on the store: one browser run is enough")
    yield world


def _shot(url: str, path: Path) -> dict[str, int]:
    """Screenshot of the map page: how many pixels of each status colour the map shows —
    inside the network's extent (the light grey frame), not the legend or table marks."""
    chromium("--virtual-time-budget=3000", f"--screenshot={path}", f"{url}/map",
             window="1100,800")
    box = colour_box(path, EXTENT_GREY)
    assert box is not None and box[2] - box[0] > 50 and box[3] - box[1] > 50, box
    grown = (box[0] - 8, box[1] - 8, box[2] + 8, box[3] + 8)
    return {"current": count_colour(path, CURRENT_COLOUR, within=grown),
            "planned": count_colour(path, PLANNED_COLOUR, within=grown)}


def test_map_draws_outages_in_their_status_colour(model_engine: Engine,
                                                  browser_world: dict[str, Any],
                                                  tmp_path: Path) -> None:
    world = browser_world
    index = world["index"]
    with model_engine.connect() as conn:
        placed = conn.execute(select(Transformer.transformer_id)
                              .where(Transformer.geom.is_not(None)).limit(1)).all()
    assert placed, "the synthetic model places its transformers"
    with _serve(_app(model_engine, index)) as url:
        none = _shot(url, tmp_path / "none.png")
        current = outages.declare(model_engine, index, [world["fuse"]], reason="fault")
        outages.declare(model_engine, index, [world["other"]], kind="planned",
                        started_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
        both = _shot(url, tmp_path / "both.png")
        outages.close(model_engine, current["id"])
        planned_only = _shot(url, tmp_path / "planned.png")
    print(f"outage-colour pixels: none {none}, both {both}, planned only {planned_only}")
    assert none == {"current": 0, "planned": 0}
    assert both["current"] > 50 and both["planned"] > 50
    assert planned_only["current"] == 0 and planned_only["planned"] == both["planned"]
