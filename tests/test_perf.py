"""The speed model, cost, calibration profiles as estimate uses them, compare and recommend."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moeplan.deploy.deployment import EstimateRequest
from moeplan.deploy.speed import distinct_experts
from moeplan.errors import InputError
from moeplan.hardware.gpus import resolve_gpu
from moeplan.hardware.profiles import CalibrationProfile, measured_for, save_profile
from moeplan.model.spec import ModelSpec
from moeplan.plans.compare import compare, compare_requests
from moeplan.plans.estimate import estimate
from moeplan.plans.recommend import recommend
from moeplan.sources.catalog import load_catalog

MOE = [s for s in load_catalog() if s.arch.moe is not None and s.arch.num_layers <= 64]


def test_distinct_experts_uniform_and_skewed() -> None:
    assert distinct_experts(8, 2, 1) == pytest.approx(2.0)
    assert distinct_experts(8, 2, 8) == pytest.approx(8 * (1 - 0.75**8))
    assert distinct_experts(256, 8, 1024) == pytest.approx(256, rel=1e-6)
    assert distinct_experts(128, 8, 16, skew=1.0) < distinct_experts(128, 8, 16)
    assert distinct_experts(128, 8, 1, skew=1.0) == pytest.approx(8)  # one token always reads k experts
    assert distinct_experts(128, 8, 1_000_000, skew=1.5) == pytest.approx(128, rel=1e-3)


def _est(**kw: object) -> dict[str, object]:
    r = estimate(EstimateRequest(**kw))  # type: ignore[arg-type]
    return r.to_json()


def test_band_brackets_the_expected_value() -> None:
    p = _est(model="mixtral-8x7b", gpu="h100", num_gpus=2)["performance"]
    assert isinstance(p, dict)
    lo, hi = p["decode_tokens_per_s_range"]
    assert lo < p["decode_tokens_per_s"] < hi
    assert p["bound"] == "memory"


def test_batch_one_reads_top_k_experts_and_large_batches_read_all() -> None:
    small = _est(model="qwen3-30b-a3b", gpu="h100", batch=1)["performance"]
    big = _est(model="qwen3-30b-a3b", gpu="h100", batch=256, context=2048)["performance"]
    assert isinstance(small, dict) and isinstance(big, dict)
    assert small["distinct_experts_per_layer"] == pytest.approx(8)
    assert big["distinct_experts_per_layer"] > 127
    assert big["bytes_read_per_step_per_gpu"] > 5 * small["bytes_read_per_step_per_gpu"]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(MOE), st.integers(128, 60_000), st.integers(128, 60_000))
def test_speed_never_rises_with_context(spec: ModelSpec, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    fast = _est(model=spec.id, gpu="h200", num_gpus=8, context=lo)["performance"]
    slow = _est(model=spec.id, gpu="h200", num_gpus=8, context=hi)["performance"]
    assert isinstance(fast, dict) and isinstance(slow, dict)
    assert slow["decode_tokens_per_s"] <= fast["decode_tokens_per_s"] * (1 + 1e-9)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(MOE))
def test_throughput_never_falls_with_batch_and_cost_falls_with_it(spec: ModelSpec) -> None:
    r = estimate(EstimateRequest(model=spec.id, gpu="h200", num_gpus=8, context=2048, batch=1))
    assert r.performance is not None
    rows = [row for row in r.performance.by_batch if row.fits]
    totals = [row.throughput_tokens_per_s for row in rows]
    assert totals == sorted(totals)
    costs = []
    for b in (1, 8, 64):
        e = estimate(EstimateRequest(model=spec.id, gpu="h200", num_gpus=8, context=2048, batch=b))
        assert e.cost is not None and e.cost.usd_per_million_output_tokens is not None
        costs.append(e.cost.usd_per_million_output_tokens)
    assert costs == sorted(costs, reverse=True)


def test_cost_uses_price_override_and_energy() -> None:
    c = _est(model="mixtral-8x7b", gpu="h100", num_gpus=2, price_usd_per_hour=2.0, energy_usd_per_kwh=0.2)["cost"]
    assert isinstance(c, dict)
    tdp_kw = resolve_gpu("h100").tdp_w / 1000  # type: ignore[operator]
    assert c["usd_per_hour"] == pytest.approx(2 * 2.0 + 2 * tdp_kw * 0.2)
    p = _est(model="mixtral-8x7b", gpu="h100", num_gpus=2)["performance"]
    assert isinstance(p, dict)
    per_m = c["usd_per_hour"] / (p["throughput_tokens_per_s"] * 3600) * 1e6
    assert c["usd_per_million_output_tokens"] == pytest.approx(per_m, rel=1e-3)
    assert c["purchase_usd"] == 2 * resolve_gpu("h100").purchase_usd.approx  # type: ignore[union-attr]


def _profile(gpu_id: str, days_old: float = 1.0, bw: float = 0.5) -> CalibrationProfile:
    created = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_old)).isoformat()
    return CalibrationProfile(
        device="NVIDIA H100 80GB HBM3",
        gpu_id=gpu_id,
        backend="cuda",
        dtype="bf16",
        created=created,
        torch_version="2.13.0",
        bandwidth_gb_s=1675.0,
        gemm_tflops=600.0,
        bandwidth_efficiency=bw,
        compute_efficiency=0.6,
    )


def test_stored_calibration_changes_speed_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOEPLAN_CACHE", str(tmp_path))
    before = estimate(EstimateRequest(model="mixtral-8x7b", gpu="h100", num_gpus=2))
    save_profile(_profile("h100-sxm"), tmp_path / "calibration" / "h100-sxm.json")
    after = estimate(EstimateRequest(model="mixtral-8x7b", gpu="h100", num_gpus=2))
    assert before.performance is not None and after.performance is not None
    assert after.performance.calibration is not None
    assert after.performance.decode_tokens_per_s < before.performance.decode_tokens_per_s  # 50% < 78% default
    assert any(a.startswith("calibrated:") for a in after.assumptions)


def test_foreign_or_stale_calibration_is_not_applied_silently(tmp_path: Path) -> None:
    foreign = save_profile(_profile("a100-80gb-sxm"), tmp_path / "a100.json")
    with pytest.raises(InputError, match="measured on"):
        measured_for(resolve_gpu("h100"), str(foreign))
    stale = save_profile(_profile("h100-sxm", days_old=400), tmp_path / "old.json")
    with pytest.raises(InputError, match="days old"):
        measured_for(resolve_gpu("h100"), str(stale))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"device": 3}))
    with pytest.raises(InputError, match="not a calibration profile"):
        measured_for(resolve_gpu("h100"), str(bad))


def test_dense_vs_moe_on_h100() -> None:
    base = EstimateRequest(model="mixtral-8x7b")
    reqs = compare_requests(["mixtral-8x7b", "llama-3.1-70b"], ["h100"], [], [], base)
    comparison = compare(reqs)
    rows = {r.label: r for r in comparison.rows}
    moe, dense = rows["decode FLOPs per token"].values
    assert moe is not None and dense is not None and moe < dense / 4  # far less compute per token
    assert rows["bytes per parameter"].values[0] == pytest.approx(rows["bytes per parameter"].values[1], rel=0.01)
    assert rows["decode tokens/s per sequence"].winners == {0}
    assert rows["weights"].winners == {0}  # fewer parameters in all, not fewer bytes per parameter
    from moeplan.deploy.results import Row

    assert Row("bytes per parameter", [1.0031, 1.0029], "B", "min").winners == set()  # both read 1.003: a tie
    assert Row("bytes per parameter", [1.0031, 1.0029, 1.2], "B", "min").winners == {0, 1}
    assert Row("memory per GPU", [124.66, 125.08], "GiB", "min").winners == {0}  # 0.3%: shown apart, one wins


def test_compare_columns_must_line_up() -> None:
    base = EstimateRequest(model="x")
    with pytest.raises(InputError):
        compare_requests(["mixtral-8x7b"], [], [], [], base)
    with pytest.raises(InputError):
        compare_requests(["a", "b", "c"], ["h100", "h200"], [], [], base)
    cols = compare_requests(["qwen3-30b-a3b"], ["4090"], ["bf16", "Q4_K_M"], ["vllm", "llama.cpp"], base)
    assert [(c.quant, c.engine) for c in cols] == [("bf16", "vllm"), ("Q4_K_M", "llama.cpp")]


def test_recommend_deepseek_v3_at_32k() -> None:
    _, cands = recommend("deepseek-v3", context=32768)
    fp8 = {(c.gpu.id, c.num_gpus) for c in cands if c.quant == "fp8-block128"}
    assert ("h100-sxm", 8) not in fp8
    assert ("h200-sxm", 8) in fp8
    costs = [c.usd_per_million_output_tokens for c in cands if c.usd_per_million_output_tokens is not None]
    assert costs == sorted(costs)
    assert all(c.per_gpu_bytes <= c.usable_bytes for c in cands)
    assert all(c.num_gpus <= 8 for c in cands if c.gpu.kind in ("consumer", "workstation"))


def test_recommend_filters() -> None:
    _, cands = recommend("qwen3-30b-a3b", quant="Q4_K_M", budget_usd=3000, sort="purchase")
    assert cands and all(c.purchase_usd is not None and c.purchase_usd <= 3000 for c in cands)
    prices = [c.purchase_usd for c in cands]
    assert prices == sorted(prices)  # type: ignore[type-var]
    _, fast = recommend("qwen3-30b-a3b", min_tokens_per_s=150, sort="speed")
    assert all(c.tokens_per_s >= 150 for c in fast)
    with pytest.raises(InputError):
        recommend("qwen3-30b-a3b", sort="cheapest")  # type: ignore[arg-type]


def test_recommend_uses_a_stored_calibration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOEPLAN_CACHE", str(tmp_path))
    before = {(c.gpu.id, c.num_gpus, c.quant): c.tokens_per_s for c in recommend("mixtral-8x7b", gpus=("h100",))[1]}
    save_profile(_profile("h100-sxm", bw=0.3), tmp_path / "calibration" / "h100-sxm.json")
    after = {(c.gpu.id, c.num_gpus, c.quant): c.tokens_per_s for c in recommend("mixtral-8x7b", gpus=("h100",))[1]}
    vllm = [k for k in before if not k[2].isupper()]
    assert vllm and all(after[k] < before[k] for k in vllm)


def test_a_step_is_bound_by_its_largest_term() -> None:
    from moeplan.deploy.speed import Step

    def bound(memory: float, compute: float, fixed: float, comm: float) -> str:
        return Step(max(memory, compute) + fixed + comm, memory, compute, fixed, comm, 0.0).bound

    assert bound(12.5, 1.5, 5.2, 0.9) == "memory"
    assert bound(1.7, 0.4, 7.4, 0.6) == "overhead"  # DeepSeek-R1 at batch 1 on 8 x H200
    assert bound(1.0, 9.0, 2.0, 0.5) == "compute"
    assert bound(1.0, 2.0, 1.0, 3.0) == "communication"


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(MOE), st.sampled_from(["h100", "rtx-4090", "h200", "mi300x"]), st.integers(64, 32_768))
def test_prefill_is_never_faster_than_the_compute_roofline(spec: ModelSpec, gpu: str, prompt: int) -> None:
    """A prompt's FLOPs over all GPUs' peak (the compute dtype's, the larger of it and bf16) bound prefill."""
    from moeplan.deploy.resolve import resolve
    from moeplan.deploy.speed import peak_flops
    from moeplan.model.flops import prompt_flops

    d = resolve(EstimateRequest(model=spec.id, gpu=gpu, context=prompt, prompt=prompt, use_calibration=False))
    r = estimate(EstimateRequest(model=spec.id, gpu=gpu, context=prompt, prompt=prompt, use_calibration=False))
    assert r.performance is not None and d.gpu is not None
    peak = max(peak_flops(d.gpu, d.compute_dtype), peak_flops(d.gpu, "bf16")) * d.layout.num_gpus
    fastest = prompt / (prompt_flops(spec.arch, prompt) / peak)
    assert r.performance.prefill_tokens_per_s_range[1] <= fastest * (1 + 1e-9)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(MOE))
