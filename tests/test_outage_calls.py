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
from sqlalchemy import Engine, delete, select, text

from gridtopo.db.models import Call, Customer, CustomerPersonal, MeterEvent, Prediction
from gridtopo.errors import InputError
from gridtopo.outages import events as outage_events
from gridtopo.outages import prediction as predictions
from gridtopo.outages.callers import CallerQuery, SearchError, find_customers
from gridtopo.outages.calls import CallConflictError, CallIn, call_from_dict, take_call
from gridtopo.outages.grouping import PredictionRules, device_range, protective_above
from gridtopo.outages.meters import MeterEventIn, record_events
from gridtopo.outages.state import OutageState
from gridtopo.topology.index import QueryIndex
from gridtopo.topology.queries import _find
from tests.test_outage_events import Oracle, _fuse_with_customers, index, oracle  # noqa: F401

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
