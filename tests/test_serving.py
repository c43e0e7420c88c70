"""The serving model and planner (issue 17): steady state under a load, targets, the search and its outputs."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from moeplan.cli import app
from moeplan.deploy.deployment import EstimateRequest, Traffic
from moeplan.deploy.resolve import resolve
from moeplan.deploy.serving import ServingModel
from moeplan.errors import InputError
from moeplan.plans.serve import ServeRequest, best_throughput_per_gpu, plan_serve

runner = CliRunner()
H100 = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="h100", num_gpus=1, context=2048, use_calibration=False))
DSV3 = resolve(EstimateRequest(model="deepseek-v3", gpu="h200", num_gpus=8, context=3072, use_calibration=False))
DSV3_DP16 = resolve(EstimateRequest(model="deepseek-v3", gpu="h200", num_gpus=16, tp=16, ep=16, dp_attention=True,
                                    context=9216, use_calibration=False), fewest=False)  # fmt: skip
"""Long prompts that fill the prefill: where a fixed damped step had circled a two-cycle (fewer served at 640
clients than at 448)."""


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "100", "NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 1000), st.integers(1, 1000), st.sampled_from([(H100, 1000), (DSV3, 1000), (DSV3_DP16, 8192)]))
def test_more_traffic_never_lowers_latency(a: int, b: int, case: tuple[object, int]) -> None:
    lo, hi = sorted((a, b))
    d, isl = case
    osl = 1000 if isl == 1000 else 1024
    light = ServingModel(d, Traffic(isl, osl, concurrency=lo)).point()  # type: ignore[arg-type]
    heavy = ServingModel(d, Traffic(isl, osl, concurrency=hi)).point()  # type: ignore[arg-type]
    assert heavy.tpot_s >= light.tpot_s * (1 - 1e-6)
    assert heavy.ttft_s >= light.ttft_s * (1 - 1e-6)
    assert heavy.e2e_s >= light.e2e_s * (1 - 1e-6)
    assert heavy.output_tokens_per_s >= light.output_tokens_per_s * (1 - 1e-6)  # and never serves less


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([H100, DSV3, DSV3_DP16]), st.sampled_from([256, 1024, 2048, 8192]), st.floats(0.05, 40.0))
def test_a_p90_tpot_never_exceeds_ten_times_the_mean(d: object, isl: int, rate: float) -> None:
    """A non-negative figure's p90 is at most ten times its mean (Markov): an iteration carrying prompt tokens
    carries those that arrive per iteration, not a full scheduler chunk (1,024-token prompts on SGLang's
    data-parallel chunk of 65,536 had put the p90 at 19x the mean)."""
    p = ServingModel(d, Traffic(isl, 512, rate=rate)).point()  # type: ignore[arg-type]
    assert p.tpot_s <= p.tpot_p90_s <= 10 * p.tpot_s


@pytest.mark.parametrize("scenario", ["low", "high"])
@pytest.mark.parametrize("d", [H100, DSV3_DP16])
def test_a_band_end_from_a_shared_model_equals_a_fresh_one(d: object, scenario: str) -> None:
    """``in_scenario`` (recommend's and the accuracy table's three band ends off one memory model) gives the
    point a model built for that end gives, field for field."""
    traffic = Traffic(2048, 1024, concurrency=96)
    shared = ServingModel(d, traffic).in_scenario(scenario).point()  # type: ignore[arg-type]
    assert shared == ServingModel(d, traffic, scenario).point()  # type: ignore[arg-type]


@settings(max_examples=20, deadline=None)
@given(st.floats(0.1, 30.0), st.floats(0.1, 30.0))
def test_a_higher_rate_never_lowers_latency(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    light = ServingModel(H100, Traffic(1000, 500, rate=lo)).point()
    heavy = ServingModel(H100, Traffic(1000, 500, rate=hi)).point()
    if heavy.stable:
        assert heavy.tpot_s >= light.tpot_s * (1 - 1e-6) and heavy.ttft_s >= light.ttft_s * (1 - 1e-6)


RESULT = plan_serve(ServeRequest(model="qwen3-30b-a3b", traffic=Traffic(1000, 1000, concurrency=32),
                                 gpus=("h100", "rtx-4090", "mi300x")))  # fmt: skip


@settings(max_examples=30, deadline=None)
@given(st.floats(0.005, 0.2), st.floats(0.005, 0.2))
def test_a_tighter_latency_target_never_yields_more_throughput_per_gpu(a: float, b: float) -> None:
    tight, loose = sorted((a, b))
    assert best_throughput_per_gpu(RESULT, None, tight) <= best_throughput_per_gpu(RESULT, None, loose)


def test_steady_state_is_physical() -> None:
    one = ServingModel(H100, Traffic(1000, 1000, concurrency=1)).point()
    assert one.decode_batch == pytest.approx(1.0) and one.prefill_share < 0.05
    assert one.tokens_per_s_per_user == pytest.approx(1 / one.tpot_s)
    busy = ServingModel(H100, Traffic(1000, 1000, concurrency=1000)).point()
    assert busy.kv_limited and busy.decode_batch <= busy.max_running + 1e-9 and busy.ttft_s > 10 * one.ttft_s
    over = ServingModel(H100, Traffic(8000, 100, rate=1000.0)).point()
    assert not over.stable


def test_bad_loads_are_refused() -> None:
    for t in (Traffic(0, 10, concurrency=1), Traffic(10, 10), Traffic(10, 10, concurrency=2, rate=1.0),
              Traffic(10, 10, rate=float("nan")), Traffic(10, 10, concurrency=1, prefix_hit=1.0)):  # fmt: skip
        with pytest.raises(InputError):
            t.check()


def test_serve_names_a_bad_format_or_engine_and_offers_amd_its_own_fp4() -> None:
    """An unknown --quant is refused by name (not as a search that found nothing), engines without a serving model
    (transformers, llama.cpp, KTransformers) are refused, and AMD's fp4 GPUs are searched in MXFP4, not NVFP4."""
    from moeplan.hardware.gpus import resolve_gpu
    from moeplan.plans.serve import candidate_formats
    from moeplan.sources.catalog import resolve_model

    code, _, err = run("serve", "deepseek-v3", "--concurrency", "5", "--quant", "nosuch")
    assert code == 1 and "unknown quantization 'nosuch'" in err and err.count("\n") == 1
    code, _, err = run("serve", "deepseek-v3", "--concurrency", "5", "--quant", "q4km")  # suggested as a GPU name is
    assert code == 1 and "did you mean Q4_K_M" in err and err.count("\n") == 1
    for name in ("transformers", "llama.cpp", "ktransformers"):
        code, _, err = run("serve", "deepseek-v3", "--concurrency", "5", "--engine", name)
        assert code == 1 and "serve plans the serving engines" in err, name
    spec = resolve_model("deepseek-v3")
    assert "mxfp4" in candidate_formats(spec, resolve_gpu("mi355x"), ()) and "nvfp4" not in candidate_formats(
        spec, resolve_gpu("mi355x"), ())  # fmt: skip
    assert "nvfp4" in candidate_formats(spec, resolve_gpu("b200"), ())
    # a format no engine asked for runs on the GPUs asked for: said as estimate says it, not as a search come up empty
    code, _, err = run("serve", "qwen3-30b-a3b", "--concurrency", "8", "--gpu", "mi300x", "--quant", "nvfp4")
    assert code == 1 and "MI300X has no vllm kernels for nvfp4 weights" in err and err.count("\n") == 1


def test_estimate_under_a_load_says_only_what_holds() -> None:
    """A deployment that does not fit serves nothing; a rate it cannot keep up with has no TTFT; the KV cache's room
    is not called the engine's default cap; a request beyond the trained context is refused, as serve does."""
    base = ("estimate", "deepseek-v3", "--gpu", "h200", "--num-gpus", "8")
    code, out, err = run(*base, "--quant", "bf16", "--isl", "8192", "--osl", "1024", "--concurrency", "64", "--json")
    assert code == 0 and json.loads(out)["serving"] is None, err
    code, out, err = run(*base, "--isl", "1024", "--osl", "1024", "--rate", "50")
    text = " ".join(out.split())
    assert code == 0 and "TTFT ∞" in text and "cannot keep up" in text and "default cap" not in text, err
    code, _, err = run(*base, "--isl", "200k", "--osl", "1024", "--concurrency", "4")
    assert code == 1 and "trained context" in err and err.count("\n") == 1
    load = ("--isl", "4k", "--osl", "1k", "--concurrency", "32")
    code, out, err = run(*base, *load, "--format", "csv")  # the other formats carry the steady state too
    assert code == 0 and "serving: time to first token" in out and "serving: request rate" in out, err
    code, out, err = run(*base, *load, "--explain")
    assert code == 0 and "serving (32 clients" in " ".join(out.split()), err


def test_the_planner_ranks_what_meets_the_targets_first() -> None:
    r = plan_serve(ServeRequest(model="qwen3-30b-a3b", traffic=Traffic(1000, 1000, concurrency=64), tpot_s=0.05,
                                gpus=("h100", "rtx-4090")))  # fmt: skip
    meets = [c.meets for c in r.candidates]
    assert meets == sorted(meets, reverse=True) and any(meets)
    costs = [c.usd_per_million_output_tokens for c in r.candidates if c.meets]
    assert costs == sorted(costs)  # type: ignore[type-var]
    assert all("vllm serve" in c.command for c in r.candidates)
    assert r.pareto and all(p.stable for _, p in r.pareto)


def test_serve_cli_outputs() -> None:
    code, out, err = run("serve", "qwen3-30b-a3b", "--concurrency", "16", "--tpot", "60", "--gpu", "h100", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["traffic"]["concurrency"] == 16 and data["configurations"][0]["command"].startswith("vllm serve")
    assert {"tpot_s", "ttft_s", "ttft_p90_s", "output_tokens_per_s_per_gpu"} <= set(data["configurations"][0]["point"])
    code, out, _ = run("serve", "qwen3-30b-a3b", "--concurrency", "16", "--gpu", "h100", "--format", "csv")
    assert code == 0 and out.startswith("#,configuration")
    code, out, _ = run("serve", "qwen3-30b-a3b", "--concurrency", "16", "--gpu", "h100", "--detail")
    assert code == 0 and "launch:" in out and "tok/s per user" in out  # the Pareto plot
    for bad in (("--rate", "0"), ("--concurrency", "4", "--rate", "1"), ("--engine", "llama.cpp", "--concurrency", "4"),
                ("--concurrency", "4", "--tpot", "-1")):  # fmt: skip
        code, _, err = run("serve", "qwen3-30b-a3b", *bad)
        assert code in (1, 2) and "Traceback" not in err, (bad, err)  # 2: the option's range (one line via main())
        assert code == 2 or err.count("\n") == 1, (bad, err)


def test_estimate_carries_the_steady_state_when_traffic_is_given() -> None:
    code, out, err = run("estimate", "qwen3-30b-a3b", "--gpu", "h100", "--concurrency", "32", "--json")
    assert code == 0, err
    sv = json.loads(out)["serving"]
    load = Traffic(1024, 1024, concurrency=32)
    direct = ServingModel(resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="h100", traffic=load)), load).point()
    assert sv["tpot_s"] == pytest.approx(direct.tpot_s) and sv["stable"]
    code, out, _ = run("estimate", "qwen3-30b-a3b", "--gpu", "h100", "--json")
    assert "serving" not in json.loads(out)
    code, out, _ = run("estimate", "qwen3-30b-a3b", "--gpu", "h100", "--concurrency", "32")
    assert code == 0 and "serving 1,024 in / 1,024 out at concurrency 32" in out
    code, _, err = run("estimate", "qwen3-30b-a3b", "--gpu", "h100", "--rate", "-1")
    assert code == 2 and "--rate" in err


def test_expert_parallel_load_imbalance_and_eplb() -> None:
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.speed import SpeedModel

    def model(eplb: bool, skew: float = 0.0) -> SpeedModel:
        req = EstimateRequest(model="deepseek-v3", gpu="h200", num_gpus=8, ep=8, eplb=eplb, routing_skew=skew,
                              use_calibration=False)  # fmt: skip
        return SpeedModel(MemoryModel(resolve(req)))

    plain, balanced = model(False), model(True)
    assert plain.ep_imbalance(64, 0.0) == pytest.approx(1 + (2 * 2.0794 * 7 / 512) ** 0.5, rel=1e-3)
    assert plain.ep_imbalance(4096, 0.0) < plain.ep_imbalance(64, 0.0)  # large batches even out
    assert model(False, 1.2).ep_imbalance(4096, 1.2) > plain.ep_imbalance(4096, 0.0)  # hot experts do not
    assert 1 < balanced.ep_imbalance(64, 0.0) < plain.ep_imbalance(64, 0.0)
    assert balanced.decode_step(2048, 64).seconds < plain.decode_step(2048, 64).seconds
    assert MemoryModel(resolve(EstimateRequest(model="deepseek-v3", gpu="h200", num_gpus=8, ep=8, eplb=True))).gpu(
        2048, 1).weights_bytes > MemoryModel(resolve(EstimateRequest(model="deepseek-v3", gpu="h200", num_gpus=8,
                                                                      ep=8))).gpu(2048, 1).weights_bytes  # fmt: skip


