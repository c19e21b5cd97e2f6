"""Every error modelyard raises, in one tree.

::

    ModelyardError                 root: catch this to catch everything modelyard raises
    ├── UserError                  the caller asked for something that cannot be done (HTTP 4xx)
    │   ├── ValidationError        a bad name, path or value; names the field (400)
    │   │   └── TooLargeError          a request body over the server's limit (413)
    │   ├── NotFoundError          a workspace, experiment, run, datastore or model is missing (404)
    │   │   ├── ComputeTargetException   a compute target is missing (v1 name, kept for notebooks)
    │   │   └── WebserviceException      a web service is missing (v1 name; deployment is to come)
    │   ├── ConflictError          it exists already, or its state forbids the call (409)
    │   ├── AuthenticationError    no token, or one unknown, revoked or expired (401)
    │   ├── PermissionDeniedError  the caller may not: a script outside its run (403)
    │   └── ConfigError            no config.json found, or it cannot be read (400)
    ├── RunFailedError             a run ended Failed or Canceled while the caller waited
    └── StorageError               the metadata store or file storage failed underneath (500)
        └── MetricsNotStoredError  logged metric points could not be stored (after retries)

Errors the user caused carry a stable ``code`` (for scripts and, later, HTTP bodies), an
``http_status`` and an ``exit_code`` for the CLI, all decided here and nowhere else. Vendor errors
(SQLAlchemy, fsspec, OS errors) are translated into these at the edge of the store.

Example::

    try:
        Model(ws, "mnist", version=7)
    except NotFoundError as e:
        print(e.code, e)        # not_found  model 'mnist' version 7 does not exist ...
"""

from __future__ import annotations


class ModelyardError(Exception):
    """The root of every error modelyard raises."""

    code = "error"
    http_status = 500
    exit_code = 1


class UserError(ModelyardError):
    """The caller asked for something that cannot be done; the message says what to do."""

    code = "bad_request"
    http_status = 400
    exit_code = 2


class ValidationError(UserError, ValueError):
    """A name, path or value failed validation. ``field`` names the argument at fault."""

    code = "validation_error"

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class TooLargeError(ValidationError):
    """A request body over the server's limit: send less in one call."""

    code = "too_large"
    http_status = 413


class NotFoundError(UserError, LookupError):
    """The named object does not exist."""

    code = "not_found"
    http_status = 404
    exit_code = 3


class ComputeTargetException(NotFoundError):
    """A compute target is missing or cannot be used (the v1 SDK's name for it)."""

    code = "compute_target_error"


class WebserviceException(NotFoundError):
    """A web service is missing or cannot be used (the v1 SDK's name for it): ``Webservice(ws,
    name)`` of no such service, a deployment that failed to start, a scoring error."""

    code = "webservice_error"


class ConflictError(UserError):
    """The object exists already, or its current state forbids the call."""

    code = "conflict"
    http_status = 409
    exit_code = 4


class AuthenticationError(UserError):
    """A server call came without a token, or with one the server does not accept (unknown,
    revoked, expired): log in again (``modelyard login SERVER``) or set ``MODELYARD_TOKEN``."""

    code = "unauthenticated"
    http_status = 401
    exit_code = 8


class PermissionDeniedError(UserError):
    """The caller may not make this call: a run's script asked for something outside its
    run, say."""

    code = "permission_denied"
    http_status = 403


class ConfigError(UserError):
    """No workspace configuration was found, or it could not be read."""

    code = "config_error"
    exit_code = 5


class RunFailedError(ModelyardError):
    """A run the caller waited for ended Failed or Canceled. ``run_exit_code`` is the
    script's exit code when it had one; ``details`` is the run's ``get_details()``."""

    code = "run_failed"
    exit_code = 6

    def __init__(
        self,
        message: str,
        exit_code: int | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.run_exit_code = exit_code
        self.details = details or {}


class StorageError(ModelyardError):
    """The metadata database or file storage failed underneath modelyard."""

    code = "storage_error"
    exit_code = 7


class MetricsNotStoredError(StorageError):
    """Metric points that were logged could not be stored, even after retries. ``lost`` maps
    each metric to how many of its points were lost; ``reasons`` holds the first error of each.
    """

    code = "metrics_not_stored"

    def __init__(self, lost: dict[str, int], reasons: dict[str, str]) -> None:
        self.lost = dict(lost)
        self.reasons = dict(reasons)
        total = sum(lost.values())
        parts = ", ".join(
            f"{count:,} of {name!r} ({reasons.get(name, 'unknown error')})"
            for name, count in sorted(lost.items())
        )
        super().__init__(
            f"{total:,} logged metric point{'s' if total != 1 else ''} could not be stored: "
            f"{parts}. The points logged since are not affected; fix the cause and log "
            "the lost points again."
        )


__all__ = [
    "ComputeTargetException",
    "ConfigError",
    "ConflictError",
    "MetricsNotStoredError",
    "ModelyardError",
    "NotFoundError",
    "PermissionDeniedError",
    "RunFailedError",
    "StorageError",
    "UserError",
    "ValidationError",
    "WebserviceException",
]
