"""v1's raw-HTTP scoring style: a ``@rawhttp`` ``run(request)`` is handed the request itself
and may answer an ``AMLResponse`` (any status, headers and body).

v1 (``azureml.contrib.services``) handed such a ``run`` a Flask request and took a Flask
response. Here :class:`AMLRequest` is a small class over the request the scoring app has
already read (its body read once, within ``max_request_bytes``), with the attributes v1's
scripts use: ``method``, ``headers``, ``args``, ``get_data()``, ``data``, ``get_json()``,
``json``, ``form``, ``files``, ``path``, ``full_path``, ``url``. :class:`AMLResponse` is a
Starlette response. A ``run`` that returns anything else is answered as JSON, as a plain
``run`` is; a ``run`` that raises answers 500 with its message.

Multipart uploads (``request.files["image"]``) are parsed with Starlette's form parser when
first read; it needs the ``python-multipart`` package in the service's environment. Without
it, reading ``files`` or ``form`` of a multipart request raises ConfigError saying so, while
``get_data()`` still gives the raw body.

Example::

    import json
    from modelyard.contrib.services.aml_request import AMLRequest, rawhttp
    from modelyard.contrib.services.aml_response import AMLResponse

    @rawhttp
    def run(request):
        if request.method == "GET":
            return AMLResponse(request.full_path, 200)
        image = request.files["image"].read()
        return AMLResponse(json.dumps({"bytes": len(image)}), 200)

    run(AMLRequest("GET", "http://127.0.0.1/score?x=1")).body     # b'/score?x=1'
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shutil
import threading
import urllib.parse
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Iterator, Mapping
from typing import IO, Any, TypeVar

from starlette import formparsers
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import Response

from modelyard.errors import ConfigError, ValidationError

RAWHTTP_ATTRIBUTE = "__modelyard_rawhttp__"
_JSON_TYPES = ("application/json",)
_FORM_URLENCODED = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"

_Value = TypeVar("_Value")
_Function = TypeVar("_Function", bound=Callable[..., Any])
_Result = TypeVar("_Result")


def rawhttp(func: _Function) -> _Function:
    """Mark ``run`` as taking the request (an :class:`AMLRequest`) instead of its body; the
    scoring route then answers GET as well as POST.

    Example::

        @rawhttp
        def run(request):
            return AMLResponse(request.get_data(), 200)
    """
    setattr(func, RAWHTTP_ATTRIBUTE, True)
    return func


def is_rawhttp(func: Callable[..., Any]) -> bool:
    """Whether ``func`` was decorated with :func:`rawhttp` (also under decorators that keep
    its attributes, as ``functools.wraps`` and wrapt do)."""
    return getattr(func, RAWHTTP_ATTRIBUTE, False) is True


def multipart_available() -> bool:
    """Whether Starlette's form parser can parse multipart bodies here: it needs the
    ``python-multipart`` package."""
    # Starlette's own answer: the module it imported, or None (it tries python_multipart, then
    # the older name multipart).
    return getattr(formparsers, "multipart", None) is not None


class MultiDict(Mapping[str, _Value]):
    """Form fields, query parameters or files: a key may come more than once. ``d[key]`` and
    ``get`` give its first value, ``getlist`` all of them (as werkzeug's MultiDict).

    Example::

        args = MultiDict([("n", "3"), ("tag", "a"), ("tag", "b")])
        args.get("n", type=int)      # 3
        args.getlist("tag")          # ['a', 'b']
    """

    def __init__(self, items: Iterable[tuple[str, _Value]] = ()) -> None:
        self._items = list(items)
        self._first: dict[str, _Value] = {}
        for key, value in self._items:
            self._first.setdefault(key, value)

    def __getitem__(self, key: str) -> _Value:
        try:
            return self._first[key]
        except KeyError:
            raise KeyError(
                f"{key!r} is not in the request; it has {sorted(self._first) or 'none'}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def get(
        self, key: str, default: Any = None, type: Callable[[_Value], Any] | None = None
    ) -> Any:
        """The first value of ``key``, converted by ``type`` when given; ``default`` when
        there is none or ``type`` raises ValueError (as werkzeug's ``get``)."""
        if key not in self._first:
            return default
        if type is None:
            return self._first[key]
        try:
            return type(self._first[key])
        except ValueError:
            return default

    def getlist(self, key: str, type: Callable[[_Value], Any] | None = None) -> list[Any]:
        """Every value of ``key`` in order (those ``type`` cannot convert left out)."""
        values = [value for name, value in self._items if name == key]
        if type is None:
            return values
        converted = []
        for value in values:
            try:
                converted.append(type(value))
            except ValueError:
                continue
        return converted

    def multi_items(self) -> list[tuple[str, _Value]]:
        """Every (key, value) pair, repeated keys included."""
        return list(self._items)

    def to_dict(self, flat: bool = True) -> dict[str, Any]:
        """``{key: first value}``, or ``{key: [values]}`` when not ``flat``."""
        if flat:
            return dict(self._first)
        return {key: self.getlist(key) for key in self._first}

    def __repr__(self) -> str:
        return f"MultiDict({self._items!r})"


class _ContentTyped:
    """``content_type`` and ``mimetype`` from ``headers``, as werkzeug's requests and files
    have them."""

    headers: Mapping[str, str]

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def mimetype(self) -> str:
        """The content type without its parameters, lower case (``application/json``)."""
        return (self.content_type or "").split(";")[0].strip().lower()


class FileStorage(_ContentTyped):
    """An uploaded file of a multipart request (what werkzeug's ``request.files`` held):
    ``read()``, ``stream``, ``filename``, ``content_type``, ``save(path)``.

    Example::

        upload = request.files["image"]
        upload.filename            # 'digit.png'
        data = upload.read()
    """

    def __init__(
        self,
        stream: IO[bytes],
        filename: str | None,
        name: str,
        headers: Mapping[str, str],
    ) -> None:
        self.stream = stream
        self.filename = filename
        self.name = name
        self.headers = headers

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)

    def save(self, destination: str | os.PathLike[str] | IO[bytes]) -> None:
        """Write the file to a path or into a binary file object."""
        if isinstance(destination, str | os.PathLike):
            with open(destination, "wb") as target:
                shutil.copyfileobj(self.stream, target)
        else:
            shutil.copyfileobj(self.stream, destination)

    def close(self) -> None:
        self.stream.close()

    def __repr__(self) -> str:
        return f"<FileStorage {self.filename!r} ({self.content_type})>"


class AMLRequest(_ContentTyped):
    """The request a ``@rawhttp`` ``run`` is given (v1's Flask request, its parts scripts use).

    The scoring app makes one per request; a test of a scoring script can make one itself.

    Example::

        request = AMLRequest("POST", "http://127.0.0.1:6789/score?n=2",
                             {"Content-Type": "application/json"}, b'{"data": [1, 2]}')
        request.args.get("n", type=int)     # 2
        request.get_json()                  # {'data': [1, 2]}
        request.full_path                   # '/score?n=2'
    """

    headers: Headers  # Starlette's: case-blind, and what the multipart parser reads

    def __init__(
        self,
        method: str = "POST",
        url: str = "http://127.0.0.1/score",
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        remote_addr: str | None = None,
    ) -> None:
        self.method = method.upper()
        self.url = url
        parts = urllib.parse.urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.netloc
        self.path = parts.path or "/"
        self.query_string = parts.query.encode("latin-1", errors="replace")
        self.base_url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, self.path, "", ""))
        self.headers = headers if isinstance(headers, Headers) else Headers(dict(headers or {}))
        self.remote_addr = remote_addr
        self.args: MultiDict[str] = MultiDict(
            urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        )
        self._body = bytes(body)
        self._form: tuple[MultiDict[str], MultiDict[FileStorage]] | None = None
        self._lock = threading.Lock()

    # -- the head --------------------------------------------------------------------------

    @property
    def full_path(self) -> str:
        """The path and its query (``/score?x=1``; ``/score?`` with none, as werkzeug's)."""
        return f"{self.path}?{self.query_string.decode('latin-1')}"

    @property
    def content_length(self) -> int | None:
        declared = self.headers.get("content-length")
        return int(declared) if declared is not None and declared.isdigit() else None

    @property
    def is_json(self) -> bool:
        """Whether the body is declared JSON (``application/json`` or ``...+json``)."""
        mimetype = self.mimetype
        return mimetype in _JSON_TYPES or (
            mimetype.startswith("application/") and mimetype.endswith("+json")
        )

    # -- the body --------------------------------------------------------------------------

    @property
    def data(self) -> bytes:
        """The body's bytes."""
        return self._body

    def get_data(
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> bytes | str:
        """The body: bytes, or text (UTF-8) with ``as_text``. It was read once, before
        ``run``: ``cache`` and ``parse_form_data`` change nothing (they are werkzeug's)."""
        if as_text:
            return self._body.decode("utf-8", errors="replace")
        return self._body

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """The body parsed as JSON; None when it is not declared JSON (unless ``force``), as
        Flask 1's request (v1's) had it. ValidationError when it is not JSON (None with
        ``silent``)."""
        if not (force or self.is_json):
            return None
        try:
            return json.loads(self._body)
        except ValueError as error:
            if silent:
                return None
            raise ValidationError(
                "body", f"the request body is not JSON ({error}); send JSON"
            ) from None

    @property
    def json(self) -> Any:
        """``get_json()``."""
        return self.get_json()

    @property
    def form(self) -> MultiDict[str]:
        """The fields of a form body (urlencoded or multipart; the files are in ``files``)."""
        return self._parsed_form()[0]

    @property
    def files(self) -> MultiDict[FileStorage]:
        """The uploaded files of a multipart body, by field name."""
        return self._parsed_form()[1]

    @property
    def values(self) -> MultiDict[str]:
        """``args`` and ``form`` together."""
        return MultiDict([*self.args.multi_items(), *self.form.multi_items()])

    def close(self) -> None:
        """Close the uploaded files' spooled copies (the scoring app does after ``run``)."""
        if self._form is not None:
            for upload in self._form[1].multi_items():
                upload[1].close()

    def _parsed_form(self) -> tuple[MultiDict[str], MultiDict[FileStorage]]:
        with self._lock:
            if self._form is None:
                self._form = self._parse_form()
            return self._form

    def _parse_form(self) -> tuple[MultiDict[str], MultiDict[FileStorage]]:
        if self.mimetype == _FORM_URLENCODED:
            text = self._body.decode("utf-8", errors="replace")
            return MultiDict(urllib.parse.parse_qsl(text, keep_blank_values=True)), MultiDict()
        if self.mimetype != _MULTIPART:
            return MultiDict(), MultiDict()
        if not multipart_available():
            raise ConfigError(
                "this request's body is multipart/form-data, and reading request.files or "
                "request.form of it needs the python-multipart package, which the service's "
                "environment lacks: add 'python-multipart' to the pip packages of the "
                "Environment of its InferenceConfig (or read the raw body with "
                "request.get_data())"
            )
        return _run_apart(_parse_multipart(self.headers, self._body))

    def __repr__(self) -> str:
        return f"<AMLRequest {self.method} {self.full_path!r}>"


class AMLResponse(Response):
    """What a ``@rawhttp`` ``run`` answers: ``message`` with ``status_code`` and
    ``response_headers`` (v1's signature); ``json_str=True`` sends ``message`` as JSON.

    A text ``message`` is sent as ``text/plain; charset=utf-8`` and bytes as
    ``application/octet-stream`` unless ``response_headers`` give a Content-Type (v1's Flask
    said ``text/html``, which a browser would render: a body echoing its input would run as a
    page). ``message=None`` answers ``{}`` as JSON, as in v1.

    Example::

        AMLResponse(png_bytes, 200, {"Content-Type": "image/png"})
        AMLResponse({"label": 7}, 200, json_str=True)
        AMLResponse("bad request", 400)
    """

    def __init__(
        self,
        message: Any,
        status_code: int,
        response_headers: Mapping[str, str] | None = None,
        json_str: bool = False,
    ) -> None:
        headers = dict(response_headers or {})
        given_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        if message is None or json_str:
            content = json.dumps({} if message is None else message).encode()
            media_type = "application/json"
        elif isinstance(message, bytes | bytearray | memoryview):
            content, media_type = bytes(message), "application/octet-stream"
        elif isinstance(message, str):
            content, media_type = message.encode(), "text/plain; charset=utf-8"
        else:
            raise TypeError(
                f"AMLResponse's message is a {type(message).__name__}: give text or bytes, or "
                "pass json_str=True to send it as JSON"
            )
        super().__init__(
            content, status_code, {k: v for k, v in headers.items() if k.lower() != "content-type"}
        )
        self.headers["content-type"] = given_type or media_type

    @property
    def data(self) -> bytes:
        """The body's bytes (Flask's name for them)."""
        return bytes(self.body)

    def get_data(self, as_text: bool = False) -> bytes | str:
        """The body: bytes, or text with ``as_text`` (as Flask's response)."""
        return self.data.decode("utf-8", errors="replace") if as_text else self.data


async def _parse_multipart(
    headers: Headers, body: bytes
) -> tuple[MultiDict[str], MultiDict[FileStorage]]:
    async def chunks() -> AsyncGenerator[bytes, None]:
        yield body

    # The body is within max_request_bytes already: no part needs a limit of its own.
    parser = MultiPartParser(headers, chunks(), max_part_size=max(len(body), 1))
    try:
        parsed = await parser.parse()
    except MultiPartException as error:
        raise ValidationError(
            "body", f"the multipart/form-data body cannot be read: {error.message}"
        ) from None
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, FileStorage]] = []
    for name, value in parsed.multi_items():
        if isinstance(value, UploadFile):
            files.append((name, FileStorage(value.file, value.filename, name, value.headers)))
        else:
            fields.append((name, value))
    return MultiDict(fields), MultiDict(files)


def _run_apart(coroutine: Coroutine[Any, Any, _Result]) -> _Result:
    """Run ``coroutine`` on an event loop of its own in another thread: ``files`` is read in
    ``run()``'s thread (the app's thread pool, or a test's thread with a loop running), where
    no loop can be started."""
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


__all__ = [
    "AMLRequest",
    "AMLResponse",
    "FileStorage",
    "MultiDict",
    "is_rawhttp",
    "multipart_available",
    "rawhttp",
]