def test_mtp_drafts_are_verified_with_more_experts_and_pay_by_acceptance() -> None:
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.speed import SpeedModel

    def step(mtp: bool, accept: float | None = None, batch: int = 1) -> object:
        req = EstimateRequest(model="deepseek-v3", gpu="b200", num_gpus=8, mtp=mtp, mtp_accept=accept,
                              use_calibration=False)  # fmt: skip
        return SpeedModel(MemoryModel(resolve(req))).decode_step(4096, batch)

    plain, mtp = step(False), step(True)
    assert mtp.tokens == pytest.approx(1.85)  # type: ignore[attr-defined]  # one draft at 85%
    assert mtp.seconds > plain.seconds and mtp.per_token_s < plain.per_token_s  # type: ignore[attr-defined]
    assert step(True, 0.0).per_token_s > plain.per_token_s  # type: ignore[attr-defined]  # drafts never accepted
    big = step(True, batch=64)
    assert big.bytes_read > step(False, batch=64).bytes_read  # type: ignore[attr-defined]  # 2x tokens, more experts


def test_disaggregation_removes_prefill_from_the_decode_steps_and_wins_only_on_cost() -> None:
    from moeplan.deploy.serving import DisaggregatedServingModel

    base = EstimateRequest(model="deepseek-v3", gpu="b200", context=9216, prompt=8192, use_calibration=False)
    dp = resolve(replace(base, num_gpus=4, tp=4), fewest=False)
    dd = resolve(replace(base, num_gpus=4, tp=4, ep=4), fewest=False)
    load = Traffic(8192, 1024, concurrency=64)
    split = DisaggregatedServingModel(dp, dd, 1, load).point()
    together = ServingModel(dd, load).point()
    assert split.tpot_s < together.tpot_s  # no prompt chunks in the decode steps
    assert split.output_tokens_per_s_per_gpu < together.output_tokens_per_s * 2 / 8 * 10  # sane scale
    # two decode instances fed by two prefill instances: each pair serves half the clients, as one pair alone
    # (within the KV transfer, which crosses nodes at 16 GPUs)
    pair = DisaggregatedServingModel(dp, dd, 1, Traffic(8192, 1024, concurrency=32)).point()
    twice = DisaggregatedServingModel(dp, dd, 2, load, n_decode=2).point()
    assert twice.output_tokens_per_s == pytest.approx(2 * pair.output_tokens_per_s, rel=0.01)
    assert twice.output_tokens_per_s_per_gpu == pytest.approx(pair.output_tokens_per_s_per_gpu, rel=0.01)
    assert twice.ttft_s == pytest.approx(pair.ttft_s, rel=0.05) and twice.ttft_s > pair.ttft_s
    # queued short prompts share a prefill chunk: a prompt's share of the instance is below its own latency
    short_load = DisaggregatedServingModel(dp, dd, 1, Traffic(512, 1024, concurrency=64))
    assert short_load.s_b < short_load.s_p
    assert short_load.batch_s(0.0) == pytest.approx(short_load.s_p)  # alone: its own prefill
    light, busy = (short_load.batch_s(a) for a in (1.0, 20.0))
    assert short_load.s_p < light < busy  # under load a prompt waits for the running batch and rides a larger one
    short = plan_serve(ServeRequest(model="qwen3-30b-a3b", traffic=Traffic(128, 2048, concurrency=32),
                                    gpus=("h100",)))  # fmt: skip
    first = next(c for c in short.candidates if c.meets)
    assert first.disaggregated is None  # decode-heavy traffic: splitting off prefill GPUs does not pay
    for r in (short, RESULT):
        costs = [c.usd_per_million_output_tokens for c in r.candidates if c.meets and c.usd_per_million_output_tokens]
        assert costs == sorted(costs)  # a disaggregated row ranks where its cost puts it, no earlier


def test_a_closed_loop_never_outruns_its_prefill_instances() -> None:
    """Clients the prefill instances cannot serve wait in their queue (Little's law): the request rate stays under
    ``n_p / S_b`` and TTFT grows with the clients, far beyond one prefill."""
    from moeplan.deploy.serving import DisaggregatedServingModel

    base = EstimateRequest(model="deepseek-v3", gpu="h200", context=9216, prompt=8192, use_calibration=False)
    dp = resolve(replace(base, num_gpus=8, tp=8), fewest=False)
    dd = resolve(replace(base, num_gpus=8, tp=8, ep=8, dp_attention=True, kv_dtype="fp8"), fewest=False)
    model = DisaggregatedServingModel(dp, dd, 1, Traffic(8192, 1024, concurrency=256))
    assert model.decode.max_running >= 256  # the decode instance holds them all: no slot wait hides the queue
    heavy = model.point()
    assert heavy.request_rate <= 1.02 / model.s_b
    assert heavy.ttft_s > 10 * model.s_p
    lighter = model.at(Traffic(8192, 1024, concurrency=128)).point()
    assert lighter.ttft_s < heavy.ttft_s


def test_serve_sizes_the_prefill_side_to_the_decode_side() -> None:
    """Long prompts at many clients: the prefill instances needed keep each below PREFILL_BUSY, one fewer would
    not, and serve tries that many -- DeepSeek-V3 nvfp4 on B200, 8,192/1,024 at 1,024 clients, meets TTFT 2 s and
    TPOT 50 ms only with 4+ prefill instances (one or two leave tens of seconds of queue)."""
    from moeplan.deploy.serving import PREFILL_BUSY, DisaggregatedServingModel

    base = EstimateRequest(model="deepseek-v3", gpu="b200", quant="nvfp4", context=9216, prompt=8192,
                           use_calibration=False)  # fmt: skip
    dp = resolve(replace(base, num_gpus=4, tp=4, ep=4, dp_attention=True), fewest=False)
    dd = resolve(replace(base, num_gpus=8, tp=8, ep=8, dp_attention=True), fewest=False)
    load = Traffic(8192, 1024, concurrency=1024)
    one = DisaggregatedServingModel(dp, dd, 1, load)
    need = one.prefill_instances_needed()
    assert need >= 3
    sized, fewer = one.with_prefill(need).point(), one.with_prefill(need - 1).point()
    assert sized.prefill_share <= PREFILL_BUSY * 1.02 < fewer.prefill_share
    assert sized.ttft_s < fewer.ttft_s < one.point().ttft_s
    assert one.with_prefill(need).gpus == need * 4 + 8
    req = ServeRequest(model="deepseek-v3", traffic=load, gpus=("b200",), quants=("nvfp4",), max_gpus=64, ttft_s=2.0,
                       tpot_s=0.05)  # fmt: skip
    best = next(c for c in plan_serve(req).candidates if c.meets)
    assert best.disaggregated is not None and int(best.disaggregated.split("x")[0]) >= 3


def test_clients_beyond_the_decode_slots_of_several_instances_wait_for_one() -> None:
    """Five clients on four decode instances of one running request each: one client always waits for a slot
    (the share per instance is 1.25, not a rounded 1); three clients on four instances queue for nothing."""
    from moeplan.deploy.serving import DisaggregatedServingModel

    base = EstimateRequest(model="deepseek-v3", gpu="b200", context=2048, prompt=1024, use_calibration=False)
    dp = resolve(replace(base, num_gpus=8, tp=8), fewest=False)
    dd = resolve(replace(base, num_gpus=8, tp=8, ep=8, max_running=1), fewest=False)
    four = DisaggregatedServingModel(dp, dd, 1, Traffic(1024, 1024, concurrency=4), n_decode=4).point()
    five = DisaggregatedServingModel(dp, dd, 1, Traffic(1024, 1024, concurrency=5), n_decode=4).point()
    three = DisaggregatedServingModel(dp, dd, 1, Traffic(1024, 1024, concurrency=3), n_decode=4).point()
    assert five.ttft_s > four.ttft_s + 0.2 * 1023 * five.tpot_s  # a fifth of a request's decode, on average
    assert five.request_rate == pytest.approx(four.request_rate, rel=0.02)  # the same four slots serve them
    assert three.ttft_s <= four.ttft_s * 1.01 and three.request_rate < four.request_rate


def test_closed_loop_throughput_never_falls_as_clients_are_added() -> None:
    """Below the running cap more clients never serve fewer requests a second, nor wait less: the fixed point is
    reached, not left on one half of a two-cycle (DeepSeek-V3 on 16 H200, DP16+EP16: 1.66 req/s at 448 clients had
    fallen to 1.47 at 640)."""
    base = EstimateRequest(model="deepseek-v3", gpu="h200", num_gpus=16, tp=16, ep=16, dp_attention=True,
                           context=9216, prompt=8192, use_calibration=False)  # fmt: skip
    d = resolve(base, fewest=False)
    points = [ServingModel(d, Traffic(8192, 1024, concurrency=c)).point() for c in (64, 256, 448, 640, 768, 1024)]
    rates = [p.request_rate for p in points]
    ttfts = [p.ttft_s for p in points]
    assert rates == sorted(rates) and ttfts == sorted(ttfts)
    for p, c in zip(points, (64, 256, 448, 640, 768, 1024), strict=True):  # Little's law holds at each
        assert p.request_rate * (p.ttft_s + 1023 * p.tpot_s) == pytest.approx(c, rel=1e-3)


def test_an_open_loop_queues_steeply_near_the_prefill_capacity_and_serves_no_more_than_it() -> None:
    from moeplan.deploy.serving import DisaggregatedServingModel

    base = EstimateRequest(model="deepseek-v3", gpu="h200", context=9216, prompt=8192, use_calibration=False)
    dp = resolve(replace(base, num_gpus=8, tp=8), fewest=False)
    dd = resolve(replace(base, num_gpus=8, tp=8, ep=8, dp_attention=True, kv_dtype="fp8"), fewest=False)
    model = DisaggregatedServingModel(dp, dd, 1, Traffic(8192, 1024, rate=0.1))
    capacity = 1 / model.s_b
    light, busy = (model.at(Traffic(8192, 1024, rate=f * capacity)).point() for f in (0.3, 0.95))
    assert light.stable and busy.stable and busy.ttft_s > 3 * light.ttft_s  # M/D/1: 0.95 / (2 x 0.05) = 9.5 S
    over = model.at(Traffic(8192, 1024, rate=3 * capacity)).point()
    assert not over.stable and over.request_rate <= capacity
    # overloaded, a deployment runs full whatever the offer: as a closed loop holding every slot
    agg = resolve(replace(base, num_gpus=16, tp=16, ep=16, dp_attention=True, quant="awq-int4"), fewest=False)
    full = ServingModel(
        agg, Traffic(8192, 1024, concurrency=ServingModel(agg, Traffic(8192, 1024, rate=1)).max_running)
    )
    most = full.point().request_rate
    served = [ServingModel(agg, Traffic(8192, 1024, rate=f * most)).point() for f in (1.1, 1.2, 2.0)]
    assert all(not p.stable for p in served)
    assert [p.request_rate for p in served] == pytest.approx([most] * 3)
    code, out, err = run("serve", "deepseek-v3", "--isl", "8192", "--osl", "1024", "--rate", "5", "--gpu", "h200")
    assert code == 0 and "∞" in out and "cannot keep up" in " ".join(out.split()), err
    code, out, err = run("serve", "deepseek-v3", "--isl", "8192", "--osl", "1024", "--rate", "5", "--gpu", "h200",
                         "--format", "csv")  # fmt: skip
    assert code == 0 and ",inf,inf," in out, err
    code, out, err = run("serve", "deepseek-v3", "--isl", "8192", "--osl", "1024", "--rate", "50", "--gpu", "h100")
    assert code == 0 and "None of" in out and "keeps up with the load" in out and "targets" not in out.split("\n")[0]


def test_serve_with_mtp_decodes_faster_and_says_how_to_launch_it() -> None:
    args = ("serve", "deepseek-v3", "--concurrency", "32", "--gpu", "b200", "--json")
    code, plain, _ = run(*args)
    code2, mtp, _ = run(*args, "--mtp")
    assert code == code2 == 0
    a, b = json.loads(plain)["configurations"][0], json.loads(mtp)["configurations"][0]
    assert b["point"]["tpot_s"] < a["point"]["tpot_s"] and "speculative" in b["command"]


def test_recommend_under_a_load_ranks_by_the_steady_state() -> None:
    from moeplan.plans.recommend import recommend

    _, plain = recommend("qwen3-30b-a3b", gpus=("h100", "rtx-4090"))
    _, loaded = recommend("qwen3-30b-a3b", gpus=("h100", "rtx-4090"), traffic=Traffic(1024, 1024, concurrency=64))
    assert all(c.serving is not None for c in loaded) and all(c.serving is None for c in plain)
    # those that serve the load (every client at once) first, each group by its cost per token
    serving = [c.serves_load for c in loaded]
    assert serving == sorted(serving, reverse=True) and any(serving) and not all(serving)
    for group in (True, False):
        costs = [c.usd_per_million_output_tokens for c in loaded
                 if c.serves_load is group and c.usd_per_million_output_tokens is not None]  # fmt: skip
        assert costs == sorted(costs)
    h100 = next(c for c in loaded if c.gpu.id == "h100-sxm" and c.num_gpus == 1 and c.quant == "bf16")
    assert h100.throughput_tokens_per_s == pytest.approx(h100.serving.output_tokens_per_s)  # type: ignore[union-attr]
    code, out, _ = run("recommend", "qwen3-30b-a3b", "--gpu", "h100", "--concurrency", "64", "--json")
    assert code == 0 and "serving" in json.loads(out)["candidates"][0]
    # the fastest serves every client: 4 B200s whose cache holds 5 of 64 run those fast while 59 queue for minutes
    _, deepseek = recommend("deepseek-v3", traffic=Traffic(4096, 1024, concurrency=64))
    fastest = next(c for c in deepseek if "fastest" in c.marks)
    assert fastest.serving is not None and fastest.serving.stable and not fastest.serving.kv_limited
    # the speed filter judges the speed each user gets under the load, not batch 1's
    _, quick = recommend("qwen3-30b-a3b", gpus=("h100", "rtx-4090"), traffic=Traffic(1024, 1024, concurrency=64),
                         min_tokens_per_s=40)  # fmt: skip
    assert quick and all(c.tokens_per_s >= 40 for c in quick) and len(quick) < len(loaded)
    # a load none keeps up with marks none the fastest and says so
    _, flooded = recommend("mixtral-8x22b", gpus=("h100",), traffic=Traffic(1024, 1024, rate=1000))
    assert not any(c.serves_load for c in flooded) and not any("fastest" in c.marks for c in flooded)
    code, out, _ = run("recommend", "mixtral-8x22b", "--gpu", "h100", "--rate", "1000")
    assert code == 0 and out.startswith("None of ") and "(q)" in out


