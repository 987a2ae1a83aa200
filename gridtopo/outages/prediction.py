"""Continuous prediction (故障研判): predicted device outages kept in the store as signals arrive.

Trouble calls (:mod:`gridtopo.outages.calls`) and meter events
(:mod:`gridtopo.outages.meters`) are stored unprocessed. :func:`update_predictions` takes
every feeder with unprocessed rows and regroups the feeder's live signals by the rules of
:mod:`gridtopo.outages.grouping`:

* a signal is live unless the customer signalled supply back later (power-on, call-back), or
  it belongs to a prediction a dispatcher decided (confirmed, cancelled, re-targeted) — new
  signals below a confirmed or re-targeted prediction's device join it instead;
* a gap of ``gap_minutes`` without a signal starts a new outage (episode);
* signals at positions an active outage event already cuts off are explained: left out;
* each group updates the open prediction that held most of its signals, or opens a new one;
  an open prediction none of whose signals is live any more is ``restored``, one whose
  signals all went to another is ``merged`` into it.

All state is in the tables ``calls``, ``meter_events`` and ``predictions``; one updater runs
at a time (:func:`updater_lock`: a PostgreSQL advisory lock, a lock file beside a SQLite
database), reading and regrouping without a database write lock and then writing in one
short transaction, so API workers, the CLI and a restart agree while calls go on being
stored. A dispatcher confirms a prediction (an outage event is declared
for its device, :func:`~gridtopo.outages.events.declare`), merges two (the lowest protective
device above both), re-targets one to another device, or cancels it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, func, insert, select, text, update

from gridtopo.clock import as_utc, now_seconds
from gridtopo.db.models import Call, MeterEvent, OutageEvent, Prediction
from gridtopo.errors import GridtopoError
from gridtopo.outages import events as outage_events
from gridtopo.outages.grouping import (
    PredictionRules,
    Signal,
    device_range,
    group_signals,
    protective_above,
)
from gridtopo.outages.notices import NoticeRules
from gridtopo.outages.predict import lowest_common_ancestor
from gridtopo.outages.state import OutageState
from gridtopo.topology.index import PROTECTIVE_KINDS, QueryIndex, UnknownIdError, index_dir
from gridtopo.topology.queries import _find

SIGNAL_TROUBLES = ("no_supply", "partial_supply", "wire_down")
"""Call troubles that are evidence of an outage upstream of the customer."""
LOCK_KEY = 150014
"""The PostgreSQL advisory-lock key of the prediction updater."""


class PredictionNotFoundError(UnknownIdError):
    """No prediction with that id (404)."""

    def __init__(self, prediction_id: int) -> None:
        super().__init__("prediction", [str(prediction_id)])


class PredictionStateError(GridtopoError):
    """The prediction cannot change that way (e.g. confirming a cancelled one) (409)."""

    http_status = 409


@contextmanager
def updater_lock(engine: Engine, *, wait: bool = True) -> Iterator[bool]:
    """Hold the one prediction-updater lock of the database — a PostgreSQL advisory lock, a
    lock file beside a SQLite database's index — without holding a database write lock:
    calls and meter events go on being stored while predictions are regrouped. Without
    ``wait``, yields False at once when another holds it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            query = "SELECT pg_advisory_lock(:k)" if wait else "SELECT pg_try_advisory_lock(:k)"
            got = conn.execute(text(query), {"k": LOCK_KEY}).scalar() is not False
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                    conn.commit()
        return
    path = index_dir(engine)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".predict.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            got = True
        except BlockingIOError:
            got = False
        yield got
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction; on SQLite its write lock is taken first (a read first would make a
    later write fail when another connection wrote meanwhile)."""
    with engine.begin() as conn:
        if conn.dialect.name != "postgresql":
            conn.execute(update(Prediction).where(Prediction.id == -1).values(note=None))
        yield conn


@contextmanager
def locked(engine: Engine) -> Iterator[Connection]:
    """A write transaction under the updater lock (the dispatcher's decisions)."""
    with updater_lock(engine), write(engine) as conn:
        yield conn


class Ref:
    """The id of a prediction inserted when the writes are applied."""

    id: int | None = None


Op = Callable[[Connection], None]


def _id(pid: int | Ref | None) -> int | None:
    return pid.id if isinstance(pid, Ref) else pid


def prediction_data(row: Any) -> dict[str, Any]:
    """A ``predictions`` row as the API and CLI show it."""
    m = row._mapping if hasattr(row, "_mapping") else {
        c.name: getattr(row, c.name) for c in Prediction.__table__.columns}
    data = {c.name: m[c.name] for c in Prediction.__table__.columns}
    for name in ("started_at", "last_signal_at", "created_at", "updated_at"):
        data[name] = as_utc(data[name])
    data["device"] = data.pop("device_id")
    return data


def position_of(index: QueryIndex, transformer_id: str | None) -> int:
    """The energized position of a transformer, -1 when unknown or dead in the normal state."""
    if not transformer_id:
        return -1
    tr = _find(index.transformer_ids, transformer_id)
    node = int(index.transformer_node[tr]) if tr >= 0 else -1
    position = int(index.pos[node]) if node >= 0 else -1
    return position if 0 <= position < index.n_energized else -1


def _covering(index: QueryIndex, device: str, position: int) -> bool:
    edge = _find(index.edge_ids, device)
    if edge < 0 or int(index.tree_child[edge]) < 0:
        return False
    start, end = device_range(index, edge)
    return start <= position < end


def covering_prediction(conn: Connection, index: QueryIndex, feeder_id: str | None,
                        position: int) -> dict[str, Any] | None:
    """The open or confirmed prediction of ``feeder_id`` whose device is above ``position``
    (the lowest one), or None."""
    if feeder_id is None or position < 0:
        return None
    rows = conn.execute(select(Prediction).where(
        Prediction.feeder_id == feeder_id, Prediction.status.in_(("open", "confirmed")))).all()
    hits = [prediction_data(r) for r in rows if _covering(index, r.device_id, position)]
    return min(hits, key=lambda p: p["customers_below"] or 0) if hits else None


def _signals(conn: Connection, feeder: str, since: dt.datetime) -> dict[str, Sequence[Any]]:
    calls = conn.execute(select(Call.call_id, Call.customer_id, Call.transformer_id, Call.at,
                                Call.trouble, Call.signal, Call.prediction_id).where(
        Call.feeder_id == feeder, Call.at >= since,
        (Call.signal.is_(True)) | (Call.trouble == "restored"))).all()
    meters = conn.execute(select(MeterEvent.id, MeterEvent.customer_id, MeterEvent.transformer_id,
                                 MeterEvent.at, MeterEvent.kind, MeterEvent.source_id,
                                 MeterEvent.prediction_id).where(
        MeterEvent.feeder_id == feeder, MeterEvent.at >= since)).all()
    return {"calls": calls, "meters": meters}


def update_predictions(engine: Engine, index: QueryIndex, rules: PredictionRules | None = None,
                       *, now: dt.datetime | None = None, wait: bool = True
                       ) -> dict[str, int]:
    """Regroup every feeder with unprocessed signals (see the module); returns counts of
    ``feeders`` regrouped, predictions ``opened``, ``updated``, ``restored``, ``merged``.
    Without ``wait`` nothing is done (``busy`` 1) while another updater runs: it takes the
    signals there are."""
    rules = rules or PredictionRules()
    clock = as_utc(now) or now_seconds()
    counts = Counter({"feeders": 0, "opened": 0, "updated": 0, "restored": 0, "merged": 0,
                      "busy": 0})
    with engine.connect() as conn:  # cheap check outside the lock: nothing to do, no lock
        if conn.execute(select(Call.call_id).where(Call.processed.is_(False)).limit(1)
                        ).first() is None and conn.execute(
                select(MeterEvent.id).where(MeterEvent.processed.is_(False)).limit(1)
                ).first() is None:
            return dict(counts)
    state = OutageState.load(engine, index, at=clock)
    ops: list[Op] = []
    with updater_lock(engine, wait=wait) as got:
        if not got:
            counts["busy"] = 1
            return dict(counts)
        # read and regroup without a write lock; the rows seen now are the ones marked
        # processed: a row stored meanwhile stays unprocessed for the next update
        with engine.connect() as conn:
            calls = conn.execute(select(Call.call_id, Call.feeder_id).where(
                Call.processed.is_(False))).all()
            meters = conn.execute(select(MeterEvent.id, MeterEvent.feeder_id).where(
                MeterEvent.processed.is_(False))).all()
            feeders = {f for _, f in calls} | {f for _, f in meters}
            since = clock - dt.timedelta(hours=rules.max_age_hours)
            for feeder in sorted(f for f in feeders if f is not None):
                counts["feeders"] += 1
                counts.update(_regroup(conn, ops, index, rules, state, feeder, since, clock))
        with write(engine) as conn:
            for op in ops:
                op(conn)
            _mark(conn, calls, meters)
    return dict(counts)


def _mark(conn: Connection, calls: Sequence[Any], meters: Sequence[Any]) -> None:
    """Mark the rows seen as processed."""
    for start in range(0, len(calls), 500):
        conn.execute(update(Call).where(Call.call_id.in_(
            [c for c, _ in calls[start:start + 500]])).values(processed=True))
    for start in range(0, len(meters), 500):
        conn.execute(update(MeterEvent).where(MeterEvent.id.in_(
            [m for m, _ in meters[start:start + 500]])).values(processed=True))


def _regroup(conn: Connection, ops: list[Op], index: QueryIndex, rules: PredictionRules,
             state: OutageState, feeder: str, since: dt.datetime, clock: dt.datetime
             ) -> Counter[str]:
    """Regroup one feeder from what ``conn`` reads; the writes are appended to ``ops``."""
    counts: Counter[str] = Counter()
    rows = _signals(conn, feeder, since)
    predictions = {r.id: r for r in conn.execute(select(Prediction).where(
        Prediction.feeder_id == feeder, Prediction.status.in_(("open", "confirmed"))))}
    decided = {i for i, r in predictions.items() if r.status == "confirmed" or r.pinned}
    active = {e for (e,) in conn.execute(select(OutageEvent.id).where(
        OutageEvent.status == "active"))}
    back: dict[str, dt.datetime] = {}  # customer -> latest power back
    closed_at: dict[str, dt.datetime] = {}
    for r in rows["calls"]:
        if r.trouble == "restored" and r.customer_id:
            back[r.customer_id] = max(back.get(r.customer_id, r.at), as_utc(r.at))
    for r in rows["meters"]:
        at = as_utc(r.at)
        if r.kind == "power_on" and r.customer_id:
            back[r.customer_id] = max(back.get(r.customer_id, at), at)
        elif r.kind == "closed":
            closed_at[r.source_id] = max(closed_at.get(r.source_id, at), at)
    live: list[tuple[dt.datetime, Signal, int | None]] = []
    cleared: list[tuple[str, str]] = []
    for table, items in (("call", rows["calls"]), ("meter", rows["meters"])):
        for r in items:
            if (table == "call" and not r.signal) or (table == "meter" and r.kind != "power_off"):
                continue
            at = as_utc(r.at)
            key = r.customer_id or f"{table}:{r[0]}"
            row = (table, str(r[0]))
            position = position_of(index, r.transformer_id)
            held = r.prediction_id
            if held is not None and held not in predictions:
                continue  # in a cancelled, merged or restored prediction: decided
            if r.customer_id in back and back[r.customer_id] >= at:
                if held is not None and held not in decided:
                    cleared.append(row)
                continue
            if position < 0 or state.out[position] or held in decided:
                continue
            joined = next((p for p in sorted(decided)
                           if (predictions[p].status == "open" or predictions[p].event_id in active)
                           and _covering(index, predictions[p].device_id, position)), None)
            if joined is not None:
                ops.append(_assigning([row], joined))
                continue
            live.append((at, Signal(key, position, row), held))
    if cleared:
        ops.append(_assigning(cleared, None))
    live.sort(key=lambda item: item[0])
    episodes: list[list[tuple[dt.datetime, Signal, int | None]]] = []
    for item in live:
        if not episodes or item[0] - episodes[-1][-1][0] > dt.timedelta(minutes=rules.gap_minutes):
            episodes.append([])
        episodes[-1].append(item)
    used: set[int | Ref] = set()
    grouped: set[tuple[str, str]] = set()
    holders: dict[int, Counter[int | Ref]] = {}
    for episode in episodes:
        start = episode[0][0]
        held = {s.row: h for _, s, h in episode}
        times = {s.row: at for at, s, _ in episode}
        skipped = [int(e) for d, at in closed_at.items() if at >= start
                   for e in [_find(index.edge_ids, d)] if e >= 0]
        restored = [p for c, at in back.items() if at >= start
                    for p in [_customer_position(index, c)] if p >= 0]
        for group in group_signals(index, [s for _, s, _ in episode], rules, skipped=skipped,
                                   restored=restored):
            votes = Counter(held[s.row] for s in group.signals
                            if held[s.row] is not None and held[s.row] not in used
                            and held[s.row] not in decided)
            values = {"device_id": group.device, "device_kind": group.kind,
                      "customers_below": group.customers_below, "score": group.score,
                      "calls": sum(s.row[0] == "call" for s in group.signals),
                      "meter_events": sum(s.row[0] == "meter" for s in group.signals),
                      "started_at": min(times[s.row] for s in group.signals),
                      "last_signal_at": max(times[s.row] for s in group.signals),
                      "updated_at": clock, "status": "open"}
            pid: int | Ref
            if votes:
                pid = votes.most_common(1)[0][0]
                ops.append(_updating(pid, values))
                counts["updated"] += 1
            else:
                pid = Ref()
                ops.append(_inserting(pid, {"feeder_id": feeder, "pinned": False,
                                            "created_at": clock, **values}))
                counts["opened"] += 1
            used.add(pid)
            grouped.update(s.row for s in group.signals)
            for s in group.signals:
                if held[s.row] is not None and held[s.row] != pid:
                    holders.setdefault(held[s.row], Counter())[pid] += 1
            ops.append(_assigning([s.row for s in group.signals if held[s.row] != pid], pid))
    for pid in predictions:
        if pid in used or pid in decided:
            continue
        left = [item for item in live if item[2] == pid and item[1].row not in grouped]
        if left:
            continue  # its signals no longer qualify anywhere: kept as it was
        if pid in holders:
            target = holders[pid].most_common(1)[0][0]
            ops.append(_updating(pid, {"status": "merged", "merged_into": target,
                                       "updated_at": clock,
                                       "note": "its signals are explained by another "
                                               "prediction"}))
            counts["merged"] += 1
        else:
            ops.append(_updating(pid, {"status": "restored", "updated_at": clock,
                                       "note": "every signal cleared"}))
            counts["restored"] += 1
    return counts


def _customer_position(index: QueryIndex, customer_id: str) -> int:
    c = _find(index.customer_ids, customer_id)
    position = index.customer_position(c) if c >= 0 else -1
    return position if 0 <= position < index.n_energized else -1


def _updating(pid: int | Ref, values: dict[str, Any]) -> Op:
    def op(conn: Connection) -> None:
        done = {k: _id(v) if isinstance(v, Ref) else v for k, v in values.items()}
        conn.execute(update(Prediction).where(Prediction.id == _id(pid)).values(**done))
    return op


def _inserting(ref: Ref, values: dict[str, Any]) -> Op:
    def op(conn: Connection) -> None:
        ref.id = int(conn.execute(insert(Prediction).values(**values)
                                  .returning(Prediction.id)).scalar_one())
    return op


def _assigning(rows: list[tuple[str, str]], pid: int | Ref | None) -> Op:
    def op(conn: Connection) -> None:
        _assign(conn, rows, _id(pid))
    return op


def _assign(conn: Connection, rows: list[tuple[str, str]], prediction_id: int | None) -> None:
    """Point the signal rows (``("call", id)`` / ``("meter", id)``) at a prediction."""
    calls = [r[1] for r in rows if r[0] == "call"]
    meters = [int(r[1]) for r in rows if r[0] == "meter"]
    for start in range(0, len(calls), 500):
        conn.execute(update(Call).where(Call.call_id.in_(calls[start:start + 500]))
                     .values(prediction_id=prediction_id))
    for start in range(0, len(meters), 500):
        conn.execute(update(MeterEvent).where(MeterEvent.id.in_(meters[start:start + 500]))
                     .values(prediction_id=prediction_id))


# --------------------------------------------------------------------------- dispatcher


def list_predictions(engine: Engine, *, status: str | None = "open", limit: int = 100
                     ) -> dict[str, Any]:
    """Predictions newest first (``status`` None: all): ``{"total", "items"}``."""
    query = select(Prediction).order_by(Prediction.id.desc()).limit(limit)
    count = select(func.count()).select_from(Prediction)
    if status is not None:
        query, count = query.where(Prediction.status == status), \
            count.where(Prediction.status == status)
    with engine.connect() as conn:
        return {"total": conn.execute(count).scalar_one(),
                "items": [prediction_data(r) for r in conn.execute(query)]}


def get_prediction(engine: Engine, prediction_id: int) -> dict[str, Any]:
    """One prediction; :class:`PredictionNotFoundError` when there is none."""
    with engine.connect() as conn:
        return _get(conn, prediction_id)


def _get(conn: Connection, prediction_id: int) -> dict[str, Any]:
    row = conn.execute(select(Prediction).where(Prediction.id == prediction_id)).first()
    if row is None:
        raise PredictionNotFoundError(prediction_id)
    return prediction_data(row)


def _open(conn: Connection, prediction_id: int, action: str) -> dict[str, Any]:
    data = _get(conn, prediction_id)
    if data["status"] != "open":
        raise PredictionStateError(f"prediction {prediction_id} is {data['status']}: only an "
                                   f"open prediction can be {action}")
    return data


def confirm(engine: Engine, index: QueryIndex, prediction_id: int, *, by: str | None = None,
            expected_end: dt.datetime | None = None, reason: str | None = None,
            notice_rules: NoticeRules | None = None) -> dict[str, Any]:
    """Confirm an open prediction: declare an unplanned outage event opening its device
    (which writes its customers' notices by ``notice_rules``);
    returns the prediction with ``event`` (the declared event). The prediction is claimed
    first (under the lock), so two dispatchers cannot confirm it twice; if the event cannot
    be declared it is open again."""
    with locked(engine) as conn:
        data = _open(conn, prediction_id, "confirmed")
        conn.execute(update(Prediction).where(Prediction.id == prediction_id).values(
            status="confirmed", decided_by=by, updated_at=now_seconds()))
    try:
        event = outage_events.declare(
            engine, index, [data["device"]], kind="unplanned", started_at=data["started_at"],
            expected_end=expected_end, created_by=by, notice_rules=notice_rules,
            reason=reason or f"predicted from {data['calls']} calls and "
                             f"{data['meter_events']} last gasps (prediction {prediction_id})")
    except BaseException:
        with locked(engine) as conn:
            conn.execute(update(Prediction).where(Prediction.id == prediction_id)
                         .values(status="open", decided_by=None))
        raise
    with locked(engine) as conn:
        conn.execute(update(Prediction).where(Prediction.id == prediction_id)
                     .values(event_id=event["id"]))
        return {**_get(conn, prediction_id), "event": event}


def merge(engine: Engine, index: QueryIndex, prediction_id: int, into: int, *,
          by: str | None = None) -> dict[str, Any]:
    """Merge prediction ``prediction_id`` into ``into``: one outage at the lowest protective
    device above both devices; its signals move over and ``into`` keeps that device."""
    if prediction_id == into:
        raise PredictionStateError("a prediction cannot be merged into itself")
    with locked(engine) as conn:
        one, other = _open(conn, prediction_id, "merged"), _open(conn, into, "merged into")
        edges = index.edge_indices([one["device"], other["device"]])
        nodes = [int(index.tree_child[e]) for e in edges.tolist()]
        if min(nodes) < 0 or int(index.position_feeder[index.pos[nodes[0]]]) != \
                int(index.position_feeder[index.pos[nodes[1]]]):
            raise PredictionStateError(f"predictions {prediction_id} and {into} are not on "
                                       "one feeder's supply tree: they cannot be one outage")
        top = lowest_common_ancestor(index, np.array(nodes, dtype=np.int64))
        above = [e for e in index.path_to_root(top) if index.kind_name(e) in PROTECTIVE_KINDS]
        if int(index.tree_child[edges[0]]) == top or int(index.tree_child[edges[1]]) == top:
            edge = int(edges[0] if int(index.tree_child[edges[0]]) == top else edges[1])
        elif above:
            edge = above[0]
        else:
            raise PredictionStateError("no protective device above both predictions")
        for table in (Call, MeterEvent):
            conn.execute(update(table).where(table.prediction_id == prediction_id)
                         .values(prediction_id=into))
        conn.execute(update(Prediction).where(Prediction.id == prediction_id).values(
            status="merged", merged_into=into, decided_by=by, updated_at=now_seconds()))
        _set_device(conn, index, into, edge, by)
        return _get(conn, into)


def _set_device(conn: Connection, index: QueryIndex, prediction_id: int, edge: int,
                by: str | None) -> None:
    start, end = device_range(index, edge)
    calls = conn.execute(select(func.count()).select_from(Call).where(
        Call.prediction_id == prediction_id)).scalar_one()
    meters = conn.execute(select(func.count()).select_from(MeterEvent).where(
        MeterEvent.prediction_id == prediction_id)).scalar_one()
    conn.execute(update(Prediction).where(Prediction.id == prediction_id).values(
        device_id=index.edge_ids[edge].decode(), device_kind=index.kind_name(edge),
        customers_below=int(index.cum_customers[end] - index.cum_customers[start]),
        calls=calls, meter_events=meters, pinned=True, decided_by=by,
        updated_at=now_seconds()))


def retarget(engine: Engine, index: QueryIndex, prediction_id: int, device: str, *,
             by: str | None = None) -> dict[str, Any]:
    """Point an open prediction at ``device`` (the dispatcher knows better); it keeps it."""
    edge = int(index.edge_indices([device])[0])
    if int(index.tree_child[edge]) < 0:
        raise PredictionStateError(f"device {device} is not in the normal-state supply tree: "
                                   "nothing hangs below it")
    with locked(engine) as conn:
        _open(conn, prediction_id, "re-targeted")
        _set_device(conn, index, prediction_id, edge, by)
        return _get(conn, prediction_id)


def cancel(engine: Engine, prediction_id: int, *, by: str | None = None,
           note: str | None = None) -> dict[str, Any]:
    """Cancel an open prediction (no outage): its signals stay with it, out of prediction."""
    with locked(engine) as conn:
        _open(conn, prediction_id, "cancelled")
        conn.execute(update(Prediction).where(Prediction.id == prediction_id).values(
            status="cancelled", decided_by=by, note=note, updated_at=now_seconds()))
        return _get(conn, prediction_id)


__all__ = ["SIGNAL_TROUBLES", "PredictionNotFoundError", "PredictionRules",
           "PredictionStateError", "cancel", "confirm", "covering_prediction", "get_prediction",
           "list_predictions", "merge", "position_of", "protective_above", "retarget",
           "update_predictions"]
