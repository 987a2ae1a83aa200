"""Audit configuration: which rules run, their thresholds, the territory and the clock.

Every rule has a dimension, a default severity and named thresholds (:data:`RULES`). A TOML
file overrides them; an unknown rule, threshold or top-level key is an error that names it,
because a misspelt threshold silently ignored would make a gate meaningless.

.. code-block:: toml

    now = "2024-12-31"                     # the audit's clock (default: the current time)
    territory = [109.6, 20.1, 117.4, 25.6]  # lon_min, lat_min, lon_max, lat_max (Guangdong)
    gx_sample = 200000                      # customer rows GX validates (sampled above this)

    [rules.record_stale]
    max_age_days = 365

    [rules.feeder_no_tie]
    enabled = false

>>> config = load_config(None)
>>> config.threshold("customer_far_from_transformer", "max_m")
1500.0
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridtopo.clock import as_utc
from gridtopo.quality.errors import AuditConfigError

DIMENSIONS = ("completeness", "validity", "uniqueness", "consistency", "accuracy", "timeliness",
              "topology")
"""Finer dimensions of findings. Scorecards fold them into completeness, accuracy (validity,
uniqueness, consistency, accuracy, topology) and timeliness."""

GUANGDONG_BOX = (109.6, 20.1, 117.4, 25.6)
"""Guangdong's bounding box (lon_min, lat_min, lon_max, lat_max), WGS 84, with a small margin."""


@dataclass(frozen=True)
class Rule:
    """A rule's identity: what it checks, its dimension, severity and default thresholds."""

    name: str
    dimension: str
    severity: str
    description: str
    thresholds: dict[str, float] = field(default_factory=dict)


_RULES = (
    Rule("customer_area_unknown", "completeness", "error",
         "the customer's 台区编号 names no transformer area, so it has no chain"),
    Rule("area_unlinked", "completeness", "error",
         "the transformer area has no decided transformer, so its customers have no chain"),
    Rule("transformer_unlinked", "completeness", "error",
         "the transformer has no decided feeder"),
    Rule("feeder_unlinked", "completeness", "error", "the feeder has no decided station"),
    Rule("area_pms_id_missing", "completeness", "warning",
         "the area's PMS设备编码 (cross-system id) is blank"),
    Rule("transformer_area_code_missing", "completeness", "warning",
         "the in-service transformer's 营销台区编号 (cross-system id) is blank"),
    Rule("customer_coordinates_missing", "completeness", "warning",
         "the customer has no coordinates"),
    Rule("coordinates_outside_territory", "validity", "error",
         "coordinates lie outside the service territory"),
    Rule("field_unreadable", "validity", "warning",
         "a source value of the row could not be used, so it was loaded without it"),
    Rule("meter_id_duplicate", "uniqueness", "error",
         "one meter asset number is recorded on several customers"),
    Rule("area_pms_id_conflict", "consistency", "warning",
         "the area's PMS设备编码 names another transformer than the decided one"),
    Rule("transformer_area_code_conflict", "consistency", "warning",
         "the transformer's 营销台区编号 names another area than the decided one"),
    Rule("transformer_feeder_code_unknown", "consistency", "error",
         "the transformer's feeder code is no feeder (it is placed through its node)"),
    Rule("customer_feeder_name_mismatch", "consistency", "warning",
         "the customer's 线路名称 differs from the feeder of its transformer"),
    Rule("area_name_mismatch", "consistency", "warning",
         "the area's name differs from its transformer's name once both are normalised"),
    Rule("area_capacity_mismatch", "consistency", "warning",
         "the area's capacity differs from its transformer's rated capacity",
         {"tolerance": 0.01}),
    Rule("transformer_retired_with_customers", "consistency", "error",
         "the transformer is retired but active customers are linked to it"),
    Rule("customer_offset_gcj02", "accuracy", "warning",
         "the customer's coordinates are offset like GCJ-02 (web-map) coordinates",
         {"min_m": 320.0, "gain": 0.75}),
    Rule("transformer_offset_gcj02", "accuracy", "warning",
         "the transformer's coordinates are offset like GCJ-02 (web-map) coordinates",
         {"min_m": 320.0, "gain": 0.75}),
    Rule("customer_far_from_transformer", "accuracy", "warning",
         "the customer is far from its transformer", {"max_m": 1500.0}),
    Rule("transformer_overloaded", "accuracy", "warning",
         "active customers' contract kVA add up to many times the transformer's rating",
         {"max_ratio": 10.0}),
    Rule("transformer_no_customers", "accuracy", "info",
         "the in-service transformer has no customers"),
    Rule("record_stale", "timeliness", "warning",
         "the record was not updated within the limit", {"max_age_days": 730.0}),
    Rule("transformer_not_energized", "topology", "error",
         "the transformer is not energized in the normal switching state (an island)"),
    Rule("feeder_loop", "topology", "error",
         "closed, in-service edges form a cycle inside a radial feeder"),
    Rule("feeder_no_tie", "topology", "info",
         "the feeder has no normally-open tie to another feeder (no load transfer)"),
    Rule("feeders_paralleled", "topology", "error",
         "closed edges join the feeder's supply to another feeder's (a tie left closed)"),
    Rule("edge_self_loop", "topology", "error", "the edge starts and ends on the same node"),
    Rule("edge_feeder_unknown", "topology", "error",
         "the edge's feeder code names no feeder of the model"),
)
RULES: dict[str, Rule] = {r.name: r for r in _RULES}
"""Every rule the audit knows, by name."""

