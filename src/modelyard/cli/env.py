"""``modelyard env list|show|prune``: the machine's cache of built run environments;
``modelyard env curated``: the curated environments (v1's ``AzureML-*`` names).

The cache is per machine and user, shared by every workspace (``~/.cache/modelyard/envs``, or
``$MODELYARD_ENV_CACHE``), and the curated environments are part of modelyard, so these
commands need no workspace.
"""

from __future__ import annotations

import re
from typing import Any

import click

from modelyard.cli.output import (
    format_time,
    iso_utc,
    print_fields,
    print_json,
    print_message,
    print_table,
)
from modelyard.cli.params import json_option
from modelyard.curated_environments import CURATED
from modelyard.errors import NotFoundError, ValidationError
from modelyard.runner.envbuild import CachedEnvironment, EnvironmentCache, cache_root

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS.update({"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40})


@click.group("env")
def group() -> None:
    """Run environments: the built ones and the curated ones.

    Environments are built for runs on this machine and shared by its workspaces.

    \b
    Example:
      modelyard env list
      modelyard env prune --keep 5
      modelyard env curated
    """


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.1f} MB"


def environment_summary(environment: CachedEnvironment) -> dict[str, Any]:
    """A cached environment as the ``--json`` outputs print it."""
    record = environment.record
    return {
        "key": environment.key,
        "path": str(environment.path),
        "python": environment.python,
        "pythonVersion": record.get("python_version"),
        "installer": record.get("installer"),
        "requirements": record.get("requirements", []),
        "condaPackages": record.get("conda_packages", []),
        "packages": len(record.get("packages", [])),
        "sizeBytes": environment.size_bytes,
        "buildSeconds": record.get("build_seconds"),
        "createdTimeUtc": iso_utc(environment.created_at),
        "lastUsedTimeUtc": iso_utc(environment.last_used_at),
        "inUse": environment.in_use,
    }


@group.command("list")
@json_option
def list_environments(as_json: bool) -> None:
    """List the built environments, least recently used first.

    That is the order prune removes them in.

    \b
    Example:
      modelyard env list --json
    """
    cache = EnvironmentCache(cache_root())
    entries = cache.entries()
    if as_json:
        print_json([environment_summary(entry) for entry in entries])
        return
    print_table(
        ["key", "python", "requirements", "packages", "size", "last used", "in use"],
        (
            [
                entry.key,
                entry.record.get("python_version"),
                ", ".join(entry.record.get("requirements", [])) or "-",
                len(entry.record.get("packages", [])),
                _size(entry.size_bytes),
                format_time(entry.last_used_at),
                "yes" if entry.in_use else "",
            ]
            for entry in entries
        ),
        empty=f"No environments built yet in {cache.root}.",
        title=f"Environments in {cache.root}",
    )


@group.command("show")
@click.argument("key")
@json_option
def show(key: str, as_json: bool) -> None:
    """Show a built environment and its installed packages.

    KEY is its content hash, or the start of it.

    \b
    Example:
      modelyard env show 3f9c2a
    """
    cache = EnvironmentCache(cache_root())
    found = cache.resolve_key(key.lower())
    environment = cache.find(found) if found is not None else None
    if environment is None:
        raise NotFoundError(
            f"no environment (or more than one) has a key starting with {key!r} in "
            f"{cache.root}; see `modelyard env list`"
        )
    environment = next(entry for entry in cache.entries() if entry.key == environment.key)
    record = environment.record
    if as_json:
        print_json(
            {
                **environment_summary(environment),
                "installedPackages": record.get("packages", []),
                "packageSources": record.get("sources"),
                "builtForRun": record.get("built_for_run"),
            }
        )
        return
    print_fields(
        [
            ("key", environment.key),
            ("path", str(environment.path)),
            ("python", f"{record.get('python_version')} ({environment.python})"),
            ("installer", record.get("installer")),
            ("requirements", ", ".join(record.get("requirements", [])) or None),
            ("conda packages", ", ".join(record.get("conda_packages", [])) or None),
            ("package sources", record.get("sources")),
            ("size", _size(environment.size_bytes)),
            ("built", f"{format_time(environment.created_at)} in {record.get('build_seconds')} s"),
            ("built for run", record.get("built_for_run")),
            ("last used", format_time(environment.last_used_at)),
            ("in use", "yes" if environment.in_use else "no"),
            ("packages", len(record.get("packages", []))),
        ]
    )
    for package in record.get("packages", []):
        print_message(f"  {package}")


def _parse_size(text: str | None) -> int | None:
    if text is None:
        return None
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValidationError("--max-size", f"{text!r} is not a size like 500MB or 20GB")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").upper()])


@group.command("prune")
@click.option("--keep", type=click.IntRange(min=0), help="Keep the N most recently used.")
@click.option(
    "--unused-for",
    "unused_days",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Remove those not used for DAYS days.",
)
@click.option("--max-size", metavar="SIZE", help="Remove more until the rest fit (e.g. 20GB).")
@click.option("--all", "everything", is_flag=True, help="Remove every environment.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@json_option
def prune(
    keep: int | None,
    unused_days: float | None,
    max_size: str | None,
    everything: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Remove built environments, least recently used first.

    Environments that a running run uses stay. Leftovers of failed or interrupted builds
    always go. Give at least one of --keep, --unused-for, --max-size, --all.

    \b
    Examples:
      modelyard env prune --keep 5
      modelyard env prune --unused-for 30 --max-size 20GB
    """
    max_bytes = _parse_size(max_size)
    if keep is None and unused_days is None and max_bytes is None and not everything:
        raise ValidationError(
            "prune", "say what to remove: --keep N, --unused-for DAYS, --max-size SIZE or --all"
        )
    cache = EnvironmentCache(cache_root())
    result = cache.prune(
        keep=keep,
        unused_for_s=unused_days * 86400 if unused_days is not None else None,
        max_bytes=max_bytes,
        everything=everything,
        dry_run=dry_run,
    )
    if as_json:
        print_json(
            {
                "dryRun": dry_run,
                "removed": [entry.key for entry in result.removed],
                "keptInUse": [entry.key for entry in result.kept_in_use],
                "freedBytes": result.freed_bytes,
                "unfinishedBuildsRemoved": result.leftovers,
            }
        )
        return
    verb = "Would remove" if dry_run else "Removed"
    for entry in result.removed:
        print_message(f"{verb} {entry.key} ({_size(entry.size_bytes)})")
    for entry in result.kept_in_use:
        print_message(f"Kept {entry.key}: a run is using it")
    if result.leftovers:
        print_message(f"{verb} {result.leftovers} unfinished build(s)")
    print_message(
        f"{verb} {len(result.removed)} environment(s), {_size(result.freed_bytes)}, "
        f"from {cache.root}"
    )


@group.command("curated")
@json_option
def curated(as_json: bool) -> None:
    """List v1's curated AzureML-* environments.

    Each with what it holds here: Environment.get(ws, NAME) gives one; the names are v1's,
    the packages current.

    \b
    Example:
      modelyard env curated --json
    """
    if as_json:
        print_json(
            [
                {
                    "name": entry.name,
                    "version": "1",
                    "pipPackages": entry.pip_packages,
                    "environmentVariables": entry.environment_variables,
                    "v1Held": entry.v1_held,
                }
                for entry in CURATED.values()
            ]
        )
        return
    print_table(
        ["name", "packages", "in v1"],
        (
            [entry.name, ", ".join(entry.pip_packages) or "(modelyard's own Python)", entry.v1_held]
            for entry in CURATED.values()
        ),
        empty="No curated environments.",
        title="Curated environments (Environment.get(ws, NAME))",
    )
