"""What one API worker serves from: the engine, the served model, the active outages, the keys
it has verified and the personal data it has revealed — and the hot customer-status answer.

The model is a :class:`~gridtopo.api.served.ServedModel`: a request takes its snapshot once
(:meth:`Service.model`) and answers from it; a read of live rows goes through
:meth:`~gridtopo.api.served.ServedModel.consistent`. The active outage events are re-read at
most once per ``refresh_seconds`` (and at once for a new snapshot), so an event declared
through another worker or the CLI shows within that time. A verified key is remembered for
``key_cache_seconds``: a revocation takes effect within that time. A key's ``last_used_at``
is written at most once per ``touch_seconds`` per key and worker, and every personal-data
answer is logged (:mod:`gridtopo.api.access_log`), by a background thread, so that no request
waits for those writes. Personal data is metered per key by a
:class:`~gridtopo.api.limits.PersonalDataLimit`.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from gridtopo.api.access_log import Access, recent_reads, record_access
from gridtopo.api.auth import presented_key
from gridtopo.api.keys import (
    AuthenticationError,
    KeyInfo,
    ScopeError,
    authenticate,
    hash_key,
    touch_key,
)
from gridtopo.api.limits import WINDOW_SECONDS, PersonalDataLimit
from gridtopo.api.problems import PROBLEM_MEDIA_TYPE, error_problem, problem
from gridtopo.api.schemas import check_id, json_body
from gridtopo.api.served import ModelSnapshot, ServedModel
from gridtopo.errors import GridtopoError
from gridtopo.outages.state import OutageState, customer_status

CACHE_LIMIT = 10_000
"""Keys a worker remembers (verified, or touched) before it forgets them all and starts over."""
RUN_HEADER = "X-Gridtopo-Run"
"""The response header naming the ingest run an answer was computed from."""
Headers = list[tuple[bytes, bytes]]


def run_header(model: ModelSnapshot) -> dict[str, str]:
    """The header naming ``model``'s run, for an answer computed from it."""
    return {RUN_HEADER: str(model.run)}


@dataclass
class Service:
    """The state one API worker shares across requests."""

    engine: Engine
    served: ServedModel
    refresh_seconds: float = 1.0
    key_cache_seconds: float = 10.0
    touch_seconds: float = 60.0
    personal_limit: PersonalDataLimit = field(default_factory=PersonalDataLimit)
    _state: tuple[ModelSnapshot, OutageState, float] | None = None
    _keys: dict[str, tuple[KeyInfo, float]] = field(default_factory=dict)
    _touched: dict[str, float] = field(default_factory=dict)
    _writer: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        1, thread_name_prefix="gridtopo-api-log"))

    def model(self) -> ModelSnapshot:
        """The snapshot to answer the current request from (take it once per request)."""
        return self.served.current

    def state(self, model: ModelSnapshot, *, fresh: bool = False) -> OutageState:
        """The active outages over ``model``'s index, re-read when older than
        ``refresh_seconds``, of another snapshot, or ``fresh``."""
        clock = time.monotonic()
        cached = self._state
        if (fresh or cached is None or cached[0] is not model
                or clock - cached[2] > self.refresh_seconds):
            state = OutageState.load(self.engine, model.index)
            self._state = (model, state, clock)
            return state
        return cached[1]

    def authorize(self, key: str | None, scope: str) -> KeyInfo:
        """``key``'s description if it holds ``scope``; :class:`AuthenticationError` (401) or
        :class:`ScopeError` (403) otherwise."""
        digest = hash_key(key) if key else ""
        cached = self._keys.get(digest)
        clock = time.monotonic()
        if cached is None or clock - cached[1] > self.key_cache_seconds:
            info = authenticate(self.engine, key)
            if len(self._keys) > CACHE_LIMIT:
                self._keys.clear()
            self._keys[digest] = (info, clock)
        else:
            info = cached[0]
        if info.expires_at is not None and info.expires_at <= dt.datetime.now(dt.UTC):
            self._keys.pop(digest, None)
            raise AuthenticationError("API key expired")
        if not info.allows(scope):
            raise ScopeError(f"this API key lacks the {scope} scope")
        self._note_use(digest, clock)
        return info

    def _note_use(self, digest: str, clock: float) -> None:
        """Have the background writer set the key's ``last_used_at``, at most once per
        ``touch_seconds`` per key: the hot path neither writes nor waits."""
        last = self._touched.get(digest)
        if last is not None and clock - last < self.touch_seconds:
            return
        if len(self._touched) > CACHE_LIMIT:
            self._touched.clear()
        self._touched[digest] = clock
        self._writer.submit(touch_key, self.engine, digest, dt.datetime.now(dt.UTC))

    def reveal(self, key: KeyInfo, route: str, path: str, page: dict[str, Any]) -> None:
        """Before answering a customer page (:func:`~gridtopo.outages.report.customer_page`)
        that shows personal data unmasked: count it against the key's limit (429 when over,
        with nothing revealed) and have the background writer log it."""
        if page["personal_data"] != "full" or not page["items"]:
            return
        ids = [item["customer_id"] for item in page["items"]]
        now = dt.datetime.now(dt.UTC)
        elsewhere = recent_reads(self.engine, key.name, now - dt.timedelta(seconds=WINDOW_SECONDS))
        self.personal_limit.take(key.name, len(ids), now=now.timestamp(), elsewhere=elsewhere)
        self._writer.submit(record_access, self.engine,
                            Access(key.name, route, path, ids, read_at=now))

    def finish_writes(self) -> None:
        """Wait for the pending background writes (at shutdown, and in tests)."""
        self._writer.submit(lambda: None).result()

    def customer_status(self, headers: Headers, customer_id: str) -> tuple[int, Headers, bytes]:
        """Status code, extra headers and JSON body of a customer-status request — the one
        hot route, answered alike by the framework's route and the fast path ahead of it:
        the key first (400, 401, 403), then the id (422), then the answer (200, 404)."""
        try:
            self.authorize(presented_key(headers), "outage:read")
            customer_id = check_id(customer_id)
        except GridtopoError as err:
            document, extra = error_problem(err)
            return err.http_status, _problem_headers(extra), json_body(document)
        except ValueError as err:
            document = problem(422, f"path.customer_id: {err}", kind="invalid-request",
                               errors=[{"loc": ["path", "customer_id"], "msg": str(err)}])
            return 422, _problem_headers({}), json_body(document)
        model = self.model()
        try:
            data = customer_status(model.index, self.state(model), customer_id)
        except GridtopoError as err:
            document, extra = error_problem(err)
            return err.http_status, _problem_headers({**extra, **run_header(model)}), \
                json_body(document)
        return 200, _ascii_headers({"content-type": "application/json", **run_header(model)}), \
            json_body(data)


def _ascii_headers(headers: dict[str, str]) -> Headers:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def _problem_headers(extra: dict[str, str]) -> Headers:
    return _ascii_headers({"content-type": PROBLEM_MEDIA_TYPE, **extra})
