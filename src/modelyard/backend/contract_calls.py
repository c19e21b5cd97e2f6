"""The Backend contract as data: each call's parameters and result, for the HTTP layer.

The server makes one route per call (``server/calls.py``) and the HTTP client one method per
call (``backend/remote``), both from this description of ``backend/base.py``, so a method
added to the contract reaches the network with no code of its own and the two ends never
disagree about a call's shape.

Three shapes of call, told apart by their type hints:

- a **JSON call**: its arguments travel as one JSON object, its result as ``{"result": ...}``;
- an **upload**: one parameter is a ``FileSource``; its bytes are the request's body and the
  other arguments its query string;
- a **download**: the result is ``IO[bytes]``; the response's body is the file.

Arguments and results are encoded by pydantic from the hints (records of
``backend/records.py`` are dataclasses, which pydantic builds back on the other side), with
bytes as base64 and NaN and infinities as JSON's ``NaN``/``Infinity`` constants, so what a
script logs comes back as it was.

Example::

    call = contract_calls()["get_run"]
    call.arguments(("mnist_1_ab12",), {})       # {'run_id': 'mnist_1_ab12'}
    call.result.model_validate_json(reply).result   # RunRecord(...)
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from dataclasses import dataclass
from typing import IO, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError

from modelyard.backend.base import Backend, FileSource
from modelyard.errors import ValidationError

# How values travel: bytes as base64 (JSON has no bytes), NaN and infinities as constants
# (a metric may be NaN; JSON proper has no such number, Python's json and pydantic read them).
WIRE_CONFIG = ConfigDict(
    ser_json_bytes="base64",
    val_json_bytes="base64",
    ser_json_inf_nan="constants",
    extra="forbid",
)
# Non-abstract methods that are calls too: the base class answers them from other calls,
# which a remote backend would then make one by one; one round trip each is better.
_ALSO_CALLS = ("find_compute", "find_dataset")


@dataclass(frozen=True)
class ContractCall:
    """One method of the Backend contract, as it travels."""

    name: str
    signature: inspect.Signature
    # The JSON arguments' model (every parameter but the upload's source).
    body: type[BaseModel]
    # The reply's model, ``{"result": ...}`` (None for a download, whose reply is a stream).
    result: type[BaseModel] | None
    # The parameter whose bytes are the request body, for an upload.
    upload: str | None
    doc: str

    @property
    def download(self) -> bool:
        return self.result is None

    def validated(self, arguments: dict[str, Any]) -> BaseModel:
        """The arguments as the call's model (ValidationError naming the first at fault)."""
        try:
            return self.body(**arguments)
        except PydanticValidationError as error:
            raise wire_error(error) from None

    def encoded(self, arguments: dict[str, Any]) -> bytes:
        """The arguments as the request's JSON body (ValidationError naming an argument
        that is not JSON data: an object in a dict of values, say)."""
        values = self.validated(arguments)
        try:
            return values.model_dump_json().encode()
        except PydanticSerializationError as error:
            for name in self.body.model_fields:
                try:
                    self.body.__pydantic_serializer__.to_json(values, include={name})
                except PydanticSerializationError:
                    raise ValidationError(
                        name, f"must be JSON data (dicts, lists, strings, numbers): {error}"
                    ) from None
            raise ValidationError("arguments", str(error)) from None

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Positional and keyword arguments of a call as one dict by parameter name, with
        the defaults of those not given (TypeError as a plain call would raise)."""
        bound = self.signature.bind(None, *args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        values.pop("self")
        return values


def wire_error(error: PydanticValidationError) -> ValidationError:
    """A pydantic error of a call's arguments as the ValidationError naming the first
    argument at fault, and where in it (``batches``: "at 0.values: ...", say)."""
    first = error.errors()[0]
    location = [str(part) for part in first["loc"]]
    if not location:
        return ValidationError("body", first["msg"])
    inside = ".".join(location[1:])
    return ValidationError(location[0], f"at {inside}: {first['msg']}" if inside else first["msg"])


# Integers travel as SQL's 64-bit ones: a larger one is refused at the wire, naming its
# argument, rather than overflow in the database.
WireInt = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


def _bounded(hint: Any) -> Any:
    """``hint`` with every ``int`` in it a :data:`WireInt` (``int | None``, ``list[int]``)."""
    if hint is int:
        return WireInt
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if not args or origin is None or origin is Annotated:
        return hint
    bounded = tuple(_bounded(arg) for arg in args)
    if bounded == args:
        return hint
    if origin is types.UnionType or origin is typing.Union:
        return typing.Union[bounded]  # noqa: UP007
    return origin[bounded]


def _is_file_source(hint: Any) -> bool:
    return bool(hint == FileSource)


def _describe(name: str) -> ContractCall:
    method = getattr(Backend, name)
    hints = typing.get_type_hints(method)
    signature = inspect.signature(method)
    fields: dict[str, Any] = {}
    upload: str | None = None
    for parameter in list(signature.parameters.values())[1:]:
        hint = hints[parameter.name]
        if _is_file_source(hint):
            upload = parameter.name
            continue
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (_bounded(hint), default)
    body = create_model(
        "".join(part.title() for part in name.split("_")) + "Arguments",
        __config__=WIRE_CONFIG,
        **fields,
    )
    returned = hints["return"]
    title = "".join(part.title() for part in name.split("_"))
    result = (
        None
        if returned == IO[bytes]
        else create_model(title + "Result", __config__=WIRE_CONFIG, result=(returned, ...))
    )
    return ContractCall(
        name=name,
        signature=signature,
        body=body,
        result=result,
        upload=upload,
        doc=inspect.getdoc(method) or "",
    )


@functools.cache
def contract_calls() -> dict[str, ContractCall]:
    """Every call of the contract by name, in name order."""
    names = sorted({*Backend.__abstractmethods__, *_ALSO_CALLS})
    return {name: _describe(name) for name in names}


__all__ = ["WIRE_CONFIG", "ContractCall", "contract_calls", "wire_error"]
