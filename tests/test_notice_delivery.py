"""Webhook delivery of released notices on both stores, to a real local HTTP receiver.

The receiver (a threaded ``http.server``) checks every request's signature with
:func:`verify_signature`, keeps each notice id once (a repeated id is counted as a
duplicate, as an idempotent receiver would) and fails at random with a seeded RNG: 500s,
connections dropped before or after it stored the batch, replies slower than the client's
read timeout. Only a batch it stored but whose 2xx did not reach the sender ("lost") may
come again: every duplicate must be one of those.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, insert, select, update

from gridtopo.api.deliverer import DeliveryLoop
from gridtopo.cli.main import main
from gridtopo.clock import as_utc, utcnow
from gridtopo.db import open_engine
from gridtopo.db.models import Notice, NoticeDelivery, OutageEvent
from gridtopo.outages import webhooks as wh
from gridtopo.outages.outbox import release_due

WAIT_SECONDS = 120.0
"""How long a test waits for deliveries to finish (a bound against hanging, not a timing
assertion)."""
FAST = wh.RetryPolicy(max_attempts=60, base_seconds=0.01, max_seconds=0.05, batch=25,
                      connect_timeout=1.0, read_timeout=0.3, lease_seconds=5.0)
"""A policy for tests: tiny back-off, a short read timeout the slow replies exceed."""
SECRET = "whsec_test-secret-0123456789"


class Receiver:
    """A webhook receiver on a free local port (see the module)."""

    def __init__(self, secret: str = SECRET, *, seed: int = 1, fail: float = 0.0,
                 drop: float = 0.0, lose: float = 0.0, slow: float = 0.0,
                 slow_seconds: float = 0.6, delay: float = 0.0) -> None:
        self.secret, self.rng = secret, random.Random(seed)
        self.odds = {"fail": fail, "drop": drop, "lose": lose, "slow": slow}
        self.slow_seconds, self.delay = slow_seconds, delay
        self.mode = "random"
        """``random`` (faults at the odds above), ``ok``, ``fail`` (500 always) or
        ``reply`` (answer ``self.reply`` always)."""
        self.reply: tuple[int, dict[str, str]] = (200, {})
        self.lock = threading.Lock()
        self.notices: dict[int, dict[str, Any]] = {}
        self.duplicates: list[int] = []
        self.lost: set[int] = set()
        self.faults: Counter[str] = Counter()
        self.bad_signatures = 0
        self.deliveries: set[str] = set()
        self.batches: list[list[int]] = []
        self.in_flight: Counter[int] = Counter()
        self.overlaps = 0
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _fault(self) -> str:
        with self.lock:
            fault = self.mode if self.mode != "random" else "ok"
            draw = self.rng.random()
            for name, odds in self.odds.items():
                if self.mode == "random" and draw < odds:
                    fault = name
                    break
                draw -= odds
            self.faults[fault] += 1
            return fault

    def _store(self, items: list[dict[str, Any]], lost: bool) -> None:
        with self.lock:
            for item in items:
                if item["id"] in self.notices:
                    self.duplicates.append(item["id"])
                else:
                    self.notices[item["id"]] = item
                if lost:
                    self.lost.add(item["id"])
            self.batches.append([i["id"] for i in items])

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        self.paths.append(req.path)
        if not wh.verify_signature(self.secret, req.headers.get(wh.SIGNATURE_HEADER), body):
            with self.lock:
                self.bad_signatures += 1
            self._answer(req, 401)
            return
        assert req.headers["Content-Type"] == "application/json"
        payload = json.loads(body)
        ids = [n["id"] for n in payload["notices"]]
        with self.lock:
            self.deliveries.add(req.headers[wh.DELIVERY_HEADER])
            self.overlaps += sum(1 for i in ids if self.in_flight[i])
            self.in_flight.update(ids)
        live = [ids]

        def settle() -> None:  # before the sender can learn the outcome: no false overlap
            with self.lock:
                self.in_flight.subtract(live.pop() if live else [])

        try:
            if self.delay:
                time.sleep(self.delay)
            fault = self._fault()
            if fault in ("lose", "slow") or (fault == "reply" and 200 <= self.reply[0] < 300) \
                    or fault == "ok":
                self._store(payload["notices"], lost=fault in ("lose", "slow"))
            settle()
            if fault == "fail":
                self._answer(req, 500)
            elif fault in ("drop", "lose"):  # the connection drops: no reply (stored or not)
                self._drop(req)
            elif fault == "slow":  # the reply comes after the client gave up
                time.sleep(self.slow_seconds)
                self._answer(req, 200)
            elif fault == "reply":
                self._answer(req, *self.reply)
            else:
                self._answer(req, 200)
        finally:
            settle()

    @staticmethod
    def _answer(req: BaseHTTPRequestHandler, code: int, headers: dict[str, str] | None = None
                ) -> None:
        try:
            req.send_response(code)
            for key, value in (headers or {}).items():
                req.send_header(key, value)
            req.send_header("Content-Length", "0")
            req.end_headers()
        except OSError:  # the client gave up
            req.close_connection = True

    @staticmethod
    def _drop(req: BaseHTTPRequestHandler) -> None:
        req.close_connection = True
        with contextlib.suppress(OSError):
            req.connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(fail=0.15, drop=0.1, lose=0.1, slow=0.1, seed=15) as r:
        yield r


def _notices(engine: Engine, count: int, *, first: int = 0) -> list[int]:
    """``count`` due notices of a new event, released (deliveries queued for the active
    webhooks); their ids."""
    now = utcnow()
    with engine.begin() as conn:
        event = conn.execute(insert(OutageEvent).values(
            kind="unplanned", status="active", started_at=now - dt.timedelta(hours=1),
            reason="test").returning(OutageEvent.id)).scalar_one()
        rows = [{"kind": "acknowledged", "status": "pending", "event_id": event,
                 "customer_id": f"C{first + i:08d}", "channel": "sms",
                 "recipient": f"138{first + i:08d}", "text": f"停电通知 {first + i}",
                 "due_at": now - dt.timedelta(minutes=1), "created_at": now,
                 "dedupe_key": f"test:{event}:{first + i}"} for i in range(count)]
        for start in range(0, count, 500):
            conn.execute(insert(Notice), rows[start:start + 500])
    release_due(engine)  # (a running worker's delivery loop may have released them first)
    with engine.connect() as conn:
        statuses = conn.execute(select(Notice.status).where(Notice.event_id == event)
                                ).scalars().all()
        assert statuses == ["released"] * count
        return list(conn.execute(select(Notice.id).where(Notice.event_id == event)
                                 .order_by(Notice.id)).scalars())


def _statuses(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(dict(conn.execute(select(NoticeDelivery.status, func.count())
                                         .group_by(NoticeDelivery.status)).all()))


def _drain(engine: Engine, policy: wh.RetryPolicy = FAST) -> Counter[str]:
    """Run deliver_due until nothing is pending (every delivery delivered or dead)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while _statuses(engine)["pending"]:
        wh.deliver_due(engine, policy=policy)
        assert time.monotonic() < deadline, f"deliveries never finished: {_statuses(engine)}"
        time.sleep(0.01)
    return _statuses(engine)


