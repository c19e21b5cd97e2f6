"""Where packages come from: the machine's pip configuration, read the way pip reads it.

uv does not read pip's configuration, so a site whose package mirror is set up for pip (in
``pip.conf`` or ``PIP_*`` variables) would see uv go to PyPI instead. This module reads the same
files and variables as pip, in pip's order, and hands uv the equivalent options:

- files, later ones overriding earlier ones: the global files (``$XDG_CONFIG_DIRS/pip/pip.conf``,
  default ``/etc/xdg/pip/pip.conf``, then ``/etc/pip.conf``), the user files
  (``~/.pip/pip.conf``, ``$XDG_CONFIG_HOME/pip/pip.conf``; skipped when ``PIP_CONFIG_FILE``
  names an existing file), the site file (``<prefix>/pip.conf`` of modelyard's Python), then
  ``PIP_CONFIG_FILE``. ``PIP_CONFIG_FILE=/dev/null`` turns all files off, as for pip.
- in each, the ``[global]`` section, then ``[install]``, then ``PIP_<NAME>`` variables win;
- keys: ``index-url``, ``extra-index-url``, ``find-links``, ``constraint``, ``no-index``,
  ``trusted-host`` and ``cert`` (``_`` and ``-`` alike, as pip allows); list values are split
  on white space.

uv's own settings (``UV_*`` variables, ``uv.toml``) still apply on top. Left to itself, uv
takes each package from the first index that has it (extra indexes before the main one); pip
takes the best version across all of them. A site mirror given as an extra index then hides
PyPI for every package it holds, even one it lacks a wheel of for the Python at hand (seen
here: a mirror with only cp311 wheels of pydantic-core fails a Python 3.12 build). So builds
ask uv for pip's behaviour (``--index-strategy unsafe-best-match``), unless
``UV_INDEX_STRATEGY`` says otherwise (``first-index`` is uv's guard against dependency
confusion, for sites whose indexes are not equally trusted).

Example::

    sources = read_pip_configuration()
    sources.uv_arguments()   # ['--extra-index-url', 'file:///opt/pypi/simple', '--find-links', ...]
"""

from __future__ import annotations

import configparser
import hashlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LIST_KEYS = ("extra-index-url", "find-links", "constraint", "trusted-host")
_VALUE_KEYS = ("index-url", "cert", "no-index")
_TRUE = {"1", "true", "yes", "on", "y"}


@dataclass(frozen=True)
class PackageSources:
    """The package sources and installer options a build uses."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    no_index: bool = False
    trusted_hosts: tuple[str, ...] = ()
    cert: str | None = None
    index_strategy: str = "unsafe-best-match"
    read_from: tuple[str, ...] = field(default=(), compare=False)

    def uv_arguments(self) -> list[str]:
        """The options of ``uv pip install`` that say the same."""
        arguments: list[str] = []
        if self.index_url:
            arguments += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            arguments += ["--extra-index-url", url]
        for link in self.find_links:
            arguments += ["--find-links", link]
        for constraint in self.constraints:
            arguments += ["--constraint", constraint]
        if self.no_index:
            arguments.append("--no-index")
        for host in self.trusted_hosts:
            arguments += ["--allow-insecure-host", host]
        arguments += ["--index-strategy", self.index_strategy]
        return arguments

    def uv_environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """Variables uv needs for what pip's options say (pip's ``cert`` is uv's
        SSL_CERT_FILE), unless they are set already."""
        if self.cert and "SSL_CERT_FILE" not in environ:
            return {"SSL_CERT_FILE": self.cert}
        return {}

    def fingerprint(self) -> dict[str, Any]:
        """What decides the packages a build gets, for the environment's content hash. A
        constraint file counts by its content, which can change under the same name."""
        constraints = []
        for name in self.constraints:
            try:
                digest = hashlib.sha256(Path(name).read_bytes()).hexdigest()
            except OSError:
                digest = "unreadable"
            constraints.append([name, digest])
        return {
            "index_url": self.index_url,
            "extra_index_urls": list(self.extra_index_urls),
            "find_links": list(self.find_links),
            "constraints": constraints,
            "no_index": self.no_index,
            "index_strategy": self.index_strategy,
        }

    def describe(self) -> str:
        """One line for the build log."""
        parts = []
        if self.index_url:
            parts.append(f"index {self.index_url}")
        parts += [f"extra index {url}" for url in self.extra_index_urls]
        parts += [f"find-links {link}" for link in self.find_links]
        parts += [f"constraint {name}" for name in self.constraints]
        if self.no_index:
            parts.append("no index")
        where = f" (from {', '.join(self.read_from)})" if self.read_from else ""
        return ("; ".join(parts) or "the installer's defaults") + where


def pip_config_files(environ: Mapping[str, str]) -> list[Path]:
    """pip's configuration files on this machine, in the order pip reads them (later ones
    win); empty when ``PIP_CONFIG_FILE`` is the null device."""
    named = environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    config_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [
        Path(folder) / "pip" / "pip.conf" for folder in config_dirs.split(os.pathsep) if folder
    ]
    files.append(Path("/etc/pip.conf"))
    if not (named and Path(named).exists()):
        home = Path(environ.get("HOME") or Path.home())
        files.append(home / ".pip" / "pip.conf")
        if sys.platform == "darwin":
            files.append(home / "Library" / "Application Support" / "pip" / "pip.conf")
        config_home = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        files.append(Path(config_home) / "pip" / "pip.conf")
    files.append(Path(sys.prefix) / "pip.conf")
    if named:
        files.append(Path(named))
    return files


def _normalize(key: str) -> str:
    return key.lower().replace("_", "-").lstrip("-")


def read_pip_configuration(environ: Mapping[str, str] | None = None) -> PackageSources:
    """The package sources pip would use here; see the module docstring."""
    environ = os.environ if environ is None else environ
    merged: dict[str, dict[str, str]] = {"global": {}, "install": {}}
    read_from: list[str] = []
    for path in pip_config_files(environ):
        if not path.is_file():
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue  # pip stops on a broken file with its own error; the build will show it
        read_from.append(str(path))
        for section in merged:
            if parser.has_section(section):
                for key, value in parser.items(section):
                    merged[section][_normalize(key)] = value
    settings: dict[str, str] = {**merged["global"], **merged["install"]}
    for key in (*_LIST_KEYS, *_VALUE_KEYS):
        variable = "PIP_" + key.upper().replace("-", "_")
        if environ.get(variable):
            settings[key] = environ[variable]
            read_from.append(variable)

    def listed(key: str) -> tuple[str, ...]:
        return tuple(settings.get(key, "").split())

    return PackageSources(
        index_url=settings.get("index-url", "").strip() or None,
        extra_index_urls=listed("extra-index-url"),
        find_links=listed("find-links"),
        constraints=listed("constraint"),
        no_index=settings.get("no-index", "").strip().lower() in _TRUE,
        trusted_hosts=listed("trusted-host"),
        cert=settings.get("cert", "").strip() or None,
        index_strategy=environ.get("UV_INDEX_STRATEGY") or "unsafe-best-match",
        read_from=tuple(read_from),
    )
