"""A real S3 endpoint for the test session: moto's server in a process of its own.

``python -m moto.server`` listens on 127.0.0.1 on a free port; each test then gets a bucket of
its own. Credentials are dummy values given through fsspec's ``storage_options``; the
machine's AWS settings are never read (the server's environment points them at /dev/null,
and the client is given its key, secret and endpoint explicitly).

Example::

    server = S3Server.start()
    url, options = server.new_bucket()   # "s3://b-1a2b.../data", {"key": ..., ...}
    FileStore(url, options).write_bytes("a.txt", b"hi")
    server.stop()
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import fsspec

from modelyard.hosts import free_port

HOST = "127.0.0.1"
KEY = "testing-key"
SECRET = "testing-secret"
REGION = "us-east-1"
# Only a failure waits this long: moto imports in a few seconds, but a test run on 2 busy
# cores (TensorFlow and Ray clusters beside it) once took over 30 s to bring it up.
_START_SECONDS = 120


def isolated_env() -> dict[str, str]:
    """This process's environment without the machine's AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_ACCESS_KEY_ID=KEY,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_DEFAULT_REGION=REGION,
    )
    return env


@dataclass
class S3Server:
    """One running moto server; ``stop()`` ends it."""

    process: subprocess.Popen[bytes]
    endpoint_url: str

    @classmethod
    def start(cls) -> S3Server:
        port = free_port(HOST)
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            env=isolated_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = cls(process, f"http://{HOST}:{port}")
        deadline = time.monotonic() + _START_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"moto's server exited with {process.returncode}: "
                    "`make install` installs moto[server] (the dev extra)"
                )
            try:
                with urllib.request.urlopen(server.endpoint_url + "/", timeout=2):
                    return server
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    server.stop()
                    raise RuntimeError(
                        f"moto's server did not answer on {server.endpoint_url} "
                        f"within {_START_SECONDS} s"
                    ) from None
                time.sleep(0.05)

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec/s3fs options that reach this server, and only it."""
        return {
            "key": KEY,
            "secret": SECRET,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": REGION},
            # A fresh client per store: a cached one could point at another test's server.
            "skip_instance_cache": True,
        }

    def new_bucket(self, prefix: str = "data") -> tuple[str, dict[str, Any]]:
        """A new empty bucket; returns the URL ``s3://<bucket>/<prefix>`` and the options."""
        bucket = f"b-{uuid.uuid4().hex[:20]}"
        fs = fsspec.filesystem("s3", **self.storage_options)
        # Not fs.mkdir: s3fs sends the region as a LocationConstraint, which us-east-1 refuses.
        fs.call_s3("create_bucket", Bucket=bucket)
        return f"s3://{bucket}/{prefix}", self.storage_options

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
