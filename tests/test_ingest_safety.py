"""Bad export folders, on both stores: each is refused with exit 2 and a message naming the
file (line, byte, limit) and the counts, leaving the previous model as it was — or, for a bad
value, loaded with that value quarantined, the accounting adding up; a network shape that
cannot be right (a tie left closed between feeders, a self-loop, an edge of no feeder) is an
audit finding.

Every case starts from the generated model (``model_db_url``: the session's synthetic sources
ingested) and a copy of those sources broken one way.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select, text

from gridtopo.cli.main import main
from gridtopo.db import open_engine
from gridtopo.db.models import IngestFile, IngestRun, QuarantinedRow
from gridtopo.ingest.tables import TABLES
from gridtopo.quality.rules import TOPOLOGY_RULES
from gridtopo.topology.graph import graph_from_frames

SECRET = "SECRET-FIRST-LINE root:x:0:0"
"""The first line of the files outside the source folder that links and profiles point at."""


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: int(conn.scalar(text(f'SELECT count(*) FROM "{t}"')) or 0) for t in TABLES}


def lines(path: Path, encoding: str) -> list[str]:
    return path.read_bytes().decode(encoding).split("\n")


def write_lines(path: Path, rows: list[str], encoding: str) -> None:
    path.write_bytes("\n".join(rows).encode(encoding))


CUSTOMERS = Path("marketing/customers.csv")
TRANSFORMERS = Path("distribution/transformers.csv")


def _missing(src: Path, outside: Path) -> list[str]:
    (src / CUSTOMERS).unlink()
    return []


def _header_only(src: Path, outside: Path) -> list[str]:
    rows = lines(src / TRANSFORMERS, "utf-8")
    write_lines(src / TRANSFORMERS, rows[:1], "utf-8")
    return []


def _shrunk(src: Path, outside: Path) -> list[str]:
    rows = lines(src / CUSTOMERS, "gbk")
    write_lines(src / CUSTOMERS, rows[: len(rows) // 10], "gbk")
    return []


def _unterminated(src: Path, outside: Path) -> list[str]:
    rows = lines(src / CUSTOMERS, "gbk")
    rows[9] = rows[9].replace(",", ',"', 1)  # line 10 opens a quote that never closes
    write_lines(src / CUSTOMERS, rows, "gbk")
    offset = len("\n".join(rows[:9]).encode("gbk")) + 1
    (outside / "expected").write_text(f"byte offset {offset}")  # the start of line 10
    return []


def _link_out(src: Path, outside: Path) -> list[str]:
    (src / "marketing" / "customers_extra.csv").symlink_to(outside / "accounts.csv")
    return []


def _profile_out(src: Path, outside: Path) -> list[str]:
    climb = "/".join([".."] * (len(src.parts) - 1)) + str(outside / "accounts.csv")
    (outside / "profile.toml").write_text(f'[customers]\nfile = "{climb}"\n')
    return ["--profile", str(outside / "profile.toml")]


def _zip_bomb(src: Path, outside: Path) -> list[str]:
    (src / "distribution" / "stations.csv").unlink()
    with zipfile.ZipFile(src / "distribution" / "stations.xlsx", "w",
                         zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/worksheets/sheet1.xml", "<row/>" * 400_000)  # 2.4 MB, packs to KBs
    (outside / "profile.toml").write_text("[limits]\nxlsx_bytes = 1000000\n")
    return ["--profile", str(outside / "profile.toml")]


def _file_too_big(src: Path, outside: Path) -> list[str]:
    (outside / "profile.toml").write_text("[limits]\nfile_bytes = 10000\n")
    return ["--profile", str(outside / "profile.toml")]


def _too_many_rows(src: Path, outside: Path) -> list[str]:
    (outside / "profile.toml").write_text("[limits]\nrows = 100\n")
    return ["--profile", str(outside / "profile.toml")]


@dataclass(frozen=True)
class Refused:
    """A bad folder that must be refused: how to break it, what the message must name."""

    name: str
    breaks: Callable[[Path, Path], list[str]]
    names: tuple[str, ...]
    allow: tuple[str, ...] = field(default=())


REFUSED = [
    Refused("missing file", _missing,
            ("no file for customers", "would delete", "--allow-shrink customers")),
    Refused("header-only file", _header_only,
            ("transformers.csv", "0 transformers to load (header only, no rows)",
             "--allow-shrink transformers")),
    Refused("shrink", _shrunk, ("customers.csv", "below 50%", "--allow-shrink customers")),
    Refused("unterminated quote", _unterminated,
            ("customers.csv", "line 10", "never closes")),
    Refused("link out", _link_out,
            ("customers_extra.csv", "leads outside the source folder")),
    Refused("profile pattern out", _profile_out,
            ("[customers] file =", "leads outside the source folder")),
    Refused("zip bomb xlsx", _zip_bomb, ("stations.xlsx", "unpacks to", "xlsx_bytes")),
    Refused("file too big", _file_too_big, ("bytes, larger than the file_bytes limit",)),
    Refused("too many rows", _too_many_rows, ("more than 100 rows",)),
]


@pytest.fixture
def folders(synthetic_sources: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the generated sources (``src``), and a folder outside it with an "account
    file" whose first line must never be shown."""
    src = tmp_path / "export" / "src"
    shutil.copytree(synthetic_sources, src)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "accounts.csv").write_text(f"{SECRET}\nbin:x:1:1\n")
    return src, outside


