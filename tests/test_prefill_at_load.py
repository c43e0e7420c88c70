"""A prefill instance kept busy (issue 17): the tokens a pass carries per scheduler, data-parallel attention's GEMM
shapes, the per-node expert dispatch of prefill passes, data-parallel dense layers, two-batch overlap, and the
published prefill-at-load measurements they are scored against."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moeplan.cli import app
from moeplan.deploy.comm import expert_all_to_all_s, link_for, step_comm_s
from moeplan.deploy.deployment import EstimateRequest
from moeplan.deploy.engines import engine
from moeplan.deploy.memory import MemoryModel
from moeplan.deploy.resolve import resolve
from moeplan.deploy.speed import SpeedModel
from moeplan.errors import InputError
from moeplan.hardware.gpus import resolve_gpu
from moeplan.plans.accuracy import check, load_records
from moeplan.plans.serve_commands import launch

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _resolve(**kw: object) -> object:
    base = {"model": "deepseek-v3", "use_calibration": False}
    return resolve(EstimateRequest(**{**base, **kw}), fewest=False)  # type: ignore[arg-type]


def test_a_pass_carries_each_schedulers_tokens() -> None:
    """TensorRT-LLM's ``max_num_tokens`` and vLLM's ``max_num_batched_tokens`` are each attention-DP rank's (a
    scheduler per rank): four ranks of 16,384 carry 65,536 tokens a pass.  SGLang's ``--chunked-prefill-size`` is
    the instance's, divided over its DP workers; under TP one scheduler fills the pass."""
    trt = _resolve(gpu="gb200", num_gpus=4, tp=4, ep=4, dp_attention=True, engine="tensorrt-llm", quant="nvfp4",
                   ubatch=16384)  # fmt: skip
    assert trt.pass_tokens == 4 * 16384  # type: ignore[attr-defined]
    vllm = _resolve(gpu="gb200", num_gpus=2, tp=2, ep=2, dp_attention=True, engine="vllm", quant="nvfp4")
    assert vllm.pass_tokens == 2 * engine("vllm").batched_tokens  # type: ignore[attr-defined]
    sglang = _resolve(gpu="gb200", num_gpus=4, tp=4, ep=4, dp_attention=True, engine="sglang", quant="nvfp4",
                      ubatch=32768)  # fmt: skip
    assert sglang.pass_tokens == 32768  # type: ignore[attr-defined]
    tp_only = _resolve(gpu="h200", num_gpus=8, tp=8, engine="tensorrt-llm")
    assert tp_only.pass_tokens == engine("tensorrt-llm").batched_tokens  # type: ignore[attr-defined]


def test_data_parallel_attention_runs_whole_projections_on_each_ranks_tokens() -> None:
    """Under DP attention a rank multiplies its own tokens by the whole attention projections and shared experts
    (rows = pass / ranks, width = hidden), not every token by a 1/32 slice (width 224, a fifth of the peak): at
    DP 32 the dense GEMMs reach the share a full-width GEMM of 16,384 rows reaches."""
    d = _resolve(gpu="h100", num_gpus=32, tp=32, ep=32, dp_attention=True, engine="sglang", ubatch=32 * 16384)
    sm = SpeedModel(MemoryModel(d))  # type: ignore[arg-type]
    h = d.spec.arch.hidden_size  # type: ignore[attr-defined]
    eff = d.efficiency  # type: ignore[attr-defined]
    flops = {"attention": 1e12}
    whole = sm._compute_s(flops, 32 * 16384, eff, 1.0, 0.0, rank_rows=16384)
    assert whole == pytest.approx(1e12 / (sm.peak * min(0.95, eff.gemm(16384, h, h))))
    sliced = sm._compute_s(flops, 32 * 16384, eff, 1.0, 0.0)
    assert sliced == pytest.approx(1e12 / (sm.peak * min(0.95, eff.gemm(32 * 16384, 256, h))))
    assert whole < sliced / 3


