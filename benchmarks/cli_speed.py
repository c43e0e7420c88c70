"""Wall time of moeplan commands against the bare interpreter importing typer, rich, pydantic and yaml.

Usage: python benchmarks/cli_speed.py [--runs N] [--markdown]

Set-up, as on a user's machine after ``pip install``: the package's bytecode is compiled first (pip does
that at install time; an editable install under ``PYTHONDONTWRITEBYTECODE=1`` would otherwise recompile
every module on every run), and each command runs once untimed, which also fills moeplan's cache of the
validated catalogues.  Then the commands run in N interleaved rounds, each in a fresh interpreter, so
that a slow spell of the machine hits every command alike; the table gives the median and the ratio to
the baseline's median.

Targets: ``estimate`` within 1.5x of the baseline (no torch or huggingface_hub imported), ``recommend``
over every GPU and format under 1 s.  ``moeplan --version`` is the floor of any command: the interpreter,
typer building the app, and moeplan's CLI module.
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import time
from pathlib import Path

BASELINE = [sys.executable, "-c", "import typer, rich, pydantic, yaml"]
# What users run: the console script pip installs beside the interpreter (`python -m` would add runpy).
SCRIPT = Path(sys.executable).with_name("moeplan")
CLI = [sys.executable, str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "moeplan.cli"]
COMMANDS: list[tuple[str, list[str]]] = [
    ("baseline: import typer, rich, pydantic, yaml", BASELINE),
    ("moeplan --version", [*CLI, "--version"]),
    ("moeplan --help", [*CLI, "--help"]),
    ("moeplan estimate mixtral-8x22b --gpu a100", [*CLI, "estimate", "mixtral-8x22b", "--gpu", "a100"]),
    (
        "moeplan estimate mixtral-8x22b --gpu a100 --json",
        [*CLI, "estimate", "mixtral-8x22b", "--gpu", "a100", "--json"],
    ),
    ("moeplan estimate deepseek-v3 --gpu h200 --json", [*CLI, "estimate", "deepseek-v3", "--gpu", "h200", "--json"]),
    (
        "moeplan compare mixtral-8x7b llama-3.1-70b --gpu h100",
        [*CLI, "compare", "mixtral-8x7b", "llama-3.1-70b", "--gpu", "h100"],
    ),
    ("moeplan recommend deepseek-v3 --context 32k", [*CLI, "recommend", "deepseek-v3", "--context", "32k"]),
    ("moeplan recommend qwen3-30b-a3b (every GPU x format)", [*CLI, "recommend", "qwen3-30b-a3b"]),
    (
        "moeplan recommend deepseek-v3 --concurrency 64 (under load)",
        [*CLI, "recommend", "deepseek-v3", "--isl", "1024", "--osl", "1024", "--concurrency", "64"],
    ),
    (
        "moeplan estimate qwen3-next --gpu h100 --json (hybrid)",
        [*CLI, "estimate", "qwen3-next", "--gpu", "h100", "--json"],
    ),
    (
        "moeplan estimate longcat-flash --gpu h200 --num-gpus 8",
        [*CLI, "estimate", "longcat-flash", "--gpu", "h200", "--num-gpus", "8"],
    ),
    ("moeplan recommend nemotron-3-nano-30b-a3b", [*CLI, "recommend", "nemotron-3-nano-30b-a3b"]),
    (
        "moeplan serve deepseek-v3 --concurrency 64 --gpu h200 --gpu b200",
        [*CLI, "serve", "deepseek-v3", "--concurrency", "64", "--gpu", "h200", "--gpu", "b200", "--json"],
    ),
    (
        "moeplan serve qwen3-30b-a3b --concurrency 64 (every GPU)",
        [*CLI, "serve", "qwen3-30b-a3b", "--concurrency", "64", "--json"],
    ),
    ("moeplan models", [*CLI, "models"]),
    ("moeplan gpus", [*CLI, "gpus"]),
]


def seconds(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()
    import moeplan

    compileall.compile_dir(str(Path(moeplan.__file__).parent), quiet=1)
    for _, cmd in COMMANDS:
        seconds(cmd)
    times: list[list[float]] = [[] for _ in COMMANDS]
    for _ in range(args.runs):
        for i, (_, cmd) in enumerate(COMMANDS):
            times[i].append(seconds(cmd))
    medians = [statistics.median(t) for t in times]
    base = medians[0]
    if args.markdown:
        print("| command | median s | x baseline |\n| --- | ---: | ---: |")
        for (name, _), secs in zip(COMMANDS, medians, strict=True):
            print(f"| `{name}` | {secs:.3f} | {secs / base:.2f} |")
        return
    print(f"{'command':55} {'median s':>9} {'x baseline':>10}")
    for (name, _), secs in zip(COMMANDS, medians, strict=True):
        print(f"{name:55} {secs:9.3f} {secs / base:10.2f}")


if __name__ == "__main__":
    main()
