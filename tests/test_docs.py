"""The README tells the truth: what it names exists (after Datasette's tests of its docs)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from click.testing import CliRunner

from modelyard.cli.main import cli
from modelyard.cli.server import server_command

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# A README block taken from code: `<!-- examples/tour.py: imports, workspace -->` right above
# it names the file and its regions, which the block shows one after the other.
SNIPPET = re.compile(r"<!-- (examples/[\w./-]+): ([\w, -]+) -->\n```python\n(.*?)^```", re.S | re.M)
# A region of code: between `# [readme: NAME]` and `# [/readme]`, dedented.
REGION = re.compile(r"^[ \t]*# \[readme: ([\w-]+)\]\n(.*?)^[ \t]*# \[/readme\]$", re.S | re.M)


def regions(path: Path) -> dict[str, str]:
    return {
        name: textwrap.dedent(body).strip("\n") for name, body in REGION.findall(path.read_text())
    }


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


def test_the_readme_snippets_are_the_regions_of_the_examples_they_name() -> None:
    shown = set()
    for path, names, block in SNIPPET.findall(README):
        found = regions(ROOT / path)
        wanted = [name.strip() for name in names.split(",")]
        assert set(wanted) <= set(found), (path, wanted, sorted(found))
        expected = "\n\n".join(found[name] for name in wanted)
        assert block.rstrip("\n") == expected, f"copy {path}'s regions {names} into the README"
        shown |= {(path, name) for name in wanted}
    marked = {
        (path.relative_to(ROOT).as_posix(), name)
        for path in (ROOT / "examples").rglob("*.py")
        for name in regions(path)
    }
    assert shown == marked  # and no region of the examples is left out of the README


def test_every_python_block_of_the_readme_tour_is_taken_from_the_tour() -> None:
    tour = README.split("\n## A short tour\n", 1)[1].split("\n## ", 1)[0]
    blocks = tour.count("```python\n")
    assert blocks > 0 and len(SNIPPET.findall(tour)) == blocks


def test_every_option_of_modelyard_server_is_in_the_server_docs() -> None:
    docs = (ROOT / "docs" / "server.md").read_text()
    options = [name for param in server_command.params for name in param.opts]
    assert "--public-url" in options
    assert [name for name in options if name.startswith("--") and name not in docs] == []
