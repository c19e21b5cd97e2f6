"""``modelyard tensorboard RUN_ID...``: TensorBoard on runs' logs, until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType

import click

from modelyard.cli.output import print_message
from modelyard.cli.params import option_names
from modelyard.cli.state import CliState
from modelyard.tensorboard import DEFAULT_HOST, DEFAULT_PORT, Tensorboard

# The SDK's argument names as the user typed them, for its ValidationErrors.
_OPTIONS = {"runs": "RUN_ID", "port": "--port", "host": "--host", "local_root": "--local-root"}


@click.command("tensorboard")
@click.argument("run_ids", metavar="RUN_ID...", nargs=-1, required=True)
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TensorBoard's port; 0 takes a free one.",
)
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="The address to listen on (127.0.0.1: this machine only).",
)
@click.option(
    "--local-root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the runs' logs are copied, and kept (default: a temporary folder, removed "
    "at the end).",
)
@click.pass_obj
def command(
    state: CliState, run_ids: tuple[str, ...], port: int, host: str, local_root: Path | None
) -> None:
    """Start TensorBoard on runs' logs/ files; print its URL.

    TensorBoard reads the logs/ files of RUN_ID..., each run a TensorBoard run named by its
    id. The logs of runs still running are followed until they end; Ctrl-C stops TensorBoard.

    \b
    Example:
      modelyard tensorboard tf-mnist_1714557600_1a2b3c4d --port 0
    """
    runs = [state.get_run(run_id) for run_id in run_ids]
    with option_names(**_OPTIONS):
        board = Tensorboard(runs, local_root=local_root, port=port, host=host)
    # SIGTERM (a service manager, `kill`) ends it as Ctrl-C does: TensorBoard is stopped too.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with option_names(**_OPTIONS):
            url = board.start()
        print_message(f"TensorBoard at {url} on {len(runs)} run(s); press Ctrl-C to stop it")
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    finally:
        board.stop()
        signal.signal(signal.SIGTERM, previous)
    print_message("TensorBoard stopped")


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


__all__ = ["command"]
