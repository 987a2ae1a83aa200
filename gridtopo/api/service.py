"""What one API worker serves from: the engine, the query index, the active outages and the
keys it has verified — and the hot customer-status answer built from them.

The active outage events are re-read at most once per ``refresh_seconds``, so an event
declared through another worker or the CLI shows within that time. A verified key is
remembered for ``key_cache_seconds``: a revocation takes effect within that time. A key's
``last_used_at`` is written at most once per ``touch_seconds`` per key and worker, by a
background thread, so that no request waits for that write.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from gridtopo.api.keys import (
    AuthenticationError,
    KeyInfo,
    ScopeError,
    authenticate,
    hash_key,
    touch_key,
)
from gridtopo.errors import GridtopoError
from gridtopo.outages.state import OutageState, customer_status
from gridtopo.topology.index import QueryIndex

CACHE_LIMIT = 10_000
"""Keys a worker remembers (verified, or touched) before it forgets them all and starts over."""


def json_body(data: Any) -> bytes:
    """``data`` as the UTF-8 JSON the API answers with (Chinese text as is, dates ISO)."""
    return json.dumps(data, ensure_ascii=False, default=str).encode()


def error_headers(err: GridtopoError) -> list[tuple[bytes, bytes]]:
    """The ASGI headers an answer to ``err`` carries besides its body's."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in err.http_headers.items()]


@dataclass
class Service:
    """The state one API worker shares across requests."""

    engine: Engine
    index: QueryIndex
    refresh_seconds: float = 1.0
    key_cache_seconds: float = 10.0
    touch_seconds: float = 60.0
    _state: OutageState | None = None
    _state_time: float = 0.0
    _keys: dict[str, tuple[KeyInfo, float]] = field(default_factory=dict)
    _touched: dict[str, float] = field(default_factory=dict)
    _writer: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        1, thread_name_prefix="gridtopo-key-use"))

    def state(self, *, fresh: bool = False) -> OutageState:
        """The active outages, re-read when older than ``refresh_seconds`` or ``fresh``."""
        clock = time.monotonic()
        if fresh or self._state is None or clock - self._state_time > self.refresh_seconds:
            self._state = OutageState.load(self.engine, self.index)
            self._state_time = clock
        return self._state

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

    def finish_writes(self) -> None:
        """Wait for the pending ``last_used_at`` writes (at shutdown, and in tests)."""
        self._writer.submit(lambda: None).result()

    def customer_status(self, key: str | None, customer_id: str
                        ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status code, extra headers and JSON body of a customer-status request — the one
        hot route, answered alike by the framework's route and the fast path ahead of it."""
        try:
            self.authorize(key, "outage:read")
            data = customer_status(self.index, self.state(), customer_id)
        except GridtopoError as err:
            return err.http_status, error_headers(err), json_body({"detail": str(err)})
        return 200, [], json_body(data)
