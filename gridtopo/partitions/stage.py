"""Where a partitioned run keeps each partition's frames between its steps: Parquet files under
a staging directory, ``STAGE/partition=KEY/NAME.parquet`` (the Hive layout Spark and polars
read as a table partitioned by ``partition``), so a step may run in another process or on
another machine than the one before it (the directory must then be on a shared file system).

>>> import tempfile
>>> ctx = Context(Path(tempfile.mkdtemp()), {"a": "src/a"})
>>> ctx.save("a", {"t": pl.DataFrame({"x": [1]})})
>>> ctx.load("a", "t")["x"].to_list(), ctx.load("a", "missing") is None
([1], True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import polars as pl

Outputs = dict[str, pl.DataFrame]
"""What a step of one partition hands back to the driver: small frames by name."""


@dataclass(frozen=True)
class Context:
    """Everything a step of a partition needs besides its own staged frames: the staging
    directory, each partition's source directory, the profile, and the frames the driver
    broadcasts to every partition (``shared``: small by design — the cross-partition facts)."""

    stage: Path
    sources: Mapping[str, str]
    profile: str | None = None
    shared: Mapping[str, pl.DataFrame] = field(default_factory=dict)

    def with_shared(self, **frames: pl.DataFrame) -> Context:
        """This context broadcasting ``frames`` as well."""
        return replace(self, shared={**self.shared, **frames})

    def path(self, key: str, name: str) -> Path:
        """The Parquet file of frame ``name`` of partition ``key``."""
        return self.stage / f"partition={key}" / f"{name}.parquet"

    def save(self, key: str, frames: Mapping[str, pl.DataFrame]) -> None:
        """Stage ``frames`` of partition ``key``."""
        for name, frame in frames.items():
            target = self.path(key, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(target)

    def load(self, key: str, name: str) -> pl.DataFrame | None:
        """Staged frame ``name`` of partition ``key``, None when the step did not write it."""
        target = self.path(key, name)
        return pl.read_parquet(target) if target.exists() else None


Step = Callable[[str, Context], Outputs]
"""One step of the partitioned pipeline for one partition: reads what earlier steps staged for
it, stages what later steps need and returns the small frames the driver combines."""


class Executor(Protocol):
    """Runs a step for every partition and gathers what each returned, keyed by partition."""

    def map(self, step: Step, keys: list[str], ctx: Context) -> dict[str, Outputs]:
        """``step(key, ctx)`` for each key, anywhere; the results by key."""
        ...


class InProcess:
    """The executor without a cluster: each partition in turn, in this process."""

    def map(self, step: Step, keys: list[str], ctx: Context) -> dict[str, Outputs]:
        """Run ``step`` for each partition here."""
        return {key: step(key, ctx) for key in keys}
