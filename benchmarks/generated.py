"""The command line of the scripts that write a generated file: write it, or with ``--check`` fail when the
committed copy differs from what the script derives (CI and tests run the check)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_or_check(out: Path, render: Callable[[], str], script: str, description: str | None) -> int:
    """Parse ``--check``; write ``render()`` to ``out``, or return 1 when ``out`` is not what it renders."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = out.relative_to(ROOT)
    parser.add_argument("--check", action="store_true", help=f"fail if {where} is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not out.exists() or out.read_text() != text:
            print(f"{where} is out of date: run python {script}", file=sys.stderr)
            return 1
        return 0
    out.write_text(text)
    print(f"wrote {where}")
    return 0
