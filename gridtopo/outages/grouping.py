"""Which devices the outage signals of one feeder point to: the rules of continuous prediction.

A **signal** is a trouble call about no or partial supply, or a meter's last gasp, at the
position of the customer's transformer in the supply tree. The candidates are the protective
devices (breaker, recloser, fuse) above the signals. A device qualifies when at least
``min_calls`` distinct customers below it signal, or at least ``min_share`` of its customers.
Its evidence score is the log-likelihood ratio of "the device is open, each of its customers
calls with probability ``expected_share``" against "no outage, customers call at the
``background_share`` of stray calls"; when meters report (any last gasp in the episode),
the last gasps add their own ratio with ``ami_share`` — meters below a device that stayed
silent then speak against it. The candidates form a tree; bottom-up, a device is predicted
instead of the best predictions below it when its score is within ``rollup_margin`` of
theirs together. Calls under sibling devices therefore **roll up** to their common
protective parent (it explains all of them, each child only part), a parent with many
silent customers does not win over the child that holds the calls, and two outages side by
side on one feeder stay two predictions.

A device is **skipped** when telemetry reports it closed, and when a customer below it has
signalled supply back (a meter's power-on, a call-back) since the signals started: the
prediction shrinks to the part still out.

>>> rules = PredictionRules()
>>> round(rules.score(10, 100), 1), round(rules.score(10, 1000), 1) < 0
(36.7, True)
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from gridtopo.errors import InputError
from gridtopo.topology.index import PROTECTIVE_KINDS, QueryIndex


@dataclass(frozen=True)
class PredictionRules:
    """The configurable rules (see the module); ``gap_minutes`` without a signal on a feeder
    starts a new outage, signals older than ``max_age_hours`` are no longer grouped; a
    protective device above the best one is predicted instead while its score is within
    ``rollup_margin`` of the best (devices in series, or calls that happen to come from one
    branch, do not pin the prediction below the device that opened)."""

    min_calls: int = 2
    min_share: float = 0.3
    expected_share: float = 0.1
    background_share: float = 0.001
    gap_minutes: float = 30.0
    max_age_hours: float = 24.0
    rollup_margin: float = 4.0
    ami_share: float = 0.5

    def __post_init__(self) -> None:
        if self.min_calls < 1:
            raise InputError(f"min_calls must be at least 1, not {self.min_calls}")
        if not 0 < self.background_share < self.expected_share < 1:
            raise InputError("the shares must satisfy 0 < background_share < expected_share < 1")
        if not 0 < self.min_share <= 1 or self.gap_minutes <= 0 or self.max_age_hours <= 0:
            raise InputError("min_share must be in (0, 1], gap_minutes and max_age_hours "
                             "positive")

    def score(self, signals: int, customers: int) -> float:
        """Evidence that a device with ``customers`` below, ``signals`` of them signalling,
        is open (log-likelihood ratio; positive: more likely open than not)."""
        p, q = self.expected_share, self.background_share
        silent = max(customers - signals, 0)
        return signals * math.log(p / q) + silent * math.log((1 - p) / (1 - q))

    def ami_score(self, gasps: int, customers: int) -> float:
        """The evidence of last gasps: when AMI reports, an outage silences most meters
        (``ami_share``), so meters below a device that sent none speak against it."""
        p, q = self.ami_share, self.background_share
        silent = max(customers - gasps, 0)
        return gasps * math.log(p / q) + silent * math.log((1 - p) / (1 - q))

    def qualifies(self, signals: int, customers: int) -> bool:
        """The N-calls or share rule."""
        return signals >= self.min_calls or (customers > 0 and
                                             signals / customers >= self.min_share)


@dataclass(frozen=True)
class Signal:
    """One signal: ``key`` distinct per customer (or per call without one), the index
    ``position`` of its transformer, and the row it came from."""

    key: str
    position: int
    row: tuple[str, str]
    """(``"call"``, call id) or (``"meter"``, meter event id)."""

    @property
    def meter(self) -> bool:
        """Whether it is a meter's last gasp."""
        return self.row[0] == "meter"


