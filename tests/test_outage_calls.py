"""Trouble calls, finding callers and continuous prediction, on the ingested model (both stores).

Truth comes from the generator's model and an independent oracle (networkx reachability,
:class:`tests.test_outage_events.Oracle`): faults are simulated at protective devices, callers
drawn at 8-12% of the customers the oracle says are out, some calling from a wrong address
(another customer's account) and some about their own wiring (a customer in supply calling
no supply). The predicted device must be the faulted one or its first protective parent.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, text

from gridtopo.db.models import Call, Customer, CustomerPersonal, MeterEvent, Prediction
from gridtopo.errors import InputError
from gridtopo.outages import events as outage_events
from gridtopo.outages import prediction as predictions
from gridtopo.outages.callers import CallerQuery, SearchError, find_customers
from gridtopo.outages.calls import CallConflictError, CallIn, call_from_dict, take_call
from gridtopo.outages.grouping import device_range, protective_above
from gridtopo.outages.meters import MeterEventIn, record_events
from gridtopo.outages.state import OutageState
from gridtopo.topology.index import QueryIndex, load_index
from gridtopo.topology.queries import _find
from tests.test_outage_events import Oracle, _fuse_with_customers

T0 = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
MIN_AFFECTED = 20
"""Faults with fewer customers out give one or two callers at 8-12%: not a prediction's
business (a single call is answered, not predicted)."""


def _state(engine: Engine, index: QueryIndex) -> OutageState:
    return OutageState.load(engine, index, at=T0 + dt.timedelta(hours=1))


def _first_parent(index: QueryIndex, device: str) -> str | None:
    edge = _find(index.edge_ids, device)
    above = protective_above(index, device_range(index, edge)[0])
    return index.edge_ids[above[1]].decode() if len(above) > 1 else None


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (Call, MeterEvent, Prediction):
            conn.execute(delete(table))


def test_prediction_accuracy_on_simulated_faults(model_engine: Engine, index: QueryIndex,
                                                 oracle: Oracle) -> None:
    rng = random.Random(15)
    everyone = sorted(oracle.customer_node)
    faults = [(d, oracle.out([d])) for d in oracle.protective()]
    faults = [(d, out) for d, out in faults if len(out) >= MIN_AFFECTED]
    assert len(faults) >= 20
    hits, misses = 0, []
    for n, (device, out) in enumerate(faults):
        _clear(model_engine)
        state = _state(model_engine, index)
        affected = sorted(out)
        callers = rng.sample(affected, max(1, round(len(affected) * rng.uniform(0.08, 0.12))))
        calls = []
        for i, customer in enumerate(callers):
            if rng.random() < 0.1:  # calls from a wrong address: another account
                customer = rng.choice(everyone)
            calls.append((customer, "no_supply"))
            if i % 4 == 0:  # someone in supply calls about their own wiring
                calls.append((rng.choice([c for c in everyone if c not in out]), "no_supply"))
        for i, (customer, trouble) in enumerate(calls):
            take_call(model_engine, index, state,
                      CallIn(f"f{n}-{i}", trouble, T0 + dt.timedelta(minutes=i),
                             customer_id=customer))
        predictions.update_predictions(model_engine, index, now=T0 + dt.timedelta(hours=1))
        items = predictions.list_predictions(model_engine)["items"]
        best = max(items, key=lambda p: (p["calls"], -p["id"]))["device"] if items else None
        if best in (device, _first_parent(index, device)):
            hits += 1
        else:
            misses.append((device, len(out), best))
    accuracy = hits / len(faults)
    print(f"prediction accuracy {accuracy:.3f} over {len(faults)} faults; misses {misses}")
    assert accuracy >= 0.95, (accuracy, misses)


# --------------------------------------------------------------------------- finding callers


def _customer_row(engine: Engine, customer_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(Customer.meter_id, CustomerPersonal.phone,
                                  CustomerPersonal.address, text("ST_X(customers.geom)"),
                                  text("ST_Y(customers.geom)"))
                           .join(CustomerPersonal).where(Customer.customer_id == customer_id)
                           ).one()
    return dict(zip(("meter_id", "phone", "address", "lon", "lat"), row, strict=True))


def test_find_the_caller_by_each_key(model_engine: Engine, index: QueryIndex) -> None:
    from gridtopo.geo import wgs84_to_gcj02

    target = index.customer_ids[len(index.customer_ids) // 2].decode()
    row = _customer_row(model_engine, target)

    def ids(query: CallerQuery, reveal: bool = False) -> list[str]:
        return [i["customer_id"] for i in
                find_customers(model_engine, index, query, reveal=reveal)["items"]]

    assert ids(CallerQuery(customer_id=target)) == [target]
    assert target in ids(CallerQuery(phone="+86 " + row["phone"]))
    assert ids(CallerQuery(meter=row["meter_id"])) == [target]
    # the address without its province and city, one character wrong
    head = row["address"].split("市", 1)[1]
    typo = head[:2] + ("甲" if head[2] != "甲" else "乙") + head[3:]
    assert ids(CallerQuery(q=typo, limit=3))[0] == target
    assert ids(CallerQuery(near=(row["lon"], row["lat"]), radius_m=30))[0] == target
    glon, glat = wgs84_to_gcj02(row["lon"], row["lat"])
    found = find_customers(model_engine, index, CallerQuery(
        near=(float(glon), float(glat)), crs="gcj02", radius_m=30), reveal=False)
    assert found["items"][0]["customer_id"] == target and found["in_territory"]
    assert found["items"][0]["distance_m"] < 1
    masked = find_customers(model_engine, index, CallerQuery(customer_id=target), reveal=False)
    full = find_customers(model_engine, index, CallerQuery(customer_id=target), reveal=True)
    assert full["items"][0]["phone"] == row["phone"] != masked["items"][0]["phone"]
    assert "****" in masked["items"][0]["phone"] and masked["personal_data"] == "masked"
    far = find_customers(model_engine, index, CallerQuery(near=(100.0, 30.0)), reveal=False)
    assert far["items"] == [] and far["in_territory"] is False
    assert ids(CallerQuery(phone="19900000000")) == []
    with pytest.raises(SearchError, match="exactly one"):
        find_customers(model_engine, index, CallerQuery(phone="1", meter="2"), reveal=False)


# --------------------------------------------------------------------------- call answers


def _below(index: QueryIndex, oracle: Oracle) -> tuple[str, list[str]]:
    fuse, below = _fuse_with_customers(oracle)
    active = [c for c in sorted(below) if index.customer_active[_find(index.customer_ids, c)]]
    return fuse, active


def test_every_call_is_answered_with_what_is_known(model_engine: Engine, index: QueryIndex,
                                                   oracle: Oracle) -> None:
    fuse, below = _below(index, oracle)
    state = _state(model_engine, index)
    closed = next(c.decode() for c, a in zip(index.customer_ids, index.customer_active,
                                              strict=True) if not a)

    def ask(call_id: str, trouble: str = "no_supply", **caller: Any) -> dict[str, Any]:
        return take_call(model_engine, index, state, CallIn(call_id, trouble, T0, **caller))[0]

    assert ask("u1", phone="19900000000")["status"] == "unresolved"
    assert ask("c1", customer_id=closed)["status"] == "closed_account"
    assert ask("o1", location=(100.0, 30.0, "wgs84"))["status"] == "outside_territory"
    bm = ask("b1", "behind_meter", customer_id=below[0])
    assert bm["status"] == "behind_meter" and "表后线" in bm["message"]
    record_events(model_engine, index, [MeterEventIn(
        _customer_row(model_engine, below[1])["meter_id"], "power_on",
        T0 - dt.timedelta(hours=1))])
    assert ask("b2", customer_id=below[1])["status"] == "behind_meter"  # the meter has supply
    assert ask("f1", "flicker", customer_id=below[2])["status"] == "recorded"
    first = ask("p1", customer_id=below[3])
    assert first["status"] == "predicting" and first["feeder_id"] is not None
    n = len(below) // 10 + 1  # callers at 10% of those out
    below[4:] = random.Random(4).sample(below[4:], len(below) - 4)
    for i, customer in enumerate(below[4:4 + n]):
        ask(f"p{i + 2}", customer_id=customer)
    predictions.update_predictions(model_engine, index, now=T0 + dt.timedelta(minutes=10))
    predicted = predictions.list_predictions(model_engine)["items"]
    assert [p["device"] for p in predicted] in ([fuse], [_first_parent(index, fuse)])
    joined = ask("p0", customer_id=below[4 + n])
    assert joined["status"] == "in_prediction" and joined["prediction_id"] == predicted[0]["id"]
    # idempotent on call_id: the same body, the same answer; another body, a conflict
    again, created = take_call(model_engine, index, state, CallIn("p1", "no_supply", T0,
                                                                   customer_id=below[3]))
    assert created is False and again == first
    with pytest.raises(CallConflictError, match="different body"):
        take_call(model_engine, index, state, CallIn("p1", "wire_down", T0,
                                                     customer_id=below[3]))
    event = outage_events.declare(model_engine, index, [fuse], started_at=T0,
                                  expected_end=T0 + dt.timedelta(hours=3), reason="storm")
    inside = take_call(model_engine, index, _state(model_engine, index),
                       CallIn("e1", "no_supply", T0, customer_id=below[5 + n]))[0]
    assert inside["status"] == "in_event" and inside["event_id"] == event["id"]
    assert inside["cause"] == "storm" and inside["etr"].startswith("2026-12-07T11:00")
    with model_engine.connect() as conn:
        assert conn.execute(select(Call.call_id).where(Call.status == "unresolved")).all()
        assert conn.execute(select(func.count()).select_from(Call)).scalar_one() == 9 + n


def test_bad_call_and_event_input_names_file_line_and_field(tmp_path: Any) -> None:
    from gridtopo.outages.calls import read_calls_file
    from gridtopo.outages.meters import read_events_file

    with pytest.raises(InputError, match="call_id is required"):
        call_from_dict({"trouble": "no_supply", "phone": "1"}, "x")
    with pytest.raises(InputError, match="names no caller"):
        call_from_dict({"call_id": "a", "trouble": "no_supply"}, "x")
    good = tmp_path / "calls.csv"
    good.write_text("call_id,phone,trouble,at\na,138,no_supply,2026-12-07T08:00\n"
                    "a,138,no_supply,2026-12-07T08:00\n", encoding="utf-8")
    assert len(read_calls_file(good)) == 2  # a repeat of the same call is taken once later
    bad = tmp_path / "bad.csv"
    bad.write_text("call_id,phone,trouble,at\na,138,no_supply,\nb,139,fire,\n"
                   "c,140,no_supply,yesterday\na,138,wire_down,\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_calls_file(bad)
    assert "bad.csv:3: trouble 'fire'" in str(err.value)
    assert "bad.csv:4: at 'yesterday'" in str(err.value)
    assert "bad.csv:5: call_id a repeats line 2" in str(err.value)
    events = tmp_path / "ami.jsonl"
    events.write_text('{"meter_id": "M1", "kind": "power_off", "at": "2026-12-07T08:00"}\n'
                      '{"meter_id": "M1", "kind": "blink", "at": "2026-12-07T08:00"}\n'
                      '{"kind": "closed", "at": "2026-12-07T08:00"}\nnot json\n')
    with pytest.raises(InputError) as err:
        read_events_file(events)
    assert "ami.jsonl:2: kind 'blink'" in str(err.value) and "ami.jsonl:3: device_id" in \
        str(err.value) and "ami.jsonl:4: not a JSON object" in str(err.value)


# --------------------------------------------------------------------------- prediction rules


def _meters(engine: Engine, customers: list[str]) -> list[str]:
    with engine.connect() as conn:
        rows = dict(conn.execute(select(Customer.customer_id, Customer.meter_id).where(
            Customer.customer_id.in_(customers))).all())
    return [rows[c] for c in customers]


def _nested(index: QueryIndex, oracle: Oracle) -> tuple[str, str, set[str], set[str]]:
    """A protective device with a protective child, each with customers of their own."""
    for device in oracle.protective():
        out = oracle.out([device])
        if len(out) < MIN_AFFECTED:
            continue
        for child in oracle.protective():
            inner = oracle.out([child])
            if child != device and len(inner) >= MIN_AFFECTED and inner < out and \
                    len(out - inner) >= MIN_AFFECTED and _first_parent(index, child) == device:
                return device, child, out, inner
    raise AssertionError("the model has no nested protective devices")


def test_last_gasps_predict_power_on_shrinks_and_restores(
        model_engine: Engine, index: QueryIndex, oracle: Oracle) -> None:
    device, child, out, inner = _nested(index, oracle)
    customers = sorted(out)
    meters = _meters(model_engine, customers)
    done = record_events(model_engine, index, [MeterEventIn(m, "power_off", T0) for m in meters]
                         + [MeterEventIn(meters[0], "power_off", T0),
                            MeterEventIn("NO-SUCH-METER", "power_off", T0)])
    assert done["stored"] + done["duplicates"] == done["received"] == len(meters) + 2
    assert done["duplicates"] == 1 and done["unknown_meters"] == ["NO-SUCH-METER"]
    again = record_events(model_engine, index, [MeterEventIn(meters[1], "power_off", T0)])
    assert again["duplicates"] == 1 and again["stored"] == 0
    predictions.update_predictions(model_engine, index, now=T0)
    [first] = predictions.list_predictions(model_engine)["items"]
    assert first["device"] == device and first["meter_events"] == len(out)
    # the outer section is back: the prediction shrinks to the child still out
    outer = [m for c, m in zip(customers, meters, strict=True) if c not in inner]
    record_events(model_engine, index, [MeterEventIn(m, "power_on", T0 + dt.timedelta(
        minutes=20)) for m in outer])
    predictions.update_predictions(model_engine, index, now=T0 + dt.timedelta(minutes=21))
    [shrunk] = predictions.list_predictions(model_engine)["items"]
    assert shrunk["id"] == first["id"] and shrunk["device"] == child
    assert shrunk["meter_events"] == len(inner)
    record_events(model_engine, index, [MeterEventIn(m, "power_on", T0 + dt.timedelta(
        minutes=40)) for m in meters])
    predictions.update_predictions(model_engine, index, now=T0 + dt.timedelta(minutes=41))
    assert predictions.list_predictions(model_engine)["items"] == []
    assert predictions.get_prediction(model_engine, first["id"])["status"] == "restored"


def test_telemetry_gap_and_dispatcher_decisions_survive_a_restart(
        model_engine: Engine, index: QueryIndex, oracle: Oracle) -> None:
    from gridtopo.db import open_engine

    device, child, out, inner = _nested(index, oracle)
    state = _state(model_engine, index)
    callers = sorted(out - inner)[:6] + sorted(inner)[:6]
    for i, customer in enumerate(callers):
        take_call(model_engine, index, state, CallIn(f"a{i}", "no_supply",
                                                    T0 + dt.timedelta(minutes=i),
                                                    customer_id=customer))
    # telemetry says the device is closed: the prediction goes below it
    record_events(model_engine, index, [MeterEventIn(device, "closed", T0)])
    predictions.update_predictions(model_engine, index, now=T0 + dt.timedelta(minutes=15))
    devices = {p["device"] for p in predictions.list_predictions(model_engine)["items"]}
    assert device not in devices and child in devices
    # calls two hours later below the child are a new outage (the time gap)
    for i, customer in enumerate(sorted(inner)[6:10]):
        take_call(model_engine, index, state, CallIn(f"g{i}", "no_supply",
                                                    T0 + dt.timedelta(hours=2, minutes=i),
                                                    customer_id=customer))
    predictions.update_predictions(model_engine, index, now=T0 + dt.timedelta(hours=2, minutes=5))
    items = predictions.list_predictions(model_engine)["items"]
    late = [p for p in items if p["started_at"] >= T0 + dt.timedelta(hours=2)]
    early = [p for p in items if p["started_at"] < T0 + dt.timedelta(hours=1)]
    assert len(late) == 1 and late[0]["device"] == child and early
    merged = predictions.merge(model_engine, index, late[0]["id"], early[0]["id"], by="test")
    assert merged["pinned"] and merged["calls"] >= 4
    assert predictions.get_prediction(model_engine, late[0]["id"])["status"] == "merged"
    target = predictions.retarget(model_engine, index, merged["id"], device, by="test")
    assert target["device"] == device and target["customers_below"] == len(out)
    with pytest.raises(predictions.PredictionStateError, match="merged"):
        predictions.cancel(model_engine, late[0]["id"])
    # a restart: a new engine and index read the same state; answers are the stored ones
    url = model_engine.url.render_as_string(hide_password=False)
    model_engine.dispose()
    engine = open_engine(url)
    index2 = load_index(engine)
    assert predictions.get_prediction(engine, merged["id"])["device"] == device
    replay, created = take_call(engine, index2, _state(engine, index2), CallIn(
        "a0", "no_supply", T0, customer_id=callers[0]))
    assert not created and replay["call_id"] == "a0"
    confirmed = predictions.confirm(engine, index2, merged["id"], by="test",
                                    expected_end=T0 + dt.timedelta(hours=4))
    assert confirmed["status"] == "confirmed" and confirmed["event"]["devices"] == [device]
    assert confirmed["event"]["customers_interrupted"] == len(out)
    with pytest.raises(predictions.PredictionStateError, match="confirmed"):
        predictions.confirm(engine, index2, merged["id"])
    inside = take_call(engine, index2, OutageState.load(engine, index2, at=T0 + dt.timedelta(
        hours=3)), CallIn("after", "no_supply", T0, customer_id=sorted(out)[-1]))[0]
    assert inside["status"] == "in_event" and inside["event_id"] == confirmed["event_id"]
    engine.dispose()


def test_cli_finds_takes_calls_and_decides(model_db_url: str, model_engine: Engine,
                                           index: QueryIndex, oracle: Oracle,
                                           tmp_path: Any) -> None:
    import json

    from click.testing import CliRunner

    from gridtopo.cli.main import main

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, ["--db", model_db_url, *args], catch_exceptions=False)

    fuse, below = _below(index, oracle)
    phone = _customer_row(model_engine, below[0])["phone"]
    found = run("customer", "find", "--phone", phone, "--json")
    assert found.exit_code == 0 and below[0] in found.output and phone not in found.output
    assert run("customer", "find", "--phone", phone, "--meter", "x").exit_code == 2
    callers = random.Random(2).sample(below, len(below) // 10 + 2)
    lines = ["call_id,customer_id,phone,trouble,channel,at"]
    lines += [f"cli-{i},{c},,no_supply,95598,2026-12-07T08:0{i % 10}:00" for i, c in
              enumerate(callers)]
    lines.append("cli-x,,19900000000,no_supply,wechat,2026-12-07T08:00:00")
    calls = tmp_path / "calls.csv"
    calls.write_text("\n".join(lines) + "\n", encoding="utf-8")
    taken = run("calls", "add", str(calls), "--json")
    assert taken.exit_code == 0, taken.output
    result = json.loads(taken.output)
    assert result["received"] == result["created"] == len(callers) + 1
    assert result["statuses"]["unresolved"] == 1
    again = json.loads(run("calls", "add", str(calls), "--json").output)
    assert again["created"] == 0 and again["repeated"] == len(callers) + 1
    listed = json.loads(run("predictions", "list", "--json").output)["items"]
    assert [p["device"] for p in listed] in ([fuse], [_first_parent(index, fuse)])
    confirmed = run("predictions", "confirm", str(listed[0]["id"]), "--json")
    assert confirmed.exit_code == 0 and json.loads(confirmed.output)["event_id"] >= 1
    assert run("predictions", "cancel", str(listed[0]["id"])).exit_code == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("call_id,trouble\nz,fire\n", encoding="utf-8")
    refused = run("calls", "add", str(bad))
    assert refused.exit_code == 2 and "bad.csv:2: trouble 'fire'" in refused.output
