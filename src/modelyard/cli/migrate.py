"""``modelyard migrate``: turn v1 notebooks and scripts into modelyard ones.

The work is in :mod:`modelyard.porting`; this module walks the paths, shows progress, prints
what happened per file and line, and picks the exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from modelyard.cli.output import print_json, print_message
from modelyard.cli.params import json_option
from modelyard.errors import ValidationError
from modelyard.porting.check import Surface
from modelyard.porting.files import FileReport, find_files, migrate_file
from modelyard.porting.rewrite import PIP, UNSUPPORTED

CHANGES_FOUND_EXIT_CODE = 1  # --check: something would change, or is not supported
BAD_INPUT_EXIT_CODE = ValidationError.exit_code  # a file could not be read or parsed
# Below this many files a progress bar flashes by for nothing.
_PROGRESS_FROM = 20


@click.command("migrate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--check",
    is_flag=True,
    help="Only report: write nothing; exit code 1 when "
    "something would change or is not supported, 0 when clean.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write the migrated files under this folder (the tree mirrored) instead of in place.",
)
@click.option("--no-backup", is_flag=True, help="In place, keep no .bak of changed files.")
@json_option
def command(
    paths: tuple[Path, ...], check: bool, out: Path | None, no_backup: bool, as_json: bool
) -> None:
    """Rewrite v1 (azureml) imports for modelyard.

    Rewrites the azureml imports of .py files and .ipynb notebooks. PATH is a file or a
    folder (searched for .py and .ipynb files, links not followed).
    Notebooks keep their outputs and metadata: only the code of code cells changes. Each
    changed file is kept beside it as <name>.bak unless --no-backup or --out. Every use of
    v1 that modelyard does not have yet is reported with its file and line.

    \b
    Exit codes: 0 done (or, with --check, nothing to change), 1 with --check: something
    would change or is not supported, 2 a path or file could not be read or parsed.

    \b
    Examples:
      modelyard migrate notebooks/ --check
      modelyard migrate train.ipynb
      modelyard migrate notebooks/ --out migrated/
    """
    found = list(find_files(list(paths), out))
    surface = Surface()
    reports: list[FileReport] = []
    with _Progress(len(found)) as advance:
        for root, path in found:
            reports.append(
                migrate_file(
                    path, root, write=not check, out=out, backup=not no_backup, surface=surface
                )
            )
            advance()
    code = _exit_code(reports, check)
    if as_json:
        print_json(
            {
                "files": [_as_json(report) for report in reports],
                "summary": _summary(reports, check),
                "exitCode": code,
            }
        )
    else:
        for report in reports:
            _print_report(report, check)
        print_message(_summary_line(reports, check))
    sys.exit(code)


def _exit_code(reports: list[FileReport], check: bool) -> int:
    if any(report.error for report in reports):
        return BAD_INPUT_EXIT_CODE
    if check and any(
        report.changed or any(n.kind in (UNSUPPORTED, PIP) for n in report.findings)
        for report in reports
    ):
        return CHANGES_FOUND_EXIT_CODE
    return 0


def _print_report(report: FileReport, check: bool) -> None:
    if report.error and not report.changes and not report.findings:
        print_message(f"{report.path}: error: {report.error}")
        return
    if report.changes:
        verb = "would rewrite" if check else "rewrote"
        where = (
            f" into {report.written}" if report.written and report.written != report.path else ""
        )
        kept = f" (original kept as {report.backup})" if report.backup else ""
        print_message(f"{report.path}: {verb} {len(report.changes)} v1 names{where}{kept}")
        for note in report.changes:
            print_message(f"  {report.where(note)}: {note.message}")
    for note in report.findings:
        print_message(f"{report.where(note)}: {note.kind}: {note.message}")
    if report.error:
        print_message(f"{report.path}: error: {report.error}")


def _summary(reports: list[FileReport], check: bool) -> dict[str, int]:
    return {
        "files": len(reports),
        "changed": sum(1 for r in reports if r.changed),
        "unsupported": sum(1 for r in reports for n in r.findings if n.kind == UNSUPPORTED),
        "pipInstalls": sum(1 for r in reports for n in r.findings if n.kind == PIP),
        "errors": sum(1 for r in reports if r.error),
    }


def _summary_line(reports: list[FileReport], check: bool) -> str:
    counts = _summary(reports, check)
    verb = "would be rewritten" if check else "rewritten"
    parts = [
        f"{counts['files']} file{'s' if counts['files'] != 1 else ''}: {counts['changed']} {verb}",
        f"{counts['unsupported']} uses of v1 that modelyard does not have yet",
    ]
    if counts["pipInstalls"]:
        parts.append(f"{counts['pipInstalls']} pip installs of azureml to replace by hand")
    if counts["errors"]:
        parts.append(f"{counts['errors']} could not be read or parsed")
    return "; ".join(parts)


def _as_json(report: FileReport) -> dict[str, Any]:
    def note(n: Any) -> dict[str, Any]:
        return {"cell": n.cell, "line": n.line, "kind": n.kind, "message": n.message}

    return {
        "path": report.path,
        "changed": report.changed,
        "changes": [note(n) for n in report.changes],
        "findings": [note(n) for n in report.findings],
        "written": report.written,
        "backup": report.backup,
        "error": report.error,
    }


class _Progress:
    """A bar on stderr for many files on a terminal; nothing otherwise."""

    def __init__(self, total: int) -> None:
        console = Console(stderr=True)
        self.bar: Progress | None = None
        if total >= _PROGRESS_FROM and console.is_terminal:
            self.bar = Progress(
                TextColumn("migrating"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
                transient=True,
            )
            self.task = self.bar.add_task("migrate", total=total)

    def __enter__(self) -> Any:
        if self.bar is not None:
            self.bar.start()
        return self.advance

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
