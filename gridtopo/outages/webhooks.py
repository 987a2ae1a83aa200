"""Webhooks: released notices pushed to registered receivers, signed, retried, dead-lettered.

A webhook (``webhooks``) is a trusted integration — the SMS gateway, the voice dialler —
that sends the notices on, so it gets them unmasked (the phone number in ``recipient``).
Releasing a notice (:func:`gridtopo.outages.outbox.release_due`) queues one delivery row
(``notice_deliveries``) per active webhook; :func:`deliver_due` sends what is due, per webhook
in batches::

    POST <url>
    Content-Type: application/json
    X-Gridtopo-Delivery: <batch id, new for every attempt>
    X-Gridtopo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

    {"webhook": "<name>", "notices": [<notice_item(...)>, ...]}

A receiver checks the signature with :func:`verify_signature` and must be idempotent on the
notice ``id``: delivery is *at least once* — a batch whose reply is lost (a dropped
connection, a reply slower than the read timeout, a worker killed before it recorded the
reply) is sent again.

Claiming makes concurrent workers safe: one short transaction moves the claimed rows'
``next_attempt_at`` to the end of a lease (``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL; one ``UPDATE … RETURNING`` statement, atomic under SQLite's single writer), so
two workers never send the same batch at once and a worker that dies mid-batch only delays
its batch until the lease ends. Outcomes are written only while the claim still holds (the
lease time is the claim's token). A 2xx marks the batch delivered; anything else — another
status (redirects are not followed), a timeout, a refused or dropped connection — counts an
attempt and retries after an exponential back-off with full jitter (``Retry-After`` honoured
on 429 and 503), until the last attempt makes the deliveries ``dead``: the dead-letter list
(:func:`dead_letters`), sent again by :func:`requeue`.

>>> header = signature_header("whsec_test", b'{"notices": []}', timestamp=1_700_000_000)
>>> header[:16]
't=1700000000,v1='
>>> verify_signature("whsec_test", header, b'{"notices": []}', now=1_700_000_100)
True
>>> verify_signature("whsec_test", header, b'{"notices": [1]}', now=1_700_000_100)
False
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gridtopo.clock import as_utc, utcnow
from gridtopo.db.models import Notice, NoticeDelivery, Webhook
from gridtopo.errors import GridtopoError, InputError, snippet
from gridtopo.outages.outbox import FEED_COLUMNS, notice_item, release_due
from gridtopo.topology.graph import UnknownIdError

SIGNATURE_HEADER = "X-Gridtopo-Signature"
DELIVERY_HEADER = "X-Gridtopo-Delivery"
SECRET_PREFIX = "whsec_"
SHOWN_SECRET_CHARS = 10
"""Characters of a secret :func:`list_webhooks` shows (the ``whsec_`` prefix and four more)."""
ERROR_CHARS = 200
"""Longest ``last_error`` kept."""
DEAD_LIMIT = 1000
log = logging.getLogger(__name__)


class WebhookError(InputError):
    """A webhook cannot be registered so (bad URL or name)."""


class WebhookExistsError(GridtopoError):
    """A webhook with that name is registered already."""

    http_status = 409


class WebhookNotFoundError(UnknownIdError):
    """No webhook with that name."""

    def __init__(self, name: str) -> None:
        super().__init__("webhook", [name])


class NoticeNotFoundError(UnknownIdError):
    """No notice with that id."""

    def __init__(self, notice_id: int) -> None:
        super().__init__("notice", [str(notice_id)])


@dataclass(frozen=True)
class RetryPolicy:
    """How deliveries are batched, timed out and retried.

    The n-th failed attempt waits a random time in [0, min(max_seconds, base_seconds·2ⁿ⁻¹)]
    (exponential back-off with full jitter, so many receivers coming back at once are not all
    retried together); ``Retry-After`` on a 429 or 503 sets the wait instead (at most
    ``max_retry_after``). After ``max_attempts`` failures the deliveries are dead. With
    ``permanent_4xx`` a 4xx other than 408 and 429 (the receiver refuses this very request)
    makes them dead at once. ``lease_seconds`` is how long a claimed batch is left to the
    worker sending it: longer than a request may take (connect + write + read timeouts).

    >>> policy = RetryPolicy()
    >>> policy.ceiling(1), policy.ceiling(3), policy.ceiling(20)
    (1.0, 4.0, 600.0)
    """

    max_attempts: int = 12
    base_seconds: float = 1.0
    max_seconds: float = 600.0
    batch: int = 500
    connect_timeout: float = 2.0
    read_timeout: float = 10.0
    lease_seconds: float = 60.0
    max_retry_after: float = 3600.0
    permanent_4xx: bool = False

    def ceiling(self, attempts: int) -> float:
        """The longest wait after the ``attempts``-th failure."""
        return min(self.max_seconds, self.base_seconds * 2.0 ** min(attempts - 1, 60))

    def backoff(self, attempts: int, rng: random.Random | None = None) -> float:
        """A wait after the ``attempts``-th failure: full jitter below :meth:`ceiling`."""
        return (rng or random).uniform(0, self.ceiling(attempts))

    def timeout(self) -> httpx.Timeout:
        """The explicit request timeouts (connect, and read/write/pool)."""
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)


# --------------------------------------------------------------------------- registering


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host; :class:`WebhookError` otherwise.

    >>> check_url("https://sms.example.cn/gridtopo")
    'https://sms.example.cn/gridtopo'
    >>> check_url("ftp://example.cn/x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridtopo.outages.webhooks.WebhookError: webhook URL must be http:// or https:// ...
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        ok = False
    if not ok or any(ch.isspace() or ord(ch) < 32 for ch in url) or len(url) > 2000:
        raise WebhookError(f"webhook URL must be http:// or https:// with a host, not "
                           f"{snippet(url, 80)}")
    return url


def _describe(row: Any, counts: dict[str, int] | None = None) -> dict[str, Any]:
    m = row._mapping if hasattr(row, "_mapping") else row
    out = {"id": m["id"], "name": m["name"], "url": m["url"],
           "secret_prefix": m["secret"][:SHOWN_SECRET_CHARS] + "…", "active": bool(m["active"]),
           "created_at": _iso(m["created_at"]), "created_by": m["created_by"]}
    if counts is not None:
        out["deliveries"] = {s: counts.get(s, 0) for s in ("pending", "delivered", "dead")}
    return out


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


WEBHOOK_COLUMNS = (Webhook.id, Webhook.name, Webhook.url, Webhook.secret, Webhook.active,
                   Webhook.created_at, Webhook.created_by)


def add_webhook(engine: Engine, name: str, url: str, *, secret: str | None = None,
                created_by: str | None = None) -> dict[str, Any]:
    """Register a webhook; its description with the ``secret`` — the only time it is shown
    (generated when not given). It receives the notices released from now on."""
    name = name.strip()
    if not name or len(name) > 128 or any(ord(ch) < 32 for ch in name):
        raise WebhookError("webhook name must be 1-128 characters without control characters")
    url = check_url(url)
    secret = generate_secret() if secret is None else secret
    if len(secret) < 16 or len(secret) > 128:
        raise WebhookError("webhook secret must be 16-128 characters")
    try:
        with engine.begin() as conn:
            conn.execute(insert(Webhook).values(
                name=name, url=url, secret=secret, active=True, created_at=utcnow(),
                created_by=created_by))
            row = conn.execute(select(*WEBHOOK_COLUMNS).where(Webhook.name == name)).one()
    except IntegrityError as err:
        raise WebhookExistsError(f"a webhook named {name!r} exists already") from err
    return {**_describe(row), "secret": secret}


def list_webhooks(engine: Engine) -> list[dict[str, Any]]:
    """Every webhook (the secret's prefix only) with its deliveries counted by status."""
    with engine.connect() as conn:
        rows = conn.execute(select(*WEBHOOK_COLUMNS).order_by(Webhook.id)).all()
        counted: dict[int, dict[str, int]] = {}
        for hook, status, n in conn.execute(
                select(NoticeDelivery.webhook_id, NoticeDelivery.status, func.count())
                .group_by(NoticeDelivery.webhook_id, NoticeDelivery.status)):
            counted.setdefault(hook, {})[status] = n
    return [_describe(r, counted.get(r.id, {})) for r in rows]


def _webhook_id(conn: Any, name: str) -> int:
    found = conn.execute(select(Webhook.id).where(Webhook.name == name)).scalar()
    if found is None:
        raise WebhookNotFoundError(name)
    return int(found)


def set_active(engine: Engine, name: str, active: bool) -> dict[str, Any]:
    """Enable or disable a webhook. A disabled webhook gets no new deliveries and its pending
    ones wait (they are sent when it is enabled again)."""
    with engine.begin() as conn:
        hook = _webhook_id(conn, name)
        conn.execute(update(Webhook).where(Webhook.id == hook).values(active=active))
        return _describe(conn.execute(select(*WEBHOOK_COLUMNS).where(Webhook.id == hook)).one())


def remove_webhook(engine: Engine, name: str) -> dict[str, Any]:
    """Remove a webhook and its deliveries; ``{"name", "deliveries_removed"}``."""
    with engine.begin() as conn:
        hook = _webhook_id(conn, name)
        gone = conn.execute(delete(NoticeDelivery).where(NoticeDelivery.webhook_id == hook))
        conn.execute(delete(Webhook).where(Webhook.id == hook))
    return {"name": name, "deliveries_removed": gone.rowcount}


# --------------------------------------------------------------------------- signing


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body,
                    hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``X-Gridtopo-Signature`` value of ``body``: ``t=<unix seconds>,v1=<hex HMAC>``."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={_mac(secret, t, body)}"


def verify_signature(secret: str, header: str | None, body: bytes, tolerance: int = 300, *,
                     now: float | None = None) -> bool:
    """Whether ``header`` (an ``X-Gridtopo-Signature`` value) signs ``body`` with ``secret``
    at a time within ``tolerance`` seconds of ``now`` (a replayed old request fails). Any
    of several ``v1=`` values may match (a secret being rotated); a malformed header is
    simply not valid. Compares in constant time.

    >>> verify_signature("whsec_test", "t=abc,v1=00", b"{}")
    False
    """
    if not header:
        return False
    stamp, macs = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            stamp = int(value)
        elif key == "v1" and value:
            macs.append(value)
    if stamp is None or not macs:
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance:
        return False
    expected = _mac(secret, stamp, body)
    return any(hmac.compare_digest(expected, m) for m in macs)


# --------------------------------------------------------------------------- delivering


@dataclass
class _Claim:
    webhook_id: int
    name: str
    url: str
    secret: str
    lease: dt.datetime
    ids: list[int]
    """Delivery ids."""
    attempts: dict[int, int]
    notices: list[int]


def _due_webhooks(engine: Engine, clock: dt.datetime) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(
            select(Webhook.id, Webhook.name, Webhook.url, Webhook.secret)
            .where(Webhook.active.is_(True),
                   Webhook.id.in_(select(NoticeDelivery.webhook_id).where(
                       NoticeDelivery.status == "pending",
                       NoticeDelivery.next_attempt_at <= clock).distinct()))
            .order_by(Webhook.id)).all())