RULE_KEYS = {"enabled", "severity"}
TOP_KEYS = {"now", "territory", "gx_sample", "rules"}
SEVERITIES = ("info", "warning", "error", "critical")


@dataclass(frozen=True)
class AuditConfig:
    """Resolved configuration of one audit run."""

    now: dt.datetime
    territory: tuple[float, float, float, float] = GUANGDONG_BOX
    gx_sample: int = 200_000
    disabled: frozenset[str] = frozenset()
    severities: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)

    def threshold(self, rule: str, name: str) -> float:
        """The value of threshold ``name`` of ``rule`` (configured, else default)."""
        return self.thresholds.get(rule, {}).get(name, RULES[rule].thresholds[name])

    def severity(self, rule: str) -> str:
        """The severity findings of ``rule`` get."""
        return self.severities.get(rule, RULES[rule].severity)

    def enabled(self, rule: str) -> bool:
        """Whether ``rule`` runs."""
        return rule not in self.disabled

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored with the audit run."""
        return {
            "now": self.now.isoformat(),
            "territory": list(self.territory),
            "gx_sample": self.gx_sample,
            "disabled": sorted(self.disabled),
            "severities": self.severities,
            "thresholds": {r: {k: self.threshold(r, k) for k in RULES[r].thresholds}
                           for r in RULES if RULES[r].thresholds},
        }


def parse_now(value: object, label: str = "now") -> dt.datetime:
    """A date or date-time (TOML value or ISO text) as an aware UTC datetime."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as err:
            raise AuditConfigError(f"{label}: not an ISO date or date-time: {value!r}") from err
    if isinstance(value, dt.datetime):
        return as_utc(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise AuditConfigError(f"{label}: not a date: {value!r}")


Thresholds = dict[str, dict[str, float]]


def _rules(label: str, table: object) -> tuple[set[str], dict[str, str], Thresholds]:
    if not isinstance(table, dict):
        raise AuditConfigError(f"{label}: [rules] must be a table of rule names")
    disabled: set[str] = set()
    severities: dict[str, str] = {}
    thresholds: dict[str, dict[str, float]] = {}
    for name, settings in table.items():
        if name not in RULES:
            raise AuditConfigError(f"{label}: unknown rule {name!r}; known rules: "
                                   f"{', '.join(RULES)}")
        if not isinstance(settings, dict):
            raise AuditConfigError(f"{label}: rules.{name} must be a table")
        known = RULE_KEYS | set(RULES[name].thresholds)
        for key, value in settings.items():
            where = f"{label}: rules.{name}.{key}"
            if key not in known:
                raise AuditConfigError(f"{label}: unknown threshold {key!r} of rule {name!r}; "
                                       f"known: {', '.join(sorted(known))}")
            if key == "enabled":
                if not isinstance(value, bool):
                    raise AuditConfigError(f"{where}: must be true or false")
                if not value:
                    disabled.add(name)
            elif key == "severity":
                if value not in SEVERITIES:
                    raise AuditConfigError(f"{where}: must be one of {', '.join(SEVERITIES)}")
                severities[name] = value
            else:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise AuditConfigError(f"{where}: must be a number, got {value!r}")
                thresholds.setdefault(name, {})[key] = float(value)
    return disabled, severities, thresholds


def load_config(path: Path | None, now: dt.datetime | None = None) -> AuditConfig:
    """Read ``path`` (TOML, or None for the defaults); ``now`` overrides the file's clock."""
    data: dict[str, Any] = {}
    label = str(path)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise AuditConfigError(f"{label}: cannot read: {err.strerror}") from err
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise AuditConfigError(f"{label}: not valid TOML: {err}") from err
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise AuditConfigError(f"{label}: unknown key(s) {', '.join(sorted(unknown))}; "
                               f"known: {', '.join(sorted(TOP_KEYS))}")
    disabled, severities, thresholds = _rules(label, data.get("rules", {}))
    territory = data.get("territory", GUANGDONG_BOX)
    if (not isinstance(territory, list | tuple) or len(territory) != 4
            or not all(isinstance(v, int | float) for v in territory)
            or territory[0] >= territory[2] or territory[1] >= territory[3]):
        raise AuditConfigError(f"{label}: territory must be [lon_min, lat_min, lon_max, "
                               "lat_max]")
    sample = data.get("gx_sample", 200_000)
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
        raise AuditConfigError(f"{label}: gx_sample must be a positive integer")
    clock = now or (parse_now(data["now"], f"{label}: now") if "now" in data
                    else dt.datetime.now(dt.UTC))
    return AuditConfig(
        now=clock, territory=tuple(float(v) for v in territory),  # type: ignore[arg-type]
        gx_sample=sample, disabled=frozenset(disabled), severities=severities,
        thresholds=thresholds,
    )