def test_mtp_layers_add_their_weights_and_need_a_model_that_has_them() -> None:
    """--mtp serves the MTP layers: their parameters at the model's bytes per parameter join the weights (DeepSeek-V3:
    11.6B parameters, about 1.4 GiB per GPU at TP 8); a model without MTP layers refuses the option."""
    base = ["estimate", "deepseek-v3", "--gpu", "h200", "--num-gpus", "8", "--json"]
    plain, mtp = (json.loads(run(*base, *extra)[1]) for extra in ((), ("--mtp",)))
    added = mtp["memory"]["weights_bytes"] - plain["memory"]["weights_bytes"]
    per_param = plain["memory"]["weights_bytes"] / plain["params"]["total"]
    assert plain["params"]["breakdown"]["mtp"] > 0
    assert added == pytest.approx(plain["params"]["breakdown"]["mtp"] * per_param, rel=0.02)
    assert mtp["memory"]["per_gpu_weights_bytes"] - plain["memory"]["per_gpu_weights_bytes"] == pytest.approx(
        added / 8, rel=0.02
    )
    code, _, err = run("estimate", "mixtral-8x7b", "--gpu", "h200", "--mtp")
    assert code == 1 and "no multi-token-prediction layers" in err


@pytest.mark.parametrize(
    ("model", "gpu", "tp", "pp"),
    [("llama-3.1-70b", "h100", 1, 4), ("llama-3.1-70b", "h100", 2, 2), ("deepseek-v2", "a100", 1, 7),
     ("qwen3-235b-a22b", "h100", 2, 4)],
)  # fmt: skip
def test_one_client_through_pipeline_stages_waits_for_every_stage(model: str, gpu: str, tp: int, pp: int) -> None:
    """One client meets an idle engine: its first token takes the prompt's prefill across all ``pp`` stages in
    turn and a decode step -- not one stage's share, which the stages' overlap gives the throughput."""
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.speed import SpeedModel

    d = resolve(EstimateRequest(model=model, gpu=gpu, num_gpus=tp * pp, tp=tp, pp=pp, context=4352, prompt=4096,
                                use_calibration=False), fewest=False)  # fmt: skip
    alone = SpeedModel(MemoryModel(d)).prefill_seconds(4096)
    one = ServingModel(d, Traffic(4096, 256, concurrency=1)).point()
    assert one.ttft_s >= 0.95 * alone
    assert one.ttft_s <= 1.3 * alone + 2 * one.tpot_s  # and no more than that


def test_a_scheduler_that_polls_every_n_steps_holds_new_requests_half_an_interval() -> None:
    """SGLang's --scheduler-recv-interval N: a request arriving while the engine decodes waits for the next poll,
    (N - 1) / 2 decode steps on average; fixed-length waves arrive at an idle engine and wait for nothing."""
    base = EstimateRequest(model="deepseek-v3", gpu="b200", num_gpus=8, context=2048, engine="sglang",
                           quant="fp8", use_calibration=False)  # fmt: skip
    n = 30
    every, polled = (resolve(replace(base, recv_interval=k)) for k in (1, n))
    load = Traffic(1024, 1024, concurrency=16)
    a, b = ServingModel(every, load).point(), ServingModel(polled, load).point()
    assert b.ttft_s - a.ttft_s == pytest.approx((n - 1) / 2 * b.tpot_s, rel=0.1)
    assert b.ttft_p90_s - a.ttft_p90_s > b.ttft_s - a.ttft_s  # the wait is uniform: its p90 is 1.8x its mean
    assert b.tpot_s == pytest.approx(a.tpot_s, rel=0.02)
    waves = replace(load, arrivals="waves")
    assert ServingModel(polled, waves).point().ttft_s == pytest.approx(ServingModel(every, waves).point().ttft_s)
    with pytest.raises(InputError, match="vllm polls every step"):
        resolve(replace(base, engine="vllm", recv_interval=n))
    with pytest.raises(InputError, match="at least 1"):
        resolve(replace(base, recv_interval=0))


def test_recv_interval_on_the_command_line() -> None:
    code, out, err = run("serve", "deepseek-v3", "--concurrency", "16", "--gpu", "b200", "--engine", "sglang",
                         "--quant", "fp8", "--max-gpus", "8", "--recv-interval", "30", "--json")  # fmt: skip
    assert code == 0, err
    assert "--scheduler-recv-interval 30" in json.loads(out)["configurations"][0]["command"]
    for bad, why in (
        (("serve", "deepseek-v3", "--concurrency", "16", "--recv-interval", "30"), "none of the engines"),
        (("estimate", "deepseek-v3", "--gpu", "b200", "--num-gpus", "8", "--recv-interval", "30"), "under a load"),
        (("estimate", "deepseek-v3", "--gpu", "b200", "--num-gpus", "8", "--concurrency", "8", "--recv-interval",
          "30"), "vllm polls every step"),
    ):  # fmt: skip
        code, _, err = run(*bad)
        assert code == 1 and why in err and err.count("\n") == 1, (bad, err)
    code, _, err = run("serve", "deepseek-v3", "--concurrency", "16", "--engine", "sglang", "--recv-interval", "0")
    assert code == 2 and "--recv-interval" in err


def test_short_prompts_share_a_prefill_pass_and_a_closed_loop_never_runs_away() -> None:
    """The host's floor on an eager prefill pass (~70 ms at TP 8) is paid per pass, and a pass carries every prompt
    waiting (8,192 tokens of them): 4,000 clients of 128-token prompts are not held to one prompt per floor
    (14 a second), and a closed loop's queue is bounded by its clients, so it is never reported unstable."""
    d = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="h100", num_gpus=8, tp=8, context=512,
                                use_calibration=False))  # fmt: skip
    model = ServingModel(d, Traffic(128, 128, concurrency=4000))
    assert model.floor > 0.03 and model.prefill_share_s(100) < model.prefill_service_s(100) / 10
    p = model.point()
    assert p.stable and p.request_rate > 5 / model.floor
    light = ServingModel(d, Traffic(128, 128, concurrency=1)).point()
    assert light.ttft_s >= model.floor  # a lone prompt still pays a whole pass


def test_a_checkpoint_in_an_fp8_variant_is_not_searched_again_as_fp8() -> None:
    from moeplan.hardware.gpus import resolve_gpu
    from moeplan.plans.serve import candidate_formats
    from moeplan.sources.catalog import resolve_model

    ds = candidate_formats(resolve_model("deepseek-v3"), resolve_gpu("b200"), ())
    assert ds[0].startswith("fp8") and "fp8" not in ds[1:]
    assert "fp8" in candidate_formats(resolve_model("qwen3-30b-a3b"), resolve_gpu("h100"), ())


def test_an_engine_cap_on_running_requests_makes_the_rest_wait() -> None:
    """``--max-running N`` (vLLM --max-num-seqs, SGLang --max-running-requests, TensorRT-LLM max_batch_size): no
    more than N sequences decode at once; in a closed loop of C > N clients the others wait for a slot, about
    (C - N) / lambda each, so TTFT grows and throughput stops at N sequences' worth.  The KV cache is not what
    limits them (``kv_limited`` stays false)."""
    base = EstimateRequest(model="deepseek-v3", gpu="b200", num_gpus=8, context=2048, engine="tensorrt-llm",
                           quant="fp8", use_calibration=False)  # fmt: skip
    load = Traffic(1024, 1024, concurrency=64)
    free = ServingModel(resolve(base), load).point()
    capped = ServingModel(resolve(replace(base, max_running=16)), load).point()
    assert capped.max_running == 16 < free.max_running
    assert capped.decode_batch <= 16 < free.decode_batch
    assert capped.ttft_s == pytest.approx(free.ttft_s + 48 / capped.request_rate, rel=0.5)
    assert capped.ttft_s > 10 * free.ttft_s and capped.output_tokens_per_s < free.output_tokens_per_s
    assert not capped.kv_limited
    assert capped.ttft_p90_s == pytest.approx(capped.ttft_s, rel=0.05)  # every client waits behind the same others
    rate = ServingModel(resolve(replace(base, max_running=16)), Traffic(1024, 1024, rate=2.0)).point()
    assert not rate.stable and rate.request_rate * (1023 * rate.tpot_s) <= 16 * 1.001  # only the slots are served
    dp = resolve(replace(base, num_gpus=8, tp=8, ep=8, dp_attention=True, max_running=100))
    assert (dp.cap_per_rank, dp.running_cap) == (13, 104)  # per-rank engines: ceil(100 / 8) on each of 8 ranks
    small = ServingModel(resolve(replace(base, max_running=16)), Traffic(1024, 1024, concurrency=8)).point()
    alone = ServingModel(resolve(base), Traffic(1024, 1024, concurrency=8)).point()
    assert small.ttft_s == pytest.approx(alone.ttft_s) and small.tpot_s == pytest.approx(alone.tpot_s)
    with pytest.raises(InputError, match="transformers has no such setting"):
        resolve(replace(base, engine="transformers", quant="bf16", max_running=16))
    with pytest.raises(InputError, match="at least 1"):
        resolve(replace(base, max_running=0))


def test_without_max_running_the_engines_own_defaults_cap_the_running_requests() -> None:
    """vLLM's OpenAI server starts with 1,024 sequences and 8,192 batched tokens on GPUs of 70 GiB or more other than
    the A100, 256 and 2,048 elsewhere (EngineArgs.get_batch_defaults); moeplan launches no flag and models those."""
    load = Traffic(256, 256, concurrency=2000)
    big = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="h200", engine="vllm", use_calibration=False))
    a100 = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="a100", engine="vllm", use_calibration=False))
    rtx = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="rtx-4090", engine="vllm", quant="awq-int4",
                                  use_calibration=False))  # fmt: skip
    assert (big.batched_tokens, a100.batched_tokens, rtx.batched_tokens) == (8192, 2048, 2048)
    assert (big.running_cap, a100.running_cap, rtx.running_cap) == (1024, 256, 256)
    assert ServingModel(a100, load).point().max_running <= 256 < ServingModel(big, load).point().max_running <= 1024
    sglang = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="h200", engine="sglang", use_calibration=False))
    assert sglang.running_cap is None  # sized from its KV pool: the cache's room
    llama = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="rtx-4090", engine="llama.cpp", quant="Q4_K_M",
                                    use_calibration=False))  # fmt: skip
    assert llama.running_cap == 4  # llama-server's -np auto: 4 slots
    code, out, err = run("estimate", "qwen3-30b-a3b", "--gpu", "l40s", "--num-gpus", "2", "--quant", "fp8",
                         "--concurrency", "512", "--isl", "256", "--osl", "256")  # fmt: skip
    assert code == 0 and "vllm's default cap 256: the other clients wait" in " ".join(out.split()), err
    noted = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="a100", engine="vllm", batch=2000,
                                    use_calibration=False))  # fmt: skip
    assert any("at most 256 requests at once a rank by default" in n and "2,000" in n for n in noted.notes)
    from moeplan.plans.serve_commands import launch

    assert "--max-num-seqs" not in launch(a100, 1)


def test_max_running_on_the_command_line_and_in_the_launch_line() -> None:
    """The cap is the instance's: engines that count it per data-parallel rank (TensorRT-LLM, vLLM) are launched
    with it divided over the ranks, SGLang with the whole."""
    for eng, flag in (("tensorrt-llm", "--max_batch_size 16"), ("sglang", "--max-running-requests 128")):
        code, out, err = run("serve", "deepseek-v3", "--concurrency", "256", "--gpu", "b200", "--engine", eng,
                             "--quant", "fp8", "--max-gpus", "8", "--max-running", "128", "--json")  # fmt: skip
        assert code == 0, err
        configs = json.loads(out)["configurations"]
        dp = [c for c in configs if c["dp_attention"] and not c.get("disaggregated")]
        assert dp and all(flag in c["command"] for c in dp), (eng, [c["command"] for c in dp])
        assert all(c["point"]["max_running"] <= 128 for c in configs)
    for bad, why in (
        (("estimate", "deepseek-v3", "--gpu", "b200", "--num-gpus", "8", "--max-running", "8"), "under a load"),
        (("serve", "deepseek-v3", "--concurrency", "16", "--engine", "transformers", "--max-running", "8"),
         "serve plans the serving engines"),
    ):  # fmt: skip
        code, _, err = run(*bad)
        assert code == 1 and why in err and err.count("\n") == 1, (bad, err)
    assert "llama.cpp" not in run("serve", "deepseek-v3", "--concurrency", "16", "--engine", "mlx",
                                  "--max-running", "8")[2]  # serve does not plan llama.cpp: not offered  # fmt: skip
    code, out, err = run("serve", "deepseek-v3", "--concurrency", "256", "--gpu", "b200", "--engine", "tensorrt-llm",
                         "--quant", "fp8", "--max-gpus", "8", "--max-running", "100", "--json")  # fmt: skip
    doc = json.loads(out)
    assert doc["max_running"] == 100
    dp = [c for c in doc["configurations"] if c["dp_attention"] and not c.get("disaggregated")]
    assert all("--max_batch_size 13" in c["command"] and c["point"]["max_running"] <= 104 for c in dp)
    code, _, err = run("serve", "deepseek-v3", "--concurrency", "16", "--max-running", "0")
    assert code == 2 and "--max-running" in err


