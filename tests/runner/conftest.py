"""Fixtures of the environment tests: a cache of their own, a find-links folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def env_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty environment cache for one test."""
    root = tmp_path / "envs"
    monkeypatch.setenv("MODELYARD_ENV_CACHE", str(root))
    return root


@pytest.fixture
def wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A find-links folder, named by PIP_FIND_LINKS as a site's pip setup would."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder
