"""What a notebook shows of runs, experiments, workspaces, models and datastores: real
workspaces, each object's ``_repr_html_``, read back with Python's own HTML parser (so a name
that got through unescaped would show up as a tag, not as text)."""

from __future__ import annotations

import base64
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from modelyard import Datastore, Experiment, Model, Workspace
from modelyard.widgets import html as repr_html

XSS = "<img src=x onerror=alert(1)>"


class Page(HTMLParser):
    """The tags and the text of an HTML fragment."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def cells(self) -> list[str]:
        return [t for t in self.text if t.strip()]


def assert_shown_as_text(markup: str, value: str) -> None:
    """``value`` is in the page as text, and made no tag of its own."""
    page = Page(markup)
    assert any(value in t for t in page.text), markup
    assert "onerror" not in {key for _tag, attrs in page.tags for key in attrs}
    assert value not in markup  # only its escaped form is


def png(width: int, height: int) -> bytes:
    """A real PNG of one grey colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 0))
        + chunk(b"IEND", b"")
    )


def test_a_run_shows_status_ids_rounded_metrics_and_escaped_names(workspace: Workspace) -> None:
    experiment = Experiment(workspace, "shown")
    run = experiment.start_logging(display_name=XSS)
    run.log("accuracy", 0.912345678)
    run.log("accuracy", 0.934567891)
    run.log_list("losses", [0.5, 0.25])
    run.flush()

    markup = run._repr_html_()

    assert_shown_as_text(markup, XSS)
    cells = Page(markup).cells()
    assert run.id in cells and "Running" in cells and "interactive" in cells
    # The last value, to 4 significant digits, and the number of points.
    at = cells.index("accuracy")
    assert cells[at : at + 3] == ["accuracy", "0.9346", "2"]
    assert cells[cells.index("losses") : cells.index("losses") + 2] == ["losses", "[2 values]"]
    # A link to the run's page in the web UI.
    links = [attrs["href"] for tag, attrs in Page(markup).tags if tag == "a"]
    assert links == [run.get_portal_url()] and run.id in str(links[0])
    run.complete()
    assert "Completed" in Page(run._repr_html_()).cells()


def test_logged_images_are_small_thumbnails_and_big_ones_are_left_out(
    workspace: Workspace, tmp_path: Path
) -> None:
    run = Experiment(workspace, "images").start_logging()
    small = tmp_path / "small.png"
    small.write_bytes(png(8, 8))
    big = tmp_path / "big.png"
    big.write_bytes(png(600, 600))  # stored uncompressed: over the thumbnail cap
    assert big.stat().st_size > repr_html.MAX_THUMBNAIL_BYTES
    run.log_image("confusion", path=small)
    run.log_image("huge", path=big)
    run.flush()

    images = [attrs for tag, attrs in Page(run._repr_html_()).tags if tag == "img"]

    assert [image["alt"] for image in images] == ["confusion"]
    src = images[0]["src"] or ""
    assert src.startswith("data:image/png;base64,")
    assert base64.b64decode(src.split(",", 1)[1]) == small.read_bytes()


def test_an_experiment_and_its_runs_listing(workspace: Workspace) -> None:
    experiment = Experiment(workspace, "listed")
    first = experiment.start_logging(display_name=XSS)
    first.complete()
    second = experiment.start_logging()

    assert_shown_as_text(experiment._repr_html_(), XSS)
    cells = Page(experiment._repr_html_()).cells()
    assert "2" in cells and "Completed: 1, Running: 1" in cells

    runs = experiment.get_runs()
    markup = runs._repr_html_()
    assert_shown_as_text(markup, XSS)
    assert {first.id, second.id} <= set(Page(markup).cells())
    # Shown first, the iterator still yields every run, newest first, as v1's generator does.
    assert [run.id for run in runs] == [second.id, first.id]
    assert list(runs) == []
    assert next(experiment.get_runs()).id == second.id


def test_a_long_listing_says_there_are_more(workspace: Workspace) -> None:
    experiment = Experiment(workspace, "many")
    for _ in range(repr_html.MAX_ROWS + 2):
        experiment.start_logging().complete()

    runs = experiment.get_runs()
    page = Page(runs._repr_html_())

    assert sum(1 for tag, _ in page.tags if tag == "tr") == repr_html.MAX_ROWS + 1  # + header
    assert any("iterate for the others" in t for t in page.text)
    assert len(list(runs)) == repr_html.MAX_ROWS + 2


def test_a_workspace_shows_its_experiments(workspace: Workspace) -> None:
    Experiment(workspace, "alpha")
    Experiment(workspace, "beta")

    cells = Page(workspace._repr_html_()).cells()

    assert "test-ws" in cells and "alpha, beta" in cells


def test_models_and_their_listing_escape_tags_and_descriptions(
    workspace: Workspace, tmp_path: Path
) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\0" * 16)
    model = Model.register(workspace, weights, "net", tags={"note": XSS}, description=f"desc {XSS}")
    Model.register(workspace, weights, "net")

    assert_shown_as_text(model._repr_html_(), XSS)
    assert "net:1" in Page(model._repr_html_()).text[0] + "".join(Page(model._repr_html_()).text)

    models = Model.list(workspace)
    assert isinstance(models, list) and [m.id for m in models] == ["net:2", "net:1"]
    markup = models._repr_html_()  # type: ignore[attr-defined]
    assert_shown_as_text(markup, XSS)
    rows = [t for tag, _ in Page(markup).tags for t in [tag] if tag == "tr"]
    assert len(rows) == 3


@pytest.mark.usefixtures("clean_memory_fs")
def test_a_datastore_shows_no_secret(workspace: Workspace) -> None:
    secret = "s3cr3t-Value-0123456789"
    datastore = Datastore.register(
        workspace, "mem", "memory://bucket/data", skip_instance_cache=True, secret=secret
    )

    markup = datastore._repr_html_()
    again = Datastore.get(workspace, "mem")._repr_html_()

    for shown in (markup, again):
        assert secret not in shown
        cells = Page(shown).cells()
        assert "mem" in cells and "memory://bucket/data" in cells
        assert "secret, skip_instance_cache" in cells  # the options' names, not their values
    assert "yes" in Page(workspace.get_default_datastore()._repr_html_()).cells()


def test_urls_shown_carry_no_password_nor_option_value() -> None:
    assert repr_html.public_url("s3://key:pass@bucket/data") == "s3://bucket/data"
    assert repr_html.public_url("https://u:p@host:9000/x") == "https://host:9000/x"
    assert repr_html.public_url("s3://bucket/tok-1234567", {"token": "tok-1234567"}) == (
        "s3://bucket/***"
    )


def test_values_are_rounded_and_escaped() -> None:
    assert repr_html.number(0.000123456) == "0.0001235"
    assert repr_html.number(1234567.0) == "1.235e+06"
    assert repr_html.number(3) == "3" and repr_html.number(True) == "True"
    assert repr_html.number(float("nan")) == "nan"
    assert repr_html.text('"><script>') == "&quot;&gt;&lt;script&gt;"
