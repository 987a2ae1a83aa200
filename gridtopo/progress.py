"""Progress bars for long steps: rich on an interactive terminal, silent otherwise.

Library functions take an optional ``progress(stage, done, total)`` callback and know nothing of
terminals; the CLI passes :meth:`Progress.update` when stderr is a terminal and ``--json`` is off.

>>> with progress_reporter(enabled=False) as progress:
...     progress is None
True
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress


class Progress:
    """One bar per stage, created on the stage's first update."""

    def __init__(self, bars: RichProgress) -> None:
        self._bars = bars
        self._tasks: dict[str, TaskID] = {}

    def update(self, stage: str, done: int, total: int) -> None:
        """Report that ``done`` of ``total`` units of ``stage`` are finished."""
        task = self._tasks.get(stage)
        if task is None:
            task = self._tasks[stage] = self._bars.add_task(stage, total=total)
        self._bars.update(task, completed=done, total=total)


@contextmanager
def progress_reporter(enabled: bool = True) -> Iterator[Progress | None]:
    """Yield a :class:`Progress` when enabled and stderr is a terminal, else ``None``."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    bars = RichProgress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    with bars:
        yield Progress(bars)