def _claim(engine: Engine, hook: Any, clock: dt.datetime, policy: RetryPolicy) -> _Claim | None:
    """Lease up to ``policy.batch`` due deliveries of ``hook`` in one short transaction."""
    lease = clock + dt.timedelta(seconds=policy.lease_seconds, microseconds=random.randrange(1000))
    due = (select(NoticeDelivery.id).where(NoticeDelivery.webhook_id == hook.id,
                                           NoticeDelivery.status == "pending",
                                           NoticeDelivery.next_attempt_at <= clock)
           .order_by(NoticeDelivery.next_attempt_at, NoticeDelivery.id).limit(policy.batch)
           .with_for_update(skip_locked=True))
    columns = (NoticeDelivery.id, NoticeDelivery.notice_id, NoticeDelivery.attempts)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # lock, then update: an UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP
            # LOCKED) can update more than n rows (the planner may run the subquery again)
            ids = list(conn.execute(due).scalars())
            where = NoticeDelivery.id.in_(ids)
        else:  # one UPDATE statement: atomic under SQLite's single writer
            ids = None
            where = NoticeDelivery.id.in_(due.scalar_subquery())
        rows = [] if ids == [] else conn.execute(
            update(NoticeDelivery)
            .where(where, NoticeDelivery.status == "pending",
                   NoticeDelivery.next_attempt_at <= clock)
            .values(next_attempt_at=lease).returning(*columns)).all()
    rows = sorted(rows, key=lambda r: r.id)
    if not rows:
        return None
    return _Claim(hook.id, hook.name, hook.url, hook.secret, lease, [r.id for r in rows],
                  {r.id: r.attempts for r in rows}, [r.notice_id for r in rows])


