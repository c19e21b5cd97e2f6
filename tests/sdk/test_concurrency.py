"""Many processes writing to one workspace at once: nothing lost, no 'database is locked',
no model version given twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard import Experiment, Model, Run, Workspace
from tests.helpers import start_together

PROCESSES = 8
LOGGING_PROCESSES = 40

LOG_SCRIPT = """
import sys
from modelyard import Workspace, Experiment, Run
ws = Workspace.get("test-ws", folder=sys.argv[1])
exp = Experiment(ws, "concurrent")
run = Run(exp, sys.argv[2])
sys.stdin.readline()                    # start together
for i in range(10_000):
    run.log("points", int(sys.argv[3]) * 10_000 + i)
    if i % 1000 == 999:
        run.flush()                     # many small transactions, to contend for the lock
run.flush()
"""

REGISTER_SCRIPT = """
import sys
from modelyard import Workspace, Model
ws = Workspace.get("test-ws", folder=sys.argv[1])
sys.stdin.readline()
model = Model.register(ws, sys.argv[2], "shared-name", tags={"writer": sys.argv[3]})
print(model.version)
"""


@pytest.mark.slow
def test_forty_processes_log_into_one_run(workspace: Workspace) -> None:
    exp = Experiment(workspace, "concurrent")
    run = exp.start_logging()
    start_together(
        [[LOG_SCRIPT, str(workspace.folder), run.id, str(n)] for n in range(LOGGING_PROCESSES)],
        forbidden=("locked",),
    )
    values = Run(exp, run.id).get_metrics("points")["points"]
    assert len(values) == LOGGING_PROCESSES * 10_000
    assert sorted(values) == list(range(LOGGING_PROCESSES * 10_000))
    for n in range(LOGGING_PROCESSES):  # each process's points in its order
        mine = [v for v in values if v // 10_000 == n]
        assert mine == sorted(mine)


@pytest.mark.slow
def test_eight_processes_register_one_model_name(workspace: Workspace, tmp_path: Path) -> None:
    model_file = tmp_path / "model.bin"
    model_file.write_bytes(b"weights")
    versions = start_together(
        [
            [REGISTER_SCRIPT, str(workspace.folder), str(model_file), str(i)]
            for i in range(PROCESSES)
        ],
        forbidden=("locked",),
    )
    assert sorted(int(v) for v in versions) == list(range(1, PROCESSES + 1))
    models = Model.list(workspace, name="shared-name")
    assert sorted(m.version for m in models) == list(range(1, PROCESSES + 1))
    assert sorted(m.tags["writer"] for m in models) == [str(i) for i in range(PROCESSES)]
