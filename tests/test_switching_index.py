"""A switching change applied to the query index (``topology/index/update.switched``) gives,
array for array, the index a fresh build of the changed model gives: random sequences of
ties closed, sections opened, devices and lines taken out of service and put back, on the
synthetic model and on the ten-feeder one (several sources, meshes, islands)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from gridtopo.db import open_engine
from gridtopo.db.models import SWITCHING_KINDS
from gridtopo.db.read.frames import read_frame
from gridtopo.db.read.network import read_network
from gridtopo.topology.index import CUSTOMER_SCHEMA, CUSTOMER_SQL, QueryIndex, index_from_frames
from gridtopo.topology.index.store import ARRAYS
from gridtopo.topology.index.update import switched

COUNTS = ("energized_nodes", "chords", "multi_fed_pieces")
STATIONS_CUSTOMERS = 40_000
"""Enough for a few stations, so that ties join feeders of different sources."""


@pytest.fixture(scope="session")
def stations_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite model of some 33 feeders on 3 stations, built once per session."""
    from gridtopo.db import upgrade
    from gridtopo.pipeline import ingest
    from gridtopo.synthetic import generate

    root = tmp_path_factory.mktemp("stations")
    generate(root / "sources", STATIONS_CUSTOMERS, seed=3)
    engine = open_engine(f"sqlite:///{root / 'gridtopo.db'}", create=True)
    upgrade(engine)
    ingest(engine, root / "sources")
    engine.dispose()
    return root / "gridtopo.db"


def _frames(path: Path) -> tuple[pl.DataFrame, ...]:
    engine = open_engine(f"sqlite:///{path}")
    try:
        edges, sources, transformers = read_network(engine)
        with engine.connect() as conn:
            customers = read_frame(conn, CUSTOMER_SQL, CUSTOMER_SCHEMA)
    finally:
        engine.dispose()
    return edges, sources, transformers, customers


def same_arrays(got: QueryIndex, want: QueryIndex) -> None:
    """Assert that two indexes hold the same arrays (values and types) and forest counts."""
    assert got.n_energized == want.n_energized
    for name in ARRAYS:
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype, name
        assert np.array_equal(a, b), name
    assert {k: got.meta[k] for k in COUNTS} == {k: want.meta[k] for k in COUNTS}


def _random_states(edges: pl.DataFrame, rng: np.random.Generator, k: int
                   ) -> dict[str, tuple[bool, bool]]:
    """``k`` random devices with a new state: a switching device's normal_open flipped (a tie
    closed, a section opened) or its service flipped, a line's or cable's service flipped."""
    picked = edges[rng.choice(edges.height, size=k, replace=False).tolist()]
    states = {}
    for edge_id, kind, normal_open, in_service in picked.select(
            "edge_id", "kind", "normal_open", "in_service").iter_rows():
        switching = kind in SWITCHING_KINDS
        if switching and rng.random() < 0.7:
            states[edge_id] = (not normal_open, bool(in_service))
        else:
            states[edge_id] = (bool(normal_open) and switching, not in_service)
    return states


def _apply(edges: pl.DataFrame, states: dict[str, tuple[bool, bool]]) -> pl.DataFrame:
    ids = list(states)
    return edges.with_columns(
        pl.col("edge_id").replace_strict(ids, [int(s[0]) for s in states.values()],
                                         default=pl.col("normal_open"), return_dtype=pl.Int8)
        .alias("normal_open"),
        pl.col("edge_id").replace_strict(ids, [int(s[1]) for s in states.values()],
                                         default=pl.col("in_service"), return_dtype=pl.Int8)
        .alias("in_service"))


@pytest.mark.parametrize("template", ["stations_model", "sqlite_feeders_template"])
def test_switched_index_equals_a_fresh_build(template: str,
                                             request: pytest.FixtureRequest) -> None:
    edges, sources, transformers, customers = _frames(request.getfixturevalue(template))
    index = index_from_frames(edges, sources, transformers, customers)
    rng = np.random.default_rng(14)
    ties = edges.filter(pl.col("normal_open") == 1)
    assert ties.height >= 5
    energized = {index.n_energized}
    for step in range(16):
        k = 1 if step % 3 == 0 else int(rng.integers(2, 6))
        states = _random_states(ties if step % 2 else edges, rng, k)
        edges = _apply(edges, states)
        index = switched(index, states)
        same_arrays(index, index_from_frames(edges, sources, transformers, customers))
        energized.add(index.n_energized)
    assert len(energized) > 3  # the changes did cut off and re-energize parts


def test_a_change_to_the_current_state_changes_nothing(
        sqlite_model_template: Path) -> None:
    edges, sources, transformers, customers = _frames(sqlite_model_template)
    index = index_from_frames(edges, sources, transformers, customers)
    first = edges.row(0, named=True)
    same = switched(index, {first["edge_id"]: (bool(first["normal_open"]),
                                               bool(first["in_service"]))})
    same_arrays(same, index)
