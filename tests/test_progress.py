"""The transfer progress tally: exact counts from many threads, cheap updates, one summary."""

from __future__ import annotations

import io
import threading

import pytest
from rich.console import Console

from modelyard.progress import TransferProgress, format_bytes, summary_line


def test_format_bytes_uses_binary_units() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1536, 5 << 20, 3 << 30, 1 << 50)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 GiB",
        "1024.0 TiB",
    ]


def test_summary_line_names_the_first_skipped_files() -> None:
    skipped = [f"f{i}" for i in range(8)]

    line = summary_line("upload", 10_000, 3 << 30, 2.0, skipped)

    assert line == (
        "Uploaded 10,000 files (3.0 GiB) in 2.0 s (1.5 GiB/s); skipped 8 that exist: "
        "f0, f1, f2, f3, f4 and 3 more (pass overwrite=True to replace them)"
    )
    assert summary_line("download", 1, 0, 0.0, []) == "Downloaded 1 file (0 B) in 0.0 s"


def test_counts_are_exact_from_many_threads() -> None:
    progress = TransferProgress("upload", 40_000, 40_000, show_progress=False)

    def feed() -> None:
        for _ in range(10_000):
            progress.advance(1, files=1)

    with progress:
        threads = [threading.Thread(target=feed) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert (progress.files_done, progress.bytes_done) == (40_000, 40_000)


def test_updates_are_cheap_and_not_drawn_one_by_one() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    calls = 200_000

    with TransferProgress("download", calls, calls * 10, console=console) as progress:
        for _ in range(calls):
            progress.advance(10, files=1)

    # A redraw per call would write megabytes (and take minutes); the speed of a call is
    # measured by benchmarks/bench_upload.py, not asserted here.
    assert len(out.getvalue()) < 50_000
    assert f"Downloaded {calls:,} files (1.9 MiB)" in out.getvalue()


def test_a_file_written_meanwhile_comes_off_the_totals() -> None:
    with TransferProgress("upload", 2, 30, show_progress=False) as progress:
        progress.advance(10, files=1)
        progress.advance(20)  # b, counted as it was copied, then found to exist
        progress.withdraw("b", planned_bytes=20, copied_bytes=20)

    assert (progress.total_files, progress.total_bytes) == (1, 10)
    assert (progress.files_done, progress.bytes_done, progress.skipped) == (1, 10, ["b"])


def test_no_summary_after_a_failure() -> None:
    out = io.StringIO()

    with (
        pytest.raises(RuntimeError),
        TransferProgress("upload", 1, 1, console=Console(file=out)) as progress,
    ):
        progress.advance(1)
        raise RuntimeError("disk gone")

    assert out.getvalue() == ""


def test_show_progress_false_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with TransferProgress("upload", 1, 1, show_progress=False) as progress:
        progress.advance(1, files=1)
        progress.skip("other")

    assert capsys.readouterr() == ("", "")
    assert "skipped 1 that exist: other" in progress.summary()
