"""Reading files from outside: bounded, and every failure one SpecError naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from moeplan.errors import SpecError

if TYPE_CHECKING:
    import yaml

MAX_SPEC_BYTES = 1024 * 1024


def _yaml_error(path: Path, e: yaml.YAMLError) -> SpecError:
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return SpecError(f"{path}: invalid YAML{where}: {problem}")


def read_text(path: Path, limit: int, what: str) -> str:
    """The UTF-8 text of ``path``, at most ``limit`` bytes; SpecError naming the file and ``what`` it should be."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise SpecError(f"{path}: {size:,} bytes is too large for {what}")
        return path.read_text(encoding="utf-8")
    except SpecError:
        raise
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a text file; expected {what}") from None
    except OSError as e:
        raise SpecError(f"{path}: cannot read it ({e.strerror or e})") from None


def read_yaml(path: Path) -> Any:
    """Safe-load a YAML file with a size bound; every failure is a SpecError naming the file."""
    import yaml  # ~10 ms; catalogue commands read the cache's JSON instead

    text = read_text(path, MAX_SPEC_BYTES, "a YAML model spec")
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise _yaml_error(path, e) from None
    except RecursionError:
        raise SpecError(f"{path}: YAML nested too deeply") from None