def test_a_prefill_chunk_carries_its_activations_through_the_tensor_parallel_all_reduces() -> None:
    """Under TP every layer all-reduces the chunk's ``tokens x h x 2`` bytes twice (after attention and after the
    MLP): the serving model's cost per prompt token adds those bytes on the link, the latencies being the decode
    step's own; one GPU has nothing to add."""
    from moeplan.deploy.comm import link_for
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.speed import SpeedModel

    chunk = 8192
    sm = SpeedModel(MemoryModel(DSV3))
    arch = sm.arch
    with_comm = sm.prefill_token_seconds(chunk, 3072)
    sm._comm_s = lambda tokens, alpha_scale, prefill=False: 0.0  # type: ignore[method-assign]
    compute_only = sm.prefill_token_seconds(chunk, 3072)
    link = link_for(DSV3.gpu, False)  # type: ignore[arg-type]
    per_layer = link.all_reduce_s(8, chunk * arch.hidden_size * 2) - link.all_reduce_s(8, 0)
    assert (with_comm - compute_only) * chunk == pytest.approx(2 * arch.num_layers * per_layer, rel=1e-6)
    one = SpeedModel(MemoryModel(H100))
    alone = one.prefill_token_seconds(chunk, 1000)
    one._comm_s = lambda tokens, alpha_scale, prefill=False: 0.0  # type: ignore[method-assign]
    assert one.prefill_token_seconds(chunk, 1000) == pytest.approx(alone)
    # a serving prompt behind the chunk pays it: TTFT grows with the communication
    assert ServingModel(DSV3, Traffic(3000, 100, concurrency=64)).c_p == pytest.approx(
        SpeedModel(MemoryModel(DSV3)).prefill_token_seconds(3000, 3000)
    )


def test_attention_data_parallel_keeps_whole_attention_and_each_ranks_own_cache() -> None:
    """DP attention over 8 ranks: each GPU holds the whole attention weights and the cache of its own eighth of
    the sequences (MLA's latent is no longer copied to every rank), a step gathers and scatters the tokens once per
    layer, and one sequence's attention runs on one rank."""
    from moeplan.deploy.comm import link_for, step_comm_s
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.speed import SpeedModel

    base = EstimateRequest(model="deepseek-v3", gpu="h200", num_gpus=8, quant="fp8", engine="sglang", context=4096,
                           ep=8, use_calibration=False)  # fmt: skip
    tp, dp = resolve(base), resolve(replace(base, dp_attention=True))
    assert dp.layout.dp_attention and dp.layout.ep == 8 and dp.layout.attention_ranks == 8
    mt, md = MemoryModel(tp), MemoryModel(dp)
    assert md.stage_weights[0]["attention"] == md.weights_by_kind["attention"]  # whole on every rank
    assert mt.stage_weights[0]["attention"] < md.stage_weights[0]["attention"] / 4
    assert md.stage_weights[0]["routed_experts"] == mt.stage_weights[0]["routed_experts"]
    assert md.kv_gpu_bytes(0, 4096, 64) == pytest.approx(mt.kv_gpu_bytes(0, 4096, 8))  # its own 8 of 64
    assert md.max_batch(4096) > 4 * mt.max_batch(4096)
    assert md.deployment_kv_bytes(4096, 64) == pytest.approx(8 * md.kv_gpu_bytes(0, 4096, 64))
    assert md.deployment_kv_bytes(4096, 1) == pytest.approx(md.kv_gpu_bytes(0, 4096, 1))  # one sequence, once
    st, sd = SpeedModel(mt), SpeedModel(md)
    assert sd.decode_step(4096, 1).seconds > st.decode_step(4096, 1).seconds  # one rank reads the whole cache
    assert sd.decode_step(4096, 256).seconds < st.decode_step(4096, 256).seconds  # each rank reads its own
    assert sd.prefill_seconds(4096) > st.prefill_seconds(4096)  # one prompt's attention on one rank
    link = link_for(dp.gpu, False)  # type: ignore[arg-type]
    args = dict(tp=8, ep=8, pp=1, num_nodes=1, tokens=64, hidden=7168, top_k=8.0, layers=61, moe_layers=58)
    gathered = step_comm_s(dp.gpu, dp_attention=True, **args)  # type: ignore[arg-type]
    assert gathered == pytest.approx(61 * 2 * link.all_gather_s(8, 64 * 7168 * 2))
    assert gathered < step_comm_s(dp.gpu, **args)  # type: ignore[arg-type]
    for bad, why in (
        (replace(base, model="llama-3.3-70b", ep=None, dp_attention=True), "needs an MoE model"),
        (replace(base, num_gpus=1, ep=None, dp_attention=True), "at least 2 GPUs"),
        (replace(base, engine="llama.cpp", quant=None, dp_attention=True), "does not run attention data-parallel"),
    ):
        with pytest.raises(InputError, match=why):
            resolve(bad)


def test_the_planner_tries_attention_data_parallel_and_says_how_to_launch_it() -> None:
    from moeplan.plans.serve_commands import launch

    base = EstimateRequest(model="deepseek-v3", gpu="h200", num_gpus=8, quant="fp8", context=4096, ep=8,
                           dp_attention=True, use_calibration=False)  # fmt: skip
    commands = {e: launch(resolve(replace(base, engine=e)), 8) for e in ("sglang", "vllm", "tensorrt-llm")}
    assert "--dp 8 --enable-dp-attention" in commands["sglang"]
    assert "--data-parallel-size 8 --enable-expert-parallel" in commands["vllm"]
    trt = commands["tensorrt-llm"]
    assert "--extra_llm_api_options extra.yaml --max_seq_len" in trt and trt.index("#") > trt.index("--max_seq_len")
    assert "extra.yaml: enable_attention_dp: true" in trt
    wide = resolve(replace(base, num_gpus=16, ep=None, engine="sglang"))
    assert (wide.layout.tp, wide.layout.ep, wide.layout.pp) == (16, 16, 1)  # wide EP across two nodes
    for gpus, tp in ((16, 8), (2, 1)):  # with --pp, even where the stages leave one GPU a TP group
        with pytest.raises(InputError, match="drop --pp"):
            resolve(replace(base, num_gpus=gpus, tp=tp, pp=2, ep=tp))
    code, out, err = run("serve", "qwen3-30b-a3b", "--concurrency", "64", "--gpu", "h100", "--max-gpus", "2",
                         "--json", "--top", "50")  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)["configurations"]
    assert any(r["dp_attention"] and r["ep"] == 2 and "--data-parallel-size 2" in r["command"] for r in rows)
    assert any(not r["dp_attention"] for r in rows)
    code, out, err = run("serve", "qwen3-30b-a3b", "--concurrency", "64", "--gpu", "h100", "--max-gpus", "3",
                         "--json", "--top", "50")  # fmt: skip
    split = [r for r in json.loads(out)["configurations"] if r["disaggregated"]]
    assert any(r["dp_attention"] for r in split) and any(not r["dp_attention"] for r in split)
    prefill, decode, router = split[0]["command"].split("\n")  # two servers with their comments, and the router
    assert (
        "pd-disaggregation" in router
        and "# prefill" in prefill
        and "# decode" in decode
        and decode.index("#") > decode.index("--max-model-len")
    )
    code, out, err = run("estimate", "deepseek-v3", "--gpu", "h200", "--num-gpus", "8", "--dp-attention", "--json")
    assert code == 0, err
    assert json.loads(out)["fit"]["dp_attention"] is True


def test_a_reused_mtp_layer_matches_tensorrt_llms_measured_acceptance_lengths() -> None:
    """TensorRT-LLM's DeepSeek-R1 blog: 1.92, 2.58, 2.82, 2.99, 3.01 tokens a step for 1-5 drafts from one MTP
    layer; at its first-draft rate of 0.92 the decay reproduces each within 2%, and more drafts never yield fewer
    tokens.  A model with a trained layer per draft keeps the constant rate."""
    from moeplan.deploy.deployment import accepted_tokens

    for k, measured in enumerate((1.92, 2.58, 2.82, 2.99, 3.01), start=1):
        assert accepted_tokens(k, 0.92, trained=1) == pytest.approx(measured, rel=0.02)
    lengths = [accepted_tokens(k, 0.85, trained=1) for k in range(1, 9)]
    assert lengths == sorted(lengths) and lengths[-1] < 3
    assert accepted_tokens(3, 0.85, trained=3) == pytest.approx((1 - 0.85**4) / 0.15)


def test_mtp_drafts_more_tokens_than_layers_through_the_last_one() -> None:
    """--mtp-drafts K: DeepSeek-V3's one MTP layer drafts K tokens a step (SGLang --speculative-num-steps K):
    K + 1 tokens verified, K one-layer draft passes; the drafts through the reused layer are accepted less (x0.74
    each reuse), so three drafts at 0.85 yield 2.63 tokens, not 3.19; refused without --mtp or out of range."""
    base = EstimateRequest(model="deepseek-v3", gpu="h200", num_gpus=8, quant="fp8", context=2048, mtp=True,
                           use_calibration=False)  # fmt: skip
    one, three = resolve(base), resolve(replace(base, mtp_drafts=3))
    assert (one.draft_tokens, three.draft_tokens) == (1, 3)
    assert any("--mtp-drafts 3" in n and "2.63 tokens a step" in n for n in three.notes)
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.speed import SpeedModel

    s1, s3 = SpeedModel(MemoryModel(one)).decode_step(2048, 8), SpeedModel(MemoryModel(three)).decode_step(2048, 8)
    a = three.accept_rate
    assert s1.tokens == pytest.approx(1 + a)
    assert s3.tokens == pytest.approx(1 + a + a * a * 0.74 + a * a * 0.74 * a * 0.74**2) and s3.seconds > s1.seconds
    from moeplan.plans.serve_commands import launch

    assert "--speculative-num-steps 3 --speculative-eagle-topk 1" in launch(
        resolve(replace(base, mtp_drafts=3, engine="sglang")), 8
    )
    trt = launch(resolve(replace(base, mtp_drafts=3, engine="tensorrt-llm")), 8)
    assert "num_nextn_predict_layers: 3" in trt.split("#", 1)[1]
    for bad, why in (
        (replace(base, mtp=False, mtp_drafts=3), "give --mtp too"),
        (replace(base, mtp=False, mtp_accept=0.7), "give --mtp too"),
        (replace(base, mtp_drafts=0), "at least 1"),
        (replace(base, engine="llama.cpp", quant=None), "does not decode with MTP drafts"),
    ):
        with pytest.raises(InputError, match=why):
            resolve(bad)
    code, _out, err = run("serve", "qwen3-30b-a3b", "--concurrency", "8", "--gpu", "h100", "--mtp")
    assert code == 1 and "no multi-token-prediction layers" in err
    code, _out, err = run("estimate", "deepseek-v3", "--mtp", "--mtp-drafts", "9")  # a slip, stopped at the CLI
    assert code == 2 and "--mtp-drafts" in err


def test_a_batched_prompt_pays_its_share_of_the_prefill_pass_floor() -> None:
    """Prompts batched on a prefill instance share each eager pass's host floor: a 1,024-token prompt of DeepSeek
    on eight B200 costs floor x 1,024 / chunk of an instance, more than its compute alone."""
    from moeplan.deploy.deployment import Deployment
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.serving import DisaggregatedServingModel
    from moeplan.deploy.speed import SpeedModel

    def side(tp: int) -> Deployment:
        return resolve(EstimateRequest(model="deepseek-v3", gpu="b200", num_gpus=tp, tp=tp, ep=tp, quant="fp4",
                                       engine="sglang", context=2048, prompt=1024))  # fmt: skip

    dp, dd = side(8), side(8)
    m = DisaggregatedServingModel(dp, dd, 1, Traffic(1024, 1024, concurrency=64))
    pm = SpeedModel(MemoryModel(dp))
    chunk = dp.batched_tokens or 8192
    compute = 1024 * pm.prefill_token_seconds(chunk, 1024)
    assert compute < pm.prefill_dispatch_s() * 1024 / chunk  # the host floor, not the GPU, bounds these passes
    assert m.s_b == pytest.approx(pm.prefill_dispatch_s() * 1024 / chunk)
    assert m.s_b < m.s_p


def test_a_load_longer_than_the_context_is_refused() -> None:
    """--isl + --osl beyond --context: the engine launched at that context would refuse the requests."""
    res = CliRunner().invoke(app, ["estimate", "mixtral-8x7b", "--gpu", "h100", "--concurrency", "8", "--isl", "4k",
                                   "--osl", "1k", "--context", "2k"])  # fmt: skip
    assert res.exit_code != 0 and "exceed --context 2,048" in res.output and "5,120" in res.output


def test_unpriced_gpus_are_ranked_by_output_per_gpu_and_not_called_cheapest() -> None:
    """GB200 has no catalogue price: serve ranks its configurations by output tokens/s per GPU (the cost per token
    of one GPU kind at any price) and its headline says so instead of 'Cheapest'."""
    code, out, err = run("serve", "qwen3-30b-a3b", "--concurrency", "64", "--gpu", "gb200", "--json")
    assert code == 0, err
    rows = [r for r in json.loads(out)["configurations"] if r["meets_targets"]]
    assert all(r["usd_per_million_output_tokens"] is None for r in rows)
    per_gpu = [r["point"]["output_tokens_per_s_per_gpu"] for r in rows]
    assert per_gpu == sorted(per_gpu, reverse=True)
    code, out, err = run("serve", "qwen3-30b-a3b", "--concurrency", "64", "--gpu", "gb200")
    assert code == 0 and out.startswith("Most output per GPU") and "Cheapest:" not in out, err


