"""What a message tells its reader to do, in the words of the interface they use.

The SDK's messages give their advice in its own words: an argument (``overwrite=True``) or a
call (``run.get_file_names()``). Someone at the ``modelyard`` command types options and commands
instead. So an SDK message gives such advice through :func:`say`, which returns the SDK's words;
a caller with words of its own names them around its call with :func:`spoken_as`, and the same
message says those. The SDK never holds the command line's words, and no message is rewritten
after it is made.

The words are kept in a context variable: they hold for the code that runs inside the ``with``
(in its thread, and in tasks and threads started with a copy of its context).

Example::

    print(f"skipped 2 files that exist (pass {say('overwrite=True')} to replace them)")
    # skipped 2 files that exist (pass overwrite=True to replace them)

    with spoken_as({"overwrite=True": "--overwrite"}):
        ...   # the same line, printed in here: (pass --overwrite to replace them)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

_words: ContextVar[Mapping[str, str] | None] = ContextVar("modelyard_hint_words", default=None)


def say(sdk_words: str, **fields: object) -> str:
    """``sdk_words`` (an argument such as ``overwrite=True``, a call such as
    ``run.cancel()``), or what the caller's :func:`spoken_as` says instead.

    With ``fields``, ``sdk_words`` is a template (``str.format``) and so are the caller's
    words for it: the advice names the object at hand in either words.

    Example::

        say("exist_ok=True")     # 'exist_ok=True', or '--exist-ok' from the command line
        say("ComputeTarget.list(ws)")
        say("Workspace.get({name!r})", name="demo")     # "Workspace.get('demo')"
    """
    words = _words.get()
    template = words.get(sdk_words, sdk_words) if words is not None else sdk_words
    return template.format(**fields) if fields else template


@contextmanager
def spoken_as(words: Mapping[str, str]) -> Iterator[None]:
    """While inside, messages say ``words[sdk_words]`` where they would say ``sdk_words``
    (on top of the words of an enclosing ``spoken_as``).

    Example::

        with spoken_as({"run.cancel()": "`modelyard run cancel RUN_ID`"}):
            run.wait_for_completion(show_output=True)
    """
    token = _words.set({**(_words.get() or {}), **words})
    try:
        yield
    finally:
        _words.reset(token)
