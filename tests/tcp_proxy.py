"""A TCP forwarder in front of a real server, with faults a test switches on and off.

The store's endpoint stays real (moto's server, tests/s3.py); the proxy only decides what
happens to the bytes on their way, the way a flaky network would:

- ``forward``: every byte goes through (the default);
- ``refuse``: a connection, new or kept alive, is closed when it sends a request, so the
  client sees the endpoint away and nothing reaches the server;
- ``hold``: requests wait in the proxy until ``release()``, so a call stays in flight as long
  as the test wants;
- ``drop_replies(n)``: the next ``n`` requests reach the server, which does the work, and
  their replies are lost (the connection closes instead): the case a retry must survive.

The counters (``refused``, ``dropped``, ``delivered``, ``held``) let a test wait for what it
needs with :meth:`wait_until`, never on time.

Example::

    proxy = TcpProxy.start("127.0.0.1", 9000)
    proxy.set_mode("refuse")        # the endpoint is away
    proxy.wait_until(lambda p: p.refused >= 3)
    proxy.set_mode("forward")       # and back
    proxy.stop()
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

HOST = "127.0.0.1"


class TcpProxy:
    """One listening forwarder; see the module docstring."""

    def __init__(self, listener: socket.socket, upstream: tuple[str, int]) -> None:
        self._listener = listener
        self._upstream = upstream
        self._cond = threading.Condition()
        self._mode = "forward"
        self._drop_budget = 0
        self._stopped = False
        self._sockets: set[socket.socket] = set()
        self.refused = 0  # requests closed before they reached the server
        self.dropped = 0  # replies the server sent that never reached the client
        self.delivered = 0  # reply chunks that reached the client
        self.held = 0  # requests waiting in ``hold`` now
        port = listener.getsockname()[1]
        self.endpoint_url = f"http://{HOST}:{port}"
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    @classmethod
    def start(cls, upstream_host: str, upstream_port: int) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, 0))
        listener.listen(64)
        return cls(listener, (upstream_host, upstream_port))

    # -- what the test switches -----------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        assert mode in ("forward", "refuse", "hold"), mode
        with self._cond:
            self._mode = mode
            self._cond.notify_all()

    def release(self) -> None:
        """Let held requests (and later ones) through."""
        self.set_mode("forward")

    def drop_replies(self, count: int) -> None:
        """Lose the replies of the next ``count`` requests that reach the server."""
        with self._cond:
            self._drop_budget += count
            self._cond.notify_all()

    def wait_until(self, condition: Callable[[TcpProxy], bool], timeout: float = 60.0) -> None:
        """Wait until ``condition(self)`` holds: checked whenever a counter moves, and every
        50 ms for a condition on something else."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the proxy's condition not met within {timeout} s")
                self._cond.wait(min(left, 0.05))

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._mode = "refuse"
            self._cond.notify_all()
            sockets = list(self._sockets)
        with contextlib.suppress(OSError):
            self._listener.close()
        for sock in sockets:
            _close(sock)

    # -- the forwarding ------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self._upstream)
            except OSError:
                _close(client)
                continue
            with self._cond:
                if self._stopped:
                    _close(client)
                    _close(upstream)
                    return
                self._sockets.update((client, upstream))
            # One request in flight per connection (HTTP/1.1 without pipelining): set when a
            # request is forwarded, taken by its reply.
            state = {"drop": False}
            threading.Thread(
                target=self._requests, args=(client, upstream, state), daemon=True
            ).start()
            threading.Thread(
                target=self._replies, args=(upstream, client, state), daemon=True
            ).start()

    def _requests(
        self, client: socket.socket, upstream: socket.socket, state: dict[str, bool]
    ) -> None:
        try:
            while data := client.recv(1 << 16):
                with self._cond:
                    while self._mode == "hold":
                        self.held += 1
                        self._cond.notify_all()
                        self._cond.wait()
                        self.held -= 1
                    if self._mode == "refuse":
                        self.refused += 1
                        self._cond.notify_all()
                        break
                    if self._drop_budget and not state["drop"]:
                        self._drop_budget -= 1
                        state["drop"] = True
                upstream.sendall(data)
        except OSError:
            pass
        self._forget(client, upstream)

    def _replies(
        self, upstream: socket.socket, client: socket.socket, state: dict[str, bool]
    ) -> None:
        try:
            while data := upstream.recv(1 << 16):
                with self._cond:
                    if state["drop"]:
                        self.dropped += 1
                        self._cond.notify_all()
                        break
                client.sendall(data)
                with self._cond:
                    self.delivered += 1
                    self._cond.notify_all()
        except OSError:
            pass
        self._forget(client, upstream)

    def _forget(self, *sockets: socket.socket) -> None:
        with self._cond:
            self._sockets.difference_update(sockets)
        for sock in sockets:
            _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