def test_split_and_multi_host_commands_say_what_makes_them_run() -> None:
    """A disaggregated configuration's two commands carry the engine's prefill/decode role (SGLang's
    --disaggregation-mode, vLLM's NIXL connector, TensorRT-LLM's cache transceiver) and the prefill instances' cost
    per million input tokens; a command over more GPUs than one host says how it spans the hosts."""
    for eng, flag in (("sglang", "--disaggregation-mode decode"), ("vllm", "NixlConnector"),
                      ("tensorrt-llm", "cache_transceiver_config")):  # fmt: skip
        code, out, err = run("serve", "deepseek-v3", "--isl", "4k", "--osl", "1k", "--rate", "2", "--gpu", "b200",
                             "--engine", eng, "--json", "--top", "500")  # fmt: skip
        assert code == 0, err
        rows = json.loads(out)["configurations"]
        split = [r for r in rows if r["disaggregated"] and r["usd_per_million_output_tokens"] is not None]
        assert split and all(flag in r["command"] for r in split), eng
        assert all(r["usd_per_million_input_tokens"] is not None for r in split)
        wide = [r for r in rows if r["num_gpus"] > 8 and not r["disaggregated"] and r["replicas"] == 1]
        assert all("hosts" in r["command"] for r in wide), eng
        copies = [r for r in rows if r["replicas"] > 1]  # copies of one host's deployment: a load balancer, no hosts
        assert all("copies behind a load balancer" in r["command"] for r in copies), eng


def test_a_split_launch_ends_with_the_router_that_fronts_its_instances() -> None:
    """A split's launch is three commands: its prefill server, its decode server and the router that sends each
    request to a prefill instance and then to a decode instance, naming every instance (SGLang's PD router with each
    prefill's bootstrap port, vllm-router, TensorRT-LLM's disagg.yaml counts); many instances come from a shell loop;
    instances smaller than a host say how two share one."""
    from moeplan.plans.serve_commands import router_command

    line = router_command("sglang", 2, 1)
    assert line.startswith("python -m sglang_router.launch_router --pd-disaggregation --prefill http://prefill-1:30000")
    assert line.count("--prefill http://") == 2 and line.count(" 8998") == 2 and line.count("--decode http://") == 1
    line = router_command("vllm", 3, 2)
    assert line.startswith("vllm-router --vllm-pd-disaggregation") and line.count("--prefill http://prefill-") == 3
    assert "8998" not in line and line.count("--decode http://decode-") == 2
    line = router_command("tensorrt-llm", 4, 1)
    assert line.startswith("trtllm-serve disaggregated -c disagg.yaml")
    assert "context_servers: {num_instances: 4," in line and "generation_servers: {num_instances: 1," in line
    looped = router_command("sglang", 16, 2)
    assert "$(for k in $(seq 0 15); do echo --prefill http://prefill-$((k+1)):30000 8998; done)" in looped
    # two 4-GPU prefill instances a host: the second on each at the next server and bootstrap ports
    shared = router_command("sglang", 4, 1, (2, 1))
    assert "--prefill http://prefill-1:30001 8999 --prefill http://prefill-2:30000 8998" in shared
    assert "k%2" in router_command("sglang", 16, 1, (2, 1))
    for eng, router, sharing in (("sglang", "sglang_router", "--base-gpu-id 4k"),
                                 ("vllm", "vllm-router", "VLLM_NIXL_SIDE_CHANNEL_PORT 5600+4k"),
                                 ("tensorrt-llm", "trtllm-serve disaggregated", "--port 8000+k")):  # fmt: skip
        code, out, err = run("serve", "deepseek-v3", "--isl", "8k", "--osl", "1k", "--concurrency", "1024", "--gpu",
                             "b200", "--max-gpus", "64", "--engine", eng, "--json", "--top", "400")  # fmt: skip
        assert code == 0, err
        splits = [r for r in json.loads(out)["configurations"] if r["disaggregated"]]
        assert splits and all(len(r["command"].splitlines()) == 3 for r in splits), eng
        assert all(router in r["command"].splitlines()[2] for r in splits), eng
        four = [r for r in splits if r["disaggregated"].split("P")[0].endswith("x4")]  # 4-GPU prefill instances
        assert four and all(sharing in r["command"].splitlines()[0] for r in four), eng


def test_engines_with_the_same_figures_share_one_row_and_the_headline_names_them() -> None:
    """vLLM, SGLang and ATOM share one speed profile: where their rows for a configuration read the same, the table
    shows one row naming them all (the headline too) instead of a tie broken by list order; --json keeps each."""
    args = ["serve", "gpt-oss-120b", "--isl", "1k", "--osl", "1k", "--concurrency", "64", "--gpu", "mi300x,h200",
            "--engine", "vllm,sglang,atom", "--top", "8"]  # fmt: skip
    code, out, err = run(*args)
    assert code == 0, err
    assert "atom, vllm or sglang" in out.splitlines()[0] and "atom/vllm/sglang" in out
    assert "engines with the same figures" in " ".join(out.split())  # the caption, however it wraps
    rows = [line for line in out.splitlines()[1:] if "x mi300x " in line or "x h200-sxm " in line]
    assert len(rows) == len(set(rows)) == 8  # eight distinct configurations, none repeated per engine
    code, out, err = run(*args, "--json")
    engines = [c["engine"] for c in json.loads(out)["configurations"][:3]]
    assert sorted(engines) == ["atom", "sglang", "vllm"]


def test_a_load_no_configuration_keeps_up_with_says_how_many_gpus_it_needs() -> None:
    """200 requests/s of DeepSeek-V3 within the default 16 GPUs: every configuration queues it; the answer says how
    many GPUs the most output per GPU found needs (load x output length / that output), and priced kinds that
    cannot keep up still rank before the kinds without a price, as the caption says."""
    code, out, err = run("serve", "deepseek-v3", "--isl", "2k", "--osl", "500", "--rate", "200", "--ttft", "1",
                         "--tpot", "40", "--json", "--top", "2000")  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)["configurations"]
    assert rows and not any(r["point"]["stable"] for r in rows)
    per_gpu = max(r["point"]["output_tokens_per_s_per_gpu"] for r in rows)
    priced = [r["usd_per_hour"] is not None for r in rows]
    assert priced == sorted(priced, reverse=True)  # every priced kind first
    code, out, err = run("serve", "deepseek-v3", "--isl", "2k", "--osl", "500", "--rate", "200", "--ttft", "1",
                         "--tpot", "40")  # fmt: skip
    text = " ".join(out.split())
    need = math.ceil(200 * 500 / per_gpu)
    assert f"the load needs at least {need:,} GPUs; raise --max-gpus to {need:,} or more" in text


def test_serve_names_what_stops_a_search() -> None:
    """An engine that runs on none of the GPUs asked for is named as such, not as a --max-gpus shortfall; a search
    that finds nothing says which GPU counts it tried."""
    code, _, err = run("serve", "qwen3-30b-a3b", "--concurrency", "64", "--engine", "atom", "--gpu", "h100")
    assert code == 1 and "atom runs on none of the GPUs asked for" in err and err.count("\n") == 1
    code, _, err = run("serve", "deepseek-v3", "--isl", "4k", "--osl", "1k", "--rate", "1", "--gpu", "h100",
                       "--quant", "bf16", "--max-gpus", "24")  # fmt: skip
    assert code == 1 and "GPU counts tried: 1, 2, 4, 8, 16" in err


def test_a_table_with_a_split_deployment_says_its_ttft_is_the_least_certain_figure() -> None:
    code, out, err = run("serve", "deepseek-v3", "--isl", "8k", "--osl", "1k", "--concurrency", "1024", "--gpu", "b200",
                         "--max-gpus", "64", "--ttft", "2", "--tpot", "50")  # fmt: skip
    assert code == 0, err
    assert "P:" in out and "least certain figure" in " ".join(out.split())
    code, out, err = run("serve", "qwen3-30b-a3b", "--concurrency", "16", "--gpu", "h100", "--max-gpus", "1")
    assert code == 0, err
    assert "P:" not in out and "least certain" not in " ".join(out.split())


def test_a_load_that_cannot_be_served_has_no_wait_in_the_json() -> None:
    """The table shows such a point's TTFT and E2E as infinite; the JSON gives null, never a finite number."""
    code, out, err = run("serve", "deepseek-v3", "--isl", "8192", "--osl", "1024", "--rate", "5", "--gpu", "h200",
                         "--json", "--top", "50")  # fmt: skip
    assert code == 0, err
    points = [c["point"] for c in json.loads(out)["configurations"]]
    unstable = [p for p in points if not p["stable"]]
    assert unstable and all(p["ttft_s"] is None and p["ttft_p90_s"] is None and p["e2e_s"] is None for p in unstable)
    assert all(p["ttft_s"] is not None for p in points if p["stable"])


def test_formats_under_min_bits_are_named_not_reported_as_a_search_that_found_nothing() -> None:
    code, _, err = run("serve", "deepseek-v3", "--concurrency", "10", "--quant", "fp8", "--min-bits", "16")
    assert code == 1 and err.count("\n") == 1 and "--min-bits 16" in err and "fp8 8.00" in err, err


def plot_rows(out: str) -> list[str]:
    """The Pareto plot's rows and its x axis: a value or nothing, then ``|`` (or the axis's ``+-``)."""
    return [line for line in out.splitlines() if re.match(r"^ *[0-9,.]* (\||\+-)", line)]


def test_the_pareto_plots_axes_carry_round_values_from_zero() -> None:
    """Both axes start at 0 and mark round values (steps of 1, 2, 2.5 or 5 x 10^k), each where a point of that value
    would be drawn: the y values on their rows, the x values under their columns."""
    from moeplan.output.serving import axis_ticks

    assert axis_ticks(1222) == [0, 500, 1000] and axis_ticks(166) == [0, 50, 100, 150]
    assert axis_ticks(9.5) == [0, 2.5, 5, 7.5] and axis_ticks(0) == [0]
    result = runner.invoke(app, ["serve", "qwen3-30b-a3b", "--concurrency", "16", "--gpu", "h100", "--detail"],
                           env={"COLUMNS": "100", "NO_COLOR": "1"})  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("output tok/s per GPU (max "))
    ymax = float(lines[top].split("(max ")[1].rstrip(")").replace(",", ""))
    rows = lines[top + 1 : top + 15]
    labels = {i: float(r.split("|")[0].replace(",", "")) for i, r in enumerate(rows) if r.split("|")[0].strip()}
    assert labels[13] == 0 and all(int(v / ymax * 13) == 13 - i for i, v in labels.items())
    axis, xs = lines[top + 15], lines[top + 16]
    assert axis.lstrip().startswith("+-") and xs[axis.index("+") + 1] == "0"  # 0 right of the corner
    assert len(re.findall(r"\d[\d,]*", xs)) >= 3


def test_the_pareto_plot_fits_a_narrow_terminal() -> None:
    result = runner.invoke(app, ["serve", "qwen3-30b-a3b", "--concurrency", "16", "--gpu", "h100", "--detail"],
                           env={"COLUMNS": "60", "NO_COLOR": "1"})  # fmt: skip
    assert result.exit_code == 0, result.stderr
    plot = plot_rows(result.stdout)
    assert len(plot) > 10 and max(len(line) for line in plot) <= 60
    # each configuration on the front has its letter in the plot and a legend line naming it
    marks = {c for line in plot for c in line.split("|", 1)[-1] if c.isalpha()}
    legend = {line[0]: line[2:] for line in result.stdout.splitlines() if line[:1] in marks and line[1:2] == " "}
    assert marks and set(legend) == marks and all("h100-sxm" in v for v in legend.values())


def test_the_kv_hand_off_moves_each_decode_ranks_share_at_the_engines_transfer_rate() -> None:
    """A prompt's cache reaches each decode rank at the engines' measured transfer rate, never the wire's: MLA's
    latent is whole on every rank (DeepSeek-V3 at TP 8 sends all of it to each rank, in parallel), a GQA model's
    cache splits over its attention ranks, and a link slower than the engine's rate sets it instead."""
    from moeplan.deploy.comm import KV_HANDOFF_BYTES_S, Link, kv_handoff_s, link_for
    from moeplan.deploy.kv_cache import kv_bytes_per_token
    from moeplan.deploy.serving import DisaggregatedServingModel

    ib = link_for(DSV3.gpu, True)  # type: ignore[arg-type]
    assert kv_handoff_s(259e6, ib) == pytest.approx(ib.p2p_alpha_s + 259e6 / KV_HANDOFF_BYTES_S[1])
    assert kv_handoff_s(259e6, ib, 0) > kv_handoff_s(259e6, ib) > kv_handoff_s(259e6, ib, 2)  # the band's ends
    slow = Link("slow", 1e9, 0.0, 0.0, 0.0)
    assert kv_handoff_s(1e9, slow) == pytest.approx(1.0)  # the link, where it is the slower
    base = EstimateRequest(model="deepseek-v3", gpu="b200", context=8300, prompt=7373, kv_dtype="fp8",
                           use_calibration=False)  # fmt: skip
    dp = resolve(replace(base, num_gpus=8, tp=8), fewest=False)
    dd = resolve(replace(base, num_gpus=8, tp=8, ep=8), fewest=False)
    split = DisaggregatedServingModel(dp, dd, 1, Traffic(7373, 1024, concurrency=1))
    whole = kv_bytes_per_token(dd.spec.arch, "fp8", dd.engine) * split.decode.prompt  # 61 x 576 B a token
    assert whole == pytest.approx(7373 * 61 * 576)
    link = link_for(dd.gpu, True)  # type: ignore[arg-type]  # 16 GPUs: two servers of 8
    assert split.kv_s == pytest.approx(kv_handoff_s(whole, link))  # the whole latent, not an eighth of it
    gqa = EstimateRequest(model="qwen3-235b-a22b", gpu="b200", quant="fp8", context=8300, prompt=7373,
                          use_calibration=False)  # fmt: skip
    one = Traffic(7373, 1024, concurrency=1)
    s2, s4, s8 = (DisaggregatedServingModel(g, g, 1, one) for g in
                  (resolve(replace(gqa, num_gpus=n, tp=n), fewest=False) for n in (2, 4, 8)))  # fmt: skip
    alpha = link_for(dd.gpu, False).p2p_alpha_s  # type: ignore[arg-type]  # 2, 4 or 8 GPUs: one server
    assert s2.kv_s - alpha == pytest.approx(2 * (s4.kv_s - alpha))  # 4 KV heads: two a rank at TP 2, one at TP 4
    assert s8.kv_s == pytest.approx(s4.kv_s, abs=1e-4)  # and one at TP 8, each head on two ranks (16 GPUs: IB alpha)


