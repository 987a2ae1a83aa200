"""One audit run: read the model, run the rules and the GX suites, store findings and scores.

The run is recorded in ``audit_runs`` first and marked ``succeeded`` (with its scores and the
GX summary) or ``failed``; findings and scorecards are written in one transaction, so a failed
run changes no stored finding.

>>> result = run_audit(engine, load_config(None, now=parse_now("2024-12-31")))  # doctest: +SKIP
>>> result.scores["province"]["overall"]  # doctest: +SKIP
0.9712
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, insert, update

from gridtopo.clock import utcnow
from gridtopo.db.bulk import read_frame
from gridtopo.db.models import AuditRun
from gridtopo.quality.config import RULES, AuditConfig
from gridtopo.quality.findings import fingerprint, store_findings, waived_fingerprints
from gridtopo.quality.model import load_model
from gridtopo.quality.network import TOPOLOGY_RULES
from gridtopo.quality.rules import FINDING_SCHEMA, RECORD_RULES, Facts
from gridtopo.quality.scores import scorecards, store_scorecards
from gridtopo.quality.suites import run_suites
from gridtopo.quality.unreadable import FIELD_RULES
from gridtopo.topology.graph import build_graph


@dataclass
class AuditResult:
    """What one audit found and scored; ``findings`` carry their stored ``id`` and ``status``."""

    run_id: int
    findings: pl.DataFrame
    scorecards: pl.DataFrame
    scores: dict[str, Any]
    changes: dict[str, int]
    gx: dict[str, Any] | None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the frames)."""
        by_rule = self.findings.group_by("rule", "severity").len().sort("rule")
        return {
            "audit_run_id": self.run_id, "scores": self.scores,
            "findings": {"total": self.findings.height,
                         "by_rule": {r: {"severity": s, "count": n}
                                     for r, s, n in by_rule.iter_rows()}},
            "changes": self.changes, "gx": self.gx, "seconds": self.seconds,
        }


def evaluate(facts: Facts, engine: Engine) -> pl.DataFrame:
    """Every enabled rule's findings with dimension, severity and fingerprint."""
    cfg = facts.config
    frames = [fn(facts) for name, fn in {**RECORD_RULES, **FIELD_RULES}.items()
              if cfg.enabled(name)]
    topology = [name for name in TOPOLOGY_RULES if cfg.enabled(name)]
    if topology:
        graph = build_graph(engine)
        frames += [TOPOLOGY_RULES[name](facts, graph) for name in topology]
    typed = [f.select(pl.col(c).cast(t) for c, t in FINDING_SCHEMA.items()) for f in frames]
    found = pl.concat(typed) if typed else pl.DataFrame(schema=FINDING_SCHEMA)
    meta = pl.DataFrame({"rule": list(RULES),
                         "dimension": [r.dimension for r in RULES.values()],
                         "severity": [cfg.severity(r) for r in RULES]})
    return found.join(meta, on="rule", how="left").with_columns(
        fingerprint(pl.col("rule"), pl.col("entity_type"), pl.col("entity_id"))
        .alias("fingerprint")).unique("fingerprint", keep="first", maintain_order=True)


def run_audit(engine: Engine, config: AuditConfig, gx_dir: Path | None = None,
              *, gx: bool = True) -> AuditResult:
    """Audit the model of ``engine``; keep the GX project in ``gx_dir`` when given.

    Raises :class:`~gridtopo.quality.errors.EmptyModelError` (before recording a run) when
    nothing was ingested. ``gx=False`` skips the GX suites (the rules still run).
    """
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    model = load_model(engine)
    seconds["read"] = time.perf_counter() - t0
    with engine.begin() as conn:
        run_id = int(conn.execute(insert(AuditRun).values(
            status="running", started_at=utcnow(), ingest_run_id=model.ingest_run_id,
            config=config.to_dict()).returning(AuditRun.id)).scalar_one())
    try:
        t0 = time.perf_counter()
        facts = Facts.of(model, config)
        del model  # Facts holds the model's frames, customers joined to their chain once
        found = evaluate(facts, engine)
        seconds["rules"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary = run_suites(facts, gx_dir) if gx else None
        seconds["gx"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with engine.begin() as conn:
            changes = store_findings(conn, run_id, found,
                                     [r for r in RULES if config.enabled(r)])
            waived = waived_fingerprints(conn)
            cards = scorecards(facts, found.filter(~pl.col("fingerprint").is_in(
                waived.implode())))
            store_scorecards(conn, run_id, cards)
            province = cards.filter(pl.col("level") == "province").drop("level", "counts")
            scores = {"province": province.drop("entity_id", "entity_name").to_dicts()[0]}
            scores["regions"] = {
                r["entity_id"]: r["overall"] for r in
                cards.filter(pl.col("level") == "region").select("entity_id", "overall")
                .iter_rows(named=True)}
            stored = read_frame(conn, "SELECT fingerprint, id, status FROM findings WHERE "
                                f"last_seen_run = {run_id}",
                                {"fingerprint": pl.Utf8, "id": pl.Int64, "status": pl.Utf8})
            found = found.join(stored, on="fingerprint", how="left")
            conn.execute(update(AuditRun).where(AuditRun.id == run_id).values(
                status="succeeded", finished_at=utcnow(), scores={**scores, "gx": summary}))
        seconds["store"] = time.perf_counter() - t0
    except BaseException as err:
        with engine.begin() as conn:
            conn.execute(update(AuditRun).where(AuditRun.id == run_id).values(
                status="failed", finished_at=utcnow(),
                scores={"error": f"{type(err).__name__}: {err}"}))
        raise
    return AuditResult(run_id, found, cards, scores, changes, summary, seconds)
