"""The docs stay true: the README's tour is real output, every command is documented and has examples."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moeplan.cli import app

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands if c.callback)  # type: ignore[union-attr]


def test_readme_tour_is_current() -> None:
    spec = importlib.util.spec_from_file_location("make_readme", ROOT / "docs/make_readme.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "README.md").read_text()
    assert module.render(text) == text, "run python docs/make_readme.py"


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().split("---", 1)[0]
    assert "pip install -q . && .venv/bin/moeplan estimate mixtral-8x22b --gpu a100" in head
    test_command = "pip install -q -e '.[test]' --group reference && .venv/bin/pytest -q"
    assert test_command in head and test_command in (ROOT / ".ci/run").read_text()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_readme_and_has_examples(command: str) -> None:
    assert (
        f"moeplan {command}" in (ROOT / "README.md").read_text() or f"`{command}`" in (ROOT / "README.md").read_text()
    )
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "120", "NO_COLOR": "1"})
    assert result.exit_code == 0
    assert "Example" in result.stdout and f"moeplan {command}" in result.stdout


def test_interface_doc_is_the_contract() -> None:
    text = (ROOT / "docs/interface.md").read_text()
    for key in ("params.total", "memory.per_gpu_bytes", "fit.max_context", "performance.decode_tokens_per_s"):
        assert key in text


def test_accuracy_doc_is_current() -> None:
    """docs/accuracy.md is what the harness (the same pipeline as the commands) scores today."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, str(ROOT / "benchmarks/accuracy.py"), "--check"], capture_output=True)
    assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()


@pytest.mark.parametrize("script", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_benchmark_scripts_import(script: Path) -> None:
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


def test_gguf_label_spread_is_current() -> None:
    """moeplan/data/gguf_label_spread.yaml is what benchmarks/gguf_spread.py derives from the published files."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, str(ROOT / "benchmarks/gguf_spread.py"), "--check"], capture_output=True)
    assert run.returncode == 0, run.stderr.decode()


def test_readme_counts_and_model_types_follow_the_code() -> None:
    """The README's catalogue sizes and its list of supported config.json model types are those of the code."""
    import re

    from moeplan.hardware.gpus import load_gpus
    from moeplan.sources.catalog import load_catalog
    from moeplan.sources.config_adapters import SUPPORTED_MODEL_TYPES

    text = (ROOT / "README.md").read_text()
    m = re.search(r"the catalogues: (\d+) models, (\d+) accelerators", text)
    assert m is not None and (int(m[1]), int(m[2])) == (len(load_catalog()), len(load_gpus()))
    section = text.split("### Supported `config.json` model types", 1)[1].split("###", 1)[0]
    assert set(re.findall(r"`([a-z0-9_]+)`", section.split("For anything else", 1)[0])) == set(SUPPORTED_MODEL_TYPES)
