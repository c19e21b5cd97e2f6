"""The README tells the truth: what it names exists (after Datasette's tests of its docs)."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from modelyard.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_settings_named_in_the_readme_are_read_by_the_code() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "src").rglob("*.py"))
    for setting in set(re.findall(r"MODELYARD_[A-Z_]+[A-Z]", README)):
        if setting == "MODELYARD_DATAREFERENCE_":
            continue
        assert setting in source, setting


def test_paths_named_in_the_readme_exist() -> None:
    for path in re.findall(r"`((?:src/modelyard|examples|benchmarks)/[\w./-]+)`", README):
        assert (ROOT / path).exists(), path
    for name in re.findall(r"`(\w+/)`", README):
        places = (ROOT, ROOT / "src" / "modelyard", ROOT / "src" / "modelyard" / "runner")
        assert any((place / name).is_dir() for place in places), name


def test_cli_commands_in_the_readme_exist() -> None:
    runner = CliRunner()
    shell = "\n".join(re.findall(r"```sh\n(.*?)```", README, re.S))
    commands = re.findall(r"^modelyard ([a-z]+ [a-z]+)", shell, re.M)
    assert commands
    for line in commands:
        result = runner.invoke(cli, [*line.split(), "--help"])
        assert result.exit_code == 0, (line, result.output)