def _body(engine: Engine, claim: _Claim) -> bytes:
    with engine.connect() as conn:
        rows = conn.execute(select(*FEED_COLUMNS).where(Notice.id.in_(claim.notices))
                            .order_by(Notice.seq, Notice.id)).all()
    return json.dumps({"webhook": claim.name,
                       "notices": [notice_item(r) for r in rows]},
                      ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class _Outcome:
    ok: bool
    status: int | None
    error: str | None
    retry_after: float | None = None
    permanent: bool = False


def _retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (as_utc(when) - now).total_seconds())


def _send(client: httpx.Client, claim: _Claim, body: bytes, policy: RetryPolicy,
          clock: dt.datetime) -> _Outcome:
    headers = {"Content-Type": "application/json", DELIVERY_HEADER: uuid.uuid4().hex,
               SIGNATURE_HEADER: signature_header(claim.secret, body)}
    try:
        reply = client.post(claim.url, content=body, headers=headers, follow_redirects=False,
                            timeout=policy.timeout())
    except httpx.TimeoutException as err:
        return _Outcome(False, None, f"timeout: {type(err).__name__}")
    except httpx.HTTPError as err:
        return _Outcome(False, None, _short(f"{type(err).__name__}: {err}"))
    code = reply.status_code
    if 200 <= code < 300:
        return _Outcome(True, code, None)
    error = _short(f"HTTP {code} {reply.reason_phrase}".strip())
    if 300 <= code < 400:
        error = _short(f"HTTP {code} redirect not followed")
    wait = _retry_after(reply.headers.get("retry-after"), clock) if code in (429, 503) else None
    permanent = policy.permanent_4xx and 400 <= code < 500 and code not in (408, 429)
    return _Outcome(False, code, error, wait, permanent)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS - 1] + "…"


