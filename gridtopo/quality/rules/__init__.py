"""The audit's rules, one module per dimension, each rule one columnar polars expression over
the stored model (no per-row Python).

=============================  ===============================================================
module                         dimension of its rules (:data:`gridtopo.quality.config.RULES`)
=============================  ===============================================================
:mod:`.completeness`           completeness: the 站线变户 chain and cross-system ids
:mod:`.validity`               validity and uniqueness
:mod:`.consistency`            consistency: ids, names, capacities and statuses that disagree
:mod:`.accuracy`               accuracy: implausible positions and loads
:mod:`.timeliness`             timeliness: stale records
:mod:`.connectivity`           topology: islands, loops and missing ties of the network
=============================  ===============================================================

A record rule takes the :class:`~gridtopo.quality.facts.Facts`; a topology rule also the
equipment graph. Both return findings shaped as :data:`FINDING_SCHEMA`. Rules are registered
in one place, :data:`gridtopo.quality.config.RULES` (name, dimension, severity, thresholds): the
function of a rule is the function of that name in its dimension's module.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import networkx as nx
import polars as pl

from gridtopo.quality.config import RULES
from gridtopo.quality.facts import Facts
from gridtopo.quality.rules import (
    accuracy,
    completeness,
    connectivity,
    consistency,
    timeliness,
    validity,
)
from gridtopo.quality.rules._common import FINDING_SCHEMA

RecordRule = Callable[[Facts], pl.DataFrame]
TopologyRule = Callable[[Facts, nx.MultiGraph], pl.DataFrame]

DIMENSION_MODULES: dict[str, ModuleType] = {
    "completeness": completeness, "validity": validity, "uniqueness": validity,
    "consistency": consistency, "accuracy": accuracy, "timeliness": timeliness,
    "topology": connectivity,
}
"""Dimension → the module holding its rules."""

RECORD_RULES: dict[str, RecordRule] = {
    name: getattr(DIMENSION_MODULES[rule.dimension], name)
    for name, rule in RULES.items() if rule.dimension != "topology"
}
"""The record rules by name, in the order of :data:`~gridtopo.quality.config.RULES`."""

TOPOLOGY_RULES: dict[str, TopologyRule] = {
    name: getattr(connectivity, name) for name, rule in RULES.items()
    if rule.dimension == "topology"
}
"""The topology rules by name; each takes the facts and the equipment graph."""

__all__ = ["DIMENSION_MODULES", "FINDING_SCHEMA", "RECORD_RULES", "TOPOLOGY_RULES",
           "RecordRule", "TopologyRule"]
