"""Schemathesis against the server's OpenAPI document: no request it makes gets a 5xx.

Schemathesis (its command-line runner, in a subprocess) reads ``/openapi.json`` and sends
every route requests made from its schemas, valid and not, as the admin, in one workspace
that exists, so the requests reach the backend rather than stop at a 404. Any 5xx fails
the test with Schemathesis' report of the request that caused it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server_process import ServerProcess

# Examples per route: enough to reach the edges of each schema (empty strings, large and
# negative numbers, NUL bytes, odd unicode) in a few minutes on two cores.
EXAMPLES = 8


@pytest.mark.parametrize("kind", ["http_server", "http_server_at_scale"])
def test_no_request_from_the_schema_gets_a_server_error(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """On SQLite and folders, and on PostgreSQL (which refuses NUL in text) and S3."""
    http_server: ServerProcess = request.getfixturevalue(kind)
    workspace = http_server.new_workspace()
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'headers = {{ Authorization = "Bearer {http_server.admin_token}" }}\n'
        "[parameters]\n"
        f'"path.workspace" = "{workspace}"\n'
    )
    runner = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert runner is not None, "schemathesis is one of the dev extra's packages"
    result = subprocess.run(
        [
            runner,
            "--config-file",
            str(config),
            "run",
            f"{http_server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            "13",
            "--request-timeout",
            "60",
            # One worker: schemathesis' threads parse sources with ast at once, which
            # Python 3.11 can fail at ("AST constructor recursion depth mismatch").
            "--workers",
            "1",
            "--exclude-path",
            "/api/v1/tokens",  # tokens made at random would pile up
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=1500,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