def _record(engine: Engine, claim: _Claim, outcome: _Outcome, policy: RetryPolicy,
            rng: random.Random | None) -> dict[str, int]:
    """Write a batch's outcome, only for the rows this claim still holds."""
    done = utcnow()
    held = (NoticeDelivery.status == "pending", NoticeDelivery.next_attempt_at == claim.lease)
    with engine.begin() as conn:
        if outcome.ok:
            result = conn.execute(
                update(NoticeDelivery).where(NoticeDelivery.id.in_(claim.ids),
                                             NoticeDelivery.status == "pending")
                .values(status="delivered", delivered_at=done, last_status=outcome.status,
                        last_error=None, attempts=NoticeDelivery.attempts + 1))
            return {"delivered": result.rowcount}
        # all rows of a claim share one attempt count unless requeued apart: group by it
        by_attempts: dict[int, list[int]] = {}
        for delivery, attempts in claim.attempts.items():
            by_attempts.setdefault(attempts + 1, []).append(delivery)
        dead = failed = 0
        for attempts, ids in by_attempts.items():
            dies = outcome.permanent or attempts >= policy.max_attempts
            if dies:
                values: dict[str, Any] = {"status": "dead", "next_attempt_at": done}
            else:
                wait = (min(outcome.retry_after, policy.max_retry_after)
                        if outcome.retry_after is not None else policy.backoff(attempts, rng))
                values = {"next_attempt_at": done + dt.timedelta(seconds=wait)}
            for start in range(0, len(ids), 500):
                n = conn.execute(update(NoticeDelivery)
                                 .where(NoticeDelivery.id.in_(ids[start:start + 500]), *held)
                                 .values(attempts=attempts, last_status=outcome.status,
                                         last_error=outcome.error, **values)).rowcount
                if dies:
                    dead += n
                else:
                    failed += n
        return {"failed": failed, "dead": dead}


def deliver_due(engine: Engine, *, now: dt.datetime | None = None,
                client: httpx.Client | None = None, policy: RetryPolicy | None = None,
                rng: random.Random | None = None,
                stop: threading.Event | None = None) -> dict[str, int]:
    """Send the deliveries due by ``now`` (default: now), per active webhook in batches of at
    most ``policy.batch`` notices, until none is due; a webhook whose batch fails is left
    until its next attempt is due. Counts: ``batches``, ``delivered``, ``failed`` (to be
    retried), ``dead``. ``client`` is reused when given (keep-alive); ``stop`` ends the run
    after the batch under way."""
    policy = policy or RetryPolicy()
    counts = {"batches": 0, "delivered": 0, "failed": 0, "dead": 0}
    own = client is None
    http = client or httpx.Client(follow_redirects=False, timeout=policy.timeout())
    try:
        clock = as_utc(now) if now is not None else utcnow()
        for hook in _due_webhooks(engine, clock):
            while stop is None or not stop.is_set():
                claim = _claim(engine, hook, clock, policy)
                if claim is None:
                    break
                outcome = _send(http, claim, _body(engine, claim), policy, clock)
                for key, n in _record(engine, claim, outcome, policy, rng).items():
                    counts[key] += n
                counts["batches"] += 1
                if not outcome.ok:
                    log.warning("webhook %s: %d notice(s) not delivered: %s", claim.name,
                                len(claim.ids), outcome.error)
                    break
                if now is None:
                    clock = utcnow()
    finally:
        if own:
            http.close()
    return counts