@dataclass
class Group:
    """A predicted device and the signals it explains."""

    edge: int
    device: str
    kind: str
    customers_below: int
    score: float
    signals: list[Signal] = field(default_factory=list)


_PATHS: dict[int, dict[int, list[int]]] = {}
"""Protective paths per index (by ``id``, dropped when the index is collected) and position:
a storm regroups the same transformers' signals twice a second."""


def protective_above(index: QueryIndex, position: int) -> list[int]:
    """Protective device edges above ``position``, nearest first."""
    paths = _PATHS.get(id(index))
    if paths is None:
        paths = _PATHS[id(index)] = {}
        weakref.finalize(index, _PATHS.pop, id(index), None)
    path = paths.get(position)
    if path is None:
        path = paths[position] = [e for e in index.path_to_root(int(index.order[position]))
                                  if index.kind_name(e) in PROTECTIVE_KINDS]
    return path


def device_range(index: QueryIndex, edge: int) -> tuple[int, int]:
    """The positions ``[start, end)`` below a tree edge."""
    child = int(index.tree_child[edge])
    return int(index.pos[child]), int(index.end[child])


def group_signals(index: QueryIndex, signals: Iterable[Signal], rules: PredictionRules, *,
                  skipped: Iterable[int] = (), restored: Iterable[int] = ()) -> list[Group]:
    """The predicted devices for ``signals`` (one feeder, one time episode), best first;
    ``skipped`` are device edges telemetry reports closed, ``restored`` positions where supply
    was signalled back — no device above them is predicted.

    The candidates form a tree (each under the next protective device above it). Bottom-up,
    a device is predicted instead of the best predictions below it when its own score is
    within ``rollup_margin`` of theirs together: one outage explaining calls from several
    branches rolls up, two outages side by side stay two."""
    pending = list(signals)
    skip = set(skipped)
    back = np.sort(np.fromiter(restored, dtype=np.int64))
    ami = any(s.meter for s in pending)
    parent: dict[int, int] = {}
    calls: dict[int, set[str]] = {}
    gasps: dict[int, set[str]] = {}
    keys: dict[int, set[str]] = {}
    for s in pending:
        path = protective_above(index, s.position)
        for i, edge in enumerate(path):
            keys.setdefault(edge, set()).add(s.key)
            (gasps if s.meter else calls).setdefault(edge, set()).add(s.key)
            if i + 1 < len(path):
                parent[edge] = path[i + 1]
    ranges = {e: device_range(index, e) for e in keys}
    own: dict[int, tuple[float, int]] = {}
    for edge, (start, end) in ranges.items():
        if edge in skip or (back.size and
                            np.searchsorted(back, start) < np.searchsorted(back, end)):
            continue
        customers = max(int(index.cum_customers[end] - index.cum_customers[start]),
                        len(keys[edge]))
        if not rules.qualifies(len(keys[edge]), customers):
            continue
        score = rules.score(len(calls.get(edge, ())), customers) if not ami else \
            rules.score(len(calls.get(edge, set()) - gasps.get(edge, set())), customers) + \
            rules.ami_score(len(gasps.get(edge, ())), customers)
        if score > 0:
            own[edge] = (score, customers)
    best: dict[int, tuple[float, list[int]]] = {}
    for edge in sorted(ranges, key=lambda e: ranges[e][1] - ranges[e][0]):
        below = best.pop(edge, (0.0, []))
        mine = own.get(edge)
        chosen = (mine[0], [edge]) if mine and mine[0] >= below[0] - rules.rollup_margin \
            else below
        up = parent.get(edge)
        if up is None:
            best[edge] = chosen
        else:
            total, devices = best.get(up, (0.0, []))
            best[up] = (total + chosen[0], devices + chosen[1])
    groups = []
    for edge in (e for _, devices in best.values() for e in devices):
        start, end = ranges[edge]
        taken = [s for s in pending if start <= s.position < end]
        groups.append(Group(edge, index.edge_ids[edge].decode(), index.kind_name(edge),
                            own[edge][1], round(own[edge][0], 3), taken))
    return sorted(groups, key=lambda g: -g.score)