def test_a_decode_instance_that_polls_every_n_steps_holds_the_prefill_back() -> None:
    """SGLang's PD prefill starts once the decode side has taken the request and set its cache aside; a decode
    instance with ``--scheduler-recv-interval 10`` takes new requests every 10 steps, so a request waits 4.5 decode
    steps more on average (InferenceX's low-latency GB200 recipes set it on both sides)."""
    from moeplan.deploy.serving import DisaggregatedServingModel

    base = EstimateRequest(model="deepseek-v3", gpu="gb200", engine="sglang", context=2048, prompt=1024,
                           use_calibration=False)  # fmt: skip
    dp = resolve(replace(base, num_gpus=8, tp=8), fewest=False)
    dd = resolve(replace(base, num_gpus=8, tp=8), fewest=False)
    polled = resolve(replace(base, num_gpus=8, tp=8, recv_interval=10), fewest=False)
    load = Traffic(1024, 1024, concurrency=4)
    every = DisaggregatedServingModel(dp, dd, 1, load).point()
    tenth = DisaggregatedServingModel(dp, polled, 1, load).point()
    assert tenth.tpot_s == pytest.approx(every.tpot_s, rel=0.01)
    assert tenth.ttft_s - every.ttft_s == pytest.approx(4.5 * every.tpot_s, rel=0.05)


def test_a_split_can_prefill_on_one_gpu_kind_and_decode_on_another() -> None:
    """H100 prefill instances for H200 decode: each side at its own kind's price, the cache over InfiniBand between
    their hosts, both kinds in the label and the JSON; over the whole catalogue only same-vendor pairs whose prefill
    kind buys compute cheaper and whose decode kind buys bandwidth cheaper are tried."""
    from moeplan.deploy.comm import kv_handoff_s, link_for
    from moeplan.deploy.serving import DisaggregatedServingModel
    from moeplan.hardware.gpus import load_gpus
    from moeplan.plans.serve import complementary, mixed_pairs

    gpus = {g.id: g for g in load_gpus()}
    h100, h200, mi300x = gpus["h100-sxm"], gpus["h200-sxm"], gpus["mi300x"]
    assert complementary(h100, h200) and not complementary(h200, h100)
    assert not complementary(h100, mi300x)  # no KV hand-off between vendors
    pairs = [(p.id, d.id) for p, d in mixed_pairs([g for g in gpus.values() if not g.unified_memory], named=False)]
    assert ("h100-sxm", "h200-sxm") in pairs and all(gpus[p].vendor == gpus[d].vendor for p, d in pairs)
    assert len({d for _, d in pairs}) == len(pairs)  # one partner a decode kind
    assert len(mixed_pairs([h100, h200, mi300x], named=True)) == 2  # the named kinds: both orders, one vendor

    req = ServeRequest(model="deepseek-v3", traffic=Traffic(8192, 1024, concurrency=64), gpus=("h100", "h200"),
                       engines=("sglang",), max_gpus=32)  # fmt: skip
    result = plan_serve(req)
    mixed = [c for c in result.candidates if c.prefill_gpu is not None]
    assert mixed and {(c.prefill_gpu.id, c.gpu.id) for c in mixed} == {("h100-sxm", "h200-sxm"),  # type: ignore[union-attr]
                                                                       ("h200-sxm", "h100-sxm")}  # fmt: skip
    c = next(c for c in mixed if c.prefill_gpu is not None and c.prefill_gpu.id == "h100-sxm" and c.usd_per_hour)
    n_p = c.prefill_gpus
    prices = [h.cloud_usd_per_hour.typical for h in (h100, gpus["h200-sxm"])]  # type: ignore[union-attr]
    assert c.usd_per_hour == pytest.approx(n_p * prices[0] + (c.num_gpus - n_p) * prices[1])  # each at its own price
    assert c.disaggregated is not None and c.label.startswith(
        c.disaggregated.replace("P:", "P h100-sxm + ") + " h200-sxm (" + ("prefill DP" if c.prefill_dp else "decode ")
    )  # 1x8P h100-sxm + 8D h200-sxm: each side's kind
    assert "prefill: " in c.command and " on h100-sxm" in c.command and "decode on h200-sxm" in c.command
    row = next(r for r in __import__("moeplan.output.serving", fromlist=["serve_json"]).serve_json(result, 10_000)
               ["configurations"] if r["prefill_gpu"] == "h100-sxm")  # fmt: skip
    assert row["gpu"] == "h200-sxm"
    # the hand-off crosses hosts even where the two instances would fit one server of 8
    base = EstimateRequest(model="deepseek-v3", quant="awq-int4", context=9216, prompt=8192, use_calibration=False)
    dp = resolve(replace(base, gpu="h100", num_gpus=4, tp=4), fewest=False)
    dd = resolve(replace(base, gpu="h200", num_gpus=4, tp=4, ep=4), fewest=False)
    split = DisaggregatedServingModel(dp, dd, 1, Traffic(8192, 1024, concurrency=8))
    per_rank = split.decode.mm.kv_gpu_bytes(0, split.decode.prompt, 1)
    assert split.kv_s == pytest.approx(kv_handoff_s(per_rank, link_for(h200, True)))


def test_one_client_never_waits_for_others_prompts_or_a_busy_scheduler() -> None:
    """A single client of a closed loop finds no other prompt in the prefill queue and an idle engine, whose loop
    takes its request at once: its TTFT does not depend on how long its answers are, its p90 is its mean, and a
    recv interval adds nothing to it (a busy engine holds a request (N - 1)/2 steps, as before)."""
    from moeplan.deploy.serving import DisaggregatedServingModel, busy_share

    assert busy_share(40.0, 1) == 0.0 and busy_share(40.0, 64) == 1.0 and busy_share(0.5, None) == 0.5
    base = EstimateRequest(model="deepseek-v3", gpu="h200", engine="sglang", quant="fp8", context=34000,
                           prompt=32768, use_calibration=False)  # fmt: skip
    dp = resolve(replace(base, num_gpus=8, tp=8), fewest=False)
    dd = resolve(replace(base, num_gpus=8, tp=8, ep=8), fewest=False)
    short, long = (DisaggregatedServingModel(dp, dd, 1, Traffic(32768, osl, concurrency=1)).point()
                   for osl in (1024, 8192))  # fmt: skip
    assert short.ttft_s == pytest.approx(long.ttft_s, rel=0.01)
    assert short.ttft_p90_s == pytest.approx(short.ttft_s)
    polled = resolve(replace(base, num_gpus=8, tp=8, ep=8, recv_interval=10), fewest=False)
    alone = ServingModel(polled, Traffic(1024, 1024, concurrency=1)).point()
    assert alone.ttft_s == pytest.approx(ServingModel(dd, Traffic(1024, 1024, concurrency=1)).point().ttft_s)
    busy = ServingModel(polled, Traffic(1024, 1024, concurrency=16)).point()
    plain = ServingModel(dd, Traffic(1024, 1024, concurrency=16)).point()
    assert busy.ttft_s - plain.ttft_s == pytest.approx(4.5 * busy.tpot_s, rel=0.15)


def test_repeated_options_take_comma_lists_and_a_long_verdict_wraps_rather_than_drops() -> None:
    from moeplan.cli_options import listed

    assert listed(["h100,h200", " b200 "], "--gpu") == ["h100", "h200", "b200"] and listed(None, "--gpu") == []
    for empty in (",", "h200,", ""):  # an empty item would leave the whole catalogue, or less than meant
        with pytest.raises(InputError, match="has an empty item"):
            listed(["h100", empty], "--gpu")
    # a format's per-class overrides stay with it: one scheme, not a format per override
    assert listed(["experts=nvfp4,attention=bf16"], "--quant") == ["experts=nvfp4,attention=bf16"]
    assert listed(["nvfp4,experts=awq-int4,fp8"], "--quant") == ["nvfp4,experts=awq-int4", "fp8"]
    code, out, err = run("serve", "deepseek-v3", "--isl", "1k", "--osl", "1k", "--rate", "5", "--quant",
                         "experts=nvfp4,attention=bf16", "--gpu", "b200", "--json")  # fmt: skip
    rows = json.loads(out)["configurations"]
    assert code == 0 and rows and all(r["quant"].endswith("routed_experts=nvfp4,attention=bf16") for r in rows)
    # its checkpoint is one to make, not DeepSeek's own fp8 repository (which is 1.7x the bytes)
    assert all("vllm serve ./DeepSeek-V3-fp8-block128+routed_experts-nvfp4+attention-bf16" in r["command"]
               for r in rows if r["engine"] == "vllm")  # fmt: skip
    code, out, err = run("serve", "deepseek-v3", "--isl", "8k", "--osl", "1k", "--concurrency", "1024", "--gpu",
                         "b200,h200", "--max-gpus", "64", "--ttft", "2", "--tpot", "50")  # fmt: skip
    assert code == 0, err
    first, second = out.splitlines()[:2]
    assert first.startswith("Cheapest that meets the targets (") and "/M out:" in first  # count and price kept
    assert second.startswith("  ") and "vllm" in second  # the (split's long) configuration on its own line
    assert "DeepSeek-V3" in out and "vllm serve ./DeepSeek-V3-nvfp4" in out


def test_estimate_under_a_load_leads_with_the_speed_a_user_gets_there() -> None:
    """The verdict quotes the steady state's speed per user, not batch 1's (GLM-4.6 on 2 B200 at 64 clients: ~26
    tok/s where one sequence alone decodes at ~105), and says so where the load is beyond the deployment."""
    args = ("estimate", "glm-4.6", "--gpu", "b200", "--num-gpus", "2", "--quant", "nvfp4", "--isl", "4k", "--osl", "1k")
    code, out, _ = run(*args, "--concurrency", "64")
    tpot = json.loads(run(*args, "--concurrency", "64", "--json")[1])["serving"]["tpot_s"]
    assert code == 0 and f"~{1 / tpot:.1f} tok/s a user at the load" in out.splitlines()[0]
    code, out, _ = run(*args, "--rate", "1e7")
    assert code == 0 and out.splitlines()[0].endswith("cannot keep up with the load")


def test_serve_and_recommend_search_on_while_nothing_serves_the_load() -> None:
    """Qwen3-30B-A3B fits one H100, but 64 clients at TPOT <= 10 ms, or 20 requests/s, need more GPUs than the
    model does: the searches go on past their usual reach up to the GPU limit, and where nothing serves a load the
    ranking goes by the load each serves (output tokens/s), not by the speed of the few users it holds."""
    from moeplan.plans.recommend import recommend

    tight = plan_serve(ServeRequest(model="qwen3-30b-a3b", traffic=Traffic(1024, 1024, concurrency=64),
                                    gpus=("h100",), tpot_s=0.010, max_gpus=16))  # fmt: skip
    assert any(c.meets for c in tight.candidates)
    assert max(c.num_gpus for c in tight.candidates) > 4  # one GPU holds the model: four was the usual reach
    _, served = recommend("qwen3-30b-a3b", traffic=Traffic(1024, 1024, rate=20.0), gpus=("h100",), max_gpus=8)
    assert served[0].serves_load and max(c.num_gpus for c in served) > 2
    _, none = recommend("qwen3-30b-a3b", traffic=Traffic(1024, 1024, rate=200.0), gpus=("h100",), sort="speed")
    assert not any(c.serves_load for c in none)
    loads = [c.throughput_tokens_per_s for c in none]
    assert loads == sorted(loads, reverse=True) and none[0].engine != "llama.cpp"


