"""Golden JSON for a few estimates: any change to a figure shows up here, on purpose or not.

Regenerate after a deliberate change with ``MOEPLAN_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` and review the
diff: every changed number needs a reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from moeplan import EstimateRequest, OffloadRequest, compare, compare_requests, estimate, plan_offload, recommend

GOLDEN = Path(__file__).parent / "data" / "golden"
CASES = {
    "mixtral-8x22b-a100": EstimateRequest(model="mixtral-8x22b", gpu="a100"),
    "deepseek-v3-h200x8-32k": EstimateRequest(model="deepseek-v3", gpu="h200", num_gpus=8, context=32768),
    "gpt-oss-20b-4090-llamacpp": EstimateRequest(model="gpt-oss-20b", gpu="4090", engine="llama.cpp", batch=4),
    "qwen3-30b-q4km-3090": EstimateRequest(model="qwen3-30b-a3b", gpu="3090", quant="Q4_K_M", context=16384),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_json(name: str) -> None:
    got = json.loads(json.dumps(estimate(CASES[name]).to_json()))
    path = GOLDEN / f"{name}.json"
    if os.environ.get("MOEPLAN_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert _same(got, json.loads(path.read_text())), f"{name} changed: review, then MOEPLAN_UPDATE_GOLDEN=1"


def _check(name: str, got: object) -> None:
    got = json.loads(json.dumps(got))
    path = GOLDEN / f"{name}.json"
    if os.environ.get("MOEPLAN_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert _same(got, json.loads(path.read_text())), f"{name} changed: review, then MOEPLAN_UPDATE_GOLDEN=1"


def test_golden_compare() -> None:
    base = EstimateRequest(model="mixtral-8x7b")
    comparison = compare(compare_requests(["mixtral-8x7b", "llama-3.1-70b"], ["h100"], [], [], base))
    _check("compare-mixtral-llama70b-h100", comparison.to_json())


def test_golden_recommend() -> None:
    _, candidates = recommend("deepseek-v3", context=32768)
    _check("recommend-deepseek-v3-32k", [c.to_json() for c in candidates[:12]])
    _, candidates = recommend("qwen3-30b-a3b", context=8192, gpus=("rtx-4090", "rtx-3090", "h100"))
    _check("recommend-qwen3-30b-consumer", [c.to_json() for c in candidates[:12]])


def test_golden_offload() -> None:
    req = OffloadRequest(model="gpt-oss-120b", gpu="4090", ram_gib=64, cpu="9950x")
    _check("offload-gpt-oss-120b-4090", plan_offload(req).to_json())
    req = OffloadRequest(model="qwen3-30b-a3b", gpu="3060", ram_gib=32, cpu="ddr4-3200x2", context=32768, offload="10")
    _check("offload-qwen3-30b-3060-n10", plan_offload(req).to_json())


def _same(a: object, b: object) -> bool:
    """Equal, floats to 1e-9 relative (the last bits of a float may differ between platforms)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float | int):
        return a == pytest.approx(b, rel=1e-9)
    return a == b
