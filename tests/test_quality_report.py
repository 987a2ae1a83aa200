"""The HTML report: self-contained, rendered by headless chromium, sorting and filtering work;
the GX checkpoint's results are stored with the audit run and its data docs are linked."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, text

from gridtopo.quality.audit import run_audit
from gridtopo.quality.config import load_config, parse_now
from gridtopo.quality.report import write_report
from gridtopo.quality.scores import trend
from tests.browser import chromium

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
SUITES = {"completeness", "validity", "uniqueness", "consistency", "timeliness"}


@pytest.mark.slow
def test_report_is_self_contained_renders_and_links_gx(model_engine: Engine, backend: str,
                                                       tmp_path: Path) -> None:
    config = load_config(None, now=parse_now("2024-12-31"))
    result = run_audit(model_engine, config, tmp_path / "audit_gx")

    with model_engine.connect() as conn:
        stored = conn.execute(text("SELECT scores FROM audit_runs WHERE id = :i"),
                              {"i": result.run_id}).scalar_one()
        history = trend(conn)
    gx = stored["gx"] if isinstance(stored, dict) else __import__("json").loads(stored)["gx"]
    assert set(gx["suites"]) == SUITES
    assert gx["suites"]["uniqueness"]["tables"]["customers"]["evaluated"] == 2
    assert gx["customers_validated"] == gx["customers_population"] > 0
    timeliness = gx["suites"]["timeliness"]["tables"]["customers"]["expectations"][0]
    assert timeliness["unexpected_count"] == result.findings.filter(
        (result.findings["rule"] == "record_stale")
        & (result.findings["entity_type"] == "customer")).height
    docs = Path(gx["data_docs"])
    assert docs.is_file()

    report = write_report(tmp_path / "audit.html", result, history, "test", "2024-12-31")
    page = report.read_text(encoding="utf-8")
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert "<svg" in page and 'id="findings"' in page
    link = re.search(r'href="([^"]+index\.html)"', page)
    assert link and (tmp_path / link.group(1)).resolve() == docs.resolve()

    if backend != "sqlite":
        return  # the page does not depend on the store: one browser run is enough
    shot = tmp_path / "audit.png"
    chromium(f"--screenshot={shot}", report.as_uri())
    assert shot.stat().st_size > 20_000

    stale = result.findings.filter((result.findings["rule"] == "record_stale")
                                   & (result.findings["entity_type"] == "customer"))
    assert stale.height > 10
    ids = sorted(stale["entity_id"].to_list(), reverse=True)
    query = "?q=customer&rule=record_stale&sort=entity_id&dir=desc"
    dom = chromium("--dump-dom", report.as_uri() + query).stdout
    findings_table = dom.split('id="findings"')[1]
    assert f'data-shown="{len(ids)}"' in findings_table.split(">")[0]
    rows = findings_table.split("<tbody>")[1].split("</tbody>")[0].split("</tr>")[:-1]
    assert len(rows) == len(ids)
    assert all(i in row for i, row in zip(ids, rows, strict=True))


def test_report_tables_show_missing_values_as_a_dash() -> None:
    """A first run has no previous score: the table says —, not Python's None."""
    from gridtopo.quality.report import _table

    frame = pl.DataFrame({"region": ["广州"], "overall": [0.9], "change since last run": [None]},
                         schema={"region": pl.Utf8, "overall": pl.Float64,
                                 "change since last run": pl.Utf8})
    page = _table(frame, ("overall",), "regions")
    assert "<td>90.0%</td>" in page and "<td>—</td>" in page and "None" not in page