def test_launch_lines_load_remote_code_and_name_the_checkpoint_layout() -> None:
    """Kimi-K2's repository carries its own code (auto_map): every engine's line asks to trust it (TensorRT-LLM with
    its underscore spelling), Qwen3's does not; an NVFP4 DeepSeek-R1 line names the checkpoint whose layout it
    sized.  TensorRT-LLM has no weight-only kernels: NVFP4 needs fp4 units and fp8 fp8 units."""
    from moeplan.plans.serve_commands import launch

    def line(model: str, engine: str, quant: str | None = None, gpu: str = "b200") -> str:
        d = resolve(EstimateRequest(model=model, gpu=gpu, engine=engine, quant=quant, num_gpus=8, context=4096,
                                    use_calibration=False), fewest=False)  # fmt: skip
        return launch(d, 8)

    assert " --trust-remote-code" in line("kimi-k2", "vllm") and " --trust-remote-code" in line("kimi-k2", "sglang")
    assert " --trust_remote_code" in line("kimi-k2", "tensorrt-llm")
    assert "trust" not in line("qwen3-30b-a3b", "vllm")
    # the format planned is the format loaded: the publisher's checkpoint of this model, an fp8 quantization at load,
    # or a local directory named for the format (never the base repository, which would load another format)
    assert line("deepseek-r1", "vllm", "nvfp4").startswith("vllm serve nvidia/DeepSeek-R1-0528-NVFP4-v2 ")
    v3 = line("deepseek-v3", "sglang", "nvfp4")
    assert "--model-path ./DeepSeek-V3-nvfp4 " in v3 and "laid out as nvidia/DeepSeek-R1-0528-NVFP4-v2" in v3
    assert "vllm serve Qwen/Qwen3-30B-A3B " in line("qwen3-30b-a3b", "vllm", "fp8") and "--quantization fp8" in line(
        "qwen3-30b-a3b", "vllm", "fp8"
    )
    assert line("qwen3-30b-a3b", "vllm", "awq-int4").startswith("vllm serve ./Qwen3-30B-A3B-awq-int4 ")
    r1 = line("deepseek-r1", "vllm", "fp8")  # another fp8 scale layout: the repository's own fp8, never re-quantized
    assert r1.startswith("vllm serve deepseek-ai/DeepSeek-R1 ") and "--quantization" not in r1
    assert line("qwen3-30b-a3b", "tensorrt-llm", "fp8").startswith("trtllm-serve ./Qwen3-30B-A3B-fp8 ")
    assert line("qwen3-30b-a3b", "vllm").startswith("vllm serve Qwen/Qwen3-30B-A3B ") and "#" not in line(
        "qwen3-30b-a3b", "vllm"
    )
    for gpu, quant in (("h100", "nvfp4"), ("a100", "fp8")):
        with pytest.raises(InputError, match="fp4 ones; --engine vllm runs them weight-only"):
            line("qwen3-30b-a3b", "tensorrt-llm", quant, gpu)
        assert line("qwen3-30b-a3b", "vllm", quant, gpu)  # vLLM's Marlin kernels run them


def test_min_bits_above_eight_searches_the_sixteen_bit_weights_and_names_itself_when_none_keep_them() -> None:
    """DeepSeek-V3's own checkpoint is fp8: --min-bits 16 plans its bf16 weights (as recommend does); 17 bits
    is refused as --min-bits, not as a GPU count to raise."""
    req = ServeRequest(model="deepseek-v3", traffic=Traffic(1024, 1024, concurrency=8), gpus=("h200",), min_bits=16)
    assert {c.quant for c in plan_serve(req).candidates} == {"bf16"}
    with pytest.raises(InputError, match="--min-bits 17"):
        plan_serve(replace(req, min_bits=17))


def test_a_cheapest_answer_whose_clients_mostly_wait_says_so() -> None:
    """Without targets the cheapest configuration at ten million clients queues them for days: the headline gives
    the TTFT and the option that bounds it, the table the seconds with separators; an ASCII terminal reads inf."""
    from moeplan.output.terminal import AsciiSafeStream

    code, out, err = run("serve", "qwen3-30b-a3b", "--concurrency", "10000000", "--gpu", "h100")
    assert code == 0, err
    assert "days (--ttft to bound it)" in out.split("Qwen3-30B-A3B")[0]
    assert any("," in cell and cell.replace(",", "").isdigit() for cell in out.split())

    class Sink:
        encoding, text = "ascii", ""

        def write(self, s: str) -> int:
            self.text += s
            return len(s)

    sink = Sink()
    AsciiSafeStream(sink).write("TTFT ∞")  # type: ignore[arg-type]
    assert sink.text == "TTFT inf"


def test_estimate_under_a_load_names_a_long_wait_in_its_verdict() -> None:
    """llama-server's four slots on three RTX 4090s decode each admitted user at ~33 tok/s, while 60 of 64
    clients wait minutes for a slot: the one-line verdict says so."""
    code, out, err = run("estimate", "qwen3-30b-a3b", "--gpu", "rtx-4090", "--engine", "llama.cpp",
                         "--concurrency", "64")  # fmt: skip
    assert code == 0, err
    assert "once admitted (TTFT" in " ".join(out.split("Qwen3-30B-A3B")[0].split())


def test_a_rate_beyond_capacity_reports_the_deployment_running_full() -> None:
    """An unstable point's figures are those of the deployment holding every slot (interface.md), its prefill
    share included, not the 98% the fixed point was capped at."""
    model = ServingModel(H100, Traffic(1024, 1024, rate=1000.0))
    over = model.point()
    full = model.at(Traffic(1024, 1024, concurrency=model.max_running)).point()
    assert not over.stable
    assert over.prefill_share == pytest.approx(full.prefill_share) and over.tpot_s == pytest.approx(full.tpot_s)


def test_one_output_token_shows_no_tpot_or_user_speed() -> None:
    """--osl 1 (a prefill-only load): no token follows the first, so neither a TPOT nor a user's decode speed is
    shown, in serve's table or estimate's lines."""
    code, out, err = run("serve", "qwen3-30b-a3b", "--isl", "1k", "--osl", "1", "--concurrency", "8", "--gpu", "h100")
    assert code == 0, err
    rows = [line.replace("│", " ").split() for line in out.splitlines() if "1x h100-sxm" in line]
    row = next(r for r in rows if r[-1].replace(".", "").isdigit())  # a table row ends in its $/M
    assert row[-2] == "-" and row[-4] == "-"  # TPOT and the user's speed
    code, out, err = run("estimate", "deepseek-v3", "--gpu", "h200", "--isl", "1k", "--osl", "1", "--concurrency", "8")
    assert code == 0, err
    assert "one output token a request" in out and "no TPOT" in " ".join(out.split())


def test_splits_try_the_neighbours_of_the_sized_prefill_and_the_front_skips_starved_points() -> None:
    """DeepSeek-V3 nvfp4 on B200, 8K/1K at 1,024 clients: at TTFT <= 5 s three prefill instances (one below the sized
    four) meet for less; the Pareto front keeps no point whose prefill is saturated or that misses --ttft; ATOM,
    whose split flags are unconfirmed, gets no split; TensorRT-LLM's two servers read one YAML each."""
    from moeplan.plans.serve import PREFILL_SATURATED

    req = ServeRequest(model="deepseek-v3", traffic=Traffic(8192, 1024, concurrency=1024), gpus=("b200",),
                       quants=("nvfp4",), max_gpus=64, ttft_s=5.0, tpot_s=0.05)  # fmt: skip
    result = plan_serve(req)
    best = next(c for c in result.candidates if c.meets)
    assert best.disaggregated is not None and best.disaggregated.startswith("3x4P")
    assert result.pareto and all(p.prefill_share < PREFILL_SATURATED and p.ttft_s <= 5.0 for _, p in result.pareto)
    atom = plan_serve(ServeRequest(model="deepseek-v3", traffic=Traffic(8192, 1024, concurrency=256),
                                   gpus=("mi355x",), engines=("atom",), max_gpus=32))  # fmt: skip
    assert not any(c.disaggregated for c in atom.candidates)
    trt = plan_serve(replace(req, engines=("tensorrt-llm",), ttft_s=None, tpot_s=None))
    split = next(c for c in trt.candidates if c.disaggregated)
    assert "--extra_llm_api_options prefill.yaml" in split.command and "decode.yaml:" in split.command


def test_copies_of_a_small_deployment_serve_a_high_rate_at_one_copys_latency() -> None:
    """Qwen3-30B-A3B at 50 requests/s of 8K prompts on B200: sixteen one-GPU copies (3.125 requests/s each) cost
    what one 16-GPU instance costs and give each user several times its speed; the copies' point sums their rates
    and keeps one copy's TTFT and TPOT (Little's law over all the clients)."""
    from moeplan.plans.serve import replicated

    req = ServeRequest(model="qwen3-30b-a3b", traffic=Traffic(8192, 1024, rate=50.0), gpus=("b200",),
                       engines=("sglang",), quants=("nvfp4",), max_gpus=16)  # fmt: skip
    result = plan_serve(req)
    best = result.candidates[0]  # copies of a small deployment, of one GPU or of a few (4 x DP4 at 73 tok/s a user)
    assert best.replicas > 1 and best.num_gpus == 16 and best.meets
    ones = next(c for c in result.candidates if c.replicas == 16 and c.tp == 1)
    wide = next(c for c in result.candidates if c.num_gpus == 16 and c.replicas == 1 and c.dp_attention)
    assert ones.point.tokens_per_s_per_user > 2 * wide.point.tokens_per_s_per_user
    assert ones.usd_per_million_output_tokens == pytest.approx(best.usd_per_million_output_tokens)
    one = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="h100", num_gpus=1, context=2048,
                                  use_calibration=False))  # fmt: skip
    closed = ServeRequest(model="qwen3-30b-a3b", traffic=Traffic(1024, 1024, concurrency=64), gpus=("h100",))
    four = replicated(one, closed, 4)
    alone = ServingModel(one, Traffic(1024, 1024, concurrency=16)).point()
    assert four is not None and four.num_gpus == 4 and four.point.ttft_s == pytest.approx(alone.ttft_s)
    assert four.point.request_rate == pytest.approx(4 * alone.request_rate)
    assert four.point.decode_batch == pytest.approx(4 * alone.decode_batch)  # counts summed, as interface.md says
    assert four.point.max_running == 4 * alone.max_running
    assert replicated(one, closed, 3) is None  # 64 clients do not split evenly over three copies


def test_a_gpu_asked_for_without_a_price_is_named_when_its_rows_fall_below_the_table() -> None:
    """MI355X has no catalogue price, so its rows rank after every priced one; asked for by name, it is still named
    with its best configuration under the table rather than vanishing."""
    code, out, err = run("serve", "deepseek-r1", "--isl", "8k", "--osl", "1k", "--concurrency", "1024", "--gpu",
                         "b200,h200,mi355x", "--ttft", "2", "--tpot", "50", "--top", "5")  # fmt: skip
    assert code == 0, err
    text = " ".join(out.split())
    assert "mi355x has no catalogue price, so it ranks after the priced: its best here," in text


def test_the_input_price_falls_as_more_of_the_prompt_is_cached() -> None:
    """$ per million input tokens counts every prompt token, those a prefix hit finds cached too (as prices quote
    them): the more is cached, the less prefill each costs; it had divided by the uncached ones and risen 4x."""
    prices = []
    for hit in (0.0, 0.5, 0.99):
        req = ServeRequest(model="qwen3-235b-a22b", traffic=Traffic(4096, 512, rate=5.0, prefix_hit=hit),
                           gpus=("h200",), engines=("vllm",), quants=("fp8-block128",))  # fmt: skip
        best = plan_serve(req).candidates[0]
        assert best.usd_per_million_input_tokens is not None
        prices.append(best.usd_per_million_input_tokens)
    assert prices[0] > prices[1] > prices[2]


def test_copies_are_also_tried_of_deployments_larger_than_the_smallest() -> None:
    """Llama-3.3-70B fp8 at 20 requests/s of 2K/512 on H100: one H100 holds it but serves little; copies of its
    2-GPU deployment (8 x TP2 on 16) keep up at that deployment's cost per token, where only copies of the
    smallest had been tried and none kept up."""
    req = ServeRequest(model="llama-3.3-70b", traffic=Traffic(2048, 512, rate=20.0), gpus=("h100",),
                       engines=("vllm",), quants=("fp8",), max_gpus=64)  # fmt: skip
    best = plan_serve(req).candidates[0]
    assert best.point.stable and best.replicas > 1 and best.num_gpus // best.replicas >= 2


def test_a_load_beyond_one_decode_instance_is_served_by_copies_of_the_split() -> None:
    """4,096 clients of 8K prompts: one 8-GPU decode instance does not hold them; four copies of the sized pair
    (16 prefill instances of 4, 4 decode instances of 8) meet the targets at the one pair's cost per token."""
    req = ServeRequest(model="deepseek-v3", traffic=Traffic(8192, 1024, concurrency=4096), gpus=("b200",),
                       quants=("nvfp4",), max_gpus=128, ttft_s=2.0, tpot_s=0.05)  # fmt: skip
    best = next(c for c in plan_serve(req).candidates if c.meets)
    assert best.disaggregated == "16x4P:4x8D" and best.num_gpus == 96
    assert "decode: 4 instances of this" in best.command


def test_every_pareto_letter_is_drawn_or_said_to_lie_under_another() -> None:
    """Two front points in one cell of the plot: the letter drawn over is named in the legend as lying under the
    other, so no legend entry points at nothing."""
    code, out, err = run("serve", "deepseek-v3", "--isl", "8k", "--osl", "1k", "--concurrency", "1024", "--gpu",
                         "b200", "--max-gpus", "64", "--detail")  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    plot = "".join(line.split("|", 1)[-1] for line in plot_rows(out))
    legend = [line for line in lines if len(line) > 2 and line[1] == " " and line[0].isalpha() and "client" in line]
    assert legend and all(line[0] in plot or "(under " in line for line in legend)
    # a letter said to lie under others names the ones on the plot (F under G under H: H), never a hidden one
    for width in ("60", "80"):
        result = runner.invoke(app, ["serve", "kimi-k2", "--concurrency", "64", "--detail"],
                               env={"COLUMNS": width, "NO_COLOR": "1"})  # fmt: skip
        drawn = "".join(line.split("|", 1)[-1] for line in plot_rows(result.stdout))
        said = re.findall(r"\(under ([A-Za-z, ]+)\)", " ".join(result.stdout.split()))
        assert said and all(m in drawn for names in said for m in names.split(", ")), (width, said)


