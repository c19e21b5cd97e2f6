"""The root of the ``modelyard`` command: global options, the nouns, and exit codes.

Every command drives the public SDK. A :class:`~modelyard.errors.ModelyardError` raised inside
becomes its message on stderr (no traceback) and the process exits with the error's
``exit_code``; the codes are listed in ``modelyard --help`` from the error classes themselves,
so the help cannot drift from what the commands do.

Example::

    $ modelyard workspace create demo
    $ modelyard run list --experiment tf-mnist --json | jq '.[0].runId'
    $ modelyard --json run show tf-mnist_1714557600_1a2b3c4d
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

import modelyard
from modelyard.cli import (
    admin,
    compute,
    datastore,
    env,
    experiment,
    hyperdrive,
    migrate,
    model,
    run,
    run_control,  # noqa: F401 - adds run submit|logs|cancel to run
    server,
    service,
    tensorboard,
    ui,
    workspace,
)
from modelyard.cli.output import escape_control
from modelyard.cli.state import CliState
from modelyard.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    ModelyardError,
    NotFoundError,
    RunFailedError,
    StorageError,
    ValidationError,
)

CONFIG_ENV = "MODELYARD_CONFIG"
# What a shell reports for a process ended by Ctrl-C (128 + SIGINT).
INTERRUPTED_EXIT_CODE = 130
UNEXPECTED_EXIT_CODE = ModelyardError.exit_code

EXIT_CODES: list[tuple[int, str]] = [
    (0, "success"),
    (UNEXPECTED_EXIT_CODE, "any other error (the message says what failed)"),
    (ValidationError.exit_code, "bad input: a usage error, or a bad name, path or value"),
    (NotFoundError.exit_code, "not found: no such experiment, run, datastore or model"),
    (ConflictError.exit_code, "conflict: it exists already, or its state forbids the command"),
    (ConfigError.exit_code, "no workspace config found, or it cannot be read"),
    (RunFailedError.exit_code, "the run failed or was canceled (commands that wait for a run)"),
    (StorageError.exit_code, "the workspace's database or file storage failed"),
    (AuthenticationError.exit_code, "the server wants a token, or does not take the one given"),
    (INTERRUPTED_EXIT_CODE, "interrupted (Ctrl-C)"),
]

# "\b" keeps click from re-wrapping the lines of a paragraph.
EPILOG = (
    "\b\nExamples:\n"
    "  modelyard workspace create demo\n"
    "  modelyard run list --experiment tf-mnist --limit 5\n"
    "  modelyard model download tf-dnn-mnist:3 --output ./model\n"
    "\n\b\nExit codes:\n" + "\n".join(f"  {code:<4}{text}" for code, text in EXIT_CODES)
)


def _report(ctx: click.Context, message: str, code: str, exit_code: int) -> None:
    state = ctx.find_object(CliState)
    if state is not None and state.json_output:
        error = {"error": {"code": code, "message": message, "exit_code": exit_code}}
        click.echo(json.dumps(error, ensure_ascii=False), err=True)
    else:
        # Messages quote what the user gave (names, paths): control characters in it are
        # shown escaped, line by line, so a name cannot rewrite the terminal.
        shown = "\n".join(escape_control(line) for line in message.split("\n"))
        click.echo(f"Error: {shown}", err=True)


class ModelyardGroup(click.Group):
    """The root group: turns errors raised by any command into a message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelyardError as error:
            _report(ctx, str(error), error.code, error.exit_code)
            ctx.exit(error.exit_code)
        except BrokenPipeError:
            # `modelyard run list | head`: the reader has gone, so stay quiet, and point stdout
            # at /dev/null so that Python's flush at exit does not fail again (Python docs,
            # "Note on SIGPIPE").
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(UNEXPECTED_EXIT_CODE)
        except OSError as error:
            # A local file the user named: a folder that cannot be written, a disk that is full.
            _report(ctx, str(error), "os_error", UNEXPECTED_EXIT_CODE)
            ctx.exit(UNEXPECTED_EXIT_CODE)
        except KeyboardInterrupt:
            _report(ctx, "interrupted", "interrupted", INTERRUPTED_EXIT_CODE)
            ctx.exit(INTERRUPTED_EXIT_CODE)


@click.group(cls=ModelyardGroup, epilog=EPILOG)
@click.option(
    "--workspace-config",
    "config_path",
    metavar="PATH",
    envvar=CONFIG_ENV,
    show_envvar=True,
    help="The workspace's config.json, or a folder holding it (or .modelyard/config.json). "
    "Default: search the current folder and its parents.",
)
@click.option(
    "--json",
    "json_output",
    is_flag=True,
    help="Machine-readable JSON from every command that has --json, as if given to it "
    "(and errors as JSON on stderr).",
)
@click.version_option(modelyard.__version__, prog_name="modelyard")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, json_output: bool) -> None:
    """modelyard: workspaces, runs, datastores and a model registry, from the shell.

    Commands find the workspace as Workspace.from_config() does, unless --workspace-config
    names one. For machine-readable output add --json here or after the command: `modelyard
    --json run list` and `modelyard run list --json` print the same JSON.
    """
    ctx.obj = CliState(config_path=config_path, json_output=json_output)


for _noun in (workspace, experiment, run, hyperdrive, datastore, model, env, compute, admin):
    cli.add_command(_noun.group)
cli.add_command(service.group)
cli.add_command(migrate.command)
cli.add_command(tensorboard.command)
cli.add_command(ui.command)
for _command in server.COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """The ``modelyard`` console script."""
    cli(prog_name="modelyard")


if __name__ == "__main__":
    main()
