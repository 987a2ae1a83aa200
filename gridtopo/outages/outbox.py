"""The notice outbox: releasing due notices in order, the pull feed, and what a notice looks like.

Notices (``notices``) are written by :mod:`gridtopo.outages.notices` in the transaction of the
event change that causes them. A notice that is due at once is released there and then; one
due later (a planned notice days ahead, one held through do-not-disturb hours) stays
``pending`` until :func:`release_due` releases it — the webhook worker and every feed read
call it. Releasing gives a notice the next ``seq``, the feed's cursor, and a delivery row
(``notice_deliveries``) for every active webhook; it withdraws instead a notice that no
longer applies when it comes due (its event ended, or a newer ETR notice replaced it).

Writers of notices take :func:`notice_lock` first — a PostgreSQL advisory lock held to the end
of the transaction (SQLite writers are serialised already) — so ``seq`` values commit in
increasing order and a reader at cursor *n* never later finds a smaller one appear: the feed
loses nothing.

>>> feed(engine, after=0)
{'items': [], 'next': 0}
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    bindparam,
    func,
    insert,
    literal,
    select,
    text,
    update,
)

from gridtopo.clock import as_utc, now_seconds
from gridtopo.db.models import Notice, NoticeDelivery, OutageEvent, Webhook
from gridtopo.privacy import mask_expression

NOTICE_LOCK = 0x67746E6F
"""PostgreSQL advisory-lock key serialising notice writers ("gtno")."""
FEED_LIMIT = 1000
"""Notices one feed page returns at most."""
BATCH = 500


def notice_lock(conn: Connection) -> None:
    """Serialise notice writers until ``conn``'s transaction ends (PostgreSQL; SQLite
    serialises writers by itself)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": NOTICE_LOCK})


def next_seq(conn: Connection) -> int:
    """The next feed cursor value (under :func:`notice_lock`)."""
    return (conn.execute(select(func.max(Notice.seq))).scalar() or 0) + 1


def notice_item(row: Any) -> dict[str, Any]:
    """A notice as the feed and the webhooks show it (the recipient as stored; the feed
    masks it with :func:`mask_recipients` for a key without ``personal:read``)."""
    m = row if isinstance(row, dict) else row._mapping
    return {"id": m["id"], "seq": m["seq"], "kind": m["kind"], "event_id": m["event_id"],
            "customer_id": m["customer_id"], "channel": m["channel"],
            "recipient": m["recipient"], "text": m["text"], "etr": _iso(m["etr"]),
            "due_at": _iso(m["due_at"]), "released_at": _iso(m["released_at"])}


def mask_recipients(items: list[dict[str, Any]]) -> None:
    """Mask the recipients of ``items`` in place, a page at once (one polars expression).

    >>> items = [{"recipient": "13812344174"}, {"recipient": "020-83456789"}]
    >>> mask_recipients(items)
    >>> [i["recipient"] for i in items]
    ['138****4174', '****6789']
    """
    if not items:
        return
    phones = pl.Series("phone", [i["recipient"] for i in items], dtype=pl.Utf8)
    masked = pl.select(mask_expression("phone", pl.lit(phones))).to_series().to_list()
    for item, value in zip(items, masked, strict=True):
        item["recipient"] = value


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


RELEASE = (update(Notice).where(Notice.id == bindparam("nid"))
           .values(seq=bindparam("s"), status="released", released_at=bindparam("at")))
"""Release one notice (executed for many: ``nid``, ``s``, ``at``)."""
FEED_COLUMNS = (Notice.id, Notice.seq, Notice.kind, Notice.event_id, Notice.customer_id,
                Notice.channel, Notice.recipient, Notice.text, Notice.etr, Notice.due_at,
                Notice.released_at)


