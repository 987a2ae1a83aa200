"""Trouble calls (故障报修): stored as received and answered at once with what is known.

A call names its caller by one of ``customer_id``, ``phone``, ``meter_id`` or ``location``
(``{"lon", "lat", "crs"}``, WGS 84 or GCJ-02), a ``trouble`` (no_supply, partial_supply,
flicker, wire_down, behind_meter, or restored for a call-back), ``channel``, ``at``, free
``text`` and a ``photo`` reference. The answer's ``status``:

* ``in_event`` — the caller is inside an active outage event: which, its cause and ETR;
* ``in_prediction`` — inside a predicted outage not yet confirmed: which prediction, device;
* ``behind_meter`` — the customer is supplied (the meter reported power since its last
  gasp, or the caller says so) and the fault is in the customer's own wiring after the meter
  (表后线): the customer's to repair, per the 表后线 policy;
* ``predicting`` — a no/partial-supply or wire-down call that joins prediction
  (:mod:`gridtopo.outages.prediction`); ``recorded`` — a flicker or a call-back, stored;
* ``unresolved`` — no customer matches: stored for an agent to identify the caller;
* ``closed_account`` — the account is closed (销户); ``outside_territory`` — the location
  lies farther than :data:`~gridtopo.outages.callers.TERRITORY_M` from every transformer.

A call is never lost and never taken twice: ``call_id`` is the caller's idempotency key — the
same body again gets the stored answer, another body with the same id is a conflict (409).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from gridtopo.clock import as_utc, now_seconds
from gridtopo.db.models import CALL_TROUBLES, Call, Customer, CustomerPersonal, MeterEvent
from gridtopo.errors import GridtopoError, InputError
from gridtopo.outages.callers import TERRITORY_M, nearby, normalize_phone, to_wgs84
from gridtopo.outages.prediction import (
    SIGNAL_TROUBLES,
    covering_prediction,
    position_of,
    update_predictions,
)
from gridtopo.outages.state import OutageState, customer_status
from gridtopo.topology.index import QueryIndex, UnknownIdError
from gridtopo.topology.queries import _find

LOCATION_RADIUS_M = 100.0
"""A location call is the nearest customer within this distance, else the nearest
transformer within it (the caller's supply is that transformer's)."""
BEHIND_METER = ("供电到表正常：故障在表后线（用户产权的内部线路），请联系有资质的电工检修。 "
                "Supply reaches the meter: the fault is in the customer's own wiring after "
                "the meter (表后线), which the customer maintains.")
MESSAGES = {
    "predicting": "已受理，正在研判故障范围。 Recorded: the call joins outage prediction.",
    "recorded": "已记录。 Recorded.",
    "unresolved": "未能确认用户，已转人工核实。 No customer matches: stored as unresolved for an "
                  "agent to identify the caller.",
    "closed_account": "该户已销户。 The account is closed (销户): no supply is due there.",
    "outside_territory": "位置不在供电区域内。 The location is outside the service territory.",
}


class CallConflictError(GridtopoError):
    """Another call was stored under the same ``call_id`` with a different body (409)."""

    http_status = 409


@dataclass(frozen=True)
class CallIn:
    """One call as received (see the module)."""

    call_id: str
    trouble: str
    at: dt.datetime | None = None
    customer_id: str | None = None
    phone: str | None = None
    meter_id: str | None = None
    location: tuple[float, float, str] | None = None
    channel: str | None = None
    text: str | None = None
    photo: str | None = None

    def identified_by(self) -> tuple[str, str | None]:
        """The caller key given (``customer_id``, ``phone``, ``meter_id``, ``location``)."""
        for name in ("customer_id", "phone", "meter_id"):
            value = getattr(self, name)
            if value:
                return name, value
        if self.location is not None:
            return "location", ",".join(map(str, self.location))
        return "none", None

    def digest(self) -> str:
        """SHA-256 of the body (times in UTC): equal bodies, equal digests."""
        data = asdict(self)
        data["at"] = as_utc(self.at).isoformat() if self.at else None
        return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False,
                                         default=str).encode()).hexdigest()


CALL_FIELDS = ("call_id", "customer_id", "phone", "meter_id", "location", "trouble", "channel",
               "at", "text", "photo")


def call_from_dict(data: dict[str, Any], where: str) -> CallIn:
    """A :class:`CallIn` from a JSON object or CSV row (``location`` an object, or ``lon``,
    ``lat``, ``crs`` columns); :class:`InputError` naming ``where`` and the field."""
    def text(name: str, limit: int = 255) -> str | None:
        value = data.get(name)
        if value is None or str(value).strip() == "":
            return None
        value = str(value).strip()
        if len(value) > limit:
            raise InputError(f"{where}: {name} longer than {limit} characters")
        return value

    unknown = sorted(set(data) - {*CALL_FIELDS, "lon", "lat", "crs"})
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}")
    call_id = text("call_id", 64)
    if not call_id:
        raise InputError(f"{where}: call_id is required (the idempotency key)")
    trouble = text("trouble") or ""
    if trouble not in CALL_TROUBLES:
        raise InputError(f"{where}: trouble {trouble!r} is not one of {', '.join(CALL_TROUBLES)}")
    where_at = text("at")
    try:
        at = as_utc(dt.datetime.fromisoformat(where_at)) if where_at else None
    except ValueError as err:
        raise InputError(f"{where}: at {where_at!r} is not an ISO 8601 date-time") from err
    location = data.get("location")
    if location is None and text("lon") is not None:
        location = {"lon": data.get("lon"), "lat": data.get("lat"), "crs": data.get("crs")}
    point = None
    if location is not None:
        try:
            lon, lat = float(location["lon"]), float(location["lat"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{where}: location needs numeric lon and lat") from err
        crs = str(location.get("crs") or "wgs84").lower().replace("-", "")
        if crs not in ("wgs84", "gcj02") or not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise InputError(f"{where}: location must be lon in [-180, 180], lat in [-90, 90], "
                             "crs wgs84 or gcj02")
        point = (lon, lat, crs)
    call = CallIn(call_id, trouble, at, text("customer_id", 64), text("phone", 64),
                  text("meter_id", 64), point, text("channel", 32), text("text", 4000),
                  text("photo", 1000))
    if call.identified_by()[0] == "none":
        raise InputError(f"{where}: call {call_id} names no caller: give customer_id, phone, "
                         "meter_id or location")
    return call


@dataclass
class Caller:
    """Whom a call resolved to."""

    customer_id: str | None = None
    transformer_id: str | None = None
    status: str | None = None
    outside: bool = False
    candidates: int = 0


def resolve(engine: Engine, index: QueryIndex, call: CallIn) -> Caller:
    """The customer (or, for a location without one, the transformer) a call is from."""
    by, value = call.identified_by()
    if by == "location":
        assert call.location is not None
        lon, lat = to_wgs84(call.location[0], call.location[1], call.location[2])
        found = nearby(engine, lon, lat, LOCATION_RADIUS_M, 5)
        if not found["in_territory"]:
            return Caller(outside=True)
        if found["items"]:
            first = found["items"][0]
            return Caller(first["customer_id"], first["transformer_id"], first["status"],
                          candidates=len(found["items"]))
        transformer = found["transformer"]
        return Caller(transformer_id=transformer["transformer_id"] if transformer else None)
    if by == "customer_id":
        c = _find(index.customer_ids, value or "")
        if c < 0:
            return Caller()
        tr = int(index.customer_transformer[c])
        return Caller(value, index.transformer_ids[tr].decode() if tr >= 0 else None,
                      "active" if index.customer_active[c] else "closed", candidates=1)
    query = select(Customer.customer_id, Customer.transformer_id, Customer.status)
    if by == "phone":
        phones = list(dict.fromkeys((normalize_phone(value or ""), value)))
        query = query.join(CustomerPersonal).where(CustomerPersonal.phone.in_(phones))
    else:
        query = query.where(Customer.meter_id == value)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(Customer.status, Customer.customer_id).limit(20)).all()
    if not rows:
        return Caller()
    return Caller(rows[0][0], rows[0][1], rows[0][2], candidates=len(rows))


def _meter_alive(conn: Connection, customer_id: str) -> bool:
    """Whether the customer's meter last reported power on (after any last gasp)."""
    row = conn.execute(select(MeterEvent.kind).where(
        MeterEvent.customer_id == customer_id, MeterEvent.kind.in_(("power_off", "power_on")))
        .order_by(MeterEvent.at.desc()).limit(1)).first()
    return row is not None and row[0] == "power_on"