def _exactly_once(receiver: Receiver, ids: list[int]) -> None:
    """Every notice reached the receiver; any repeat was of a batch whose reply was lost."""
    assert set(receiver.notices) == set(ids)
    assert set(receiver.duplicates) <= receiver.lost
    assert receiver.bad_signatures == 0


def test_every_notice_arrives_once_through_a_faulty_receiver(engine: Engine,
                                                              receiver: Receiver) -> None:
    hook = wh.add_webhook(engine, "sms", receiver.url, secret=SECRET)
    assert hook["secret"] == SECRET
    ids = _notices(engine, 400)
    small = dataclasses.replace(FAST, batch=10)
    assert _drain(engine, small) == Counter({"delivered": 400})
    _exactly_once(receiver, ids)
    assert all(receiver.faults[f] for f in ("fail", "drop", "lose", "slow", "ok")), \
        receiver.faults
    assert receiver.duplicates  # lost replies were sent again
    assert receiver.notices[ids[0]]["recipient"] == "13800000000"  # a trusted integration
    assert receiver.notices[ids[7]]["text"] == "停电通知 7"
    assert all(len(batch) <= small.batch for batch in receiver.batches)
    assert len(receiver.deliveries) == sum(receiver.faults.values())  # a batch id per attempt
    status = wh.delivery_status(engine, ids[0])
    assert status["status"] == "released" and status["deliveries"][0]["status"] == "delivered"
    with engine.connect() as conn:
        attempts = Counter(conn.execute(select(NoticeDelivery.attempts)).scalars())
    assert max(attempts) > 1  # some were retried
    listed = wh.list_webhooks(engine)
    assert listed[0]["deliveries"] == {"pending": 0, "delivered": 400, "dead": 0}
    assert SECRET not in json.dumps(listed)


