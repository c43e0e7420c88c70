"""The user's cache folder, and a parsed-YAML cache for the built-in catalogues.

``$MOEPLAN_CACHE``, else ``$XDG_CACHE_HOME/moeplan``, else ``~/.cache/moeplan``.  Parsing the 75 KB GPU
catalogue with PyYAML takes ~15 ms, a fifth of a command's budget; its JSON copy in the cache, keyed by the
file's size and modification time, loads in ~1 ms.  The cache is best effort: any failure falls back to
parsing the YAML, and a stale entry can never be used because the key changes with the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    explicit = os.environ.get("MOEPLAN_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "moeplan"


def profile_path(gpu_id: str) -> Path:
    """Where the calibration profile of catalogue GPU ``gpu_id`` is stored."""
    return cache_root() / "calibration" / f"{gpu_id}.json"


def cached_yaml(path: Path) -> Any:
    """The YAML document at ``path`` (a trusted, packaged file), through a JSON copy in the cache."""
    from moeplan.catalog import read_yaml

    try:
        st = path.stat()
        key = cache_root() / "parsed" / f"{path.stem}-{st.st_size}-{st.st_mtime_ns}.json"
        if key.is_file():
            return json.loads(key.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return read_yaml(path)
    data = read_yaml(path)
    try:
        key.parent.mkdir(parents=True, exist_ok=True)
        tmp = key.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(key)
    except OSError:
        pass
    return data
