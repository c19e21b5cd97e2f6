"""How the HTTP client reaches a modelyard server: requests, retries, errors, streams.

Every call of the Backend contract is idempotent (runs are created with the client's id,
metric batches carry their ``batch_id``, file writes replace or skip what is there), so a
call that got no answer is sent again: on a connection that failed or broke, a timeout, and
the answers a server gives while it restarts or behind a proxy (502, 503, 504). The waits
grow from ``FIRST_WAIT_S`` to ``LONGEST_WAIT_S`` with jitter, for up to ``retry_for_s``
(``MODELYARD_RETRY_S``, 120 s by default: long enough for a server to restart); the first
retry of an outage says so on the ``modelyard`` logger, and the call's error names the
server when it gives up. An upload is sent again from the start of its file (a stream
that cannot seek back is not), or, for a large file sent in parts, only the part that
failed; a download that breaks half-way goes on where it was (``Range``), so neither
repeats what was acknowledged nor loses a byte.

Errors the server answers (4xx, 500) are raised as the same modelyard error the backend
raised there (type, message, field), 401 as AuthenticationError.

Example::

    transport = Transport("http://127.0.0.1:8765", token="myd_...")
    transport.request("GET", "/api/v1/whoami")       # {'user': 'ada', ...}
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from modelyard import errors
from modelyard.backend.channel_wire import error_from_wire
from modelyard.backend.remote import SHA256_HEADER
from modelyard.backend.remote.parted_upload import PARTED_THRESHOLD, upload_in_parts

logger = logging.getLogger("modelyard")

RETRY_ENV = "MODELYARD_RETRY_S"
DEFAULT_RETRY_S = 120.0
FIRST_WAIT_S = 0.1
LONGEST_WAIT_S = 5.0
# Answers that mean "not now" rather than "no": a server restarting behind a proxy, or one
# whose threads are all busy.
_RETRY_STATUSES = frozenset({502, 503, 504})
# A call waits this long for a reply before it counts as lost (and is sent again); long
# calls (a page of 100,000 metric points) take well under a second on a local network.
READ_TIMEOUT_S = 300.0
CHUNK_BYTES = 1 << 20

T = TypeVar("T")


def retry_for_s() -> float:
    """How long calls keep trying a server that does not answer (``MODELYARD_RETRY_S``)."""
    value = os.environ.get(RETRY_ENV)
    if value is None:
        return DEFAULT_RETRY_S
    try:
        seconds = float(value)
    except ValueError:
        raise errors.ConfigError(
            f"{RETRY_ENV}={value!r} is not a number of seconds; set it to, say, 120"
        ) from None
    if not seconds >= 0:
        raise errors.ConfigError(f"{RETRY_ENV}={value!r} must be 0 or more seconds")
    return seconds


class ServerAway(errors.StorageError):
    """The server did not answer for as long as the client retried."""


class Transport:
    """Requests to one server with one token (or none: a server then answers 401).

    Thread-safe: httpx's client pools connections across threads. A forked child makes
    its own pool (a parent's connections are never shared with a child).
    """

    def __init__(
        self, server: str, token: str | None = None, *, retry_for: float | None = None
    ) -> None:
        self.server = server.rstrip("/")
        self._token = token
        self.retry_for = retry_for_s() if retry_for is None else retry_for
        self._pid = -1
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None or self._pid != os.getpid():
            headers = {"User-Agent": "modelyard"}
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            self._client = httpx.Client(
                base_url=self.server,
                headers=headers,
                timeout=httpx.Timeout(30.0, read=READ_TIMEOUT_S),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            )
            self._pid = os.getpid()
        return self._client

    def close(self) -> None:
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = None

    # -- calls ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """Send a request (again until answered) and return its JSON reply."""

        def send() -> httpx.Response:
            headers = {"Content-Type": "application/json"} if content is not None else None
            return self.client.request(
                method, path, json=json, content=content, params=params, headers=headers
            )

        response = self.retrying(send, path)
        return response.json() if response.content else None

    def upload(self, path: str, params: dict[str, Any], source: Path | IO[bytes]) -> Any:
        """Send a file as the body of ``POST path`` and return the JSON reply. A path is
        read from its start by each attempt, and so is a stream that can seek; any other
        stream is sent once (a retry would lose what was read of it). A file of more than
        ``PARTED_THRESHOLD`` bytes goes in parts, each sent again alone when it fails, and
        resumed where it stopped when uploaded again (``parted_upload.py``)."""
        headers: dict[str, str] = {"Content-Type": "application/octet-stream"}
        if isinstance(source, Path):
            try:
                with open(source, "rb") as file:
                    digest = hashlib.file_digest(file, "sha256").hexdigest()
                    size = file.tell()
            except OSError as error:
                raise errors.ValidationError(
                    "source", f"cannot read {source}: {error.strerror}"
                ) from None
            if size > PARTED_THRESHOLD:
                return upload_in_parts(self, path, params, source, size, digest)
            headers[SHA256_HEADER] = digest
            headers["Content-Length"] = str(size)
            start = 0
        else:
            start = source.tell() if source.seekable() else -1
        sent: list[bool] = []

        def send() -> httpx.Response:
            if isinstance(source, Path):
                with open(source, "rb") as file:
                    return self.client.post(
                        path, params=params, content=_chunks(file), headers=headers
                    )
            if sent and start < 0:
                raise _NoRetry("the stream it read cannot be read again")
            if sent:
                source.seek(start)
            sent.append(True)
            return self.client.post(path, params=params, content=_chunks(source), headers=headers)

        response = self.retrying(send, path)
        return response.json() if response.content else None

    def download(self, path: str, params: dict[str, Any]) -> IO[bytes]:
        """The body of ``GET path`` as a stream, read as it arrives; a connection that
        breaks half-way is resumed from the byte it broke at."""
        return io.BufferedReader(_Download(self, path, params), CHUNK_BYTES)

    def _open_stream(self, path: str, params: dict[str, Any], offset: int) -> httpx.Response:
        headers = {"Range": f"bytes={offset}-"} if offset else None

        def send() -> httpx.Response:
            request = self.client.build_request("GET", path, params=params, headers=headers)
            response = self.client.send(request, stream=True)
            if response.status_code >= 400:
                response.read()
            return response

        return self.retrying(send, path)

    # -- retries -------------------------------------------------------------------------

    def retrying(self, send: Callable[[], httpx.Response], path: str) -> httpx.Response:
        """``send()``'s response, sent again while the server does not answer (see the
        module docstring); the modelyard error a 4xx or 500 answer names."""
        deadline = time.monotonic() + self.retry_for
        wait = FIRST_WAIT_S
        said = False
        while True:
            try:
                response = send()
                if response.status_code not in _RETRY_STATUSES:
                    if said:
                        logger.warning("modelyard server %s answers again", self.server)
                    return _checked(response)
                failure = f"HTTP {response.status_code}"
            except _NoRetry as error:
                raise errors.StorageError(
                    f"the call to {self.server}{path} broke off and {error}; call again"
                ) from None
            except httpx.TransportError as error:
                failure = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerAway(
                    f"the modelyard server at {self.server} did not answer {path} for "
                    f"{self.retry_for:g} s ({failure}); check that it runs and that this "
                    f"machine reaches it (set {RETRY_ENV} to wait longer)"
                )
            if not said:
                logger.warning(
                    "modelyard server %s is not answering (%s); retrying for up to %g s",
                    self.server,
                    failure,
                    self.retry_for,
                )
                said = True
            time.sleep(min(left, wait * random.uniform(0.5, 1.0)))
            wait = min(wait * 2, LONGEST_WAIT_S)


class _NoRetry(Exception):
    """An attempt that must not be repeated: the reason is the message."""


def _chunks(file: IO[bytes]) -> Iterator[bytes]:
    while chunk := file.read(CHUNK_BYTES):
        yield chunk


def _checked(response: httpx.Response) -> httpx.Response:
    """``response``, or the modelyard error its body names (4xx, 500)."""
    if response.status_code < 400:
        return response
    try:
        info = response.json()["error"]
        if not isinstance(info, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        text = response.text[:200]
        if response.status_code == 401:
            raise errors.AuthenticationError(text or "the server wants a token") from None
        raise errors.StorageError(
            f"the server answered HTTP {response.status_code} to {response.request.url.path}: "
            f"{text}"
        ) from None
    raise error_from_wire(info)


class _Download(io.RawIOBase):
    """A download's body as a raw stream, resumed with a Range request where it broke."""

    def __init__(self, transport: Transport, path: str, params: dict[str, Any]) -> None:
        self._transport = transport
        self._path = path
        self._params = params
        self._offset = 0
        self._response: httpx.Response | None = transport._open_stream(path, params, 0)
        self._chunks: Iterator[bytes] | None = None
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            chunk = self._next_chunk()
            if chunk is None:
                return 0
            self._pending = chunk
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        self._offset += count
        return count

    def _next_chunk(self) -> bytes | None:
        for _attempt in range(5):
            if self._response is None:
                return None
            if self._chunks is None:
                self._chunks = self._response.iter_raw(CHUNK_BYTES)
            try:
                return next(self._chunks)
            except StopIteration:
                self._finish()
                return None
            except httpx.TransportError:
                # The connection broke: ask again for the rest, from the byte it broke at.
                self._finish()
                self._response = self._transport._open_stream(
                    self._path, self._params, self._offset
                )
                if self._response.status_code != 206 and self._offset:
                    raise errors.StorageError(
                        f"the download of {self._path} broke off at byte {self._offset} "
                        "and the server cannot resume it; download it again"
                    ) from None
        raise errors.StorageError(
            f"the download of {self._path} broke off 5 times at byte {self._offset}; "
            "download it again"
        )

    def _finish(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response = None
        self._chunks = None

    def close(self) -> None:
        self._finish()
        super().close()


__all__ = ["ServerAway", "Transport", "retry_for_s"]
