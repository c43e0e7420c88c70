"""Wall time of moeplan commands against the bare interpreter importing typer, rich, pydantic and yaml.

Usage: python benchmarks/cli_speed.py [--runs N]

Each command runs N times in a fresh interpreter; the table gives the median and the ratio to the baseline.
Targets: ``estimate`` within 1.5x of the baseline (no torch or huggingface_hub imported), ``recommend``
over every GPU and format under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

BASELINE = [sys.executable, "-c", "import typer, rich, pydantic, yaml"]
CLI = [sys.executable, "-m", "moeplan.cli"]
COMMANDS: list[tuple[str, list[str]]] = [
    ("baseline: import typer, rich, pydantic, yaml", BASELINE),
    ("moeplan --help", [*CLI, "--help"]),
    ("moeplan estimate mixtral-8x22b --gpu a100", [*CLI, "estimate", "mixtral-8x22b", "--gpu", "a100"]),
    ("moeplan estimate deepseek-v3 --gpu h200 --json", [*CLI, "estimate", "deepseek-v3", "--gpu", "h200", "--json"]),
    (
        "moeplan compare mixtral-8x7b llama-3.1-70b --gpu h100",
        [*CLI, "compare", "mixtral-8x7b", "llama-3.1-70b", "--gpu", "h100"],
    ),
    ("moeplan recommend deepseek-v3 --context 32k", [*CLI, "recommend", "deepseek-v3", "--context", "32k"]),
    ("moeplan recommend qwen3-30b-a3b (every GPU x format)", [*CLI, "recommend", "qwen3-30b-a3b"]),
    ("moeplan models", [*CLI, "models"]),
    ("moeplan gpus", [*CLI, "gpus"]),
]


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    results = [(name, median_seconds(cmd, args.runs)) for name, cmd in COMMANDS]
    base = results[0][1]
    print(f"{'command':55} {'median s':>9} {'x baseline':>10}")
    for name, secs in results:
        print(f"{name:55} {secs:9.3f} {secs / base:10.2f}")


if __name__ == "__main__":
    main()
