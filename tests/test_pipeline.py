"""One pipeline: every command resolves Deployments and evaluates them the same way, and the Python API is it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_inputs import model_folder, write_safetensors

import moeplan
from moeplan.deploy.deployment import EstimateRequest
from moeplan.deploy.engines import ENGINES, auto_engine
from moeplan.deploy.evaluate import evaluate
from moeplan.deploy.resolve import resolve
from moeplan.formats.schemes import parse_scheme
from moeplan.hardware.gpus import resolve_gpu
from moeplan.plans import accuracy
from moeplan.plans.estimate import estimate
from moeplan.plans.recommend import recommend

VISION_BYTES = 128 * 2**20


def _folder_with_vision(tmp_path: Path) -> Path:
    from reference_impl import small_config

    folder = model_folder(tmp_path, small_config("qwen3_moe"), shards=1)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    write_safetensors(folder / "vision.safetensors", [("visual.patch_embed.proj.weight", "BF16", (VISION_BYTES // 2,))])
    index["weight_map"]["visual.patch_embed.proj.weight"] = "vision.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def test_estimate_recommend_and_the_accuracy_harness_agree_on_a_checkpoint(tmp_path: Path) -> None:
    """A folder whose safetensors hold a 128 MiB vision tensor: the same bytes per GPU from all three."""
    folder = _folder_with_vision(tmp_path)
    est = estimate(EstimateRequest(model=str(folder), gpu="h100", num_gpus=1))
    _, candidates = recommend(str(folder), gpus=("h100",), quant="bf16", hybrid=False)
    rec = next(c for c in candidates if c.num_gpus == 1)
    record = {"id": "x", "kind": "fit", "model": str(folder), "gpu": "h100", "num_gpus": 1, "context": 8192}
    harness = evaluate(accuracy.deployment(record, resolve_gpu("h100"), context=8192)).memory
    assert est.memory.per_gpu_bytes == round(rec.per_gpu_bytes) == harness.per_gpu_bytes
    assert est.memory.weights_by_kind["other"] == VISION_BYTES  # the vision tower is loaded, and counted
    assert accuracy.check({**record, "value": True}).ok


def test_every_default_is_decided_by_resolve() -> None:
    h100, mac = resolve_gpu("h100"), resolve_gpu("apple-m3-ultra")
    assert auto_engine(parse_scheme("fp8"), h100).name == "vllm"
    assert auto_engine(parse_scheme("Q4_K_M"), h100).name == "llama.cpp"
    assert auto_engine(parse_scheme("bf16"), mac).name == "llama.cpp"
    d = resolve(EstimateRequest(model="gpt-oss-20b", gpu="apple-m3-ultra"))
    assert d.engine is ENGINES["llama.cpp"] and d.kv_dtype == "fp16" and d.scheme.name == "MXFP4_MOE"
    assert any("planned as the MXFP4_MOE mix" in n for n in d.notes)
    d = resolve(EstimateRequest(model="deepseek-v3", gpu="h200"))
    assert d.compute_dtype == "fp8" and d.kv_dtype == "bf16" and d.layout.num_gpus == d.min_gpus == 6  # TP 2 x PP 3
    assert d.price.usd_per_hour is not None and d.price.source is not None
    assert resolve(EstimateRequest(model="deepseek-v3", gpu="a100")).compute_dtype == "bf16"  # no fp8 units


def test_the_python_api_is_the_pipeline() -> None:
    result = moeplan.estimate(moeplan.EstimateRequest(model="mixtral-8x22b", gpu="a100"))
    assert result.fit is not None and result.fit.fits and result.fit.num_gpus == 4
    assert (
        result.to_json()
        == evaluate(moeplan.resolve(moeplan.EstimateRequest(model="mixtral-8x22b", gpu="a100"))).to_json()
    )
    assert moeplan.count_params(moeplan.resolve_model("mixtral-8x7b")).total == 46_702_792_704
    assert len(moeplan.layers(moeplan.resolve_model("deepseek-v3").arch)) == 61
    assert set(moeplan.__all__) <= set(dir(moeplan))
    with pytest.raises(AttributeError):
        moeplan.no_such_name  # noqa: B018


def test_importing_moeplan_loads_nothing_heavy() -> None:
    code = "import sys, moeplan; print(sorted(m for m in sys.modules if m.startswith('moeplan')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['moeplan', 'moeplan.version']"


def test_the_readme_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = text.split("### From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("4 ") and "vllm" in out[1] and "cheapest" in out[3]


def test_the_harness_scores_a_prefill_record_against_the_estimates_prefill_band() -> None:
    """A prefill record (llama-bench pp512) is checked against the same prefill band `estimate` reports."""
    record = {"id": "p", "kind": "prefill_speed", "model": "qwen3-30b-a3b", "quant": "Q4_K_M", "engine": "llama.cpp",
              "gpu": "rtx-4090", "num_gpus": 1, "prompt": 512, "value": 1.0, "source": "test"}  # fmt: skip
    c = accuracy.check(record)
    est = estimate(EstimateRequest(model="qwen3-30b-a3b", quant="Q4_K_M", engine="llama.cpp", gpu="rtx-4090",
                                   num_gpus=1, context=512, prompt=512, use_calibration=False))  # fmt: skip
    assert est.performance is not None
    assert c.predicted == est.performance.prefill_tokens_per_s
    assert (c.low, c.high) == est.performance.prefill_tokens_per_s_range
    assert not c.ok and accuracy.check({**record, "value": c.predicted}).ok


def test_offload_with_no_experts_in_ram_is_the_estimate() -> None:
    """A box whose GPU holds every expert (--n-cpu-moe 0) decodes as `estimate` says the same llama.cpp
    deployment does: one speed model for the GPU's share, whatever the command."""
    from moeplan import EstimateRequest, estimate
    from moeplan.plans.offload import OffloadRequest, plan_offload

    box = plan_offload(OffloadRequest(model="qwen3-235b-a22b", gpu="h200", ram_gib=128, cpu="ddr5-5600x2"))
    assert box.fits and box.chosen.cpu_layers == 0
    alone = estimate(
        EstimateRequest(model="qwen3-235b-a22b", gpu="h200", num_gpus=1, quant="Q4_K_M", engine="llama.cpp")
    )
    assert alone.performance is not None
    assert box.offload_performance.decode_tokens_per_s == pytest.approx(alone.performance.decode_tokens_per_s, rel=0.01)


def test_every_speed_range_holds_its_expected_value() -> None:
    """The optimistic scenario routes skewed, which loads one expert-parallel rank more in prefill: the range is the
    span of the scenarios and the expected value, so DeepSeek-R1's 8,192-token TTFT at TP8/EP8 on H200 (0.2619 s
    expected, 0.2623 s in the optimistic scenario) lies inside its own range."""
    from moeplan.deploy.evaluate import evaluate

    req = EstimateRequest(model="deepseek-v3", gpu="h200-sxm", num_gpus=8, tp=8, ep=8, quant="fp8-block128",
                          engine="tensorrt-llm", context=8192, prompt=8192, use_calibration=False)  # fmt: skip
    perf = evaluate(resolve(req, fewest=False)).performance
    assert perf is not None
    for value, (lo, hi) in ((perf.time_to_first_token_s, perf.time_to_first_token_s_range),
                            (perf.prefill_tokens_per_s, perf.prefill_tokens_per_s_range),
                            (perf.decode_tokens_per_s, perf.decode_tokens_per_s_range)):  # fmt: skip
        assert lo <= value <= hi
