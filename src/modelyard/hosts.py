"""Host names, addresses and ports: which name this machine's loopback, and which ports a
server could listen on now.

Example::

    is_loopback("127.0.0.1")        # True
    is_loopback("10.0.0.5")         # False
    port = free_port("127.0.0.1")   # a port nothing listens on
    bind_error("127.0.0.1", port)   # None: a server could listen there
"""

from __future__ import annotations

import ipaddress
import socket


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name, or an IPv4 or IPv6 address, bracketed or not) is this
    machine's loopback, which another machine cannot reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_error(host: str, port: int) -> OSError | None:
    """Why a server could not listen on ``host:port`` now (None: it could). Probed as uvicorn
    and TensorBoard bind, with SO_REUSEADDR: a port left in TIME_WAIT is free to them."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error
    return None


def free_port(host: str) -> int:
    """A port of ``host`` nothing listens on now, for a server to take."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


__all__ = ["bind_error", "free_port", "is_loopback"]
