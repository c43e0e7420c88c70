"""Regenerate the tour in README.md from real command output.

    python docs/make_readme.py           # rewrite the blocks between <!-- tour:NAME --> and <!-- /tour -->
    python docs/make_readme.py --check   # exit 1 if README.md is out of date (tests/test_docs.py runs this)

Each block names a command; its output is captured through typer's runner at 80 columns (a terminal's usual
width), without colour.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- tour: (?P<cmd>.+?) -->\n)(?P<body>.*?)(<!-- /tour -->)", re.S)


def run(command: str) -> str:
    """A command's output with no user state: empty cache and config folders, no GPU file."""
    import tempfile

    from typer.testing import CliRunner

    from moeplan.cli import app
    from moeplan.hardware.gpus import load_gpus

    args = shlex.split(command)
    assert args[0] == "moeplan"
    with tempfile.TemporaryDirectory() as tmp:
        env = {"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb", "MOEPLAN_CACHE": tmp, "XDG_CONFIG_HOME": tmp,
               "MOEPLAN_GPU_FILE": ""}  # fmt: skip
        load_gpus.cache_clear()
        result = CliRunner().invoke(app, args[1:], env=env)
        load_gpus.cache_clear()
    if result.exit_code != 0:
        raise SystemExit(f"`{command}` failed: {result.output}")
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    return "\n".join(lines).rstrip() + "\n"


def render(text: str) -> str:
    def block(m: re.Match[str]) -> str:
        cmd = m.group("cmd")
        return f"{m.group(1)}```console\n$ {cmd}\n{run(cmd)}```\n{m.group(4)}"

    return BLOCK.sub(block, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = README.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print("README.md is out of date: run python docs/make_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    print("wrote README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
