"""The API's limits: request bodies, idle connections, and how much personal data one API
key may read (:class:`PersonalDataLimit`).

A body may hold :data:`MAX_BODY_BYTES` and must arrive within :data:`BODY_TIMEOUT_SECONDS`
(:class:`~gridtopo.api.middleware.BodyLimit`); uvicorn closes a connection idle for
:data:`KEEP_ALIVE_SECONDS` between requests.

An answer that reveals customers' names, phones and addresses unmasked (a key with
``personal:read`` listing customers) counts its customers against the key; over
``per_minute`` customers in any 60 seconds the answer is refused with 429 and
``Retry-After`` (the seconds until enough of the window has passed). The default,
:data:`PERSONAL_PER_MINUTE`, lets a notifier fetch the contacts of a large planned outage in a
minute or two, while a harvest of a city's 50,000 customers takes most of an hour and stands
in the access log. Masked answers do not count: they are designed not to disclose.

The limit holds for the server as a whole, whatever its number of workers: a worker counts its
own reads in memory and the other workers' from the access log (each row names its worker),
which they write in the background within milliseconds.

>>> limit = PersonalDataLimit(1000)
>>> limit.take("95598", 600, now=0.0); limit.take("95598", 300, now=1.0)
>>> try:
...     limit.take("95598", 101, now=2.0, elsewhere=[(1.5, 100)])
... except PersonalDataLimitError as err:
...     err.http_status, err.retry_after, str(err)[:55]
(429, 58, 'API key 95598 read the personal data of 1,000 customers')
>>> limit.take("95598", 101, now=60.5, elsewhere=[(1.5, 100)])
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable

from gridtopo.api.errors import RetryLaterError

MAX_BODY_BYTES = 1 << 20
"""The largest request body accepted (1 MiB: about 65,000 thirteen-digit customer ids)."""
BODY_TIMEOUT_SECONDS = 10.0
"""How long a request's body may take to arrive in full."""
KEEP_ALIVE_SECONDS = 5
"""How long uvicorn keeps an idle connection open between requests."""
PERSONAL_PER_MINUTE = 1000
"""Default: customers whose personal data one key may read per minute."""
LIMIT_ENV = "GRIDTOPO_PERSONAL_LIMIT"
"""The environment variable giving the personal-data limit to ``gridtopo serve``."""
WINDOW_SECONDS = 60.0
"""The window of the limit."""


class PersonalDataLimitError(RetryLaterError):
    """The key read as much personal data as it may for now (429, ``Retry-After``)."""

    http_status = 429


class PersonalDataLimit:
    """A sliding one-minute window of personal-data reads per key (thread-safe); times are
    seconds since the epoch, as the access log records them."""

    def __init__(self, per_minute: int = PERSONAL_PER_MINUTE) -> None:
        if per_minute < 1:
            raise ValueError(f"the personal-data limit must be at least 1, got {per_minute}")
        self.per_minute = per_minute
        self._reads: dict[str, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def take(self, key_name: str, customers: int, *, now: float | None = None,
             elsewhere: Iterable[tuple[float, int]] = ()) -> None:
        """Count ``customers`` against ``key_name``, on top of this worker's reads and
        ``elsewhere`` (other workers' ``(time, customers)``); :class:`PersonalDataLimitError`,
        with nothing counted, when that exceeds the limit within the last minute."""
        clock = time.time() if now is None else now
        start = clock - WINDOW_SECONDS
        with self._lock:
            own = self._reads.setdefault(key_name, deque())
            while own and own[0][0] <= start:
                own.popleft()
            window = sorted([*own, *((at, n) for at, n in elsewhere if at > start)])
            used = sum(n for _, n in window)
            if used + customers > self.per_minute:
                wait = _wait(window, used + customers - self.per_minute, clock)
                raise PersonalDataLimitError(
                    f"{self._refusal(key_name, used, customers)}: retry in {wait} s", wait)
            own.append((clock, customers))

    def _refusal(self, key_name: str, used: int, customers: int) -> str:
        if customers > self.per_minute:
            return (f"one answer with the personal data of {customers:,} customers exceeds "
                    f"the limit of {self.per_minute:,} per minute of API key {key_name}: ask "
                    "for smaller pages (limit)")
        return (f"API key {key_name} read the personal data of {used:,} customers in the "
                f"last minute (limit {self.per_minute:,} per minute)")


def _wait(window: list[tuple[float, int]], excess: int, clock: float) -> int:
    """Whole seconds until the oldest reads of ``window`` totalling ``excess`` customers
    have left it (a whole window when they never can)."""
    freed = 0
    for at, n in window:
        freed += n
        if freed >= excess:
            return max(1, math.ceil(at + WINDOW_SECONDS - clock))
    return math.ceil(WINDOW_SECONDS)
