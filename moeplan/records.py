"""Frozen records: specs and requests are plain dataclasses, checked by pydantic only when read from outside.

A record is a ``@dataclass(frozen=True, kw_only=True)`` subclass of :class:`Record`.  Its per-field limits sit
in the field metadata under pydantic's ``Field`` argument names (``gt``, ``ge``, ``le``, ``pattern``,
``min_length``, ``max_length``, ``description``), which pydantic reads when it validates a standard
dataclass; its cross-field rules raise ValueError in ``__post_init__``, so they hold for every instance.

Why not pydantic models: creating the first pydantic model class imports pydantic's schema machinery,
about 60 ms, more than the rest of an ``estimate``.  So the catalogue path never imports pydantic:

* :func:`validate` checks untrusted data (a user's YAML, a config.json, a GPU file) with a pydantic
  ``TypeAdapter`` of the dataclass, built on first use, and turns a failure into one ``SpecError`` line;
* :func:`build` rebuilds a record from data that :func:`validate` accepted before (the catalogue's cache);
* :func:`to_dict` is the inverse of both: plain JSON/YAML-ready values (tuples become lists).

A field holding another record is annotated ``Name``, ``Name | None`` or ``tuple[Name, ...]`` (that is how
:func:`build` finds it).
:class:`Value`, the base of records and of every other frozen dataclass in moeplan, supplies equality, hash
and repr, which ``@dataclass`` would otherwise compile for each class at start-up.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import sys
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from moeplan.errors import SpecError

if TYPE_CHECKING:
    from pydantic import TypeAdapter, ValidationError

R = TypeVar("R")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    """The field names of dataclass ``cls``, cached (a dict: mypy takes a class with its own ``__hash__`` for
    unhashable, so ``functools.cache`` cannot be used here)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


class Value:
    """Base of moeplan's frozen dataclasses: equality, hash and repr by field values, written once here.

    ``@dataclass`` compiles every method it generates with ``exec``, six for a frozen class at ~0.1 ms each:
    over the ~40 classes a command loads that is a sixth of its run time.  So a subclass is declared
    ``@dataclass(frozen=True, repr=False, eq=False)`` and inherits these three, which behave as the generated
    ones: equal when of the same class with equal fields, hashed by the fields, shown as ``Name(field=value)``.
    The hash is computed once per object and kept (a record is frozen), since specs are hashed on every
    cached lookup.
    """

    __slots__ = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _names(type(self)))

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if other.__class__ is not self.__class__ or not isinstance(other, Value):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        # Frozen, so the hash never changes: computed once (a spec is hashed on every cached lookup).
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(self._values())
            object.__setattr__(self, "_hash", cached)
        return cached

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _names(type(self)))
        return f"{type(self).__qualname__}({fields})"


