"""``RunDetails(run).show()``: a live notebook widget of a run, as v1's ``azureml.widgets``.

It shows the run's status and duration, a line chart per metric series (single values and
other kinds in a table), the tail of the run's output log, and for a parent or tuning
(HyperDrive) run its children with their status and best metric. A background thread reads
what is new from the backend (:mod:`modelyard.widgets.run_state`) about once a second until
the run ends, then reads once more and stops.

The widget is an anywidget (https://anywidget.dev): one ES module sent with the widget, drawn
by the ipywidgets front end that JupyterLab, Notebook 7, VS Code and Colab all ship, with no
extension to build or install per front end (ipywidgets alone needs a labextension for a
custom view). The state lives in traits, so the kernel reads what is shown
(``widget.status``, ``widget.metrics``, ``widget.log_tail``, ``widget.children``); the front
end builds its DOM with ``textContent`` only, so names and log lines show as text.

Example::

    from modelyard.widgets import RunDetails

    run = exp.submit(config)
    RunDetails(run).show()
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

try:
    import anywidget
    import traitlets
except ImportError as error:  # the `widgets` extra
    raise ImportError(
        "RunDetails needs anywidget: pip install 'modelyard[widgets]' (or pip install anywidget)"
    ) from error

from modelyard.errors import ValidationError
from modelyard.run import Run
from modelyard.widgets import html as repr_html
from modelyard.widgets.run_state import RunWatcher

logger = logging.getLogger(__name__)

# How often the thread reads the run while it runs.
REFRESH_INTERVAL_S = 1.0
# Reads that may fail in a row (about a second apart) before the widget stops following.
MAX_FAILURES = 30
WIDGET_MIME_TYPE = "application/vnd.jupyter.widget-view+json"
# What get_widget_data returns: the traits of the run and of its following.
_STATE_KEYS = (
    "run_id",
    "name",
    "experiment",
    "run_type",
    "status",
    "duration",
    "error",
    "metrics",
    "log_tail",
    "log_name",
    "children",
    "primary_metric",
    "ended",
    "following",
    "follow_error",
)


class RunDetails(anywidget.AnyWidget):
    """A live view of ``run_instance`` in a notebook: status, metric charts, log tail and
    children; :meth:`show` displays it and follows the run until it ends.

    Example::

        details = RunDetails(run)
        details.show()
        details.wait()                  # until the run has ended and the last refresh is in
        details.status, details.metrics["loss"]["count"]
    """

    _esm = Path(__file__).with_name("run_details.js")
    _css = (
        ".modelyard-run-details table{border-collapse:collapse;margin:4px 0}"
        ".modelyard-run-details th,.modelyard-run-details td{border:1px solid #ccc;"
        "padding:2px 6px;text-align:left}"
        ".modelyard-charts{display:flex;flex-wrap:wrap;gap:8px}"
        ".modelyard-chart{margin:0}.modelyard-error{color:#b00}"
        ".modelyard-log{max-height:20em;overflow:auto;background:#f6f6f6;padding:4px;"
        "white-space:pre-wrap}"
    )

    run_id = traitlets.Unicode("").tag(sync=True)
    name = traitlets.Unicode("").tag(sync=True)
    experiment = traitlets.Unicode("").tag(sync=True)
    run_type = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    duration = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    metrics = traitlets.Dict().tag(sync=True)
    log_tail = traitlets.Unicode("").tag(sync=True)
    log_name = traitlets.Unicode("").tag(sync=True)
    children: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    primary_metric = traitlets.Dict().tag(sync=True)
    ended = traitlets.Bool(False).tag(sync=True)
    # True while the background thread follows the run; why it could not read the run, if so.
    following = traitlets.Bool(False).tag(sync=True)
    follow_error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, run_instance: Run, **kwargs: Any) -> None:
        if not isinstance(run_instance, Run):
            raise ValidationError(
                "run_instance",
                f"RunDetails shows a run of a workspace, not {type(run_instance).__name__}: give "
                "it one from exp.submit(...), exp.start_logging() or Run.get(ws, run_id)",
            )
        super().__init__(**kwargs)
        self._run = run_instance
        self._watcher = RunWatcher(run_instance)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refresh()

    def refresh(self) -> None:
        """Read what is new of the run now, and show it."""
        state = self._watcher.poll()
        with self.hold_sync():  # one message to the front end, not one per trait
            for key, value in state.items():
                if getattr(self, key) != value:
                    setattr(self, key, value)

    def _follow(self) -> None:
        failures = 0
        try:
            while not self.ended and not self._stop.wait(REFRESH_INTERVAL_S):
                try:
                    self.refresh()
                    failures = 0
                    self.follow_error = ""
                except Exception as error:  # a server briefly away: shown, tried again
                    failures += 1
                    logger.warning("RunDetails could not read run %s: %s", self.run_id, error)
                    self.follow_error = f"could not read the run ({failures} times): {error}"
                    if failures >= MAX_FAILURES:
                        return
            if self.ended and not self._stop.is_set():
                # Once more after the end: what was written as the run ended is shown too.
                self.refresh()
        except Exception as error:
            logger.warning("RunDetails could not read run %s: %s", self.run_id, error)
            self.follow_error = f"could not read the run: {error}"
        finally:
            self.following = False

    def start(self) -> None:
        """Follow the run from a background thread (``show()`` starts it)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self.following = not self.ended
        if self.following:
            self._thread = threading.Thread(
                target=self._follow, name=f"RunDetails {self.run_id}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop following the run (what is shown stays)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        """Close the widget (in the kernel and the notebook) and stop following the run."""
        # ipywidgets closes a widget on garbage collection too, maybe of a half-made one.
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
        super().close()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the thread has seen the run end (and shown its last state); False when
        ``timeout`` seconds passed first.

        Example::

            details = RunDetails(run)
            details.show()
            run.wait_for_completion()
            details.wait()
        """
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return self.ended

    def show(self) -> None:
        """Display the widget in the notebook and follow the run until it ends (v1's
        ``RunDetails(run).show()``)."""
        # Imported here: IPython is there wherever a notebook shows this, not in scripts.
        from IPython.display import display

        display(self)  # type: ignore[no-untyped-call]
        self.start()

    def get_widget_data(self, widget_settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the widget shows, as a dict (v1's ``get_widget_data``; ``widget_settings`` is
        v1's and changes nothing here).

        Example::

            RunDetails(run).get_widget_data()["status"]     # 'Completed'
        """
        return {key: getattr(self, key) for key in _STATE_KEYS}

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        # Where the widget's front end is missing (nbviewer, a notebook saved without widget
        # state), the run's table shows instead.
        return {
            **data,
            "text/html": repr_html.run_html(self._run._backend, self._run._refresh()),
        }, metadata


__all__ = ["RunDetails"]
