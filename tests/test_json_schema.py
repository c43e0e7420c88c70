"""Every command's ``--json`` output against the published JSON Schema (``moeplan/data/output.schema.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moeplan.cli import app
from moeplan.output.json_schema import LIST_KEYS, SCHEMA_VERSION, schema_text
from moeplan.version import __version__

jsonschema = pytest.importorskip("jsonschema")

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "moeplan" / "data" / "output.schema.json"
RUNS = [
    ["estimate", "mixtral-8x7b", "--gpu", "h100"],
    ["estimate", "deepseek-v3"],
    ["estimate", "qwen3-30b-a3b", "--gpu", "h100", "--concurrency", "16"],
    ["estimate", "mixtral-8x7b", "--gpu-memory", "80"],
    ["estimate", "gpt-oss-120b", "--gpu", "rtx-4090", "--offload-experts", "auto", "--ram", "64", "--cpu", "9950x"],
    ["compare", "mixtral-8x7b", "qwen3-30b-a3b", "--gpu", "h100"],
    ["recommend", "qwen3-30b-a3b", "--top", "3"],
    ["offload", "gpt-oss-120b", "--gpu", "rtx-4090", "--ram", "64", "--cpu", "ddr5-5600x2"],
    ["offload", "qwen3-235b-a22b", "--gpu", "rtx-4090", "--ram", "64", "--cpu", "ddr5-5600x2"],
    ["serve", "qwen3-30b-a3b", "--concurrency", "16", "--gpu", "h100", "--top", "3"],
    ["gpus"],
    ["cpus"],
    ["models"],
    ["quants"],
    ["calibrate", "--device", "cpu", "--quick", "--no-host", "--hidden", "64", "--expert-ffn", "32", "--experts", "4",
     "--top-k", "2", "--tokens", "1,8"],
]  # fmt: skip


def test_the_published_schema_is_current() -> None:
    """Regenerate with ``python -m moeplan.output.json_schema > moeplan/data/output.schema.json``."""
    assert SCHEMA_FILE.read_text() == schema_text()
    jsonschema.Draft202012Validator.check_schema(json.loads(schema_text()))


@pytest.mark.parametrize("args", RUNS, ids=lambda a: " ".join(a[:2]))
def test_every_command_json_matches_the_schema(args: list[str], tmp_path: Path) -> None:
    if args[0] == "calibrate":
        pytest.importorskip("torch", reason="calibration needs torch (the reference dependency group installs it)")
    extra = ["--save", str(tmp_path / "p.json")] if args[0] == "calibrate" else []
    r = CliRunner().invoke(app, [*args, *extra, "--json"], env={"MOEPLAN_CACHE": str(tmp_path)})
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert data["moeplan_version"] == __version__ and data["schema_version"] == SCHEMA_VERSION
    assert data["command"] == ("offload" if "--offload-experts" in args else args[0]) and (
        args[0] not in LIST_KEYS or isinstance(data[LIST_KEYS[args[0]]], list)
    )
    errors = sorted(jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).iter_errors(data), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def test_the_schema_rejects_what_it_should() -> None:
    """Not a schema that accepts anything: a wrong version, a missing key or a wrong type fails."""
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    r = CliRunner().invoke(app, ["estimate", "mixtral-8x7b", "--gpu", "h100", "--json"])
    good = json.loads(r.stdout)
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "schema_version": SCHEMA_VERSION + 1})
    assert not validator.is_valid({k: v for k, v in good.items() if k != "memory"})
    assert not validator.is_valid({**good, "fit": {**good["fit"], "num_gpus": "two"}})
    assert not validator.is_valid({**good, "command": "estimat"})
    assert not validator.is_valid({"moeplan_version": __version__, "schema_version": 1, "command": "gpus", "gpus": {}})
