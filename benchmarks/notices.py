"""Notice delivery to a webhook: released notices pushed to a local receiver (issue 15).

N released notices (and their delivery rows for one webhook) are written straight into a
scratch database on each store; :func:`gridtopo.outages.webhooks.deliver_due` then pushes
them, in batches of ``--batch``, to a receiver running in its own process (a threaded
``http.server`` that checks every signature, parses the batch and keeps each notice id once,
like a real idempotent receiver). With ``--fail`` the receiver answers that share of the
requests with a 500, and the figure includes the retries.

Figures: notices delivered per second (target ≥ 2,000/s), requests sent, and that every
notice arrived (duplicates counted). Run::

    .venv/bin/python benchmarks/notices.py --notices 20000
    .venv/bin/python benchmarks/notices.py --notices 20000 --fail 0.1 --pg skip
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from gridtopo.clock import utcnow
from gridtopo.db import open_engine, upgrade
from gridtopo.db.models import Notice, NoticeDelivery, OutageEvent
from gridtopo.outages import webhooks as wh

SECRET = "whsec_benchmark-secret-0123456789"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


# --------------------------------------------------------------------------- the receiver


def serve(port_file: Path, fail: float, seed: int) -> None:
    """The receiver process: POST stores a signed batch, GET reports the counts."""
    lock, rng = threading.Lock(), random.Random(seed)
    seen: set[int] = set()
    counts = {"requests": 0, "failed": 0, "bad_signatures": 0, "duplicates": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def _answer(self, code: int, body: bytes = b"") -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            with lock:
                self._answer(200, json.dumps({**counts, "notices": len(seen)}).encode())

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                counts["requests"] += 1
                failing = rng.random() < fail
            if not wh.verify_signature(SECRET, self.headers.get(wh.SIGNATURE_HEADER), body):
                with lock:
                    counts["bad_signatures"] += 1
                self._answer(401)
                return
            if failing:
                with lock:
                    counts["failed"] += 1
                self._answer(500)
                return
            ids = [n["id"] for n in json.loads(body)["notices"]]
            with lock:
                for i in ids:
                    if i in seen:
                        counts["duplicates"] += 1
                    seen.add(i)
            self._answer(200)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


class Receiver:
    """The receiver in a child process (so that it does not share the sender's GIL)."""

    def __init__(self, fail: float, workdir: Path) -> None:
        port_file = workdir / f"port-{uuid.uuid4().hex[:6]}"
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file),
                                      "--fail", str(fail)])
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("the receiver did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}/hook"

    def counts(self) -> dict[str, int]:
        return dict(httpx.get(self.url, timeout=10).json())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# --------------------------------------------------------------------------- the sender


def released_notices(engine: Engine, count: int, webhook_id: int) -> None:
    """``count`` released notices of one event, each with a pending delivery to the webhook."""
    now = utcnow()
    with engine.begin() as conn:
        event = conn.execute(insert(OutageEvent).values(
            kind="unplanned", status="active", started_at=now, reason="benchmark")
            .returning(OutageEvent.id)).scalar_one()
        for start in range(0, count, 5000):
            stop = min(count, start + 5000)
            conn.execute(insert(Notice), [
                {"id": i + 1, "seq": i + 1, "kind": "acknowledged", "status": "released",
                 "event_id": event, "customer_id": f"03{i:011d}", "channel": "sms",
                 "recipient": f"138{i:08d}", "etr": now, "due_at": now, "released_at": now,
                 "created_at": now, "dedupe_key": f"bench:{i}",
                 "text": f"【供电公司】您所在区域因故障停电，预计 18:00 前恢复，户号 03{i:011d}"}
                for i in range(start, stop)])
            conn.execute(insert(NoticeDelivery), [
                {"notice_id": i + 1, "webhook_id": webhook_id, "status": "pending",
                 "attempts": 0, "next_attempt_at": now} for i in range(start, stop)])


def run(store: str, url: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    engine = open_engine(url, create=True)
    receiver = Receiver(args.fail, workdir)
    try:
        upgrade(engine)
        hook = wh.add_webhook(engine, "bench", receiver.url, secret=SECRET)
        released_notices(engine, args.notices, hook["id"])
        policy = wh.RetryPolicy(batch=args.batch, base_seconds=0.01, max_seconds=0.05)
        start = time.perf_counter()
        batches = 0
        with httpx.Client() as client:
            while True:
                counts = wh.deliver_due(engine, client=client, policy=policy)
                batches += counts["batches"]
                with engine.connect() as conn:
                    pending = conn.execute(select(func.count()).select_from(NoticeDelivery)
                                           .where(NoticeDelivery.status == "pending")).scalar()
                if not pending:
                    break
                time.sleep(0.01)
        seconds = time.perf_counter() - start
        got = receiver.counts()
    finally:
        receiver.close()
        engine.dispose()
    return {"store": store, "notices": args.notices, "batch": args.batch, "seconds": seconds,
            "rate": args.notices / seconds, "requests": got["requests"],
            "failed": got["failed"], "arrived": got["notices"], "duplicates": got["duplicates"],
            "bad": got["bad_signatures"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--notices", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=wh.RetryPolicy.batch)
    parser.add_argument("--fail", type=float, default=0.0,
                        help="Share of requests the receiver answers with a 500.")
    parser.add_argument("--pg", default=PG_ADMIN,
                        help="PostgreSQL admin URL (a scratch database is created), or skip.")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.fail, seed=1)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="gridtopo-notices-") as tmp:
        workdir = Path(tmp)
        rows.append(run("SQLite", f"sqlite:///{workdir / 'notices.db'}", args, workdir))
        if args.pg != "skip":
            admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
            name = f"gridtopo_bench_notices_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name}"))
            try:
                pg_url = make_url(args.pg).set(database=name).render_as_string(
                    hide_password=False)
                rows.append(run("PostgreSQL", pg_url, args, workdir))
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                admin.dispose()
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"receiver fails {args.fail:.0%} of requests")
    header = (f"{'store':<11} {'notices':>8} {'batch':>6} {'seconds':>8} {'notices/s':>10} "
              f"{'requests':>9} {'500s':>6} {'arrived':>8} {'dupes':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['store']:<11} {r['notices']:>8,} {r['batch']:>6} {r['seconds']:>8.2f} "
              f"{r['rate']:>10,.0f} {r['requests']:>9,} {r['failed']:>6,} {r['arrived']:>8,} "
              f"{r['duplicates']:>6,}")
    missing = [r["store"] for r in rows if r["arrived"] != r["notices"] or r["bad"]]
    if missing:
        raise SystemExit(f"notices lost or refused on {', '.join(missing)}")
    print("\ntarget: >= 2,000 notices/s on each store")


if __name__ == "__main__":
    main()
