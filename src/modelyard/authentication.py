"""v1's ``azureml.core.authentication``: its classes, accepted with their v1 arguments.

An embedded workspace is a folder on this machine: who may use it is who may read the folder,
and no sign-in happens. These classes exist so that v1 code that builds one and passes it as
``auth=`` to ``Workspace``, ``Workspace.get`` or ``Workspace.from_config`` runs unchanged.
They mean nothing here and keep nothing secret: a password, a token or a token callback given
to them is dropped at once, never stored, logged or written to a file. Only what names the
identity (a tenant, a client id, a cloud) is kept, for ``repr``. Authentication that means
something comes with the modelyard server.

Example::

    from modelyard.authentication import ServicePrincipalAuthentication

    auth = ServicePrincipalAuthentication(
        tenant_id="my-tenant",
        service_principal_id="my-client-id",
        service_principal_password=os.environ["AML_PASSWORD"],   # dropped, not kept
    )
    ws = Workspace.from_config(auth=auth)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class AbstractAuthentication:
    """The base of the v1 authentication classes: a record of who, with no credential."""

    def __init__(self, cloud: str | None = None) -> None:
        self.cloud = cloud or "AzureCloud"

    def _identity(self) -> dict[str, Any]:
        return {"cloud": self.cloud}

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self._identity().items())
        return f"{type(self).__name__}({fields})"


class InteractiveLoginAuthentication(AbstractAuthentication):
    """v1's browser sign-in; nothing to sign in to for an embedded workspace."""

    def __init__(
        self, force: bool = False, tenant_id: str | None = None, cloud: str | None = None
    ) -> None:
        super().__init__(cloud)
        self.force = force
        self.tenant_id = tenant_id

    def _identity(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, **super()._identity()}


class ServicePrincipalAuthentication(AbstractAuthentication):
    """v1's service principal; ``service_principal_password`` is accepted and dropped."""

    def __init__(
        self,
        tenant_id: str,
        service_principal_id: str,
        service_principal_password: str,
        cloud: str = "AzureCloud",
        _enable_caching: bool = True,
    ) -> None:
        super().__init__(cloud)
        self.tenant_id = tenant_id
        self.service_principal_id = service_principal_id
        del service_principal_password  # never kept: see the module docstring

    def _identity(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "service_principal_id": self.service_principal_id,
            **super()._identity(),
        }


class MsiAuthentication(AbstractAuthentication):
    """v1's managed identity of an Azure VM."""

    def __init__(
        self, cloud: str | None = None, identity_config: dict[str, Any] | None = None
    ) -> None:
        super().__init__(cloud)
        self.identity_config = dict(identity_config or {})

    def _identity(self) -> dict[str, Any]:
        return {"identity_config": self.identity_config, **super()._identity()}


class AzureCliAuthentication(AbstractAuthentication):
    """v1's ``az login`` session."""


class TokenAuthentication(AbstractAuthentication):
    """v1's token callback (``get_token_for_audience``): accepted and dropped, never called."""

    def __init__(
        self, get_token_for_audience: Callable[..., Any], cloud: str | None = None
    ) -> None:
        super().__init__(cloud)
        del get_token_for_audience  # never kept: see the module docstring


__all__ = [
    "AbstractAuthentication",
    "AzureCliAuthentication",
    "InteractiveLoginAuthentication",
    "MsiAuthentication",
    "ServicePrincipalAuthentication",
    "TokenAuthentication",
]
