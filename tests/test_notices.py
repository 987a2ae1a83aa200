"""Outage notices on both stores, against an independent oracle of who is out (networkx over
the model's rows) and the contacts read with plain SQL: acknowledged and restored exactly once
across nested events, planned notices at their lead times and reminders, ETR moves past the
threshold only, quiet hours, opt-out, the notices written in the event's own transaction, and
a feed cursor that loses nothing while several writers commit at once."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from gridtopo.clock import now_seconds
from gridtopo.db.models import CustomerPersonal, Notice, OutageEvent
from gridtopo.errors import InputError
from gridtopo.outages import events as outages
from gridtopo.outages import notices
from gridtopo.outages.notices import NoticeRules, set_opt_out
from gridtopo.outages.outbox import feed, release_due
from gridtopo.topology.index import QueryIndex
from tests.test_outage_events import Oracle, _fuse_with_customers

QUIET_OFF = NoticeRules(quiet_hours=("00:00", "00:00"))


def phones(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return {c: p for c, p in conn.execute(select(CustomerPersonal.customer_id,
                                                     CustomerPersonal.phone))}


def reachable(engine: Engine, customers: set[str]) -> set[str]:
    """The customers with a number to call or text (the test's own reading of the contract:
    at least five digits)."""
    book = phones(engine)
    return {c for c in customers if re.search(r"\d{5,}", re.sub(r"\D", "", book.get(c) or ""))}


def everything(engine: Engine) -> list[dict[str, Any]]:
    """Every released notice through the feed, page by page."""
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = feed(engine, after=after, limit=97, reveal=True)
        if not page["items"]:
            return items
        assert [i["seq"] for i in page["items"]] == sorted(i["seq"] for i in page["items"])
        assert page["items"][0]["seq"] > after
        items += page["items"]
        after = page["next"]


def by_kind(items: list[dict[str, Any]], kind: str, event: int | None = None) -> list[str]:
    return [i["customer_id"] for i in items
            if i["kind"] == kind and (event is None or i["event_id"] == event)]


def test_nested_outages_acknowledge_and_restore_each_customer_once(
        model_engine: Engine, index: QueryIndex, oracle: Oracle) -> None:
    fuse, below = _fuse_with_customers(oracle)
    breaker = next(d for d in oracle.protective() if oracle.out([d]) > below)
    wide = oracle.out([breaker])
    start = now_seconds() - dt.timedelta(minutes=5)

    first = outages.declare(model_engine, index, [fuse], started_at=start, reason="fault",
                            notice_rules=QUIET_OFF)
    told = reachable(model_engine, below)
    assert first["notices"]["acknowledged"] == len(told)
    assert first["notices"]["acknowledged"] + first["notices"].get("no_contact", 0) == len(below)
    second = outages.declare(model_engine, index, [breaker], started_at=start,
                             notice_rules=QUIET_OFF)
    assert second["notices"].get("acknowledged", 0) == len(reachable(model_engine, wide - below))

    inner = outages.close(model_engine, first["id"], index=index, notice_rules=QUIET_OFF)
    assert inner["notices"].get("restored", 0) == 0  # all still out under the breaker
    outer = outages.close(model_engine, second["id"], index=index, notice_rules=QUIET_OFF)
    assert outer["notices"]["restored"] == len(reachable(model_engine, wide))

    items = everything(model_engine)
    acknowledged, restored = by_kind(items, "acknowledged"), by_kind(items, "restored")
    assert Counter(acknowledged) == Counter(reachable(model_engine, wide))  # once each
    assert Counter(restored) == Counter(reachable(model_engine, wide))
    assert set(by_kind(items, "acknowledged", first["id"])) == told
    book = phones(model_engine)
    for item in items:
        assert item["recipient"] == (book[item["customer_id"]] or "").strip()
        mobile = re.fullmatch(r"(\+?86)?1[3-9]\d{9}", re.sub(r"[\s\-()]", "", item["recipient"]))
        assert item["channel"] == ("sms" if mobile else "voice")
        assert "户号" in item["text"] or "停电" in item["text"]
    assert [i["seq"] for i in items] == list(range(1, len(items) + 1))


def test_planned_notices_at_lead_times_then_reminder_or_withdrawn(
        model_engine: Engine, index: QueryIndex, oracle: Oracle) -> None:
    fuse, below = _fuse_with_customers(oracle)
    told = reachable(model_engine, below)
    now = now_seconds()
    start = now + dt.timedelta(days=10)
    rules = NoticeRules(planned_hours=(168.0, 72.0), quiet_hours=("00:00", "00:00"))
    event = outages.declare(model_engine, index, [fuse], kind="planned", started_at=start,
                            expected_end=start + dt.timedelta(hours=6), reason="更换变压器",
                            notice_rules=rules)
    assert event["notices"]["planned"] == 2 * len(told)
    assert event["notices"]["reminder"] == len(told)
    assert everything(model_engine) == []  # nothing due yet
    assert release_due(model_engine, now=start - dt.timedelta(hours=100))["released"] == len(told)
    first = everything(model_engine)
    assert set(by_kind(first, "planned")) == told and len(first) == len(told)
    assert "更换变压器" in first[0]["text"]
    release_due(model_engine, now=start - dt.timedelta(hours=71))
    release_due(model_engine, now=start - dt.timedelta(hours=23))
    items = everything(model_engine)
    assert Counter(i["kind"] for i in items) == {"planned": 2 * len(told),
                                                 "reminder": len(told)}
    assert [i["kind"] for i in items[-len(told):]] == ["reminder"] * len(told)

    # declared inside its lead time: the planned notice goes at once; cancelled: the
    # reminder still pending is withdrawn, nothing else is sent
    soon = now + dt.timedelta(hours=48)
    other = outages.declare(model_engine, index, [fuse], kind="planned", started_at=soon,
                            expected_end=soon + dt.timedelta(hours=2), notice_rules=QUIET_OFF)
    assert other["notices"]["planned"] == len(told)
    released = len(everything(model_engine))
    assert released == 4 * len(told)
    cancelled = outages.close(model_engine, other["id"], index=index, notice_rules=QUIET_OFF)
    assert cancelled["notices"] == {"withdrawn": len(told)}
    release_due(model_engine, now=soon)
    assert len(everything(model_engine)) == released


def test_etr_notices_only_when_the_restoration_moves_past_the_threshold(
        model_engine: Engine, index: QueryIndex, oracle: Oracle) -> None:
    fuse, below = _fuse_with_customers(oracle)
    breaker = next(d for d in oracle.protective() if oracle.out([d]) > below)
    told = reachable(model_engine, below)
    start = now_seconds() - dt.timedelta(minutes=10)
    fault = outages.declare(model_engine, index, [fuse], started_at=start,
                            notice_rules=QUIET_OFF)
    set_etr = outages.set_etr
    three = start + dt.timedelta(hours=3)
    assert set_etr(model_engine, index, fault["id"], three,
                   notice_rules=QUIET_OFF)["notices"]["etr"] == len(told)
    small = set_etr(model_engine, index, fault["id"], three + dt.timedelta(minutes=20),
                    notice_rules=QUIET_OFF)
    assert small["notices"].get("etr", 0) == 0
    five = start + dt.timedelta(hours=5)
    assert set_etr(model_engine, index, fault["id"], five,
                   notice_rules=QUIET_OFF)["notices"]["etr"] == len(told)
    # a wider outage with a later ETR holds the fuse's customers out longer: they are told
    # at once; moving the fuse's ETR earlier then tells them nothing, their restoration is
    # the breaker's
    wide = outages.declare(model_engine, index, [breaker], started_at=start,
                           expected_end=start + dt.timedelta(hours=8), notice_rules=QUIET_OFF)
    assert wide["notices"]["etr"] == len(told)
    assert wide["notices"]["acknowledged"] == len(
        reachable(model_engine, oracle.out([breaker]) - below))
    earlier = set_etr(model_engine, index, fault["id"], start + dt.timedelta(hours=1),
                      notice_rules=QUIET_OFF)
    assert earlier["notices"].get("etr", 0) == 0
    later = set_etr(model_engine, index, wide["id"], start + dt.timedelta(hours=12),
                    notice_rules=QUIET_OFF)
    assert later["notices"]["etr"] == len(reachable(model_engine, oracle.out([breaker])))
    items = everything(model_engine)
    last = {}
    for item in items:
        if item["kind"] in ("acknowledged", "etr"):
            last[item["customer_id"]] = item["etr"]
    twelve = (start + dt.timedelta(hours=12)).isoformat()
    assert all(last[c] == twelve for c in told)
    assert "预计" in next(i for i in items if i["kind"] == "etr")["text"]
    with pytest.raises(outages.EventStateError, match="not after"):
        set_etr(model_engine, index, fault["id"], start - dt.timedelta(hours=1))
    outages.close(model_engine, fault["id"], index=index)
    with pytest.raises(outages.EventStateError, match="closed"):
        set_etr(model_engine, index, fault["id"], five)


def test_quiet_hours_hold_notices_and_acknowledged_goes_at_once(
        model_engine: Engine, index: QueryIndex, oracle: Oracle) -> None:
    fuse, below = _fuse_with_customers(oracle)
    told = reachable(model_engine, below)
    zone = ZoneInfo("Asia/Shanghai")
    local = now_seconds().astimezone(zone)
    begin = (local - dt.timedelta(hours=1)).strftime("%H:%M")
    end_local = (local + dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    rules = NoticeRules(quiet_hours=(begin, end_local.strftime("%H:%M")))
    start = now_seconds() - dt.timedelta(minutes=1)
    fault = outages.declare(model_engine, index, [fuse], started_at=start, notice_rules=rules)
    assert fault["notices"]["acknowledged"] == len(told)
    done = outages.close(model_engine, fault["id"], index=index, notice_rules=rules)
    assert done["notices"]["restored"] == len(told)
    items = everything(model_engine)
    assert set(by_kind(items, "acknowledged")) == told and by_kind(items, "restored") == []
    with model_engine.connect() as conn:
        due = set(conn.execute(select(Notice.due_at).where(Notice.kind == "restored")).scalars())
    assert len(due) == 1
    held = next(iter(due))
    held = held if held.tzinfo else held.replace(tzinfo=dt.UTC)
    assert held == end_local.astimezone(dt.UTC)
    release_due(model_engine, now=held)
    assert set(by_kind(everything(model_engine), "restored")) == told


def test_opted_out_customers_are_counted_not_told(model_engine: Engine, index: QueryIndex,
                                                  oracle: Oracle) -> None:
    fuse, below = _fuse_with_customers(oracle)
    told = sorted(reachable(model_engine, below))
    quiet = told[:3]
    assert set_opt_out(model_engine, quiet, by="test") == 3
    set_opt_out(model_engine, quiet[:1], False)
    fault = outages.declare(model_engine, index, [fuse], notice_rules=QUIET_OFF)
    assert fault["notices"]["opted_out"] == 2
    assert fault["notices"]["acknowledged"] == len(told) - 2
    assert set(by_kind(everything(model_engine), "acknowledged")) == set(told) - set(quiet[1:])


def test_event_and_notices_commit_together(model_engine: Engine, index: QueryIndex,
                                           oracle: Oracle,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fuse, _ = _fuse_with_customers(oracle)
    flush = notices.NoticeWriter.flush

    def broken(self: notices.NoticeWriter) -> dict[str, int]:
        flush(self)  # the notices are inserted, then the process "fails"
        raise RuntimeError("disk full")

    monkeypatch.setattr(notices.NoticeWriter, "flush", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        outages.declare(model_engine, index, [fuse], notice_rules=QUIET_OFF)
    with model_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OutageEvent)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(Notice)).scalar_one() == 0


def test_feed_loses_nothing_while_writers_commit_at_once(model_engine: Engine,
                                                         index: QueryIndex,
                                                         oracle: Oracle) -> None:
    devices = [d for d in oracle.protective() if 0 < len(oracle.out([d])) < 400][:6]
    assert len(devices) >= 4
    errors: list[BaseException] = []
    seen: list[int] = []
    stop = threading.Event()

    def write(device: str) -> None:
        try:
            event = outages.declare(model_engine, index, [device], notice_rules=QUIET_OFF)
            outages.close(model_engine, event["id"], index=index, notice_rules=QUIET_OFF)
        except BaseException as err:
            errors.append(err)

    def read() -> None:
        after = 0
        while not stop.is_set() or after < total():
            page = feed(model_engine, after=after, limit=50)
            seen.extend(i["seq"] for i in page["items"])
            after = page["next"]

    def total() -> int:
        with model_engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(Notice.seq), 0))).scalar_one())

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(d,)) for d in devices]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    reader.join(120)
    assert not errors
    assert seen == list(range(1, total() + 1))  # every notice once, in order, none skipped


def test_rules_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('planned_hours = [72, 24]\netr_minutes = 15\nquiet_hours = ["23:00", '
                    '"07:00"]\n[templates]\nrestored = "来电了 {customer_id}"\n', encoding="utf-8")
    rules = NoticeRules.from_toml(path)
    assert rules.planned_hours == (72, 24) and rules.etr_minutes == 15
    event = {"id": 1, "kind": "unplanned", "reason": None, "started_at": now_seconds(),
             "expected_end": None}
    assert rules.text("restored", event, "C1", None) == "来电了 C1"
    assert "计划停电" in rules.text("planned", event, "C1", None)
    path.write_text("lead = 3\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"unknown notice rule.*lead"):
        NoticeRules.from_toml(path)
    path.write_text('[templates]\nrestored = "{nope}"\n', encoding="utf-8")
    with pytest.raises(InputError, match="nope"):
        NoticeRules.from_toml(path)
    path.write_text('quiet_hours = ["25:00", "07:00"]\n', encoding="utf-8")
    with pytest.raises(InputError, match="quiet hours"):
        NoticeRules.from_toml(path)
