"""Progress reporting: library functions take an optional callback and know nothing of terminals.

A long step calls ``progress(stage, done, total)`` as it goes; the command line passes one that
draws bars (:func:`gridtopo.cli.output.command_progress`), tests may pass a list's append.

>>> seen: list[tuple[str, int, int]] = []
>>> report: ProgressCallback = lambda stage, done, total: seen.append((stage, done, total))
>>> report("customers", 10, 20); seen
[('customers', 10, 20)]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

ProgressCallback = Callable[[str, int, int], None]


PAUSE_ENV = "GRIDTOPO_TEST_PAUSE_AT"
"""Test hook: ``GRIDTOPO_TEST_PAUSE_AT=read|load|commit`` makes ``gridtopo ingest`` say
``paused at PHASE`` on stderr and sleep at that point, so that a test can kill a real run
exactly there. Unset (always, outside tests), :func:`pause_point` does nothing."""


def pause_point(phase: str) -> None:
    """Sleep at ``phase`` when :data:`PAUSE_ENV` names it (see there); otherwise nothing."""
    if os.environ.get(PAUSE_ENV) == phase:
        print(f"gridtopo: paused at {phase}", file=sys.stderr, flush=True)
        time.sleep(3600)