def feed(engine: Engine, *, after: int = 0, limit: int = FEED_LIMIT, reveal: bool = False,
         now: dt.datetime | None = None) -> dict[str, Any]:
    """Released notices with ``seq`` above ``after``, in order: ``{"items", "next"}`` where
    ``next`` is the cursor to ask with next time (``after`` again when nothing is new).
    Releases what has come due first."""
    release_due(engine, now=now)
    with engine.connect() as conn:
        rows = conn.execute(select(*FEED_COLUMNS).where(Notice.seq > after)
                            .order_by(Notice.seq).limit(min(limit, FEED_LIMIT))).all()
    items = [notice_item(r) for r in rows]
    if not reveal:
        mask_recipients(items)
    return {"items": items, "next": items[-1]["seq"] if items else after}


def release_due(engine: Engine, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Release the pending notices due by ``now`` (default: now), withdrawing those that no
    longer apply; ``{"released", "withdrawn"}``. One cheap query when nothing is due."""
    clock = as_utc(now) or now_seconds()
    with engine.connect() as conn:
        due = conn.execute(select(Notice.id).where(Notice.status == "pending",
                                                   Notice.due_at <= clock).limit(1)).first()
    if due is None:
        return {"released": 0, "withdrawn": 0}
    with engine.begin() as conn:
        notice_lock(conn)
        rows = conn.execute(
            select(Notice.id, Notice.kind, Notice.customer_id, Notice.event_id,
                   OutageEvent.status, OutageEvent.started_at)
            .join(OutageEvent, OutageEvent.id == Notice.event_id)
            .where(Notice.status == "pending", Notice.due_at <= clock)
            .order_by(Notice.due_at, Notice.id)).all()
        released, withdrawn = [], []
        for notice_id, kind, _, _, status, started in rows:
            reason = _stale(kind, status, as_utc(started), clock)
            (withdrawn.append((notice_id, reason)) if reason else released.append(notice_id))
        for notice_id, reason in withdrawn:
            conn.execute(update(Notice).where(Notice.id == notice_id)
                         .values(status="withdrawn", withdrawn_reason=reason))
        mark_released(conn, released, clock)
    return {"released": len(released), "withdrawn": len(withdrawn)}


def _stale(kind: str, event_status: str, started: dt.datetime | None, clock: dt.datetime
           ) -> str | None:
    """Why a notice coming due no longer applies, or None."""
    if kind in ("planned", "reminder") and (event_status == "closed"
                                            or (started is not None and started <= clock)):
        return "event_started" if event_status != "closed" else "event_closed"
    if kind in ("acknowledged", "etr") and event_status == "closed":
        return "event_closed"
    return None


def mark_released(conn: Connection, ids: list[int], clock: dt.datetime) -> None:
    """Give the notices ``ids`` (in that order) the next cursor values, mark them released
    at ``clock`` and queue them for every active webhook (under :func:`notice_lock`)."""
    if not ids:
        return
    seq = next_seq(conn)
    if conn.dialect.name == "postgresql":  # one statement, not one per notice
        conn.execute(text(
            "UPDATE notices AS n SET seq = v.s, status = 'released', released_at = :at "
            "FROM (SELECT unnest(CAST(:ids AS bigint[])) AS id, "
            "unnest(CAST(:seqs AS bigint[])) AS s) AS v WHERE n.id = v.id"),
            {"ids": ids, "seqs": list(range(seq, seq + len(ids))), "at": clock})
    else:
        numbered = [{"nid": n, "s": seq + i, "at": clock} for i, n in enumerate(ids)]
        conn.execute(RELEASE, numbered)
    queue(conn, seq, seq + len(ids) - 1, clock)


def queue(conn: Connection, first: int, last: int, clock: dt.datetime) -> None:
    """Queue the notices released with ``seq`` from ``first`` to ``last`` for every active
    webhook (one ``INSERT … SELECT`` per webhook)."""
    hooks = conn.execute(select(Webhook.id).where(Webhook.active.is_(True))).scalars().all()
    for hook in hooks:
        conn.execute(insert(NoticeDelivery).from_select(
            ["notice_id", "webhook_id", "status", "attempts", "next_attempt_at"],
            select(Notice.id, literal(hook), literal("pending"), literal(0),
                   literal(clock, DateTime(timezone=True)))
            .where(Notice.seq.between(first, last))))
