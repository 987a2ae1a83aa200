"""Outage notices: what every affected customer is told, written with the event change itself.

For each outage event and each customer it affects, the notices a utility sends:

* ``planned`` — a planned outage (计划停电), at each lead time before its start
  (:attr:`NoticeRules.planned_hours`, default 7 days); declared inside the lead time, at once;
* ``reminder`` — again shortly before the start (:attr:`NoticeRules.reminder_hours`, 24 h),
  unless the planned notice itself went out later than that;
* ``acknowledged`` — an outage that has started (a fault, or planned work nobody was told
  of): "we know, we are on it", with the ETR when known;
* ``etr`` — the expected restoration moved by more than :attr:`NoticeRules.etr_minutes`
  for a customer (for a planned outage not started: its times changed);
* ``restored`` — supply is back.

Who is told is decided on the **combined** switching state of all active, started events
(:mod:`gridtopo.outages.state`), compared before and after the change: a customer gets
``acknowledged`` when the change puts them out and they were not out already, ``restored``
when it brings them back and nothing else keeps them out. So a customer inside two
overlapping events hears once that supply is gone and once that it is back; a customer still
out when a parent event is restored (a nested outage) gets no ``restored`` until the last
event holding them out ends. Customers who opted out (:func:`set_opt_out`) and customers
without a phone number get nothing — counted, not lost. The channel follows the contact: a
mobile number gets an SMS, another number a voice call.

Notices are rows of the outbox (:mod:`gridtopo.outages.outbox`), inserted on the connection
of the event's own transaction: the event change and its notices commit together or not at
all. A notice due in do-not-disturb hours (default 22:00–08:00 Asia/Shanghai, for every kind
but ``acknowledged``) waits for their end. Texts are Chinese templates by default; every
rule and template can be changed (:meth:`NoticeRules.from_toml`).

>>> rules = NoticeRules()
>>> rules.local(dt.datetime(2024, 5, 6, 15, 30, tzinfo=dt.UTC))
'2024年5月6日23:30'
>>> rules.after_quiet_hours(dt.datetime(2024, 5, 6, 15, 30, tzinfo=dt.UTC)).isoformat()
'2024-05-07T00:00:00+00:00'
>>> channel_for("+86 138-1234-5678"), channel_for("020-83456789"), channel_for(None)
('sms', 'voice', None)
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from sqlalchemy import Connection, Engine, insert, select, update

from gridtopo.clock import as_utc, now_seconds
from gridtopo.db.bulk import bulk_insert
from gridtopo.db.models import (
    NOTICE_KINDS,
    CustomerPersonal,
    Notice,
    NoticePreference,
)
from gridtopo.errors import InputError
from gridtopo.outages.outbox import next_seq, notice_lock, queue
from gridtopo.outages.state import combined_impact
from gridtopo.topology.index import QueryIndex

RULES_ENV = "GRIDTOPO_NOTICE_RULES"
"""Environment variable naming a TOML file of :class:`NoticeRules` (API workers, CLI)."""
CHUNK = 900
"""Ids per ``IN (…)`` query: below SQLite's and PostgreSQL's limits on bound parameters."""

TEMPLATES: dict[str, str] = {
    "planned": "【供电服务】计划停电通知：因{reason}，您的用电户（户号{customer_id}）将于{start}至"
               "{end}停电，请提前做好准备。",
    "reminder": "【供电服务】停电提醒：您的用电户（户号{customer_id}）将于{start}起停电"
                "（{reason}），预计{end}恢复供电。",
    "acknowledged": "【供电服务】您所在区域发生停电，我们已安排抢修，{etr_text}。",
    "etr": "【供电服务】停电进展：您的用电户（户号{customer_id}）{etr_text}。",
    "restored": "【供电服务】您的用电户（户号{customer_id}）已恢复供电，感谢您的理解与支持。",
}
"""Default texts (Chinese). Fields: ``customer_id``, ``event_id``, ``reason``, ``start``,
``end``, ``etr``, ``etr_text`` (local times, ``M月D日HH:MM``)."""

UTC_TIME = pl.Datetime("us", "UTC")
ROW_SCHEMA: dict[str, Any] = {
    "kind": pl.Utf8, "status": pl.Utf8, "event_id": pl.Int64, "customer_id": pl.Utf8,
    "channel": pl.Utf8, "recipient": pl.Utf8, "text": pl.Utf8, "etr": UTC_TIME,
    "due_at": UTC_TIME, "created_at": UTC_TIME, "seq": pl.Int64, "released_at": UTC_TIME,
    "dedupe_key": pl.Utf8}
"""A notice row as :func:`~gridtopo.db.bulk.bulk_insert` writes it."""
MOBILE = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$")


def channel_for(phone: str | None) -> str | None:
    """``sms`` for a mainland mobile number, ``voice`` for another number, None without."""
    digits = re.sub(r"[\s\-()]", "", phone or "")
    if not re.search(r"\d{5,}", digits):
        return None
    return "sms" if MOBILE.match(digits) else "voice"


@dataclass(frozen=True)
class NoticeRules:
    """When and how customers are told; every field can be set in a TOML file.

    ``quiet_hours`` are local ``HH:MM`` (start, end) in ``timezone``, held for ``quiet_kinds``;
    equal start and end turn them off."""

    planned_hours: tuple[float, ...] = (168.0,)
    reminder_hours: tuple[float, ...] = (24.0,)
    etr_minutes: float = 30.0
    quiet_hours: tuple[str, str] = ("22:00", "08:00")
    quiet_kinds: tuple[str, ...] = ("planned", "reminder", "etr", "restored")
    timezone: str = "Asia/Shanghai"
    templates: dict[str, str] = field(default_factory=lambda: dict(TEMPLATES))
    enabled: bool = True

    @classmethod
    def from_toml(cls, path: str | Path) -> NoticeRules:
        """Rules from a TOML file of the field names (``[templates]`` a table of kind = text);
        :class:`~gridtopo.errors.InputError` naming an unknown field or a bad value."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise InputError(f"{path}: cannot read notice rules: {err}") from err
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"{path}: unknown notice rule(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name == "templates":
                bad = sorted(set(value) - set(NOTICE_KINDS))
                if bad:
                    raise InputError(f"{path}: templates for unknown kind(s) {', '.join(bad)}")
                values[name] = {**TEMPLATES, **value}
            elif name in ("planned_hours", "reminder_hours", "quiet_hours", "quiet_kinds"):
                values[name] = tuple(value)
            else:
                values[name] = value
        rules = replace(cls(), **values)
        rules.check(str(path))
        return rules

    def check(self, where: str = "notice rules") -> None:
        """:class:`InputError` for a value that cannot work (naming it)."""
        try:
            ZoneInfo(self.timezone)
            for text in self.quiet_hours:
                dt.time.fromisoformat(text)
        except (ValueError, KeyError) as err:
            raise InputError(f"{where}: bad timezone or quiet hours: {err}") from err
        if len(self.quiet_hours) != 2:
            raise InputError(f"{where}: quiet_hours takes two times (start, end)")
        if any(h <= 0 for h in (*self.planned_hours, *self.reminder_hours)):
            raise InputError(f"{where}: lead times are hours before the start, above 0")
        bad = sorted(set(self.quiet_kinds) - set(NOTICE_KINDS))
        if bad:
            raise InputError(f"{where}: quiet_kinds names unknown kind(s) {', '.join(bad)}")
        sample = {name: "" for name in ("customer_id", "event_id", "reason", "start", "end",
                                        "etr", "etr_text")}
        for kind, template in self.templates.items():
            try:
                template.format(**sample)
            except (KeyError, ValueError, IndexError) as err:
                raise InputError(f"{where}: template {kind!r} cannot be filled ({err!r}); "
                                 f"fields: {', '.join(sample)}") from err

    def local(self, moment: dt.datetime | None) -> str:
        """``moment`` as customers read it: local ``M月D日HH:MM`` (with the year when it is
        not this year's)."""
        if moment is None:
            return ""
        t = self._zoned(moment)
        year = "" if t.year == now_seconds().year else f"{t.year}年"
        return f"{year}{t.month}月{t.day}日{t:%H:%M}"

    def _zoned(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` in the rules' time zone (in UTC at the very ends of the calendar,
        where the zone's offset would leave it)."""
        try:
            return as_utc(moment).astimezone(ZoneInfo(self.timezone))
        except OverflowError:
            return as_utc(moment)

    def after_quiet_hours(self, moment: dt.datetime) -> dt.datetime:
        """``moment``, or the end of the quiet hours it falls in (UTC)."""
        zone = ZoneInfo(self.timezone)
        start, end = (dt.time.fromisoformat(t) for t in self.quiet_hours)
        if start == end:
            return moment
        t = self._zoned(moment)
        now = t.time().replace(tzinfo=None)
        inside = (start <= now or now < end) if start > end else (start <= now < end)
        if not inside:
            return moment
        try:
            day = t.date() + dt.timedelta(days=1) if start > end and now >= start else t.date()
            return dt.datetime.combine(day, end, tzinfo=zone).astimezone(dt.UTC)
        except OverflowError:  # the last night of the calendar: no later morning
            return moment

    def due(self, kind: str, moment: dt.datetime) -> dt.datetime:
        """When a notice of ``kind`` wanted at ``moment`` goes out."""
        return self.after_quiet_hours(moment) if kind in self.quiet_kinds else moment

    def text(self, kind: str, event: dict[str, Any], customer_id: str,
             etr: dt.datetime | None) -> str:
        """The notice's text from its template."""
        return self.writer(kind, event, etr)(customer_id)

    def writer(self, kind: str, event: dict[str, Any], etr: dt.datetime | None
               ) -> Callable[[str], str]:
        """The text of ``kind`` about ``event`` for any customer id: the event's fields are
        filled once, the customer's for each notice."""
        etr_text = f"预计{self.local(etr)}恢复供电" if etr else "恢复时间正在确定"
        reason = event.get("reason") or ("设备检修" if event["kind"] == "planned" else "线路故障")
        fields = {"event_id": event["id"], "reason": reason,
                  "start": self.local(event["started_at"]),
                  "end": self.local(event.get("expected_end")), "etr": self.local(etr),
                  "etr_text": etr_text}
        template = self.templates[kind]
        return lambda customer_id: template.format(customer_id=customer_id, **fields)


@dataclass
class Recipients:
    """The customers to tell, with their channel and number; who was left out and why."""

    ids: list[str]
    phones: list[str]
    channels: list[str]
    skipped: Counter[str]


def recipients(conn: Connection, customer_ids: Iterable[str]) -> Recipients:
    """Contacts of ``customer_ids``, leaving out those who opted out or have no number."""
    ids = list(customer_ids)
    phones: dict[str, str | None] = {}
    opted: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        phones.update((c, p) for c, p in conn.execute(
            select(CustomerPersonal.customer_id, CustomerPersonal.phone)
            .where(CustomerPersonal.customer_id.in_(part))))
        opted.update(conn.execute(select(NoticePreference.customer_id).where(
            NoticePreference.customer_id.in_(part), NoticePreference.opt_out.is_(True))
        ).scalars())
    out = Recipients([], [], [], Counter())
    for customer in ids:
        phone = phones.get(customer)
        channel = channel_for(phone)
        if customer in opted:
            out.skipped["opted_out"] += 1
        elif channel is None or phone is None:
            out.skipped["no_contact"] += 1
        else:
            out.ids.append(customer)
            out.phones.append(phone.strip())
            out.channels.append(channel)
    return out


def out_customers(index: QueryIndex, events: list[dict[str, Any]], at: dt.datetime
                  ) -> np.ndarray:
    """Customer numbers out of supply under ``events`` started by ``at``, taken together."""
    started = [e for e in events if e["started_at"] <= at]
    if not started:
        return np.zeros(0, dtype=np.int64)
    return np.unique(index.customers_at(combined_impact(index, started).positions))


class NoticeWriter:
    """Notices of one event change, inserted on the change's own connection."""

    def __init__(self, conn: Connection, rules: NoticeRules, now: dt.datetime) -> None:
        self.conn, self.rules, self.now = conn, rules, now
        self.rows: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        notice_lock(conn)

    def add(self, kind: str, event: dict[str, Any], people: Recipients, *,
            wanted: dt.datetime, etr: dt.datetime | None, key: str = "") -> None:
        """One ``kind`` notice about ``event`` to each of ``people``, wanted at ``wanted``."""
        self.counts.update(people.skipped)
        due = max(self.rules.due(kind, wanted), self.now)
        text = self.rules.writer(kind, event, etr)
        for customer, phone, channel in zip(people.ids, people.phones, people.channels,
                                            strict=True):
            self.rows.append({
                "kind": kind, "status": "pending", "event_id": event["id"],
                "customer_id": customer, "channel": channel, "recipient": phone,
                "text": text(customer), "etr": etr, "due_at": due,
                "created_at": self.now, "seq": None, "released_at": None,
                "dedupe_key": f"{kind}:{event['id']}:{customer}{key}"})
            self.counts[kind] += 1

    def flush(self) -> dict[str, int]:
        """Insert the notices — those due now released at once, with the next cursor values
        — skipping an ``etr`` notice already written (the same ETR told before: same dedupe
        key; the other kinds are once per event by construction), and return the counts."""
        if not self.rows:
            return dict(self.counts)
        rows = self.rows
        etr_keys = [r["dedupe_key"] for r in rows if r["kind"] == "etr"]
        if etr_keys:
            known: set[str] = set()
            for start in range(0, len(etr_keys), CHUNK):
                known.update(self.conn.execute(select(Notice.dedupe_key).where(
                    Notice.dedupe_key.in_(etr_keys[start:start + CHUNK]))).scalars())
            rows = [r for r in rows if r["dedupe_key"] not in known]
            self.counts["already_sent"] += len(self.rows) - len(rows)
        due = [r for r in rows if r["due_at"] <= self.now]
        first = next_seq(self.conn)
        for seq, row in enumerate(due, first):
            row.update(seq=seq, status="released", released_at=self.now)
        bulk_insert(self.conn, "notices", pl.DataFrame(rows, schema=ROW_SCHEMA))
        if due:
            queue(self.conn, first, first + len(due) - 1, self.now)
        self.rows = []
        return dict(self.counts)


def names(index: QueryIndex, numbers: np.ndarray) -> list[str]:
    """Customer ids of customer numbers."""
    return index.names(index.customer_ids, numbers)


def on_declared(conn: Connection, index: QueryIndex, event: dict[str, Any],
                others: list[dict[str, Any]], rules: NoticeRules,
                now: dt.datetime) -> dict[str, int]:
    """Notices for a newly declared ``event`` (``others``: the other active events)."""
    if not rules.enabled:
        return {}
    writer = NoticeWriter(conn, rules, now)
    start = event["started_at"]
    if start > now:  # planned work ahead: tell everyone it will cut off
        mine = np.unique(index.customers_at(combined_impact(index, [event]).positions))
        people = recipients(conn, names(index, mine))
        leads = sorted(rules.planned_hours, reverse=True)
        first = max(start - dt.timedelta(hours=leads[0]), now)
        writer.add("planned", event, people, wanted=first, etr=event.get("expected_end"))
        for hours in leads[1:]:
            wanted = start - dt.timedelta(hours=hours)
            if wanted > first:
                writer.add("planned", event, people, wanted=wanted,
                           etr=event.get("expected_end"), key=f":{hours:g}h")
        for hours in rules.reminder_hours:
            wanted = start - dt.timedelta(hours=hours)
            if wanted > first:
                writer.add("reminder", event, people, wanted=wanted,
                           etr=event.get("expected_end"), key=f":{hours:g}h")
    else:
        before = out_customers(index, others, now)
        after = out_customers(index, [*others, event], now)
        new = np.setdiff1d(after, before, assume_unique=True)
        writer.add("acknowledged", event, recipients(conn, names(index, new)), wanted=now,
                   etr=event.get("expected_end"))
        if event.get("expected_end") is not None:  # those out already may now wait longer
            mine = np.unique(index.customers_at(combined_impact(index, [event]).positions))
            _etr_moves(writer, index, event, others, mine, new)
    return writer.flush()


def on_closed(conn: Connection, index: QueryIndex, event: dict[str, Any],
              others: list[dict[str, Any]], rules: NoticeRules,
              now: dt.datetime) -> dict[str, int]:
    """Notices for closing ``event``: ``restored`` to whom it alone kept out; a planned event
    closed before its start withdraws its notices not yet sent."""
    if not rules.enabled:
        return {}
    if event["started_at"] > now:
        withdrawn = conn.execute(update(Notice).where(
            Notice.event_id == event["id"], Notice.status == "pending")
            .values(status="withdrawn", withdrawn_reason="event_cancelled")).rowcount
        return {"withdrawn": int(withdrawn or 0)}
    writer = NoticeWriter(conn, rules, now)
    before = out_customers(index, [*others, event], now)
    after = out_customers(index, others, now)
    back = np.setdiff1d(before, after, assume_unique=True)
    writer.add("restored", event, recipients(conn, names(index, back)), wanted=now, etr=None)
    return writer.flush()


def on_etr(conn: Connection, index: QueryIndex, event: dict[str, Any],
           others: list[dict[str, Any]], rules: NoticeRules, now: dt.datetime
           ) -> dict[str, int]:
    """Notices for a new expected end of ``event``: ``etr`` to each customer it holds out
    whose expected restoration (the latest among the events holding them out) moved by more
    than the threshold from what they were last told; pending older ETR notices are
    withdrawn. A planned event not started: its pending notices are rewritten, and those
    already told get an ``etr`` notice of the new times."""
    if not rules.enabled:
        return {}
    writer = NoticeWriter(conn, rules, now)
    mine = np.unique(index.customers_at(combined_impact(index, [event]).positions))
    if event["started_at"] > now:
        _rewrite_pending(conn, rules, event)
        told = _told(conn, event["id"], names(index, mine))
        people = recipients(conn, [c for c in names(index, mine) if c in told])
        writer.add("etr", event, people, wanted=now, etr=event.get("expected_end"),
                   key=f":{_stamp(event.get('expected_end'))}")
        return writer.flush()
    _etr_moves(writer, index, event, others, mine, np.zeros(0, dtype=np.int64))
    return writer.flush()


def _etr_moves(writer: NoticeWriter, index: QueryIndex, event: dict[str, Any],
               others: list[dict[str, Any]], mine: np.ndarray, exclude: np.ndarray) -> None:
    """``etr`` notices to the customers of ``mine`` out now (but ``exclude``) whose expected
    restoration moved past the threshold from what they were last told."""
    conn, rules, now = writer.conn, writer.rules, writer.now
    out_now = out_customers(index, [*others, event], now)
    held = np.setdiff1d(np.intersect1d(mine, out_now, assume_unique=True), exclude)
    if not held.size:
        return
    ids = names(index, held)
    started = [e for e in others if e["started_at"] <= now]
    effective = _effective_etr(index, held, event, started)
    last = _last_etr(conn, ids)
    threshold = dt.timedelta(minutes=rules.etr_minutes)
    groups: dict[dt.datetime | None, list[str]] = {}
    for customer, etr in zip(ids, effective, strict=True):
        previous = last.get(customer)
        moved = (etr is not None and (previous is None or abs(etr - previous) > threshold))
        if moved:
            groups.setdefault(etr, []).append(customer)
    for etr, customers in groups.items():
        for start in range(0, len(customers), CHUNK):
            conn.execute(update(Notice).where(
                Notice.customer_id.in_(customers[start:start + CHUNK]), Notice.kind == "etr",
                Notice.status == "pending").values(status="withdrawn",
                                                   withdrawn_reason="replaced"))
        writer.add("etr", event, recipients(conn, customers), wanted=now, etr=etr,
                   key=f":{_stamp(etr)}")


def _stamp(moment: dt.datetime | None) -> str:
    return "" if moment is None else as_utc(moment).strftime("%Y%m%dT%H%M%S")


def _effective_etr(index: QueryIndex, held: np.ndarray, event: dict[str, Any],
                   others: list[dict[str, Any]]) -> list[dt.datetime | None]:
    """Per customer of ``held``: the latest expected end among ``event`` and the started
    ``others`` whose own outage reaches them."""
    latest: list[dt.datetime | None] = [event.get("expected_end")] * len(held)
    for other in others:
        end = other.get("expected_end")
        if end is None:
            continue
        theirs = np.unique(index.customers_at(combined_impact(index, [other]).positions))
        inside = np.isin(held, theirs)
        for i in np.flatnonzero(inside).tolist():
            current = latest[i]
            latest[i] = end if current is None or end > current else current
    return latest


def _last_etr(conn: Connection, customers: list[str]) -> dict[str, dt.datetime | None]:
    """The ETR each customer was last told (by any event's notice carrying one)."""
    last: dict[str, tuple[dt.datetime | None, int]] = {}
    for start in range(0, len(customers), CHUNK):
        for customer, etr, nid in conn.execute(
                select(Notice.customer_id, Notice.etr, Notice.id).where(
                    Notice.customer_id.in_(customers[start:start + CHUNK]),
                    Notice.kind.in_(("planned", "reminder", "acknowledged", "etr")),
                    Notice.status != "withdrawn")):
            if customer not in last or nid > last[customer][1]:
                last[customer] = (as_utc(etr), nid)
    return {c: etr for c, (etr, _) in last.items()}


def _told(conn: Connection, event_id: int, customers: list[str]) -> set[str]:
    """Customers already sent a notice about ``event_id``."""
    told: set[str] = set()
    for start in range(0, len(customers), CHUNK):
        told.update(conn.execute(select(Notice.customer_id).where(
            Notice.event_id == event_id, Notice.status == "released",
            Notice.customer_id.in_(customers[start:start + CHUNK]))).scalars())
    return told


def _rewrite_pending(conn: Connection, rules: NoticeRules, event: dict[str, Any]) -> None:
    """Rewrite the pending planned and reminder notices of ``event`` with its new times."""
    rows = conn.execute(select(Notice.id, Notice.kind, Notice.customer_id).where(
        Notice.event_id == event["id"], Notice.status == "pending")).all()
    for nid, kind, customer in rows:
        conn.execute(update(Notice).where(Notice.id == nid).values(
            text=rules.text(kind, event, customer, event.get("expected_end")),
            etr=event.get("expected_end")))


def set_opt_out(engine: Engine, customer_ids: Iterable[str], opt_out: bool = True, *,
                by: str | None = None) -> int:
    """Record that ``customer_ids`` want no notices (or want them again); how many."""
    ids = list(dict.fromkeys(c.strip() for c in customer_ids if c.strip()))
    now = now_seconds()
    with engine.begin() as conn:
        for start in range(0, len(ids), CHUNK):
            part = ids[start:start + CHUNK]
            known = set(conn.execute(select(NoticePreference.customer_id).where(
                NoticePreference.customer_id.in_(part))).scalars())
            if known:
                conn.execute(update(NoticePreference).where(
                    NoticePreference.customer_id.in_(known))
                    .values(opt_out=opt_out, updated_at=now, updated_by=by))
            fresh = [c for c in part if c not in known]
            if fresh:
                conn.execute(insert(NoticePreference), [
                    {"customer_id": c, "opt_out": opt_out, "updated_at": now, "updated_by": by}
                    for c in fresh])
    return len(ids)