def test_dead_after_max_attempts_then_requeued(engine: Engine) -> None:
    policy = wh.RetryPolicy(max_attempts=3, base_seconds=0.01, max_seconds=0.02, batch=50)
    with Receiver() as receiver:
        receiver.mode = "fail"
        wh.add_webhook(engine, "sms", receiver.url, secret=SECRET)
        ids = _notices(engine, 120)
        assert _drain(engine, policy) == Counter({"dead": 120})
        assert receiver.notices == {}
        assert len(wh.dead_letters(engine, "sms", limit=10)["items"]) == 10
        dead = wh.dead_letters(engine, "sms")
        assert dead["total"] == 120 and [d["notice_id"] for d in dead["items"]] == ids
        assert {(d["attempts"], d["last_status"], d["last_error"]) for d in dead["items"]} == \
            {(3, 500, "HTTP 500 Internal Server Error")}
        assert receiver.faults["fail"] >= 3 * 120 / 50  # each of 120 tried 3 times, 50 a batch
        receiver.mode = "ok"
        assert wh.requeue(engine, webhook="sms", ids=ids[:5]) == {"requeued": 5}
        assert _drain(engine, policy) == Counter({"delivered": 5, "dead": 115})
        assert wh.requeue(engine, webhook="sms") == {"requeued": 115}
        assert _drain(engine, policy) == Counter({"delivered": 120})
        _exactly_once(receiver, ids)
        assert receiver.duplicates == []
        assert wh.dead_letters(engine)["total"] == 0


def _one(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(NoticeDelivery.status, NoticeDelivery.attempts,
                                  NoticeDelivery.last_status, NoticeDelivery.last_error,
                                  NoticeDelivery.next_attempt_at)).one()
        return {"status": row.status, "attempts": row.attempts, "last_status": row.last_status,
                "last_error": row.last_error, "next": row.next_attempt_at}


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(NoticeDelivery).values(status="pending", attempts=0,
                                                   next_attempt_at=utcnow()))


