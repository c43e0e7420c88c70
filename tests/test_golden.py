"""Golden JSON for a few estimates: any change to a figure shows up here, on purpose or not.

Regenerate after a deliberate change with ``MOEPLAN_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` and review the
diff: every changed number needs a reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from moeplan.plan import EstimateRequest, estimate

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


def _same(a: object, b: object) -> bool:
    """Equal, floats to 1e-9 relative (the last bits of a float may differ between platforms)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float | int):
        return a == pytest.approx(b, rel=1e-9)
    return a == b