def _ingest(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--db", url, "ingest", *args])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_bad_folder_is_refused_and_the_model_kept(case: Refused, model_db_url: str,
                                                   folders: tuple[Path, Path]) -> None:
    src, outside = folders
    engine = open_engine(model_db_url)
    before = counts(engine)
    extra = case.breaks(src, outside)
    code, output = _ingest(model_db_url, str(src), *extra)
    assert code == 2, output
    expected = outside / "expected"
    for part in (*case.names, *([expected.read_text()] if expected.exists() else [])):
        assert part in output, (part, output)
    assert "internal error" not in output and SECRET not in output
    assert counts(engine) == before  # the previous model is intact
    with engine.connect() as conn:
        run = conn.execute(select(IngestRun).order_by(IngestRun.id.desc()).limit(1)).one()
    if run.source == str(src):  # refusals before the run starts leave no run behind
        assert run.status == "failed" and SECRET not in (run.message or "")
        assert case.names[0] in run.message
    engine.dispose()


def test_allow_shrink_loads_the_small_export(model_db_url: str,
                                             folders: tuple[Path, Path]) -> None:
    src, outside = folders
    _shrunk(src, outside)
    code, output = _ingest(model_db_url, str(src), "--allow-shrink", "customers", "--json")
    assert code == 0, output
    report = json.loads(output)
    engine = open_engine(model_db_url)
    customers = [f for f in report["files"] if f["table"] == "customers"]
    assert counts(engine)["customers"] == sum(f["rows_loaded"] for f in customers) > 0
    for f in report["files"]:
        assert f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"] + f["rows_merged"]
    engine.dispose()


def _huge_field(src: Path) -> None:
    rows = lines(src / CUSTOMERS, "gbk")
    cells = rows[4].split(",")
    cells[2] = "广" * (1 << 20)  # a 1-million-character 用电地址 on line 5
    rows[4] = ",".join(cells)
    write_lines(src / CUSTOMERS, rows, "gbk")


def _huge_field_stray_quote(src: Path) -> None:
    """The huge field in a file polars refuses (a stray quote inside a name on line 7), which
    the csv module parses instead."""
    _huge_field(src)
    rows = lines(src / CUSTOMERS, "gbk")
    cells = rows[6].split(",")
    cells[1] = cells[1][:1] + '"' + cells[1][1:]
    rows[6] = ",".join(cells)
    write_lines(src / CUSTOMERS, rows, "gbk")


def _implausible(src: Path) -> None:
    rows = lines(src / TRANSFORMERS, "utf-8")
    header = rows[0].split(",")
    cells = rows[1].split(",")
    cells[header.index("capacity_kva")] = "1e308"
    rows[1] = ",".join(cells)
    write_lines(src / TRANSFORMERS, rows, "utf-8")
    rows = lines(src / CUSTOMERS, "gbk")
    header = rows[0].split(",")
    cells = rows[5].split(",")  # line 6: a customer in Paris
    cells[header.index("经度")], cells[header.index("纬度")] = "2.35", "48.85"
    rows[5] = ",".join(cells)
    write_lines(src / CUSTOMERS, rows, "gbk")


