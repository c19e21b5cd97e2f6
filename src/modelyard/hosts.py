"""Host names and addresses: which of them name this machine's loopback.

Example::

    is_loopback("127.0.0.1")        # True
    is_loopback("[::1]")            # True
    is_loopback("10.0.0.5")         # False
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name, or an IPv4 or IPv6 address, bracketed or not) is this
    machine's loopback, which another machine cannot reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["is_loopback"]