def test_more_gpus_at_batch_1_never_reduce_communication_time(spec: ModelSpec) -> None:
    """Splitting one sequence over more GPUs adds collectives; it never makes them cheaper."""
    times = []
    for n in (1, 2, 4, 8):
        r = estimate(EstimateRequest(model=spec.id, gpu="h200", num_gpus=n, context=4096, use_calibration=False))
        assert r.performance is not None
        times.append(r.performance.step_seconds["communication"])
    assert times == sorted(times)


def test_pipeline_stages_add_throughput_where_the_batch_work_dominates() -> None:
    """vLLM keeps a micro-batch on every stage: TP 8 x PP 2 on 16 H100s serves Llama-3.3-70B's 192 sequences of 8K
    1.6x as fast as TP 8 on 8 (the KV cache's reads spread over the stages); at batch 1 the stages take the
    token in turn and add nothing."""
    from moeplan.deploy.deployment import EstimateRequest
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.resolve import resolve
    from moeplan.deploy.speed import SpeedModel

    def step(pp: int, batch: int, engine: str = "vllm") -> float:
        d = resolve(EstimateRequest(model="llama-3.3-70b", gpu="h100", quant="fp8", engine=engine, num_gpus=8 * pp,
                                    tp=8, pp=pp, context=8192, use_calibration=False), fewest=False)  # fmt: skip
        return SpeedModel(MemoryModel(d)).decode_step(8192, batch).seconds

    assert step(2, 192) < 0.7 * step(1, 192)
    assert step(2, 1) >= 0.95 * step(1, 1)

    def chunk_token_s(pp: int, engine: str) -> float:  # a prompt token's cost beside the decode, per stage in turn
        d = resolve(EstimateRequest(model="llama-3.3-70b", gpu="h100", quant="fp8", engine=engine, num_gpus=8 * pp,
                                    tp=8, pp=pp, context=8192, use_calibration=False), fewest=False)  # fmt: skip
        return SpeedModel(MemoryModel(d)).prefill_token_seconds(8192, 4096)

    # the chunks riding the pipelined micro-batches overlap too: no slower a token on two stages than on one
    assert chunk_token_s(2, "vllm") <= 1.05 * chunk_token_s(1, "vllm")
