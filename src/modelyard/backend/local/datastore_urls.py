"""Which datastore URLs and storage options a backend accepts at registration.

A registered datastore is read and written by the backend: on a server, by the server's
process, on the server's network. A URL or an endpoint chosen by a client must not make it
fetch from elsewhere (SSRF): the cloud's instance metadata service, which hands out the
machine's own credentials, or the server's own files. :func:`check_datastore_location`
refuses, with a ValidationError naming the field and before anything is written:

- ``http://`` and ``https://`` datastores (fsspec's HTTP filesystem fetches any URL), and a URL
  that chains filesystems (``simplecache::s3://...``), whose inner URL would escape the rules;
- any URL, endpoint or other storage option value that names a link-local or metadata host:
  ``169.254.0.0/16`` (in any spelling the C library accepts: ``0xa9fea9fe``, ``2852039166``),
  ``fe80::/10``, ``fd00:ec2::254`` (AWS's IPv6 metadata address), IPv4-mapped forms of those,
  ``metadata.google.internal`` and ``metadata``. A host name is not resolved here (a name
  that resolves to such an address is not caught): put the server behind an egress rule for
  those addresses too;
- on a backend with ``allowed_local_roots`` (a server's), schemes other than
  :data:`SERVER_SCHEMES`, and ``file://`` folders outside those roots (after following links:
  ``/srv/data/../../etc`` and a link from a root to ``/etc`` are both outside). A folder
  relative to the workspace (a URL without a scheme, such as ``datastores/x``) stays inside
  it and is always accepted.

An embedded workspace (``allowed_local_roots=None``) belongs to the account that runs it,
which can read its own files anyway: any other fsspec filesystem is accepted there (``zip://``,
``sftp://``, ...), and any folder.

Example::

    check_datastore_location("s3://bucket/raw", {"endpoint_url": "http://169.254.169.254"}, None)
    # ValidationError: storage_options: 'http://169.254.169.254' names a link-local ...
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from modelyard.errors import ValidationError

# The schemes a server's datastores may use: object stores, local folders inside the allowed
# roots, and memory:// (the server process's own memory, which reaches nothing else).
SERVER_SCHEMES = frozenset({"file", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
_REFUSED_SCHEMES = frozenset({"http", "https"})
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata"})
_LINK_LOCAL = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


def check_datastore_location(
    url: str, storage_options: dict[str, Any], allowed_local_roots: Sequence[str] | None
) -> None:
    """Refuse ``url`` and ``storage_options`` as the module docstring says; ``url`` is a
    datastore URL as stored (``scheme://...``, or a folder relative to the workspace)."""
    if "::" in url:
        raise ValidationError(
            "url",
            f"{url!r} chains filesystems ('::'); register the inner URL itself (s3://..., "
            "gs://..., a folder)",
        )
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in _REFUSED_SCHEMES:
        raise ValidationError(
            "url",
            f"{url!r}: datastores on http(s) URLs are not accepted (the backend would fetch "
            "whatever they name); copy the files into a folder or an object store",
        )
    if scheme:
        _check_host("url", url)
    for value in _strings(storage_options):
        if "://" in value:
            _check_host("storage_options", value)
        elif _forbidden_address(value):
            raise ValidationError(
                "storage_options",
                f"{value!r} is a link-local or metadata address; a datastore may not reach it",
            )
    if allowed_local_roots is None or not scheme:
        return
    if scheme not in SERVER_SCHEMES:
        raise ValidationError(
            "url",
            f"{url!r}: this server accepts datastores on {', '.join(sorted(SERVER_SCHEMES))} "
            f"URLs only, not {scheme}://",
        )
    if scheme == "file":
        _check_local_root(url, allowed_local_roots)


def _check_local_root(url: str, allowed_local_roots: Sequence[str]) -> None:
    path = unquote(urlsplit(url).path)
    real = os.path.realpath(path)
    for root in allowed_local_roots:
        root_real = os.path.realpath(root)
        if real == root_real or real.startswith(root_real.rstrip("/") + "/"):
            return
    shown = ", ".join(repr(root) for root in allowed_local_roots) or "none"
    raise ValidationError(
        "url",
        f"{url!r} is outside the folders this server may keep datastores in ({shown}); "
        "register a folder below one of them, or an object store",
    )


def _check_host(field: str, url: str) -> None:
    try:
        host = urlsplit(url).hostname
    except ValueError as error:
        raise ValidationError(field, f"{url!r} is not a URL: {error}") from None
    if host is not None and _forbidden_address(unquote(host)):
        raise ValidationError(
            field,
            f"{url!r} names a link-local or metadata address ({host}); a datastore may not "
            "reach it: give the object store's own endpoint",
        )


def _forbidden_address(host: str) -> bool:
    """Whether ``host`` is a metadata host name or a link-local address, in any spelling."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name in _METADATA_HOSTS:
        return True
    address = _parse_address(name)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _LINK_LOCAL)


def _parse_address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        pass
    # What connect() would take as an IPv4 address too: 2852039166, 0xa9fea9fe, 169.254.43518.
    if name and all(part for part in name.split(".")) and name.replace(".", "").isalnum():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


__all__ = ["SERVER_SCHEMES", "check_datastore_location"]