def test_a_prefill_pass_crosses_infiniband_once_per_node() -> None:
    """DeepEP's normal kernels (prefill) send a token once to each other node its experts sit on, NVLink fanning it
    out there: 4 nodes, top-8 -> 3 (1 - (3/4)^8) = 2.70 copies over InfiniBand, where the low-latency kernels of
    decode write 32 (1 - (31/32)^8) x 3/4 = 5.39 copies, one to each rank."""
    gpu = resolve_gpu("h100")
    ib, nv = link_for(gpu, True), link_for(gpu, False)
    tokens, h = 32 * 16384.0, 7168
    local = tokens / 32
    copies = 3 * (1 - 0.75**8)
    assert copies == pytest.approx(2.70, abs=0.01)
    distinct = 32 * (1 - (31 / 32) ** 8)
    by_hand = sum(ib.alpha(32, ib.a2a_alpha_s) + max(copies * local * h * b / ib.bus_bytes_s,
                                                     distinct * local * h * b / nv.bus_bytes_s)
                  for b in (1, 2))  # fmt: skip
    assert expert_all_to_all_s(gpu, 32, 8, tokens, h, 8.0, per_node=True) == pytest.approx(by_hand)
    assert expert_all_to_all_s(gpu, 32, 8, tokens, h, 8.0) > 1.8 * by_hand  # a copy per rank over InfiniBand


def test_data_parallel_dense_layers_gather_nothing() -> None:
    """vLLM's DP ranks (engines of their own) and SGLang with ``--moe-dense-tp-size 1`` run the dense layers' MLP
    whole on each rank: only the MoE layers gather (inside a node) or dispatch; SGLang's launch line asks for it."""
    gpu = resolve_gpu("h200")
    kw = {"tp": 8, "ep": 8, "pp": 1, "num_nodes": 1, "tokens": 4096.0, "hidden": 7168, "top_k": 8.0, "layers": 61,
          "moe_layers": 58, "dp_attention": True}  # fmt: skip
    nv = link_for(gpu, False)
    gather = 2 * nv.all_gather_s(8, 4096 * 7168 * 2)
    assert step_comm_s(gpu, **kw) == pytest.approx(61 * gather)  # type: ignore[arg-type]
    assert step_comm_s(gpu, dense_dp=True, **kw) == pytest.approx(58 * gather)  # type: ignore[arg-type]
    assert engine("vllm").dense_dp == "" and engine("tensorrt-llm").dense_dp is None
    d = _resolve(gpu="h200", num_gpus=8, tp=8, ep=8, dp_attention=True, engine="sglang")
    assert "--enable-dp-attention --moe-dense-tp-size 1" in launch(d, 8)  # type: ignore[arg-type]


