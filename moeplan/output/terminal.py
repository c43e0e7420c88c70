"""The terminal the output goes to: its console, its character set, and one-line headlines that fit its width.

A stream whose encoding is not UTF-8 (``LANG=C``, ``PYTHONIOENCODING=ascii``, a latin-1 pipe) gets ASCII bars and
ASCII table borders, and any other character it cannot encode is replaced rather than raising.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, TypeVar

from rich.cells import cell_len
from rich.text import Text

if TYPE_CHECKING:
    from rich.box import Box
    from rich.console import Console

T = TypeVar("T")
NARROW = 100  # below this many columns the tables drop their secondary columns

# What the renderings draw beyond ASCII, and what stands in for each on a terminal that cannot show it.
_ASCII = str.maketrans({
    "█": "#", "░": ".", "★": "*", "…": "...", "±": "+/-", "×": "x", "≤": "<=", "≥": ">=", "—": "-", "–": "-",
    "→": "->", "µ": "u", "’": "'", "“": '"', "”": '"', "∞": "inf",
})  # fmt: skip


def is_utf(encoding: str | None) -> bool:
    return (
        (encoding or "").lower().replace("_", "-").startswith(("utf-8", "utf8", "utf-16", "utf-32", "utf16", "utf32"))
    )


class AsciiSafeStream:
    """A text stream wrapper for a non-UTF-8 stream: the drawn characters become ASCII, the rest is replaced."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "ascii"

    def write(self, text: str) -> int:
        enc = self.encoding
        safe = text.translate(_ASCII).encode(enc, errors="replace").decode(enc, errors="replace")
        return self._stream.write(safe)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def fileno(self) -> int:
        return self._stream.fileno()


def make_console(stream: IO[str] | None = None) -> Console:
    """The console for ``stream`` (stdout by default, looked up now: test runners swap it)."""
    from rich.console import Console

    target = stream if stream is not None else sys.stdout
    if is_utf(getattr(target, "encoding", None)):
        return Console(file=stream, highlight=False, soft_wrap=False, emoji=False)
    return Console(file=AsciiSafeStream(target), highlight=False, soft_wrap=False, emoji=False, safe_box=True)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Glyphs:
    """The characters bars and marks are drawn with."""

    full: str
    empty: str
    star: str
    ellipsis: str
    parts: tuple[str, ...]  # one fill character per part of a stacked bar


UNICODE = Glyphs("█", "░", "★", "…", ("█", "█", "█", "█"))
ASCII = Glyphs("#", ".", "*", "...", ("#", "=", "+", "%"))


def glyphs(console: Console) -> Glyphs:
    return ASCII if console.options.ascii_only else UNICODE


def table_box(console: Console, light: bool = False) -> Box:
    """Heavy-headed boxes; ``light``: a head rule only, no borders (summaries); ASCII where UTF-8 cannot be shown."""
    from rich import box

    if console.options.ascii_only:
        return box.ASCII
    return box.SIMPLE_HEAD if light else box.HEAVY_HEAD


def first_that_fits(console: Console, *candidates: str) -> str:
    """The first candidate (rich markup) each of whose lines fits the console; else the last one."""
    for text in candidates:
        if max(cell_len(line) for line in Text.from_markup(text).plain.split("\n")) <= console.width:
            return text
    return candidates[-1]


def headline(console: Console, *candidates: str) -> None:
    """Print the one-line answer that starts a command's output: the longest candidate that fits."""
    console.print(first_that_fits(console, *candidates))


def fits(console: Console, renderable: object) -> bool:
    """Whether ``renderable`` drawn at its natural width (nothing wrapped) fits the console."""
    wide = console.options.update(width=10_000, max_width=10_000)
    return console.measure(renderable, options=wide).maximum <= console.width  # type: ignore[arg-type]


def first_fitting(console: Console, *variants: Callable[[], T]) -> T:
    """The first variant (built on demand, widest first) whose natural width fits the console; else the last."""
    built = None
    for make in variants:
        built = make()
        if fits(console, built):
            return built
    assert built is not None
    return built


def shell_lines(command: str, width: int) -> list[str]:
    """A shell command broken at argument boundaries into lines of at most ``width`` (`` \\`` continuations).

    A trailing ``# comment`` goes on lines of its own before the command, each starting ``#``; quoted arguments are
    never split;
    several commands (one per line: a disaggregated deployment's prefill and decode servers) each get theirs.
    """
    import re

    if "\n" in command:
        return [line for part in command.split("\n") for line in shell_lines(part, width)]

    body, _, comment = command.partition("  # ")
    tokens = re.findall(r"""(?:[^\s"']+|"[^"]*"|'[^']*')+""", body)
    words: list[str] = []
    for token in tokens:  # an option and its value stay together
        if words and words[-1].startswith("-") and " " not in words[-1] and not token.startswith("-"):
            words[-1] += " " + token
        else:
            words.append(token)
    lines: list[str] = []
    line = ""
    for word in words:
        if line and cell_len(line) + 1 + cell_len(word) + 2 > width:
            lines.append(line + " \\")
            line = "  " + word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    notes: list[str] = []  # the comment wrapped into lines of its own, each commented, so none runs when pasted
    for word in comment.split():
        if notes and cell_len(notes[-1]) + 1 + cell_len(word) <= width:
            notes[-1] += " " + word
        else:
            notes.append("# " + word)
    return notes + lines
