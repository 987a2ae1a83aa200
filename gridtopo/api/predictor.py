"""The worker's prediction loop: keeps predictions up to date while the API takes signals.

Every ``seconds`` the loop runs :func:`~gridtopo.outages.prediction.update_predictions` on the
worker's current model. It does nothing (one cheap query) while no call or meter event is
unprocessed; with several workers, the updater lock in the database lets one regroup at a
time and the others find nothing left to do — so predictions follow a call within about
``seconds`` plus one regrouping, whichever worker took it.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine

from gridtopo.api.served import ServedModel
from gridtopo.outages.grouping import PredictionRules
from gridtopo.outages.prediction import update_predictions

PREDICT_SECONDS = 0.5
log = logging.getLogger(__name__)


class PredictionLoop:
    """A background thread regrouping signals into predictions (see the module)."""

    def __init__(self, engine: Engine, served: ServedModel, rules: PredictionRules,
                 seconds: float = PREDICT_SECONDS) -> None:
        self.engine, self.served, self.rules, self.seconds = engine, served, rules, seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> dict[str, int]:
        """One update on the current model (none while another worker's runs)."""
        return update_predictions(self.engine, self.served.current.index, self.rules,
                                  wait=False)

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="gridtopo-predict",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread, waiting for an update under way."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        pause = self.seconds
        while not self._stop.wait(pause):
            start = time.monotonic()
            try:
                self.run_once()
            except Exception:  # a dropped connection: try again next time
                log.exception("could not update the predictions")
            # at most half the time regrouping: the worker's requests share its interpreter
            pause = max(self.seconds, time.monotonic() - start)