def test_two_batch_overlap_hides_the_all_to_all_under_compute() -> None:
    """With ``--batch-overlap`` a step's collectives add half of themselves while they are shorter than the work,
    and their excess over half the work beyond it; without, all of them.  Refused for an engine without the flag and
    without data-parallel attention; the launch line carries the engine's flag."""
    base = {"gpu": "h100", "num_gpus": 32, "tp": 32, "ep": 32, "dp_attention": True, "engine": "sglang"}
    on = SpeedModel(MemoryModel(_resolve(batch_overlap=True, **base)))  # type: ignore[arg-type]
    off = SpeedModel(MemoryModel(_resolve(**base)))  # type: ignore[arg-type]
    assert off.exposed_comm_s(1.0, 0.8, 4096, True) == 0.8
    assert on.exposed_comm_s(1.0, 0.8, 4096, True) == pytest.approx(0.4)
    assert on.exposed_comm_s(1.0, 3.0, 4096, True) == pytest.approx(2.5)
    # a step is split only where each rank carries vLLM's thresholds: 32 decode tokens, 512 with a prompt
    assert on.exposed_comm_s(1.0, 0.8, 31, False) == 0.8 and on.exposed_comm_s(1.0, 0.8, 32, False) < 0.8
    assert on.exposed_comm_s(1.0, 0.8, 511, True) == 0.8
    one = on.decode_step(2048, 1)
    assert one.hidden_s == 0 and one.seconds == pytest.approx(off.decode_step(2048, 1).seconds)
    full = on.decode_step(2048, 32 * 64)
    assert full.hidden_s > 0 and full.seconds < off.decode_step(2048, 32 * 64).seconds
    gain = off.loaded_prefill_s(1000, 32 * 16384) / on.loaded_prefill_s(1000, 32 * 16384)
    assert 1.2 < gain < 1.5  # LMSYS: +27% to +35% on this deployment
    with pytest.raises(InputError, match="batch-overlap"):
        _resolve(batch_overlap=True, **{**base, "engine": "tensorrt-llm"})
    with pytest.raises(InputError, match="dp-attention"):
        _resolve(gpu="h100", num_gpus=8, tp=8, engine="sglang", batch_overlap=True)
    d = _resolve(batch_overlap=True, **base)
    assert "--enable-two-batch-overlap" in launch(d, 32)  # type: ignore[arg-type]
    code = runner.invoke(app, ["estimate", "deepseek-v3", "--gpu", "h100", "--num-gpus", "32", "--dp-attention",
                               "--batch-overlap", "--engine", "sglang", "--json"])  # fmt: skip
    assert code.exit_code == 0 and '"batch_overlap": true' in code.output
    bad = runner.invoke(app, ["estimate", "deepseek-v3", "--gpu", "h100", "--num-gpus", "8", "--batch-overlap"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output


def test_a_loaded_prefill_instance_pays_its_compute_or_its_share_of_the_pass_floor() -> None:
    """``I / B`` of a pass's host floor, or the prompt's compute at a full pass, whichever is longer; the
    disaggregated model charges each queued prompt the same."""
    from moeplan.deploy.deployment import Traffic
    from moeplan.deploy.serving import DisaggregatedServingModel

    d = _resolve(gpu="b200", num_gpus=8, tp=8, ep=8, dp_attention=True, engine="tensorrt-llm", ubatch=16384)
    sm = SpeedModel(MemoryModel(d))  # type: ignore[arg-type]
    b = d.pass_tokens  # type: ignore[attr-defined]
    by_hand = max(1000 * sm.prefill_token_seconds(b, 1000), sm.prefill_dispatch_s() * 1000 / b)
    assert sm.loaded_prefill_s(1000, b) == pytest.approx(by_hand)
    split = DisaggregatedServingModel(d, d, 1, Traffic(1000, 1000, concurrency=64))  # type: ignore[arg-type]
    assert split.s_b == pytest.approx(min(split.s_p, by_hand))


def test_published_prefill_at_load_is_scored() -> None:
    """Every record of benchmarks/prefill_load_measurements.yaml scores, with its band around the expected value; the
    H100 EP32 runs with two-batch overlap (LMSYS) land within 10%, and the stage stays a separate one."""
    records = load_records(ROOT / "benchmarks/prefill_load_measurements.yaml")
    assert len(records) >= 9
    checks = {str(r["id"]): check(r) for r in records}
    for c in checks.values():
        assert c.stage == "prefill instance under load" and c.low is not None and c.high is not None
        assert c.low <= c.predicted <= c.high and math.isfinite(c.predicted)
    for rid in ("PL07", "PL08", "PL09"):
        assert abs(checks[rid].error) < 0.1


def test_serve_runs_wide_ep_across_hosts_with_two_batch_overlap() -> None:
    """A data-parallel-attention group that spans hosts on SGLang or vLLM runs two-batch overlap, as LMSYS's and
    DeepSeek's wide-EP deployments do: its label says ``+TBO``, its launch line carries the engine's flag and its JSON
    ``batch_overlap``; inside one NVLink domain, and on TensorRT-LLM, it does not."""
    from moeplan.deploy.deployment import Traffic
    from moeplan.plans.serve import ServeRequest, plan_serve
    from moeplan.plans.serve_commands import overlaps

    h100 = resolve_gpu("h100")
    assert overlaps("sglang", h100, 16, True) and overlaps("vllm", h100, 32, True)
    assert not overlaps("sglang", h100, 8, True) and not overlaps("sglang", h100, 16, False)
    assert not overlaps("tensorrt-llm", h100, 16, True) and not overlaps("sglang", resolve_gpu("gb200"), 16, True)
    req = ServeRequest(model="deepseek-v3", traffic=Traffic(2048, 1024, concurrency=4096), gpus=("h100",),
                       engines=("sglang",))  # fmt: skip
    wide = [c for c in plan_serve(req).candidates if c.dp_attention and c.num_gpus > 8 and not c.disaggregated]
    assert wide and all(c.batch_overlap and "+TBO" in c.label for c in wide)
    assert all("--enable-two-batch-overlap" in c.command for c in wide)
    out = runner.invoke(app, ["serve", "deepseek-v3", "--isl", "2k", "--osl", "1k", "--concurrency", "4096", "--gpu",
                              "h100", "--engine", "sglang", "--top", "50", "--json"])  # fmt: skip
    assert out.exit_code == 0 and '"batch_overlap": true' in out.output


def test_engines_that_need_ep_to_divide_the_experts_refuse_other_counts() -> None:
    """SGLang and TensorRT-LLM give each EP rank the same number of experts (``num_experts % ep == 0``, their
    redundant EPLB experts included: 256 + 32 = 288 over EP 48); vLLM's expert map gives the first ranks one more.
    The fewest-GPU search passes over the counts that do not divide."""
    for name in ("sglang", "tensorrt-llm"):
        with pytest.raises(InputError, match="spreads the experts evenly"):
            _resolve(gpu="h100", num_gpus=12, tp=12, ep=12, dp_attention=True, engine=name)
    assert _resolve(gpu="h100", num_gpus=12, tp=12, ep=12, dp_attention=True, engine="vllm").layout.ep == 12  # type: ignore[attr-defined]
    wide = _resolve(gpu="gb200", num_gpus=48, tp=48, ep=48, dp_attention=True, engine="sglang", eplb=True)
    assert wide.layout.ep == 48  # type: ignore[attr-defined]
    fewest = resolve(EstimateRequest(model="deepseek-v3", gpu="h100", dp_attention=True, engine="sglang",
                                     use_calibration=False))  # fmt: skip
    assert 256 % fewest.layout.ep == 0


def test_the_optimistic_end_never_assumes_a_skew_that_slows_expert_parallel_steps() -> None:
    """Skewed routing reads fewer experts (optimistic at small batches) but loads one EP rank more (pessimistic at
    large ones): the optimistic end takes the better of skewed and even routing, so the band holds its expected
    value at every batch."""
    d = _resolve(gpu="h100", num_gpus=32, tp=32, ep=32, dp_attention=True, engine="sglang")
    sm = SpeedModel(MemoryModel(d))  # type: ignore[arg-type]
    for batch in (1, 64, 2048):
        low, mid, high = (sm.decode_step(4096, batch, s).seconds for s in ("low", "expected", "high"))
        assert high <= mid <= low
    low, mid, high = (sm.loaded_prefill_s(2000, 32 * 16384, s) for s in ("low", "expected", "high"))
    assert high <= mid <= low


def test_a_split_can_prefill_under_data_parallel_attention() -> None:
    """Beside a data-parallel-attention decode instance, serve also tries prefill instances that run attention
    data-parallel with their experts over the ranks (LMSYS's and InferenceX's wide-EP prefill): labelled
    ``prefill DP8+EP8``, launched with the engine's DP flags, JSON ``prefill_dp_attention``."""
    from moeplan.deploy.deployment import Traffic
    from moeplan.plans.serve import ServeRequest, plan_serve

    req = ServeRequest(model="deepseek-v3", traffic=Traffic(8192, 1024, concurrency=1024), gpus=("h200",),
                       engines=("sglang",), max_gpus=32)  # fmt: skip
    splits = [c for c in plan_serve(req).candidates if c.disaggregated and c.prefill_dp]
    assert splits and all(f"prefill DP{c.prefill_dp}+EP{c.prefill_dp}" in c.label for c in splits)
    prefill_line = splits[0].command.splitlines()[0]
    assert "--enable-dp-attention" in prefill_line and "--disaggregation-mode prefill" in prefill_line
    args = ["serve", "deepseek-v3", "--isl", "8k", "--osl", "1k", "--concurrency", "1024", "--gpu", "h200"]
    out = runner.invoke(app, [*args, "--engine", "sglang", "--max-gpus", "32", "--top", "40", "--json"])
    assert out.exit_code == 0 and '"prefill_dp_attention": true' in out.output


def test_launch_lines_use_mori_on_amd_and_carry_eplbs_redundant_experts() -> None:
    """DeepEP is NVIDIA's: wide EP on AMD Instinct dispatches with MoRI (SGLang ``--moe-a2a-backend mori``, vLLM
    ``--all2all-backend mori_high_throughput``, ``mori_low_latency`` for decode). SGLang asserts a data-parallel
    rank's chunk fits MoRI's dispatch buffer (4,096 tokens unless set): 131,072 over 16 ranks sets it to 8,192.
    EPLB launches with the redundant experts moeplan charges (32 for 256 experts), on TensorRT-LLM online
    (``layer_updates_per_iter``), and vLLM's data-parallel ranks span hosts with its data-parallel flags."""
    from moeplan.deploy.deployment import EPLB_REDUNDANT

    for name, flag, decode in (
        ("sglang", "--moe-a2a-backend mori", "--moe-a2a-backend mori"),
        ("vllm", "--all2all-backend mori_high_throughput", "--all2all-backend mori_low_latency"),
    ):
        d = _resolve(gpu="mi300x", num_gpus=16, tp=16, ep=16, dp_attention=True, engine=name)
        line = launch(d, 16)  # type: ignore[arg-type]
        assert f"{flag} " in line and "deepep" not in line and f"{decode} " in launch(d, 16, "decode")  # type: ignore[arg-type]
    sg = _resolve(gpu="mi355x", num_gpus=16, tp=16, ep=16, dp_attention=True, engine="sglang", ubatch=131072)
    assert launch(sg, 16).startswith("SGLANG_MORI_NUM_MAX_DISPATCH_TOKENS_PER_RANK=8192 python -m sglang")  # type: ignore[arg-type]
    trt = _resolve(gpu="h100", num_gpus=16, tp=16, ep=16, dp_attention=True, engine="tensorrt-llm", eplb=True)
    assert "load_balancer: {num_slots: 288, layer_updates_per_iter: 1}" in launch(trt, 16)  # type: ignore[arg-type]
    extra = round(256 * EPLB_REDUNDANT)
    sg = _resolve(gpu="h100", num_gpus=32, tp=32, ep=32, dp_attention=True, engine="sglang", eplb=True)
    assert f"--enable-eplb --ep-num-redundant-experts {extra}" in launch(sg, 32)  # type: ignore[arg-type]
    vl = _resolve(gpu="h100", num_gpus=32, tp=32, ep=32, dp_attention=True, engine="vllm", eplb=True)
    line = launch(vl, 32)  # type: ignore[arg-type]
    assert f'"num_redundant_experts": {extra}' in line and "--data-parallel-backend ray" in line


def test_atom_launches_as_its_arguments_read_and_keeps_an_instance_on_one_host() -> None:
    """ATOM (ROCm/ATOM ``arg_utils.py``, ``engine_core_mgr.py``): MTP as ``--method mtp --num-speculative-tokens``;
    under data-parallel attention an engine core and scheduler a rank, so ``--max-num-seqs`` counts per rank (100 on
    2 ranks: 50 each); EPLB's flags there too; and no multi-node option, so 16 GPUs an instance are refused."""
    from moeplan.errors import InputError

    mtp = _resolve(gpu="mi355x", num_gpus=2, tp=2, engine="atom", mtp=True, context=2048)
    assert "--method mtp --num-speculative-tokens 1" in launch(mtp, 2) and "speculative-config" not in launch(mtp, 2)  # type: ignore[arg-type]
    dp = _resolve(gpu="mi355x", num_gpus=2, tp=2, ep=2, dp_attention=True, engine="atom", max_running=100,
                  context=2048)  # fmt: skip
    assert dp.running_cap == 100 and "--max-num-seqs 50" in launch(dp, 2)  # type: ignore[attr-defined,arg-type]
    eplb = _resolve(gpu="mi355x", num_gpus=8, tp=8, ep=8, dp_attention=True, engine="atom", eplb=True, context=2048)
    assert "--enable-dp-attention --enable-expert-parallel --enable-eplb" in launch(eplb, 8)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="atom runs an instance on one host's GPUs"):
        _resolve(gpu="mi355x", num_gpus=16, tp=16, engine="atom", context=2048)


def test_data_parallel_ranks_hold_their_replicated_weights_whole() -> None:
    """Under DP attention each rank holds whole the attention, the shared experts and the embedding (and, where the
    engine runs them data-parallel, the dense layers' MLP; vLLM's ranks also the output head): DeepSeek-V3 fp8 at
    DP 32 on SGLang holds ~5 GiB more a GPU than 1/32 of those."""
    from moeplan.deploy.memory import dp_whole_kinds

    assert set(dp_whole_kinds(engine("sglang"))) == {"attention", "shared_experts", "embedding", "dense_mlp"}
    assert "lm_head" in dp_whole_kinds(engine("vllm")) and "dense_mlp" not in dp_whole_kinds(engine("tensorrt-llm"))
    d = _resolve(gpu="h100", num_gpus=32, tp=32, ep=32, dp_attention=True, engine="sglang")
    per_gpu = MemoryModel(d).stage_weights[0]  # type: ignore[arg-type]
    whole = MemoryModel(d).weights_by_kind  # type: ignore[arg-type]
    for kind in ("attention", "shared_experts", "embedding", "dense_mlp"):
        assert per_gpu[kind] == whole[kind]
    assert per_gpu["routed_experts"] < whole["routed_experts"] / 16


def test_a_pass_shorter_than_the_prompt_and_overlap_where_engines_run_it() -> None:
    """A pass of fewer tokens than the prompt carries only its own tokens at full load (chunked prefill); two-batch
    overlap runs over DeepEP only, so it is refused on AMD; --dp-attention takes every GPU into its group; SGLang's
    --ubatch must leave each data-parallel worker a token."""
    d = _resolve(gpu="h100", num_gpus=8, tp=8, engine="vllm", ubatch=2048)
    sm = SpeedModel(MemoryModel(d))  # type: ignore[arg-type]
    assert sm.loaded_prefill_s(8192, 2048) > sm.loaded_prefill_s(8192, 8192)
    with pytest.raises(InputError, match="DeepEP"):
        _resolve(gpu="mi300x", num_gpus=16, tp=16, ep=16, dp_attention=True, engine="vllm", batch_overlap=True)
    with pytest.raises(InputError, match="one group"):
        resolve(EstimateRequest(model="deepseek-v3", gpu="h100", num_gpus=16, tp=8, dp_attention=True,
                                use_calibration=False), fewest=False)  # fmt: skip
    with pytest.raises(InputError, match="less than a token"):
        _resolve(gpu="h100", num_gpus=16, tp=16, ep=16, dp_attention=True, engine="sglang", ubatch=8)


def test_serving_under_dp_attention_never_serves_less_for_more_clients() -> None:
    """A steady-state batch drifts over the DP ranks: its busiest rank's share grows smoothly, so crossing a multiple
    of the ranks (256 -> 258 clients on DP 16) never lowers the throughput (hypothesis found it did)."""
    from moeplan.deploy.deployment import Traffic
    from moeplan.deploy.serving import ServingModel

    d = _resolve(gpu="h200", num_gpus=16, tp=16, ep=16, dp_attention=True, context=9216)
    points = [ServingModel(d, Traffic(8192, 1024, concurrency=c)).point() for c in range(240, 281)]  # type: ignore[arg-type]
    for a, b in itertools.pairwise(points):
        assert b.output_tokens_per_s >= a.output_tokens_per_s * (1 - 1e-6)
        assert b.ttft_s >= a.ttft_s * (1 - 1e-6) and b.tpot_s >= a.tpot_s * (1 - 1e-6)


def test_vllm_balances_only_fp8_and_bf16_experts_with_eplb() -> None:
    """vLLM raises "EPLB is only supported for FP8 quantization" for other expert formats: AWQ with --eplb is refused
    there, and serve plans AWQ without it."""
    from moeplan.deploy.deployment import Traffic
    from moeplan.plans.serve import ServeRequest, plan_serve

    with pytest.raises(InputError, match="EPLB"):
        _resolve(gpu="h200", num_gpus=16, tp=16, ep=16, dp_attention=True, eplb=True, quant="awq-int4", engine="vllm")
    req = ServeRequest(model="deepseek-v3", traffic=Traffic(2048, 1024, concurrency=1024), gpus=("h200",),
                       quants=("awq-int4",), max_gpus=32)  # fmt: skip
    assert not any(c.eplb for c in plan_serve(req).candidates)