def run_deliveries(engine: Engine, *, seconds: float = 1.0, stop: threading.Event,
                   policy: RetryPolicy | None = None,
                   on_pass: Callable[[dict[str, int]], None] | None = None) -> None:
    """The delivery worker: every ``seconds`` release the notices come due
    (:func:`~gridtopo.outages.outbox.release_due`) and :func:`deliver_due`, until ``stop``
    is set. A failing pass (the database unreachable) is logged and tried again."""
    policy = policy or RetryPolicy()
    with httpx.Client(follow_redirects=False, timeout=policy.timeout()) as client:
        while not stop.is_set():
            try:
                released = release_due(engine)
                counts = deliver_due(engine, client=client, policy=policy, stop=stop)
                if on_pass is not None:
                    on_pass({**released, **counts})
            except Exception:  # a dropped database connection: try again next time
                log.exception("could not deliver the notices")
            stop.wait(seconds)


# --------------------------------------------------------------------------- dead letters


def _delivery_item(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {"id": m["id"], "notice_id": m["notice_id"], "webhook": m["name"],
            "status": m["status"], "attempts": m["attempts"],
            "next_attempt_at": _iso(m["next_attempt_at"]), "last_status": m["last_status"],
            "last_error": m["last_error"], "delivered_at": _iso(m["delivered_at"])}


DELIVERY_COLUMNS = (NoticeDelivery.id, NoticeDelivery.notice_id, Webhook.name,
                    NoticeDelivery.status, NoticeDelivery.attempts,
                    NoticeDelivery.next_attempt_at, NoticeDelivery.last_status,
                    NoticeDelivery.last_error, NoticeDelivery.delivered_at)


def dead_letters(engine: Engine, webhook: str | None = None, limit: int = DEAD_LIMIT
                 ) -> dict[str, Any]:
    """The dead deliveries (of ``webhook``, or all), oldest notice first: ``{"total",
    "items"}`` with at most ``limit`` items."""
    with engine.connect() as conn:
        where = [NoticeDelivery.status == "dead"]
        if webhook is not None:
            where.append(NoticeDelivery.webhook_id == _webhook_id(conn, webhook))
        total = conn.execute(select(func.count()).select_from(NoticeDelivery)
                             .where(*where)).scalar() or 0
        rows = conn.execute(select(*DELIVERY_COLUMNS).join(Webhook).where(*where)
                            .order_by(NoticeDelivery.notice_id, NoticeDelivery.id)
                            .limit(limit)).all()
    return {"total": int(total), "items": [_delivery_item(r) for r in rows]}


def requeue(engine: Engine, *, webhook: str | None = None, ids: Sequence[int] | None = None,
            now: dt.datetime | None = None) -> dict[str, int]:
    """Send dead deliveries again: those of ``webhook`` and/or of the notices ``ids`` (all
    dead ones when neither is given) go back to pending with no attempts, due ``now``;
    ``{"requeued"}``."""
    clock = as_utc(now) if now is not None else utcnow()
    where = [NoticeDelivery.status == "dead"]
    with engine.begin() as conn:
        if webhook is not None:
            where.append(NoticeDelivery.webhook_id == _webhook_id(conn, webhook))
        chunks = [list(ids[i:i + 500]) for i in range(0, len(ids), 500)] if ids else [None]
        total = 0
        for chunk in chunks:
            cond = where if chunk is None else [*where, NoticeDelivery.notice_id.in_(chunk)]
            total += conn.execute(update(NoticeDelivery).where(*cond).values(
                status="pending", attempts=0, next_attempt_at=clock)).rowcount
    return {"requeued": total}


def delivery_status(engine: Engine, notice_id: int) -> dict[str, Any]:
    """A notice's status and its delivery to each webhook (attempts, last reply or error);
    :class:`NoticeNotFoundError` for an unknown id."""
    with engine.connect() as conn:
        notice = conn.execute(select(Notice.id, Notice.seq, Notice.status, Notice.released_at)
                              .where(Notice.id == notice_id)).first()
        if notice is None:
            raise NoticeNotFoundError(notice_id)
        rows = conn.execute(select(*DELIVERY_COLUMNS).join(Webhook)
                            .where(NoticeDelivery.notice_id == notice_id)
                            .order_by(Webhook.name)).all()
    return {"notice_id": notice.id, "seq": notice.seq, "status": notice.status,
            "released_at": _iso(notice.released_at),
            "deliveries": [_delivery_item(r) for r in rows]}
