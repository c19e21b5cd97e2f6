"""Storage options of cloud object stores, from the arguments of v1's ``register_*`` calls.

v1 named an Azure storage account by its name, a credential (account key or SAS token), a
protocol and an endpoint suffix; fsspec's Azure filesystem (``adlfs``) takes them as options,
which :func:`azure_blob_options` builds for ``Datastore.register_azure_blob_container``.
"""

from __future__ import annotations

import re
from typing import Any

from modelyard.errors import ValidationError


def azure_blob_options(
    account_name: str,
    sas_token: str | None = None,
    account_key: str | None = None,
    protocol: str | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """The ``adlfs`` storage options of an Azure storage account, from v1's arguments.

    Example::

        azure_blob_options("acct", account_key="k")
        # {'account_name': 'acct', 'account_key': 'k'}
        azure_blob_options("devstoreaccount1", account_key="k", protocol="http",
                           endpoint="127.0.0.1:10000")   # Azurite: a connection string
    """
    if not isinstance(account_name, str) or not _AZURE_ACCOUNT.fullmatch(account_name):
        raise ValidationError(
            "account_name",
            f"{account_name!r} is not a storage account name (3-24 lowercase letters and digits)",
        )
    if sas_token is not None and account_key is not None:
        raise ValidationError("sas_token", "give sas_token or account_key, not both")
    scheme = (protocol or "https").lower()
    if scheme not in ("https", "http"):
        raise ValidationError("protocol", f"{protocol!r} is not 'https' or 'http'")
    suffix = endpoint or "core.windows.net"
    if not isinstance(suffix, str) or not _HOST.fullmatch(suffix):
        raise ValidationError("endpoint", f"{endpoint!r} is not a host name (core.windows.net)")
    credential = (
        {"account_key": account_key}
        if account_key is not None
        else {"sas_token": sas_token.lstrip("?")}
        if sas_token is not None
        else {}
    )
    if scheme == "http":
        # adlfs speaks https to an account host; plain http (an emulator) takes the
        # connection string form, which carries the protocol, the endpoint and the credential.
        parts = [f"DefaultEndpointsProtocol=http;AccountName={account_name}"]
        if account_key is not None:
            parts.append(f"AccountKey={account_key}")
        if sas_token is not None:
            parts.append(f"SharedAccessSignature={sas_token.lstrip('?')}")
        parts.append(f"BlobEndpoint=http://{suffix}/{account_name}")
        return {"account_name": account_name, "connection_string": ";".join(parts)}
    options: dict[str, Any] = {"account_name": account_name, **credential}
    if endpoint is not None:
        options["account_host"] = f"{account_name}.blob.{suffix}"
    return options


# Account names and endpoints as Azure allows them.
_AZURE_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
_HOST = re.compile(r"[A-Za-z0-9.-]+(?::\d{1,5})?")


__all__ = ["azure_blob_options"]