@pytest.mark.parametrize(("breaks", "expected"), [
    (_huge_field, {("customers.csv", 5, "address", "too_long")}),
    (_huge_field_stray_quote, {("customers.csv", 5, "address", "too_long")}),
    (_implausible, {("transformers.csv", 2, "capacity_kva", "implausible"),
                    ("customers.csv", 6, "lon", "outside_region"),
                    ("customers.csv", 6, "lat", "outside_region")}),
], ids=["huge field", "huge field, stray quote", "implausible values"])
def test_bad_value_is_set_aside_and_the_row_kept(
        breaks: Callable[[Path], None], expected: set[tuple[str, int, str, str]],
        model_db_url: str, folders: tuple[Path, Path]) -> None:
    src, _ = folders
    engine = open_engine(model_db_url)
    before = counts(engine)
    breaks(src)
    code, output = _ingest(model_db_url, str(src))
    assert code == 0, output
    assert counts(engine) == before  # every row is still loaded: only the field set aside
    rules = {rule for *_, rule in expected}
    with engine.connect() as conn:
        run_id = conn.scalar(select(func.max(IngestRun.id)))
        found = conn.execute(
            select(IngestFile.path, QuarantinedRow.line, QuarantinedRow.field,
                   QuarantinedRow.rule, QuarantinedRow.row_kept, QuarantinedRow.value,
                   QuarantinedRow.raw, QuarantinedRow.message)
            .join(IngestFile, IngestFile.id == QuarantinedRow.file_id)
            .where(QuarantinedRow.run_id == run_id, QuarantinedRow.rule.in_(rules))).all()
        files = conn.execute(select(IngestFile.rows_read, IngestFile.rows_loaded,
                                    IngestFile.rows_quarantined, IngestFile.rows_merged)
                             .where(IngestFile.run_id == run_id)).all()
        assert len(files) == 6
        for read, loaded, quarantined, merged in files:
            assert read == loaded + quarantined + merged
    assert {(Path(r.path).name, r.line, r.field, r.rule) for r in found} == expected
    for r in found:
        assert r.row_kept
        assert len(r.value or "") <= 201 and len(r.raw) < 5000 and len(r.message) < 400
        assert f"line {r.line}" in r.message
    engine.dispose()


def test_change_file_without_a_table_changes_nothing_of_it(
        empty_db_url: str, synthetic_sources: Path, tmp_path: Path) -> None:
    """In ``--changes`` mode a table with no file has no change: nothing is refused."""
    assert _ingest(empty_db_url, str(synthetic_sources))[0] == 0
    engine = open_engine(empty_db_url)
    before = counts(engine)
    change = tmp_path / "change"
    (change / "marketing").mkdir(parents=True)
    rows = lines(synthetic_sources / CUSTOMERS, "gbk")
    write_lines(change / CUSTOMERS, rows[:3], "gbk")  # two customers, unchanged
    code, output = _ingest(empty_db_url, "--changes", str(change))
    assert code == 0, output
    assert counts(engine) == before
    engine.dispose()


def test_network_shape_findings() -> None:
    """A tie left closed between two feeders of different stations, a self-loop and an edge
    of an unknown feeder are audit findings (the rows load: each is one record's business
    only together with the rest of the network)."""
    edges = pl.DataFrame(
        [("L1", "line", "F1", "A", "B", False, True), ("L2", "line", "F1", "B", "C", False, True),
         ("L3", "line", "F2", "D", "E", False, True),
         ("T1", "switch", None, "C", "E", False, True),  # the tie, left closed
         ("L4", "line", "F2", "E", "E", False, True),  # a self-loop
         ("L5", "line", "F9", "B", "X", False, True)],  # F9 is no feeder
        schema=["edge_id", "kind", "feeder_id", "from_node", "to_node", "normal_open",
                "in_service"], orient="row")
    sources = pl.DataFrame({"feeder_id": ["F1", "F2"], "source_node": ["A", "D"]})
    transformers = pl.DataFrame({"transformer_id": ["PB1"], "node": ["C"]})
    G = graph_from_frames(edges, sources, transformers)
    facts = SimpleNamespace(model=SimpleNamespace(feeders=sources.select("feeder_id")))
    found = pl.concat([TOPOLOGY_RULES[name](facts, G)  # type: ignore[arg-type]
                       for name in ("feeders_paralleled", "edge_self_loop",
                                    "edge_feeder_unknown")])
    assert sorted(found.select("rule", "entity_id").rows()) == [
        ("edge_feeder_unknown", "L5"), ("edge_self_loop", "L4"),
        ("feeders_paralleled", "F1"), ("feeders_paralleled", "F2")]
    opened = graph_from_frames(edges.with_columns(
        normal_open=pl.col("edge_id") == "T1"), sources, transformers)
    assert TOPOLOGY_RULES["feeders_paralleled"](facts, opened).height == 0  # type: ignore[arg-type]