def _iso(value: dt.datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None


def answer_call(engine: Engine, index: QueryIndex, state: OutageState, call: CallIn,
                caller: Caller) -> dict[str, Any]:
    """What is known about the call's supply (the ``status`` of the module) as data."""
    answer: dict[str, Any] = {
        "call_id": call.call_id, "trouble": call.trouble,
        "resolved_by": call.identified_by()[0], "customer_id": caller.customer_id,
        "transformer_id": caller.transformer_id, "feeder_id": None, "event_id": None,
        "prediction_id": None, "device": None, "cause": None, "etr": None}
    position = position_of(index, caller.transformer_id)
    answer["feeder_id"] = index.feeder_at(position) if position >= 0 else None
    if caller.outside:
        status = "outside_territory"
        answer["message"] = f"{MESSAGES[status]} (> {TERRITORY_M:g} m from any transformer)"
        return {"status": status, **answer}
    if caller.customer_id is None and caller.transformer_id is None:
        return {"status": "unresolved", **answer, "message": MESSAGES["unresolved"]}
    if caller.status == "closed":
        return {"status": "closed_account", **answer, "message": MESSAGES["closed_account"]}
    events = []
    if caller.customer_id is not None:
        events = customer_status(index, state, caller.customer_id)["events"]
    elif position >= 0 and state.out[position]:
        events = [e for e in state.covering(position) if e["started_at"] <= state.at]
    if events:
        first = events[0]
        ends = [e["expected_end"] for e in events]
        answer.update(event_id=first["id"], cause=first["reason"],
                      etr=None if None in ends else _iso(max(ends)))
        return {"status": "in_event", **answer,
                "message": f"您所在区域停电（事件 {first['id']}）。 Inside outage event "
                           f"{first['id']}" + (f", expected back {answer['etr']}"
                                               if answer["etr"] else ", ETR not yet set")}
    with engine.connect() as conn:
        predicted = covering_prediction(conn, index, answer["feeder_id"], position)
        alive = caller.customer_id is not None and call.trouble in SIGNAL_TROUBLES and \
            _meter_alive(conn, caller.customer_id)
    if call.trouble == "behind_meter" or alive:
        return {"status": "behind_meter", **answer, "message": BEHIND_METER}
    if predicted is not None and call.trouble != "restored":
        answer.update(prediction_id=predicted["id"], device=predicted["device"])
        return {"status": "in_prediction", **answer,
                "message": f"疑似 {predicted['device']} 故障停电，抢修研判中。 Inside predicted "
                           f"outage {predicted['id']} (device {predicted['device']})"}
    status = "predicting" if call.trouble in SIGNAL_TROUBLES else "recorded"
    return {"status": status, **answer, "message": MESSAGES[status]}


def take_call(engine: Engine, index: QueryIndex, state: OutageState, call: CallIn
              ) -> tuple[dict[str, Any], bool]:
    """Store ``call`` and answer it (see the module); ``(answer, created)`` — created False
    when the same call was stored before (its stored answer). :class:`CallConflictError`
    when another body holds the id."""
    digest = call.digest()
    stored = _stored(engine, call.call_id, digest)
    if stored is not None:
        return stored, False
    caller = resolve(engine, index, call)
    answer = answer_call(engine, index, state, call, caller)
    at = as_utc(call.at) or now_seconds()
    answer["at"] = at.isoformat()
    by, value = call.identified_by()
    row = {"call_id": call.call_id, "body_hash": digest, "received_at": now_seconds(),
           "at": at, "trouble": call.trouble, "channel": call.channel, "text": call.text,
           "photo": call.photo, "identified_by": by, "identifier": value,
           "customer_id": caller.customer_id, "transformer_id": caller.transformer_id,
           "feeder_id": answer["feeder_id"], "status": answer["status"],
           "signal": answer["status"] in ("predicting", "in_prediction"),
           "processed": answer["status"] not in ("predicting", "in_prediction", "recorded"),
           "prediction_id": None, "event_id": answer["event_id"], "answer": answer}
    try:
        with engine.begin() as conn:
            conn.execute(insert(Call).values(**row))
    except IntegrityError:  # the same id stored meanwhile (another worker, a retry)
        stored = _stored(engine, call.call_id, digest)
        if stored is None:
            raise
        return stored, False
    return answer, True


def _stored(engine: Engine, call_id: str, digest: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(Call.body_hash, Call.answer).where(Call.call_id == call_id)
                           ).first()
    if row is None:
        return None
    if row[0] != digest:
        raise CallConflictError(f"call {call_id} was already received with a different body: "
                                "a new call needs a new call_id")
    return dict(row[1])


def get_call(engine: Engine, call_id: str) -> dict[str, Any]:
    """A stored call's answer with its current ``prediction_id`` (it may have joined one
    since); :class:`~gridtopo.topology.index.UnknownIdError` when there is none."""
    with engine.connect() as conn:
        row = conn.execute(select(Call.answer, Call.prediction_id).where(
            Call.call_id == call_id)).first()
    if row is None:
        raise UnknownIdError("call", [call_id])
    answer = dict(row[0])
    if row[1] is not None:
        answer["prediction_id"] = row[1]
    return answer


def read_calls_file(path: Path) -> list[CallIn]:
    """The calls of a CSV (UTF-8, optional BOM, header row naming the fields; ``lon``, ``lat``,
    ``crs`` columns for a location) or JSON-lines file (one object per line; ``.jsonl`` or a
    first character ``{``). Every row is checked before any is taken: :class:`InputError`
    naming the file, line and field of each bad row (up to ten)."""
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the calls file: {err}") from err
    rows: list[tuple[int, dict[str, Any]]] = []
    errors: list[str] = []
    if path.suffix.lower() in (".jsonl", ".ndjson") or content.lstrip().startswith("{"):
        for line, raw in enumerate(content.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except json.JSONDecodeError as err:
                errors.append(f"{path}:{line}: not a JSON object ({err.msg})")
                continue
            if not isinstance(item, dict):
                errors.append(f"{path}:{line}: not a JSON object")
                continue
            rows.append((line, item))
    else:
        reader = csv.DictReader(io.StringIO(content))
        for line, item in enumerate(reader, start=2):
            if None in item:
                errors.append(f"{path}:{line}: more cells than the header has columns")
                continue
            if any((v or "").strip() for v in item.values()):
                rows.append((line, {k.strip(): v for k, v in item.items() if k}))
    calls: list[CallIn] = []
    seen: dict[str, int] = {}
    for line, item in rows:
        try:
            call = call_from_dict(item, f"{path}:{line}")
        except InputError as err:
            errors.append(str(err))
            continue
        if call.call_id in seen and calls[seen[call.call_id]] != call:
            errors.append(f"{path}:{line}: call_id {call.call_id} repeats line "
                          f"{rows[seen[call.call_id]][0]} with another body")
            continue
        seen.setdefault(call.call_id, len(calls))
        calls.append(call)
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise InputError("; ".join(errors[:10]) + more + ": nothing was taken")
    return calls


def take_calls(engine: Engine, index: QueryIndex, calls: list[CallIn]) -> dict[str, Any]:
    """Take ``calls`` one by one (as :func:`take_call`), then update the predictions once;
    ``{"received", "created", "repeated", "conflicts", "statuses", "answers"}`` — a call
    whose id holds another body is a conflict, reported, not taken."""
    state = OutageState.load(engine, index)
    answers, conflicts, created = [], [], 0
    for call in calls:
        try:
            answer, new = take_call(engine, index, state, call)
        except CallConflictError as err:
            conflicts.append({"call_id": call.call_id, "detail": str(err)})
            continue
        created += new
        answers.append(answer)
    update_predictions(engine, index)
    answers = [get_call(engine, a["call_id"]) for a in answers]
    statuses: dict[str, int] = {}
    for a in answers:
        statuses[a["status"]] = statuses.get(a["status"], 0) + 1
    return {"received": len(calls), "created": created,
            "repeated": len(answers) - created, "conflicts": conflicts,
            "statuses": statuses, "answers": answers}
