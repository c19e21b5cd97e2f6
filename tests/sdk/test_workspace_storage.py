"""A workspace whose files are on a real S3 endpoint (moto's server, tests/s3.py)."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path
from typing import Any

import fsspec

from modelyard.experiment import Experiment
from modelyard.run import Run
from modelyard.workspace import Workspace


def test_a_workspace_on_s3_keeps_run_files_and_live_logs_there(
    tmp_path: Path, s3_store: tuple[str, dict[str, Any]]
) -> None:
    url, options = s3_store
    ws = Workspace.create("s3ws", folder=tmp_path / "ws", storage_url=url, storage_options=options)
    run = Experiment(ws, "e").start_logging()
    run.upload_file("outputs/model.txt", io.BytesIO(b"weights"))
    backend = ws._backend
    offset = 0
    for i in range(50):  # what a supervisor does with a run's output
        line = f"line {i}\n".encode()
        backend.append_run_file(run.id, "user_logs/std_log.txt", offset, line)
        offset += len(line)
    run.complete()

    # Opened again from its folder, the workspace finds its files on S3.
    again = Run(Experiment(Workspace.get("s3ws", folder=tmp_path / "ws"), "e"), run.id)
    assert again.get_file_names() == ["outputs/model.txt", "user_logs/std_log.txt"]
    assert again.download_file("outputs/model.txt", tmp_path / "m.txt").read_bytes() == b"weights"
    log = again.download_file("user_logs/std_log.txt", tmp_path / "log.txt").read_text()
    assert log == "".join(f"line {i}\n" for i in range(50))

    bucket_files = fsspec.filesystem("s3", **options).find(url)
    assert any(path.endswith("outputs/model.txt") for path in bucket_files)
    assert not [p for p in (tmp_path / "ws" / "artifacts").rglob("*") if p.is_file()]
    # The credentials are in workspace.json, which only its owner may read.
    info_path = tmp_path / "ws" / "workspace.json"
    assert json.loads(info_path.read_text())["storage_options"]["secret"] == options["secret"]
    assert stat.S_IMODE(info_path.stat().st_mode) == 0o600
