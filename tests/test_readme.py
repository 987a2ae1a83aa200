"""The README's examples are runnable: its profile parses, its commands exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
from click.testing import CliRunner

from gridtopo.cli.main import main
from gridtopo.ingest import load_profile
from gridtopo.outages.notices import NoticeRules

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_profile_example_is_a_valid_profile(tmp_path: Path) -> None:
    example, _ = blocks("toml")
    path = tmp_path / "profile.toml"
    path.write_text(example, encoding="utf-8")
    profile = load_profile(path)
    assert profile.table("customers").crs == "gcj02"
    assert profile.table("edges").delimiter == ";"


def test_notice_rules_example_is_valid_rules(tmp_path: Path) -> None:
    _, example = blocks("toml")
    path = tmp_path / "rules.toml"
    path.write_text(example, encoding="utf-8")
    rules = NoticeRules.from_toml(path)
    assert rules.planned_hours == (168, 72) and "已恢复供电" in rules.templates["restored"]


def test_every_gridtopo_command_in_the_readme_exists() -> None:
    """Each ``gridtopo …`` line of a shell example names a real command (not just a group)."""
    lines = [line.split("#")[0] for block in blocks("sh") for line in block.splitlines()
             if line.startswith("gridtopo ")]
    assert len(lines) >= 5, "the README shows too few gridtopo commands"
    for line in lines:
        node: click.Command = main
        path: list[str] = []
        for word in shlex.split(line)[1:]:
            sub = node.commands.get(word) if isinstance(node, click.Group) else None
            if sub is not None:
                node, path = sub, [*path, word]
        assert not isinstance(node, click.Group), f"{line!r} names no command"
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (line, result.output)
