"""Speed and cost results of one deployment, from the speed model (:mod:`moeplan.deploy.speed`) and GPU prices.

Cost: ``usd_per_hour = GPUs x price per GPU-hour (+ GPUs x TDP x energy price)``; per million output
tokens ``usd_per_hour / (throughput x 3600) x 1e6`` at the chosen batch; per million input tokens the same
with the prefill rate.  Prices are the catalogue's typical cloud price (or the middle of its range) unless
``--price`` gives one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moeplan.deploy.memory import MemoryModel
from moeplan.deploy.speed import SPEEDS, Efficiency, PerfInputs, SpeedModel, distinct_experts
from moeplan.formats.schemes import Scheme
from moeplan.hardware.gpus import GpuSpec

if TYPE_CHECKING:
    from moeplan.deploy.plan import CostResult, EstimateRequest, PerformanceResult

_FP8 = {"fp8", "fp8-channel", "fp8-block128"}
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def engine_efficiency(engine: str, gpu: GpuSpec, calibration: str | None = None) -> tuple[Efficiency, str]:
    """The engine's factors for ``gpu``, replaced by a calibration profile where one applies, and a note."""
    from moeplan.cache import profile_path

    if calibration is None and not profile_path(gpu.id).is_file():
        eff = SPEEDS[engine]  # no profile: the calibration module (and its pydantic models) is not needed
        return eff, f"efficiency: {eff.source.split(';')[0]} (no calibration for {gpu.id})"
    from moeplan.hardware.profiles import efficiency_for

    return efficiency_for(SPEEDS[engine], gpu, calibration)


def compute_dtype(scheme: Scheme, gpu: GpuSpec) -> str:
    """The matmul dtype the engine runs: fp8 for fp8 checkpoints on GPUs with fp8 units, else bf16."""
    if scheme.gguf is None and scheme.base in _FP8 and gpu.dense_tflops("fp8"):
        return "fp8"
    return "bf16"


def performance_result(
    mm: MemoryModel, gpu: GpuSpec, request: EstimateRequest, scheme: Scheme, engine: str
) -> tuple[PerformanceResult, tuple[str, ...]]:
    """Speed band at the request's context and batch, and the speed-vs-batch table."""
    from moeplan.deploy.plan import BatchRow, PerformanceResult

    eff, cal_note = engine_efficiency(engine, gpu, request.calibration)
    dtype = compute_dtype(scheme, gpu)
    sm = SpeedModel(mm, PerfInputs(gpu, eff, dtype, request.routing_skew))
    prompt = request.prompt_tokens()
    band = sm.band(request.context, request.batch, prompt)
    low, exp, high = band.low, band.expected, band.high
    rows = []
    usable = mm.req.usable_bytes
    for b in sorted({*BATCHES, request.batch}):
        if b > max(request.batch, 256):
            break
        step = sm.decode_step(request.context, b)
        fits = usable <= 0 or mm.fits(request.context, b)
        rows.append(BatchRow(batch=b, tokens_per_s=1 / step.seconds, throughput_tokens_per_s=b / step.seconds,
                             bound=step.bound, fits=fits))  # fmt: skip
    moe = mm.arch.moe
    d = exp.decode
    result = PerformanceResult(
        decode_tokens_per_s=exp.tokens_per_s,
        decode_tokens_per_s_range=(low.tokens_per_s, high.tokens_per_s),
        throughput_tokens_per_s=exp.throughput_tokens_per_s,
        throughput_tokens_per_s_range=(low.throughput_tokens_per_s, high.throughput_tokens_per_s),
        prefill_tokens_per_s=exp.prefill_tokens_per_s,
        prefill_tokens_per_s_range=(low.prefill_tokens_per_s, high.prefill_tokens_per_s),
        time_to_first_token_s=exp.time_to_first_token_s,
        time_to_first_token_s_range=(high.time_to_first_token_s, low.time_to_first_token_s),
        prompt_tokens=prompt,
        bound=d.bound,
        bytes_read_per_step_per_gpu=d.bytes_read,
        step_seconds={
            "total": d.seconds,
            "memory": d.memory_s,
            "compute": d.compute_s,
            "fixed": d.fixed_s,
            "communication": d.comm_s,
        },
        distinct_experts_per_layer=(
            distinct_experts(moe.num_experts, moe.top_k, request.batch, request.routing_skew) if moe else None
        ),
        compute_dtype=dtype,
        efficiency_source=eff.source,
        calibration=eff.calibrated,
        by_batch=rows,
    )
    notes = [
        f"speed: roofline per decode step, {engine} efficiency {eff.bw[1]:.0%} of bandwidth "
        f"(band {eff.bw[0]:.0%}-{eff.bw[2]:.0%}), {eff.kernel_s * 1e6:.0f} us per kernel"
        + (f" + {eff.moe_layer_s * 1e6:.0f} us per MoE layer" if moe and eff.moe_layer_s else "")
        + ("; the band's optimistic end assumes skewed routing" if moe else ""),
        f"prompt: {prompt:,} tokens for prefill and time to first token",
    ]
    if moe:
        notes.append(
            f"routing: {'uniform' if request.routing_skew == 0 else f'Zipf skew {request.routing_skew:g}'}; "
            f"{result.distinct_experts_per_layer:.1f} of {moe.num_experts} experts read per layer at batch "
            f"{request.batch}"
        )
    notes.append(cal_note)
    return result, tuple(notes)


def cost_result(gpu: GpuSpec, num_gpus: int, perf: PerformanceResult, request: EstimateRequest) -> CostResult:
    from moeplan.deploy.plan import CostResult

    price: float | None
    if request.price_usd_per_hour is not None:
        price, source = request.price_usd_per_hour, "--price"
    elif gpu.cloud_usd_per_hour is not None:
        c = gpu.cloud_usd_per_hour
        price = c.expected
        how = "typical" if c.typical is not None else "middle of"
        source = f"{how} ${c.low:g}-{c.high:g}/GPU-h ({c.as_of}): {c.source}"
    else:
        price, source = None, None
    energy = None
    if request.energy_usd_per_kwh is not None and gpu.tdp_w:
        energy = num_gpus * gpu.tdp_w / 1000 * request.energy_usd_per_kwh
    per_hour = None if price is None else num_gpus * price + (energy or 0.0)
    out_m = None if per_hour is None else per_hour / (perf.throughput_tokens_per_s * 3600) * 1e6
    in_m = None if per_hour is None else per_hour / (perf.prefill_tokens_per_s * 3600) * 1e6
    purchase = num_gpus * gpu.purchase_usd.approx if gpu.purchase_usd else None
    return CostResult(
        usd_per_hour=per_hour,
        usd_per_million_output_tokens=out_m,
        usd_per_million_input_tokens=in_m,
        purchase_usd=purchase,
        energy_usd_per_hour=energy,
        price_source=source,
    )