def test_statuses_retry_after_redirects_and_errors(engine: Engine) -> None:
    with Receiver() as receiver:
        receiver.mode = "reply"
        wh.add_webhook(engine, "sms", receiver.url, secret=SECRET)
        _notices(engine, 1)

        def attempt(reply: tuple[int, dict[str, str]],
                    policy: wh.RetryPolicy = FAST) -> dict[str, Any]:
            receiver.reply = reply
            _reset(engine)
            before = utcnow()
            counts = wh.deliver_due(engine, policy=policy)
            assert counts["batches"] == 1
            one = _one(engine)
            one["wait"] = (as_utc(one["next"]) - before).total_seconds()
            return one

        throttled = attempt((429, {"Retry-After": "120"}))
        assert throttled["status"] == "pending" and throttled["last_status"] == 429
        assert 119 <= throttled["wait"] <= 122
        later = (utcnow() + dt.timedelta(seconds=300)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        busy = attempt((503, {"Retry-After": later}))
        assert 298 <= busy["wait"] <= 302 and busy["last_error"].startswith("HTTP 503")
        plain = attempt((503, {}))
        assert plain["wait"] <= FAST.ceiling(1) + 1
        moved = attempt((302, {"Location": receiver.url.replace("/hook", "/elsewhere")}))
        assert moved["status"] == "pending" and moved["last_status"] == 302
        assert "redirect not followed" in moved["last_error"]
        assert "/elsewhere" not in receiver.paths
        assert attempt((400, {}))["status"] == "pending"  # retried by default
        strict = wh.RetryPolicy(permanent_4xx=True)
        assert attempt((400, {}), strict)["status"] == "dead"
        assert attempt((408, {}), strict)["status"] == "pending"
        assert attempt((429, {}), strict)["status"] == "pending"
        assert receiver.notices == {}
        ok = attempt((204, {}))
        assert ok["status"] == "delivered" and ok["last_status"] == 204
        assert len(receiver.notices) == 1

    # the receiver is gone: a refused connection is a failed attempt, not a crash
    _reset(engine)
    assert wh.deliver_due(engine, policy=FAST)["failed"] == 1
    gone = _one(engine)
    assert gone["last_status"] is None and "ConnectError" in gone["last_error"]


def test_a_wrong_secret_is_refused_by_the_receiver(engine: Engine) -> None:
    with Receiver(secret="whsec_the-receivers-own-secret") as receiver:
        wh.add_webhook(engine, "sms", receiver.url, secret=SECRET)
        _notices(engine, 3)
        assert wh.deliver_due(engine, policy=FAST)["failed"] == 3
        assert receiver.bad_signatures == 1 and receiver.notices == {}
        assert _one_status(engine) == (1, 401)


def _one_status(engine: Engine) -> tuple[int, int | None]:
    with engine.connect() as conn:
        attempts, last = conn.execute(select(NoticeDelivery.attempts,
                                             NoticeDelivery.last_status).limit(1)).one()
        return attempts, last


def test_verify_signature() -> None:
    body = json.dumps({"webhook": "sms", "notices": [{"id": 1}]}).encode()
    now = int(time.time())
    header = wh.signature_header(SECRET, body, timestamp=now)
    assert wh.verify_signature(SECRET, header, body)
    assert not wh.verify_signature(SECRET, header, body + b" ")  # tampered body
    assert not wh.verify_signature("whsec_another-secret-0000", header, body)
    assert not wh.verify_signature(SECRET, wh.signature_header(SECRET, body,
                                                               timestamp=now - 301), body)
    assert wh.verify_signature(SECRET, wh.signature_header(SECRET, body, timestamp=now - 301),
                               body, tolerance=600)
    old = header.replace(header.split("v1=")[1], "0" * 64)
    assert wh.verify_signature(SECRET, f"{old},v1={header.split('v1=')[1]}", body)  # rotation
    for broken in (None, "", "v1=abc", f"t={now}", f"t=x,{header.split(',')[1]}", "garbage"):
        assert not wh.verify_signature(SECRET, broken, body)


def test_two_workers_never_send_a_notice_at_once(db_url: str, engine: Engine) -> None:
    with Receiver(fail=0.15, drop=0.1, lose=0.1, delay=0.02, seed=3) as receiver:
        wh.add_webhook(engine, "sms", receiver.url, secret=SECRET)
        ids = _notices(engine, 400)
        stop, errors = threading.Event(), []

        def worker() -> None:
            own = open_engine(db_url)
            try:
                while not stop.is_set():
                    wh.deliver_due(own, policy=FAST)
                    time.sleep(0.005)
            except Exception as err:  # pragma: no cover - reported below
                errors.append(err)
            finally:
                own.dispose()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while _statuses(engine)["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        assert errors == []
        assert _statuses(engine) == Counter({"delivered": 400})
        _exactly_once(receiver, ids)
        assert receiver.overlaps == 0


def test_a_killed_deliver_process_loses_nothing(db_url: str, engine: Engine,
                                                tmp_path: Path) -> None:
    with Receiver(delay=0.05) as receiver:
        wh.add_webhook(engine, "sms", receiver.url, secret=SECRET)
        ids = _notices(engine, 600)
        env = {**os.environ, "GRIDTOPO_DB": db_url}
        log = (tmp_path / "deliver.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "gridtopo.cli.main", "notices",
                                 "deliver", "--seconds", "0.05", "--batch", "20", "--json"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while len(receiver.notices) < 200:
                assert proc.poll() is None, (tmp_path / "deliver.log").read_text()
                assert time.monotonic() < deadline, "the worker delivered nothing"
                time.sleep(0.01)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            log.close()
        time.sleep(0.5)  # the receiver finishes a request the killed worker had sent
        with receiver.lock:
            received = len(receiver.batches)
            before = set(receiver.notices)
        assert len(before) < len(ids)
        # a new worker, past the killed one's lease
        later = wh.RetryPolicy(batch=20)
        wh.deliver_due(engine, policy=later,
                       now=utcnow() + dt.timedelta(seconds=later.lease_seconds + 1))
        assert _statuses(engine) == Counter({"delivered": 600})
        assert set(receiver.notices) == set(ids) and receiver.bad_signatures == 0
        # only the batch under way when it was killed can have come again
        assert set(receiver.duplicates) <= set(receiver.batches[received - 1])
        assert len(receiver.duplicates) <= 20


def test_delivery_loop_restarted_midway_loses_nothing(db_url: str, engine: Engine) -> None:
    with Receiver(fail=0.2, lose=0.1, delay=0.01, seed=9) as receiver:
        wh.add_webhook(engine, "sms", receiver.url, secret=SECRET)
        ids = _notices(engine, 300)
        first = DeliveryLoop(engine, seconds=0.02, policy=FAST)
        first.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while len(receiver.notices) < 100:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        first.stop()
        more = _notices(engine, 100, first=300)  # released while no worker runs
        other = open_engine(db_url)
        second = DeliveryLoop(other, seconds=0.02, policy=FAST)
        second.start()
        try:
            while _statuses(engine)["pending"]:
                assert time.monotonic() < deadline, _statuses(engine)
                time.sleep(0.05)
        finally:
            second.stop()
            other.dispose()
        _exactly_once(receiver, ids + more)


def test_webhooks_cli(db_url: str, engine: Engine) -> None:
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(main, ["--db", db_url, "notices", *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    with Receiver() as receiver:
        receiver.mode = "fail"
        added = run("webhook", "add", "sms", receiver.url)
        assert added["secret"].startswith("whsec_") and len(added["secret"]) > 40
        receiver.secret = added["secret"]
        bad = runner.invoke(main, ["--db", db_url, "notices", "webhook", "add", "x",
                                   "file:///etc/passwd"])
        assert bad.exit_code == 2 and "http:// or https://" in bad.output
        again = runner.invoke(main, ["--db", db_url, "notices", "webhook", "add", "sms",
                                     receiver.url])
        assert again.exit_code == 2 and "exists already" in again.output
        listed = run("webhook", "list")
        assert [h["name"] for h in listed] == ["sms"] and added["secret"] not in str(listed)
        assert listed[0]["secret_prefix"] == added["secret"][:10] + "…"
        ids = _notices(engine, 30)
        with engine.begin() as conn:  # the last attempt is due: one failure makes them dead
            conn.execute(update(NoticeDelivery).values(attempts=11))
        once = run("deliver", "--once")
        assert once["dead"] == 30 and once["delivered"] == 0
        dead = run("dead", "--webhook", "sms")
        assert dead["total"] == 30 and {d["attempts"] for d in dead["items"]} == {12}
        receiver.mode = "ok"
        assert run("requeue", "--webhook", "sms", str(ids[0]), str(ids[1])) == {"requeued": 2}
        assert run("deliver", "--once")["delivered"] == 2
        assert run("status", str(ids[0]))["deliveries"][0]["status"] == "delivered"
        assert run("requeue") == {"requeued": 28}
        assert run("webhook", "disable", "sms")["active"] is False
        assert run("deliver", "--once")["delivered"] == 0  # a disabled webhook's wait
        assert run("webhook", "enable", "sms")["active"] is True
        assert run("deliver", "--once")["delivered"] == 28
        assert set(receiver.notices) == set(ids)
        missing = runner.invoke(main, ["--db", db_url, "notices", "status", "999999"])
        assert missing.exit_code == 2 and "999999" in missing.output
        assert run("webhook", "remove", "sms") == {"name": "sms", "deliveries_removed": 30}


def test_api_workers_deliver_in_their_lifespan(model_engine: Engine, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `create_app` workers under uvicorn deliver notices released while they run;
    `deliver_seconds=0` runs no delivery loop."""
    from gridtopo.api.app import create_app
    from gridtopo.topology.index import load_index
    from tests.test_api_calls import _serve

    monkeypatch.chdir(tmp_path)  # a PostgreSQL index is written to the working directory
    index = load_index(model_engine)
    with Receiver(fail=0.2, lose=0.1, seed=4) as receiver:
        wh.add_webhook(model_engine, "sms", receiver.url, secret=SECRET)
        apps = [create_app(model_engine, index, refresh_seconds=0, key_cache_seconds=0,
                           deliver_seconds=0.05) for _ in range(2)]
        quiet = create_app(model_engine, index, deliver_seconds=0)
        with _serve(apps[0]), _serve(apps[1]), _serve(quiet):
            assert quiet.state.deliverer._thread is None
            assert all(app.state.deliverer._thread is not None for app in apps)
            ids = _notices(model_engine, 300)
            deadline = time.monotonic() + WAIT_SECONDS
            while _statuses(model_engine)["delivered"] < 300:
                assert time.monotonic() < deadline, _statuses(model_engine)
                time.sleep(0.05)
        assert all(app.state.deliverer._thread is None for app in apps)  # stopped with them
        _exactly_once(receiver, ids)
        assert receiver.overlaps == 0


def test_an_outage_reaches_the_receiver_end_to_end(model_engine: Engine, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault declared and closed on the model: every acknowledged and restored notice the
    events wrote reaches a faulty receiver once, with the customer's phone, and the pull feed
    holds the same notices."""
    from gridtopo.db.models import CustomerPersonal
    from gridtopo.outages import events
    from gridtopo.outages.notices import NoticeRules
    from gridtopo.outages.outbox import feed
    from gridtopo.topology.index import load_index
    from tests.test_outage_events import Oracle, _fuse_with_customers

    monkeypatch.chdir(tmp_path)
    index = load_index(model_engine)
    rules = NoticeRules(quiet_hours=("00:00", "00:00"))
    fuse, _ = _fuse_with_customers(Oracle(model_engine))
    with Receiver(fail=0.2, drop=0.1, lose=0.1, seed=9) as receiver:
        wh.add_webhook(model_engine, "sms", receiver.url, secret=SECRET)
        fault = events.declare(model_engine, index, [fuse], notice_rules=rules)
        events.close(model_engine, fault["id"], index=index, notice_rules=rules)
        assert _drain(model_engine) == Counter(
            delivered=fault["notices"]["acknowledged"] * 2)
        pulled = feed(model_engine, after=0, limit=1000, reveal=True)["items"]
        _exactly_once(receiver, [i["id"] for i in pulled])
        with model_engine.connect() as conn:
            book = {c: p for c, p in conn.execute(select(CustomerPersonal.customer_id,
                                                         CustomerPersonal.phone))}
        for item in receiver.notices.values():
            assert item["recipient"] == book[item["customer_id"]].strip()
        assert Counter(i["kind"] for i in receiver.notices.values()) == {
            "acknowledged": fault["notices"]["acknowledged"],
            "restored": fault["notices"]["acknowledged"]}
