"""What the sandbox's module views hand out instead of a few standard-library names.

Each of these, given a name built at run time (which no source check can see), reads or
writes any attribute or compiles code with the real builtins: ``functools.update_wrapper``
with its own ``assigned`` names is a getattr, ``dataclasses`` pastes field names into the
source it ``exec``s, ``warnings.formatwarning`` reads any file's lines. Found by a red-team
review; each has a PoC in tests/sandbox_escapes/. Part of the defence-in-depth
sandbox only (see plugin_sandbox.py): the OS confinement is what holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import keyword
import logging
import types
import warnings
from collections.abc import Callable
from typing import Any

from spec_kit_runtime.errors import SandboxViolation


def update_wrapper(wrapper: Any, wrapped: Any, assigned: Any = None,
                   updated: Any = None) -> Any:
    """``functools.update_wrapper`` with its default names only; ``__dict__`` copied from
    plain functions only (a class's would hand out its slot wrappers)."""
    if assigned is not None or updated is not None:
        raise SandboxViolation("functools.update_wrapper: only the default attributes may be "
                             "copied in the sandbox")
    functools.update_wrapper(wrapper, wrapped, updated=())
    if isinstance(wrapped, types.FunctionType):
        vars(wrapper).update(vars(wrapped))
    return wrapper


def wraps(wrapped: Any, assigned: Any = None,
          updated: Any = None) -> Callable[[Any], Any]:
    """``functools.wraps`` through the sandbox's ``update_wrapper``."""
    return functools.partial(update_wrapper, wrapped=wrapped, assigned=assigned,
                             updated=updated)


def dataclass(cls: Any = None, /, **options: Any) -> Any:
    """``dataclasses.dataclass``, refusing field names that are not plain identifiers."""
    def wrap(target: Any) -> Any:
        _check_field_names(target)
        return dataclasses.dataclass(target, **options)
    return wrap if cls is None else wrap(cls)


def _check_field_names(cls: Any) -> None:
    """Every name dataclasses will paste into code: the class's own annotations, and the
    fields it inherits, by key and by ``Field.name`` (a base's ``__dataclass_fields__`` can
    be forged, and a Field renamed)."""
    if not isinstance(cls, type):
        raise SandboxViolation("dataclasses.dataclass: not a class")
    names: list[Any] = list(inspect.get_annotations(cls))  # the class's own, as dataclasses reads
    for base in cls.__mro__:
        inherited = base.__dict__.get("__dataclass_fields__", {})
        if not isinstance(inherited, dict):
            raise SandboxViolation("dataclasses.dataclass: a base's fields are not a dict")
        for key, field in inherited.items():
            names += [key, getattr(field, "name", None)]
    for name in names:
        if (not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name)
                or (name.startswith("__") and name.endswith("__"))):
            raise SandboxViolation(f"dataclasses.dataclass: field name {name!r} is not allowed "
                                   "in the sandbox")


# Handed out by no module view, under whatever name a module re-exports them: they are
# matched by identity, so ``spec_kit_contracts.message_types.dataclass`` is replaced too.
_HIDDEN: tuple[Any, ...] = (
    functools.singledispatch, functools.singledispatchmethod,  # eval string annotations
    warnings.formatwarning, warnings.showwarning, warnings.warn_explicit,  # read any file
    contextlib.chdir,  # os.chdir
    dataclasses.make_dataclass,  # the real dataclass, on bases it is given
    logging.lastResort, logging.BufferingFormatter,  # stderr's io objects; a Formatter
)
_REPLACED: tuple[tuple[Any, Any], ...] = (
    (functools.update_wrapper, update_wrapper),
    (functools.wraps, wraps),
    (dataclasses.dataclass, dataclass),
)


def exposed(module: types.ModuleType, name: str) -> Any:
    """What a view of ``module`` hands out for its public ``name``; AttributeError if
    nothing (the name is missing, or it is one of the hidden callables)."""
    value = getattr(module, name)
    if any(value is hidden for hidden in _HIDDEN):
        raise AttributeError(f"'{module.__name__}.{name}' is not available in the sandbox")
    for real, safe in _REPLACED:
        if value is real:
            return safe
    return value
