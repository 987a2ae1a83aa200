"""Progress reporting: library functions take an optional callback and know nothing of terminals.

A long step calls ``progress(stage, done, total)`` as it goes; the command line passes one that
draws bars (:func:`gridtopo.cli.output.command_progress`), tests may pass a list's append.

>>> seen: list[tuple[str, int, int]] = []
>>> report: ProgressCallback = lambda stage, done, total: seen.append((stage, done, total))
>>> report("customers", 10, 20); seen
[('customers', 10, 20)]
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, int, int], None]
