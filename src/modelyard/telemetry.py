"""v1's ``azureml.telemetry``: ``set_diagnostics_collection``, which modelyard accepts and
ignores, because it collects nothing: no usage data, no diagnostics, nothing sent anywhere.

The first call in a process says so (v1 printed a line too); later calls are silent.

Example::

    from modelyard.telemetry import set_diagnostics_collection

    set_diagnostics_collection(send_diagnostics=True)
    # modelyard collects no diagnostics or usage data; set_diagnostics_collection changes nothing
"""

from __future__ import annotations

import threading

_said = threading.Event()

MESSAGE = (
    "modelyard collects no diagnostics or usage data and sends nothing anywhere; "
    "set_diagnostics_collection changes nothing"
)


def set_diagnostics_collection(
    send_diagnostics: bool = True,
    verbosity: object = None,
    reset: bool = False,
    path: str | None = None,
) -> None:
    """Accept v1's call and change nothing; the first call of a process prints why.

    ``verbosity`` (v1: a ``logging`` level), ``reset`` and ``path`` (v1: where the setting
    was saved) are accepted for v1 code and mean nothing here.
    """
    if not _said.is_set():
        _said.set()
        print(MESSAGE)


__all__ = ["set_diagnostics_collection"]