class Record(Value):
    """Base of every record dataclass: pydantic validation refuses keys the record does not have, and numbers
    that are not finite (YAML's ``.inf`` and ``.nan`` parse as floats, and ``nan`` passes every ``gt`` limit)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid", "allow_inf_nan": False}


@functools.cache
def _adapter(cls: type) -> TypeAdapter[Any]:
    from pydantic import TypeAdapter

    return TypeAdapter(cls)


_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")


def error_message(where: str, e: ValidationError) -> str:
    """``where: field.path: message`` for the first error of a pydantic validation.

    An unknown key is reported before anything else, since it usually explains the rest: a misspelled
    ``num_layer`` also leaves ``num_layers`` missing, which is then offered as the correction.
    """
    errors = e.errors()
    unknown = [err for err in errors if err["type"] in _UNKNOWN]
    err = unknown[0] if unknown else errors[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
    if unknown:
        parent, name = err["loc"][:-1], str(err["loc"][-1])
        missing = [str(x["loc"][-1]) for x in errors if x["type"] == "missing" and x["loc"][:-1] == parent]
        close = difflib.get_close_matches(name, missing, n=1, cutoff=0.6)
        msg = f"unknown field (did you mean '{close[0]}'?)" if close else "unknown field (misspelled?)"
    return f"{where}: {loc}: {msg}" if loc else f"{where}: {msg}"


def validate(cls: type[R], data: Any, where: str) -> R:
    """``cls`` from untrusted ``data`` (a mapping), every limit and rule checked; SpecError naming ``where``."""
    from pydantic import ValidationError

    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: expected a mapping of fields, not {type(data).__name__}")
    try:
        return cast(R, _adapter(cast(type, cls)).validate_python(dict(data)))
    except ValidationError as e:
        raise SpecError(error_message(where, e)) from None
    except RecursionError:
        raise SpecError(f"{where}: nested too deeply") from None


def checked(record: R, where: str) -> R:
    """``record`` (built in code from outside data) with its per-field limits checked as :func:`validate` does."""
    return validate(type(record), to_dict(record), where)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _is_default(f: dataclasses.Field[Any], value: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        return bool(value == f.default)
    if f.default_factory is not dataclasses.MISSING:
        return bool(value == f.default_factory())
    return False


def to_dict(record: Any, *, exclude_defaults: bool = False, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The fields of ``record`` as plain values: nested records as dicts, tuples as lists."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.name in exclude:
            continue
        value = getattr(record, f.name)
        if exclude_defaults and _is_default(f, value):
            continue
        out[f.name] = _plain(value)
    return out


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


@functools.cache
def _field_kinds(cls: type) -> dict[str, type | None]:
    """For each field: the record class it holds, ``tuple`` for sequences, None for plain values.

    Read from the annotation text (``"MlaSpec | None"``, ``"tuple[str, ...]"``), resolved in the class's module.
    """
    module = vars(sys.modules[cls.__module__])
    kinds: dict[str, type | None] = {}
    for f in dataclasses.fields(cls):
        text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        head = text.replace(" | None", "").strip()
        target = module.get(head)
        inner = module.get(head.removeprefix("tuple[").split(",")[0].strip()) if head.startswith("tuple[") else None
        if isinstance(target, type) and issubclass(target, Record):
            kinds[f.name] = target
        elif isinstance(inner, type) and issubclass(inner, Record):
            _RECORD_TUPLES[(cls, f.name)] = inner
            kinds[f.name] = tuple
        elif head.startswith("tuple"):
            kinds[f.name] = tuple
        else:
            kinds[f.name] = None
    return kinds


_RECORD_TUPLES: dict[tuple[type, str], type] = {}
"""(record class, field) -> the record class a ``tuple[Name, ...]`` field holds."""


def schema_tag(cls: type) -> str:
    """A short tag for the moeplan version and the fields (names, types, limits, defaults) of ``cls`` and the
    records it holds: a cached copy validated under other fields or limits is never read."""
    from moeplan.version import __version__

    parts: list[str] = []
    todo: list[type] = [cls]
    while todo:
        current = todo.pop()
        parts.append(current.__name__)
        for f in dataclasses.fields(current):
            default = "" if f.default is dataclasses.MISSING else repr(f.default)
            parts.append(f"{f.name}:{f.type}:{dict(f.metadata)}:{default}")
        todo.extend(k for k in _field_kinds(current).values() if k is not None and k is not tuple)
        todo.extend(inner for (owner, _), inner in _RECORD_TUPLES.items() if owner is current)
    return f"{cls.__name__}-{__version__}-{zlib.crc32(' '.join(parts).encode()):08x}"


def build(cls: type[R], data: Mapping[str, Any]) -> R:
    """``cls`` from data that :func:`validate` accepted before (through :func:`to_dict` and JSON); no limits checked."""
    kinds = _field_kinds(cast(type, cls))
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kind = kinds[name]
        if value is None or kind is None:
            kwargs[name] = value
        elif kind is tuple:
            inner = _RECORD_TUPLES.get((cast(type, cls), name))
            kwargs[name] = tuple(build(inner, v) for v in value) if inner else _tuples(value)
        else:
            kwargs[name] = build(kind, value)
    return cls(**kwargs)
