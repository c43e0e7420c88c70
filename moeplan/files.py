"""Reading files from outside: bounded, and every failure one SpecError naming the file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from moeplan.errors import SpecError

if TYPE_CHECKING:
    import yaml

MAX_SPEC_BYTES = 1024 * 1024


def _yaml_error(path: Path, e: yaml.YAMLError) -> SpecError:
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return SpecError(f"{path}: invalid YAML{where}: {problem}")


def open_regular(path: Path, what: str) -> BinaryIO:
    """``path`` opened for binary reading, if it is a regular file (links followed); SpecError otherwise.

    The file is opened without blocking and checked on the open descriptor: opening a FIFO for reading would
    wait for a writer forever, and a link to ``/dev/zero`` or a terminal never ends.  A folder, a FIFO, a
    device or a socket is refused by name, before a byte is read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise SpecError(f"{path}: a folder, not {what}") from None
    except OSError as e:
        if e.errno == errno.ENXIO:  # opening a Unix socket
            raise SpecError(f"{path}: a socket, not a regular file; expected {what}") from None
        raise SpecError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise SpecError(f"{path}: a folder, not {what}")
        if not stat.S_ISREG(mode):
            kind = (
                "a FIFO"
                if stat.S_ISFIFO(mode)
                else "a device"
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket"
            )
            raise SpecError(f"{path}: {kind}, not a regular file; expected {what}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return cast(BinaryIO, os.fdopen(fd, "rb"))
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: Path, limit: int, what: str) -> bytes:
    """At most ``limit`` bytes of the regular file ``path`` (its size is checked on what was read, not only on
    ``stat``, which /proc and growing files misreport); SpecError naming the file and ``what`` it should be."""
    with open_regular(path, what) as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise SpecError(f"{path}: cannot read it ({e.strerror or e})") from None
    if len(data) > limit:
        raise SpecError(f"{path}: larger than {limit:,} bytes, too large for {what}")
    return data


def read_text(path: Path, limit: int, what: str) -> str:
    """The UTF-8 text of ``path``, at most ``limit`` bytes; SpecError naming the file and ``what`` it should be."""
    try:
        return read_bytes(path, limit, what).decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a text file; expected {what}") from None


def read_yaml(path: Path, what: str = "a YAML model spec") -> Any:
    """Safe-load a YAML file with a size bound; every failure is a SpecError naming the file and ``what`` it should
    be."""
    import yaml  # ~10 ms; catalogue commands read the cache's JSON instead

    text = read_text(path, MAX_SPEC_BYTES, what)
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise _yaml_error(path, e) from None
    except RecursionError:
        raise SpecError(f"{path}: YAML nested too deeply") from None
