"""The parts of environment building below the runs: pip's configuration as uv gets it, the
content hash, and the cache's listing and pruning (through ``modelyard env``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard.cli.main import cli
from modelyard.runner.envbuild import EnvironmentCache, prepare_environment
from modelyard.runner.envbuild.cache import RECORD_FILE
from modelyard.runner.envbuild.prepare import plan
from modelyard.runner.envbuild.sources import read_pip_configuration
from modelyard.runner.job import JobSpec
from tests.runner.wheels import make_wheel, unique_name


def test_pip_configuration_is_read_as_pip_reads_it(tmp_path: Path) -> None:
    config = tmp_path / "pip.conf"
    config.write_text(
        "[global]\nindex_url = https://mirror.example/simple\n"
        "extra-index-url =\n  https://one.example/simple\n  https://two.example/simple\n"
        "find-links = /from/global\n"
        "[install]\nfind-links = /from/install /and/more\nno-index = yes\n"
    )
    sources = read_pip_configuration({"PIP_CONFIG_FILE": str(config), "HOME": str(tmp_path)})
    assert sources.index_url == "https://mirror.example/simple"  # _ and - alike
    assert sources.extra_index_urls == ("https://one.example/simple", "https://two.example/simple")
    assert sources.find_links == ("/from/install", "/and/more")  # [install] over [global]
    assert sources.no_index and str(config) in sources.read_from
    overridden = read_pip_configuration(
        {"PIP_CONFIG_FILE": str(config), "HOME": str(tmp_path), "PIP_FIND_LINKS": "/env"}
    )
    assert overridden.find_links == ("/env",)  # variables win over files
    assert "--find-links" in overridden.uv_arguments() and "/env" in overridden.uv_arguments()
    nothing = read_pip_configuration({"PIP_CONFIG_FILE": os.devnull, "HOME": str(tmp_path)})
    assert nothing.uv_arguments() == ["--index-strategy", "unsafe-best-match"]  # as pip does
    assert nothing.read_from == ()


def test_the_key_is_the_content_of_what_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = EnvironmentCache(tmp_path / "envs")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("six<2\n")
    monkeypatch.setenv("PIP_CONSTRAINT", str(constraints))
    name = unique_name()

    def key(**settings: object) -> str:
        request = plan(JobSpec(script="x.py", **settings), cache).request  # type: ignore[arg-type]
        assert request is not None
        return request.key

    base = key(pip_packages=[f"{name}==1.0", "six"])
    assert key(pip_packages=["Six", f"{name} == 1.0"]) == base  # order and spelling aside
    assert key(pip_packages=[f"{name}==1.1", "six"]) != base
    assert key(pip_packages=[f"{name}==1.0", "six"], inherit_base_packages=True) != base
    monkeypatch.setenv("MODELYARD_ENV_INSTALLER", "pip")
    assert key(pip_packages=[f"{name}==1.0", "six"]) != base
    monkeypatch.delenv("MODELYARD_ENV_INSTALLER")
    constraints.write_text("six<1.5\n")  # the same file, other content
    assert key(pip_packages=[f"{name}==1.0", "six"]) != base
    # Nothing that modelyard's Python lacks: nothing to build.
    assert plan(JobSpec(script="x.py", pip_packages=["pytest>=1"]), cache).request is None


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_env_list_show_and_prune_least_recently_used_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "envs"
    monkeypatch.setenv("MODELYARD_ENV_CACHE", str(root))
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels"))
    cache = EnvironmentCache(root)
    names = [unique_name() for _ in range(3)]
    keys = []
    for age, name in enumerate(names):
        make_wheel(tmp_path / "wheels", name)
        prepared = prepare_environment(
            JobSpec(script="x.py", pip_packages=[name], inherit_base_packages=True),
            log=lambda text: None,
            poll=lambda: None,
            on_process=lambda pgid: None,
            cache=cache,
        )
        assert prepared.lease is not None and prepared.built
        prepared.lease.close()
        key = Path(prepared.python).parents[2].name  # <root>/<key>/env/bin/python
        stamp = 1_000_000 + age * 1000  # last used: the first one longest ago
        os.utime(root / key / RECORD_FILE, (stamp, stamp))
        keys.append(key)

    code, output = _cli("env", "list", "--json")
    assert code == 0 and [entry["key"] for entry in json.loads(output)] == keys
    code, output = _cli("env", "show", keys[1][:8])
    assert code == 0 and f"{names[1]}==1.0" in output and keys[1] in output
    assert _cli("env", "show", "ffffffffff")[0] == 3  # not found
    assert _cli("env", "prune")[0] == 2  # say what to remove

    (root / "builds" / f"{'0' * 20}-deadbeef").mkdir()  # a killed build's leftover
    lease = cache.lease(keys[0])  # a run uses the oldest one
    code, output = _cli("env", "prune", "--keep", "1", "--dry-run", "--json")
    dry = json.loads(output)
    assert (dry["removed"], dry["keptInUse"], dry["unfinishedBuildsRemoved"]) == (
        [keys[1]],
        [keys[0]],
        1,
    )
    assert [entry.key for entry in cache.entries()] == keys  # a dry run removes nothing
    code, output = _cli("env", "prune", "--keep", "1")
    assert code == 0 and f"Removed {keys[1]}" in output and f"Kept {keys[0]}" in output
    assert [entry.key for entry in cache.entries()] == [keys[0], keys[2]]
    assert len(list((root / "builds").iterdir())) == 2  # the leftover went too
    lease.close()
    code, output = _cli("env", "prune", "--max-size", "1KB")
    assert code == 0 and cache.entries() == []
    assert list((root / "builds").iterdir()) == []
    code, output = _cli("env", "list")
    assert code == 0 and "No environments built yet" in output
