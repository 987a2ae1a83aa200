"""The worker's delivery loop: pushes released notices to the webhooks while the API runs.

Every ``seconds`` the loop releases the notices come due and sends the deliveries due
(:func:`~gridtopo.outages.webhooks.run_deliveries`). With several workers — or a
``gridtopo notices deliver`` beside them — each claims its batches under a lease, so a batch
is sent by one of them at a time; nothing is due, the loop costs two cheap queries.

>>> loop = DeliveryLoop(engine, seconds=0.05)
>>> loop.start(); loop.stop()
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from gridtopo.outages.webhooks import RetryPolicy, run_deliveries

DELIVER_SECONDS = 1.0


class DeliveryLoop:
    """A background thread delivering notices to the webhooks (see the module)."""

    def __init__(self, engine: Engine, seconds: float = DELIVER_SECONDS,
                 policy: RetryPolicy | None = None) -> None:
        self.engine, self.seconds, self.policy = engine, seconds, policy or RetryPolicy()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once; not at all when ``seconds`` is 0)."""
        if self._thread is None and self.seconds > 0:
            self._stop.clear()
            self._thread = threading.Thread(
                target=run_deliveries, name="gridtopo-deliver", daemon=True,
                kwargs={"engine": self.engine, "seconds": self.seconds, "stop": self._stop,
                        "policy": self.policy})
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread, waiting for the batch under way (its request's timeout at most)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()
