"""The rule registry: every rule of ``config.RULES`` is a function in its dimension's module,
no rule function is left unregistered, and the README's table lists each rule under its
dimension."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from gridtopo.quality.config import RULES
from gridtopo.quality.rules import DIMENSION_MODULES, RECORD_RULES, TOPOLOGY_RULES


def test_each_rule_is_defined_in_its_dimensions_module() -> None:
    functions = {**RECORD_RULES, **TOPOLOGY_RULES}
    misplaced = {name: fn.__module__ for name, fn in functions.items()
                 if fn.__module__ != DIMENSION_MODULES[RULES[name].dimension].__name__}
    assert not misplaced, misplaced


def test_every_function_of_the_facts_in_a_rule_module_is_registered() -> None:
    """A public function whose first parameter is the facts is a rule: unregistered, it never
    runs (private helpers of a rule may take the facts too)."""
    unregistered = []
    for module in set(DIMENSION_MODULES.values()):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            first = next(iter(inspect.signature(fn).parameters.values()), None)
            if (fn.__module__ == module.__name__ and first is not None
                    and not name.startswith("_")
                    and first.annotation == "Facts" and name not in RULES):
                unregistered.append(f"{module.__name__}.{name}")
    assert not unregistered


def test_readme_table_lists_every_rule_under_its_dimension() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("| dimension | rules |")[1].split("\n\n")[0]
    rows = [line.strip("|").split("|") for line in table.strip().splitlines()[1:]]
    listed = {tuple(d.strip() for d in dimensions.split(",")):
              set(re.findall(r"`([a-z0-9_]+)`", rules)) & set(RULES)
              for dimensions, rules in rows}
    for dimensions, names in listed.items():
        assert names == {n for n, r in RULES.items() if r.dimension in dimensions}, dimensions
    assert {d for group in listed for d in group} == {r.dimension for r in RULES.values()}