def test_sort_energy_ranks_those_meeting_the_targets_by_joules_per_output_token() -> None:
    """``--sort energy`` puts the configurations meeting the targets first, each by the joules its GPUs draw at TDP
    per output token (GPUs x TDP / output tokens/s), and the table and headline carry the figure."""
    req = ServeRequest(model="qwen3-30b-a3b", traffic=Traffic(1024, 1024, concurrency=64), tpot_s=0.05,
                       gpus=("h100", "h200", "l40s"), sort="energy")  # fmt: skip
    ranked = plan_serve(req).candidates
    meeting = [c for c in ranked if c.meets]
    joules = [c.joules_per_output_token for c in meeting]
    assert meeting and all(j is not None for j in joules) and joules == sorted(joules)  # type: ignore[type-var]
    assert list(ranked[: len(meeting)]) == meeting  # those meeting the targets on top
    best = meeting[0]
    assert best.joules_per_output_token == pytest.approx(
        best.gpu.tdp_w * best.num_gpus / best.point.output_tokens_per_s)  # fmt: skip
    by_cost = [c for c in plan_serve(replace(req, sort="cost")).candidates if c.meets]
    assert {c.label for c in by_cost} == {c.label for c in meeting}  # the same configurations, another order
    code, out, err = run("serve", "qwen3-30b-a3b", "--concurrency", "64", "--tpot", "50", "--gpu", "h100", "--gpu",
                         "h200", "--gpu", "l40s", "--sort", "energy")  # fmt: skip
    assert code == 0, err
    flat = " ".join(out.split())
    assert (
        "Least energy per token" in flat and "J/tok" in flat and f"{best.joules_per_output_token:.3g} J/token" in flat
    )
    code, out, err = run("serve", "qwen3-30b-a3b", "--concurrency", "64", "--gpu", "h100", "--sort", "energy", "--json")
    assert code == 0 and json.loads(out)["sort"] == "energy", err


def test_an_unknown_sort_is_refused_in_one_line() -> None:
    code, _, err = run("serve", "qwen3-30b-a3b", "--concurrency", "64", "--sort", "power")
    assert code == 1 and err.count("\n") == 1 and "--sort 'power'" in err and "cost, energy" in err, err


def test_lengths_given_as_a_range_are_drawn_uniformly_and_served_at_their_mean() -> None:
    """``--isl 819-1k``: prompts drawn uniformly from 819 to 1,024 tokens, as vLLM's and SGLang's random datasets
    draw them at a range ratio of 0.8; the model runs at the mean (922), the launch line allows the longest."""
    from moeplan.units import parse_length

    assert parse_length("1k", "--isl") == (1024, 1024) and parse_length("819-1k", "--isl") == (819, 1024)
    for bad in ("2k-1k", "0-5", "a-b", "5-"):
        with pytest.raises(InputError):
            parse_length(bad, "--isl")
    t = Traffic.of_lengths((819, 1024), (1024, 1024), concurrency=8)
    assert (t.isl, t.osl, t.isl_range, t.osl_range, t.longest) == (922, 1024, (819, 1024), None, 2048)
    assert t.prompt_cv2 == pytest.approx((206**2 - 1) / 12 / 921.5**2)  # a discrete uniform's variance over mean^2
    assert Traffic.of_lengths((1024, 1024), (8, 8), rate=1.0).prompt_cv2 == 0.0
    assert t.lengths_text() == "819-1,024 in (mean 922) / 1,024 out"
    code, out, err = run("serve", "qwen3-30b-a3b", "--isl", "512-1536", "--osl", "200-1800", "--rate", "20", "--gpu",
                         "h100", "--top", "3")  # fmt: skip
    assert code == 0, err
    flat = " ".join(out.split())
    assert "512-1,536 in (mean 1,024) / 200-1,800 out (mean 1,000)" in flat
    assert "--max-model-len 3336" in flat  # 1,536 + 1,800: the longest request
    code, out, err = run("serve", "qwen3-30b-a3b", "--isl", "512-1536", "--concurrency", "8", "--gpu", "h100", "--json")
    assert code == 0 and json.loads(out)["traffic"]["isl_range"] == [512, 1536], err
    code, _, err = run("serve", "qwen3-30b-a3b", "--isl", "1k-50k", "--concurrency", "4", "--gpu", "h100")
    assert code == 1 and err.count("\n") == 1 and "52,224 tokens" in err and "the longest" in err, err
    code, _, err = run("estimate", "qwen3-30b-a3b", "--gpu", "h100", "--isl", "1k-6k", "--concurrency", "4",
                       "--context", "4k")  # fmt: skip
    assert code == 1 and "7,168" in err and "--context" in err, err


def test_prompts_of_varied_lengths_wait_longer_under_a_rate_as_an_mg1_queue_has_them() -> None:
    """Under a request rate the prefill queue is M/G/1: its mean wait is M/D/1's ``rho S / (2 (1 - rho))`` times
    ``1 + cv^2`` of the service times, which follow the prompt lengths (Qwen3-30B-A3B on an H100, 4,096-token prompts
    at 4 requests/s against 1-8,191: cv^2 = 1/3, 12 ms more); a closed loop's mean-value queue sees the mean alone."""
    d = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="h100", context=8448, prompt=4096, use_calibration=False),
                fewest=False)  # fmt: skip
    fixed = Traffic.of_lengths((4096, 4096), (256, 256), rate=4.0)
    wide = Traffic.of_lengths((1, 8191), (256, 256), rate=4.0)  # the same mean, cv^2 = 1/3
    model = ServingModel(d, fixed)
    a, b = model.point(), ServingModel(d, wide).point()
    assert b.decode_batch == pytest.approx(a.decode_batch) and b.tpot_s == pytest.approx(a.tpot_s)
    service, rho = model.prefill_service_s(a.decode_batch), 4.0 * model.prefill_share_s(a.decode_batch)
    extra = service * rho * wide.prompt_cv2 / (2 * (1 - rho))
    assert extra > 0.005 and b.ttft_s - a.ttft_s == pytest.approx(extra, rel=0.01)
    assert b.output_tokens_per_s == pytest.approx(a.output_tokens_per_s)  # the means set the throughput
    spans = ((4096, 4096), (1, 8191))
    closed = [ServingModel(d, Traffic.of_lengths(r, (256, 256), concurrency=64)).point() for r in spans]
    assert closed[1].ttft_s == pytest.approx(closed[0].ttft_s)


def test_a_format_ranked_above_one_that_loses_less_quality_is_marked() -> None:
    """serve carries recommend's ``*``: among the configurations meeting the targets, one ranked above a format of
    smaller typical quality cost is ``lower_quality`` (AWQ 4-bit over gpt-oss's own MXFP4 on an H100), and the mark,
    its footnote and the JSON keys say so."""
    req = ServeRequest(model="gpt-oss-120b", traffic=Traffic(1024, 1024, concurrency=32), gpus=("h100",))
    ranked = plan_serve(req).candidates
    pool = [c for c in ranked if c.meets] or list(ranked)
    assert all(c.quality is not None for c in pool)
    for i, c in enumerate(pool):
        below = [d.quality.rank for d in pool[i + 1 :] if d.quality is not None]
        assert c.lower_quality == any(r < c.quality.rank for r in below), (i, c.label)  # type: ignore[union-attr]
    awq = next(c for c in pool if c.quant == "awq-int4")
    assert awq.lower_quality and not pool[0].lower_quality and pool[0].quant == "mxfp4-experts"
    code, out, err = run("serve", "gpt-oss-120b", "--concurrency", "32", "--gpu", "h100", "--top", "5")
    assert code == 0 and "awq-int4*" in out and "loses more quality" in " ".join(out.split()), err
    code, out, err = run("serve", "gpt-oss-120b", "--concurrency", "32", "--gpu", "h100", "--json")
    rows = json.loads(out)["configurations"]
    assert code == 0 and {r["quant"]: r["lower_quality"] for r in rows}.get("awq-int4") is True, err
    assert all(r["quality"] for r in rows)


def test_mtp_acceptance_defaults_to_each_models_published_figures() -> None:
    """Each catalogue model with MTP layers plans at its own published acceptance: the first draft's, and the factor
    on each pass of its reused layer (GLM-4.6: 0.90, and 0.15 per reuse, SGLang's 2.024 tokens a step at three
    drafts; GLM-5 fixed the reuse: 0.95 and 0.9), each note saying whose figure it is; ``--mtp-accept`` replaces
    the rate and keeps the model's reuse factor; a model with nothing published takes DeepSeek-V3's, and says so."""
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.speed import SpeedModel

    def tokens(model: str, drafts: int, accept: float | None = None) -> tuple[float, tuple[str, ...]]:
        d = resolve(EstimateRequest(model=model, gpu="h200", num_gpus=8, quant="fp8", context=2048, mtp=True,
                                    mtp_drafts=drafts, mtp_accept=accept, use_calibration=False))  # fmt: skip
        return SpeedModel(MemoryModel(d)).decode_step(2048, 8).tokens, d.notes

    glm46, notes = tokens("glm-4.6", 3)
    assert glm46 == pytest.approx(2.024, abs=0.01) and any("pull/14457" in n for n in notes)
    assert tokens("glm-4.6", 1)[0] == pytest.approx(1.9)
    assert tokens("glm-5", 3)[0] == pytest.approx(1 + 0.95 + 0.95 * 0.855 + 0.95 * 0.855 * 0.95 * 0.81)
    assert tokens("deepseek-v3.2", 3)[0] == pytest.approx(2.46, abs=0.02)  # SGLang's cookbook on ShareGPT
    assert tokens("deepseek-r1", 3)[0] == pytest.approx(2.63, abs=0.01)
    mine, notes = tokens("glm-4.6", 3, accept=0.8)
    assert mine == pytest.approx(1 + 0.8 + 0.8 * 0.12 + 0.8 * 0.12 * 0.8 * 0.0225)  # the model's reuse factor kept
    assert "MTP drafts accepted at 0.8 (--mtp-accept)" in notes  # the rate is yours, and said so
    qwen, notes = tokens("qwen3-next-80b-a3b", 1)
    assert qwen == pytest.approx(1.85) and any("none is published for Qwen3-Next" in n for n in notes)
    from moeplan.errors import SpecError
    from moeplan.model.spec import MtpAcceptance
    from moeplan.records import validate

    for bad in ({"rate": 1.0, "reuse_decay": 0.5}, {"rate": 0.9, "reuse_decay": 0.0}):
        with pytest.raises(SpecError):
            validate(MtpAcceptance, {**bad, "source": "https://example.org/x"}, "spec")


def test_review_findings_on_serve_and_recommend_stay_mended(tmp_path: Path) -> None:
    """recommend under a load refuses requests beyond the trained context (as serve and estimate do) and names its
    load; serve --sort energy names a GPU without a TDP instead of ranking it silently, keeps J/tok in the narrow
    table, and prints small figures with their decimals; serve --mtp says the acceptance it plans at."""
    code, _, err = run("recommend", "qwen3-30b-a3b", "--isl", "100k-200k", "--osl", "1k", "--rate", "1")
    assert code == 1 and err.count("\n") == 1 and "trained context of 40,960" in err, err
    code, out, err = run("recommend", "qwen3-30b-a3b", "--isl", "512-1536", "--rate", "3", "--top", "2")
    assert code == 0 and "serving 512-1,536 in (mean 1,024) / 1,024 out at 3 requests/s" in " ".join(out.split())
    gpus = tmp_path / "gpus.yaml"
    gpus.write_text("gpus:\n- id: h100-sxm\n  tdp_w: null\n")
    code, out, err = run("serve", "qwen3-30b-a3b", "--concurrency", "16", "--gpu", "h100", "--sort", "energy",
                         "--gpu-file", str(gpus))  # fmt: skip
    flat = " ".join(out.split())
    assert code == 0 and "No energy figure" in flat and "h100-sxm: no TDP" in flat, err
    result = runner.invoke(app, ["serve", "qwen3-30b-a3b", "--concurrency", "64", "--sort", "energy", "--top", "3"],
                           env={"COLUMNS": "50", "NO_COLOR": "1"})  # fmt: skip
    assert result.exit_code == 0 and "J/tok" in result.stdout and "…" not in result.stdout.split("J/tok", 1)[1]
    code, out, err = run("serve", "llama-3.1-405b", "--gpu", "l4", "--max-gpus", "32", "--isl", "8k", "--osl", "64",
                         "--concurrency", "4", "--detail")  # fmt: skip
    assert code == 0 and "(max 0)" not in out and re.search(r"\(max 0\.\d+\)", out), err
    code, out, err = run("serve", "glm-4.5", "--mtp", "--engine", "sglang", "--gpu", "h200", "--concurrency", "32")
    assert code == 0 and "MTP 1 draft a step accepted at 0.9 (the model's published figure)" in " ".join(out.split())
    code, out, err = run("serve", "glm-4.5", "--mtp", "--mtp-accept", "0.6", "--engine", "sglang", "--gpu", "h200",
                         "--concurrency", "32", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["mtp"] == {"drafts": 1, "accept": 0.6, "accept_from": "--mtp-accept"}, err
    code, out, err = run("estimate", "qwen3-30b-a3b", "--gpu", "h100", "--isl", "512-1536", "--concurrency", "16",
                         "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["request"]["traffic"]["isl_range"] == [512, 1536], err
    for bad in ("-1k", "1k-", "512-1k-2k"):
        code, _, err = run("serve", "qwen3-30b-a3b", "--isl", bad, "--concurrency", "4")
        assert code == 1 and f"'{bad}' is neither a token count nor a range" in err, err
