"""The static check behind ``modelyard migrate``: does modelyard have what v1 code uses?

It looks at modelyard itself (its modules, imported), never at a list kept by hand:

- ``from azureml.X import Y``: does modelyard's X exist, and does it hold Y?
- ``Y.attr`` for an imported class or module ``Y`` (``Model.deploy``): does modelyard's Y have
  ``attr``?
- ``x.attr`` where ``x = Y(...)`` or ``x = <known>.method(...)`` and the method's return
  annotation names a modelyard class (``ws = Workspace.from_config()``, ``run =
  exp.submit(config)``): does that class have ``attr`` (a class attribute, a property, a
  method, or an attribute its methods assign on ``self``)?

What it cannot know it does not guess: a value whose type no annotation tells (the result of
a function without one, an item of a list) is not checked, and the names of such values are
reported as unchecked. The view is flat: one namespace per file (per notebook, across its
cells in order), the last assignment to a name wins.

Example::

    surface = Surface()
    surface.module("modelyard.train.dnn")          # the module, or None
    surface.has(Model, "deploy")                   # False
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import textwrap
import typing
from types import ModuleType
from typing import Any

from modelyard.porting.imports import ROOT


class Surface:
    """modelyard's public surface, looked up on demand and cached."""

    def __init__(self) -> None:
        self._modules: dict[str, ModuleType | None] = {}
        self._instance_names: dict[type, frozenset[str] | None] = {}

    def module(self, name: str) -> ModuleType | None:
        """modelyard's module ``name``, or None when it does not exist."""
        if name not in self._modules:
            try:
                self._modules[name] = importlib.import_module(name)
            except ImportError:
                self._modules[name] = None
        return self._modules[name]

    def has(self, obj: Any, attr: str) -> bool | None:
        """Whether ``obj`` (a module, or a class standing for its instances too) has ``attr``;
        None when it cannot be known (the class answers any name through ``__getattr__``)."""
        if hasattr(obj, attr):
            return True
        if isinstance(obj, ModuleType):
            # A module of lazy names (modelyard's own __init__) lists them in __all__.
            return attr in getattr(obj, "__all__", ())
        if not isinstance(obj, type):
            return None
        names = self._names_of_instances(obj)
        return None if names is None else attr in names

    def return_type(self, obj: Any, attr: str) -> type | None:
        """The modelyard class that ``obj.attr(...)`` returns, when its annotation says."""
        function = inspect.getattr_static(obj, attr, None)
        if isinstance(function, classmethod | staticmethod):
            function = function.__func__
        if isinstance(function, property):
            function = function.fget
        if not callable(function):
            return None
        annotation = getattr(function, "__annotations__", {}).get("return")
        if annotation is None:
            return None
        if isinstance(annotation, str):
            text = annotation.strip().strip("'\"")
            if text == "Self" and isinstance(obj, type):
                return obj
            module = sys.modules.get(getattr(function, "__module__", "") or "")
            found = getattr(module, text, None) if module is not None else None
            if found is None and isinstance(obj, type) and text == obj.__name__:
                found = obj
            annotation = found
        if annotation is typing.Self and isinstance(obj, type):
            return obj
        if isinstance(annotation, type) and annotation.__module__.startswith(ROOT):
            return annotation
        return None

    def _names_of_instances(self, cls: type) -> frozenset[str] | None:
        """Attributes the instances of ``cls`` get besides the class's own: those its methods
        (and its bases' methods) assign on ``self``, and its annotated fields."""
        if cls in self._instance_names:
            return self._instance_names[cls]
        names: set[str] | None = set()
        for klass in cls.__mro__:
            if klass is object:
                continue
            if "__getattr__" in vars(klass) and klass.__module__.startswith(ROOT):
                names = None
                break
            assert names is not None
            names.update(getattr(klass, "__annotations__", {}))
            names.update(getattr(klass, "__slots__", ()))
            names.update(_assigned_on_self(klass))
        result = frozenset(names) if names is not None else None
        self._instance_names[cls] = result
        return result


def _assigned_on_self(cls: type) -> set[str]:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return set()
    names = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            names.add(node.attr)
    return names


__all__ = ["Surface"]
