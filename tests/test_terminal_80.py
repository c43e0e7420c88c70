"""Every command reads cleanly at 80 columns: the verdict first, nothing clipped, no id or price split over lines.

Two checks: rendered in-process at 80 columns (runs everywhere), and, where tmux is installed, in a real 80-column
terminal whose screen is captured with and without joining wrapped lines (a wrapped line shows as a difference).
An ASCII-only stdout gets ASCII bars and borders instead of crashing.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from moeplan.cli import app
from moeplan.hardware.gpus import load_gpus
from moeplan.output.formatting import fmt_buy
from moeplan.sources.catalog import catalog_rows

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 80

# Each command's default output (the first word names it); the ids in the listed ones must all show, whole.
COMMANDS = {
    "estimate": "estimate mixtral-8x22b --gpu a100",
    "estimate-nofit": "estimate deepseek-v3 --gpu h100 --num-gpus 4",
    "estimate-nogpu": "estimate deepseek-v3",
    "compare": "compare qwen3-30b-a3b --quant bf16 --quant fp8 --quant Q4_K_M --gpu 4090",
    "recommend": "recommend deepseek-v3 --context 32k",
    "recommend-box": "recommend qwen3-30b-a3b --gpu rtx-4090 --gpu rtx-pro-6000-blackwell --gpu rtx-3060",
    "offload": "offload gpt-oss-120b --gpu 4090 --ram 64 --cpu 9950x",
    "serve": "serve qwen3-30b-a3b --concurrency 64 --tpot 50 --ttft 1 --gpu rtx-5090 --gpu rtx-pro-6000-blackwell",
    "gpus": "gpus",
    "cpus": "cpus",
    "models": "models",
    "quants": "quants",
}
# The long views must fit too.
DETAIL = {
    "estimate-detail": "estimate mixtral-8x22b --gpu a100 --detail --explain",
    "gpus-detail": "gpus --detail",
    "models-detail": "models --detail",
    "cpus-detail": "cpus --detail",
    "estimate-hybrid-detail": "estimate qwen3-next --gpu h100 --context 256k --batch 4 --detail",
    "serve-long-labels": "serve deepseek-v3 --concurrency 64 --isl 8k --osl 1k",
    "serve-splits": "serve deepseek-v3 --isl 8k --osl 1k --concurrency 1024 --gpu b200 --max-gpus 64 "
    "--ttft 2 --tpot 50",
    "offload-short": "offload qwen3-235b-a22b --gpu 4090 --ram 64 --cpu ddr5-5600x2",
    "compare-many": "compare gpt-oss-120b --gpu h100,h200,b200,mi300x,mi355x,rtx-5090",
}
FIRST_LINE = {
    "estimate": r"^FITS mixtral-8x22b .* on 4 x a100-80gb-sxm: .*GiB.*tok/s$",
    "estimate-nofit": r"^DOES NOT FIT deepseek-v3 .*on 4 x h100-sxm",
    "estimate-nogpu": r"^deepseek-v3 .*GiB on one GPU",
    "compare": r"^Q4_K_M .*: fastest",
    "recommend": r"^Best by cost.*tok/s, \$[\d.,]+/M out",
    "offload": r"^FITS gpt-oss-120b .*--n-cpu-moe \d+, ~[\d.]+ tok/s$",
    "serve": r"^Cheapest that meets the targets: ",
    "gpus": r"^\d+ accelerators in the catalogue",
    "models": r"^\d+ models in the catalogue",
}


def _env(tmp: str) -> dict[str, str]:
    return {"COLUMNS": str(WIDTH), "NO_COLOR": "1", "MOEPLAN_CACHE": tmp, "XDG_CONFIG_HOME": tmp,
            "MOEPLAN_GPU_FILE": ""}  # fmt: skip


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = str(tmp_path_factory.mktemp("cache"))
    load_gpus.cache_clear()
    out = {}
    for name, command in {**COMMANDS, **DETAIL}.items():
        result = CliRunner().invoke(app, shlex.split(command), env=_env(tmp))
        assert result.exit_code == 0, (command, result.output)
        out[name] = result.stdout
    load_gpus.cache_clear()
    return out


def _problems(text: str) -> list[str]:
    """Lines wider than the terminal, cut values (an ellipsis rich put in a cell)."""
    bad = []
    for line in text.splitlines():
        if cell_len(line) > WIDTH:
            bad.append(f"{cell_len(line)} columns: {line}")
        if "…" in line:
            bad.append(f"clipped: {line}")
    return bad


@pytest.mark.parametrize("name", [*COMMANDS, *DETAIL])
def test_fits_80_columns(rendered: dict[str, str], name: str) -> None:
    assert _problems(rendered[name]) == []


@pytest.mark.parametrize("name", sorted(FIRST_LINE))
def test_the_verdict_comes_first_in_one_line(rendered: dict[str, str], name: str) -> None:
    first = rendered[name].splitlines()[0]
    assert re.search(FIRST_LINE[name], first), first


def test_default_estimate_is_short(rendered: dict[str, str]) -> None:
    assert len(rendered["estimate"].splitlines()) <= 30
    assert "routed experts" not in rendered["estimate"] and "routed experts" in rendered["estimate-detail"]


def test_ids_and_prices_are_whole(rendered: dict[str, str]) -> None:
    gpus = list(load_gpus(None))
    for g in gpus:
        assert re.search(rf"^\S*\s*{re.escape(g.id)}\s", rendered["gpus"], re.M), g.id
        if g.buy_price:  # the compact cell: "$27.5k '26-05" (a dated street price) or "~$8.0k" (a list estimate)
            price = fmt_buy(g.buy_price)
            assert re.search(rf"^.*{re.escape(g.id)} .*{re.escape(price)}", rendered["gpus"], re.M), (g.id, price)
    for r in catalog_rows():
        assert re.search(rf"^\S*\s*{re.escape(r.id)}\s", rendered["models"], re.M), r.id
    # the long ids of the boxes compared: whole, on a line with their price per million tokens
    assert re.search(r"rtx-pro-6000-blackwell .*\$[\d.]+", rendered["recommend-box"])
    assert re.search(r"rtx-pro-6000-blackwell TP\d", rendered["serve"])


def test_ascii_terminal_gets_ascii_bars_and_borders(tmp_path: Path) -> None:
    env = {**os.environ, **_env(str(tmp_path)), "PYTHONIOENCODING": "ascii", "PYTHONPATH": str(ROOT)}
    code = "from moeplan.cli import main; main()"
    for command in ("estimate mixtral-8x22b --gpu a100 --detail", "compare mixtral-8x7b llama-3.1-70b --gpu h100"):
        r = subprocess.run([sys.executable, "-c", code, *shlex.split(command)], capture_output=True, env=env,
                           timeout=60)  # fmt: skip
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        out = r.stdout.decode("ascii")  # raises if anything is not ASCII
        assert "+-----" in out and "|" in out
    assert "#" in out or "*" in out


def _tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=True, timeout=30).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_in_an_80_column_tmux_pane(tmp_path: Path) -> None:
    socket = f"moeplan-test-{os.getpid()}"
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g history-limit 50000\nset -g remain-on-exit on\n")
    script = tmp_path / "run.sh"
    python = shlex.quote(sys.executable)
    lines = [f"export PYTHONPATH={shlex.quote(str(ROOT))} MOEPLAN_CACHE={shlex.quote(str(tmp_path))}",
             f"export XDG_CONFIG_HOME={shlex.quote(str(tmp_path))} MOEPLAN_GPU_FILE= LANG=C.UTF-8 LC_ALL=C.UTF-8",
             "unset COLUMNS LINES NO_COLOR"]  # fmt: skip
    for name, command in {**COMMANDS, **DETAIL}.items():
        lines.append(f"echo '=== {name}'")
        lines.append(f"{python} -c 'from moeplan.cli import main; main()' {command} || echo '!!! failed {name}'")
    lines.append("echo '=== end'")
    script.write_text("\n".join(lines) + "\n")
    _tmux(socket, "-f", str(conf), "new-session", "-d", "-x", str(WIDTH), "-y", "50", "-s", "t", f"sh {script}")
    try:
        deadline = time.monotonic() + 120
        while _tmux(socket, "display-message", "-p", "-t", "t", "#{pane_dead}").strip() != "1":
            assert time.monotonic() < deadline, "the commands did not finish in the pane"
            time.sleep(0.2)
        as_shown = _tmux(socket, "capture-pane", "-p", "-t", "t", "-S", "-", "-E", "-")
        joined = _tmux(socket, "capture-pane", "-p", "-J", "-t", "t", "-S", "-", "-E", "-")
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=30)
    assert "!!! failed" not in as_shown, as_shown
    assert "=== end" in as_shown
    # -J joins the lines the terminal wrapped: where nothing wrapped, the two captures hold the same lines
    # (up to the end mark: tmux's own "Pane is dead" notice follows it)
    shown, whole = ([line.rstrip() for line in text.split("=== end")[0].splitlines()] for text in (as_shown, joined))
    wrapped = [line for line in whole if line not in set(shown)]
    assert wrapped == [] and len(shown) == len(whole)
    assert "…" not in as_shown
    sections = re.split(r"^=== (\S+)\n", as_shown, flags=re.M)
    for name, text in zip(sections[1::2], sections[2::2], strict=True):
        if name in FIRST_LINE:
            assert re.search(FIRST_LINE[name], text.splitlines()[0]), (name, text.splitlines()[0])


def test_serve_rows_hold_one_line_each(rendered: dict[str, str]) -> None:
    """Every configuration row of serve's table ends in its price or output figure: a split's label
    (``24x b200 4x4P:8D (p DEP4, d DEP16+TBO) nvfp4``) fits beside its numbers instead of wrapping."""
    for name in ("serve", "serve-splits", "serve-long-labels"):
        lines = rendered[name].splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("configuration")) + 2
        rows = lines[start : next(i for i in range(start, len(lines)) if lines[i].startswith(("tok/s", " ")))]
        assert rows and all(re.search(r"[\d∞]$", row.rstrip()) for row in rows), (name, rows)


def test_a_wide_comparison_splits_into_blocks_rather_than_clipping(rendered: dict[str, str]) -> None:
    """Six columns do not fit 80: consecutive blocks of as many as fit, each with whole row labels and whole
    headers (``1 x h100-sxm`` on one line), never a label cut to ``tot…``."""
    out = rendered["compare-many"]
    assert "…" not in out and "..." not in out
    assert "columns 1-" in out and "of 6" in out
    assert "decode tokens/s per sequence" in out and "1 x h100-sxm" in out and "3 x rtx-5090" in out


def test_an_80_column_compare_verdict_names_every_winner(tmp_path: Path) -> None:
    """Where the full verdict is too long, each column goes by its model alone and each pick tersely, rather than
    naming the first winner only (Kimi-K2 fastest, Qwen3-235B cheapest, DeepSeek-V3 least memory on H200)."""
    cmd = "compare deepseek-v3 kimi-k2 qwen3-235b-a22b glm-4.5 --gpu h200"
    result = CliRunner().invoke(app, shlex.split(cmd), env=_env(str(tmp_path)))
    first = result.stdout.splitlines()[0]
    assert cell_len(first) <= WIDTH
    assert "kimi-k2: fastest" in first and "qwen3-235b-a22b: cheapest" in first and "deepseek-v3: least memory" in first


def test_recommend_below_80_columns_wraps_its_configuration_and_never_clips_a_number(tmp_path: Path) -> None:
    """At 60 and 50 columns recommend's narrowest table folds hardware, format and engine into one column that wraps
    at its spaces: every tok/s and $/M figure is whole (no '…'), and the rank column is named as left out."""
    for width in (60, 50):
        env = {**_env(str(tmp_path)), "COLUMNS": str(width)}
        result = CliRunner().invoke(app, shlex.split("recommend deepseek-v3 --context 32k --top 3"), env=env)
        assert result.exit_code == 0 and "…" not in result.stdout, result.stdout
        assert "configuration" in result.stdout and all(cell_len(line) <= width for line in result.stdout.splitlines())
