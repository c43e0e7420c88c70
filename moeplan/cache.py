"""The user's cache folder, and JSON copies of what moeplan derives from its packaged catalogues.

``$MOEPLAN_CACHE``, else ``$XDG_CACHE_HOME/moeplan``, else ``~/.cache/moeplan``.  Parsing the 75 KB GPU
catalogue with PyYAML takes ~15 ms and validating it with pydantic ~60 ms (most of it importing pydantic's
schema machinery), together more than a command's whole budget; the validated records' JSON copy in the
cache, keyed by the file's size and modification time, loads in ~1 ms.  The cache is best effort: any
failure falls back to parsing and validating, and a stale entry can never be used because the key changes
with the file, the moeplan version and the record's fields.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

R = TypeVar("R")


def _root() -> str:
    """``$MOEPLAN_CACHE``, else ``$XDG_CACHE_HOME/moeplan``, else ``~/.cache/moeplan`` (a string: sweeps ask often)."""
    explicit = os.environ.get("MOEPLAN_CACHE")
    if explicit:
        return os.path.expanduser(explicit)
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "moeplan")


def cache_root() -> Path:
    return Path(_root())


def profile_path(gpu_id: str) -> Path:
    """Where the calibration profile of catalogue GPU ``gpu_id`` is stored."""
    return cache_root() / "calibration" / f"{gpu_id}.json"


def has_profile(gpu_id: str) -> bool:
    """Whether a calibration profile is stored for ``gpu_id``; one ``stat`` (sweeps ask for every candidate)."""
    explicit = os.environ.get("MOEPLAN_CACHE")
    if explicit:
        root = os.path.expanduser(explicit)
    else:
        root = os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "moeplan"
        )
    return os.path.isfile(os.path.join(root, "calibration", f"{gpu_id}.json"))


def cached_json(path: Path, tag: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` (JSON-ready data derived from the file at ``path``), through a JSON copy in the cache.

    The copy is keyed by the file's name, size and modification time and by ``tag`` (what was derived, and
    the moeplan version and record fields it was derived with), so a stale copy is never read.
    """
    try:
        st = path.stat()
        key = cache_root() / "parsed" / f"{path.stem}-{tag}-{st.st_size}-{st.st_mtime_ns}.json"
        if key.is_file():
            entry = _unwrap(json.loads(key.read_text(encoding="utf-8")), tag)
            if entry is not None:
                return entry[0]
    except (OSError, ValueError, RecursionError):
        return compute()
    data = compute()
    try:
        key.parent.mkdir(parents=True, exist_ok=True)
        tmp = key.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(_wrap(data, tag)), encoding="utf-8")
        tmp.replace(key)
        for old in key.parent.glob(f"{path.stem}-{tag}-*.json"):  # copies of earlier versions of the file
            if old != key:
                old.unlink(missing_ok=True)
    except OSError:
        pass
    return data


CACHE_FORMAT = 1
"""The layout of a cache entry: ``{"moeplan_cache": 1, "tag": ..., "sha256": ..., "data": ...}``."""


def _digest(data: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _wrap(data: Any, tag: str) -> dict[str, Any]:
    return {"moeplan_cache": CACHE_FORMAT, "tag": tag, "sha256": _digest(data), "data": data}


def _unwrap(entry: Any, tag: str) -> tuple[Any] | None:
    """``(data,)`` of a cache entry that is whole: this layout, this tag and a payload matching its digest (an
    entry truncated, edited or written by something else is ignored and rewritten); None otherwise."""
    if not isinstance(entry, dict) or entry.get("moeplan_cache") != CACHE_FORMAT or entry.get("tag") != tag:
        return None
    if "data" not in entry or entry.get("sha256") != _digest(entry["data"]):
        return None
    return (entry["data"],)


def cached_yaml(path: Path) -> Any:
    """The YAML document at ``path`` (a trusted, packaged file), through a JSON copy in the cache."""
    from moeplan.files import read_yaml

    return cached_json(path, "yaml", lambda: read_yaml(path))


def cached_records(path: Path, cls: type[R], validated: Callable[[], Sequence[R]]) -> tuple[R, ...]:
    """The records ``validated()`` reads from the packaged file ``path``, through a JSON copy in the cache.

    The first run validates with pydantic (:func:`moeplan.records.validate`) and stores the result; later
    runs rebuild the records from the copy without importing pydantic.  A copy that does not rebuild
    (written by another version) is ignored.
    """
    from moeplan.records import build, schema_tag, to_dict

    tag = schema_tag(cls)
    data = cached_json(path, tag, lambda: [to_dict(r) for r in validated()])
    try:
        return tuple(build(cls, d) for d in data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return tuple(validated())
