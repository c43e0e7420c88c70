"""Speed: a roofline per step, made for MoE, with a band instead of one falsely precise number.

**Decode** (one step makes one token for each of ``B`` sequences, all at context ``c``), per pipeline stage,
summed over the stages (a step crosses them in turn):

    t_step = max(bytes / (BW x eta_bw), flops / (peak x eta_c)) + layers x t_layer + MoE layers x t_moe + t_comm

* ``bytes`` one GPU reads: its share of every weight but the embedding table (a lookup) and the routed
  experts; of the routed experts, the share the batch touches: ``E x (1 - (1 - k/E)^B)`` distinct experts per
  layer under uniform routing (so batch 1 reads ``k`` experts and a batch of hundreds reads nearly all
  ``E``), or under Zipf-skewed routing ``sum_i 1 - (1 - q_i)^B`` with ``q_i = min(1, c / i^s)``,
  ``sum q_i = k``; and the
  KV cache the attention reads: every cached token for full layers, the window for sliding ones.
* ``flops``: ``B`` x the decode FLOPs per token (:mod:`moeplan.model.flops`), this GPU's share.
* ``eta_c``, the compute efficiency of a GEMM of ``m`` tokens, ``n`` outputs, ``k`` inputs:
  ``eta_max x m/(m + 128) x n/(n + 1024) x k/(k + 1024)``, so small experts get less of the peak: a
  Qwen3-30B-A3B expert (2048 -> 768) at 2,048 tokens per expert comes to 26% (fused MoE kernels measure
  22-25% of H100's peak there, VeOmni PR #460) and a 70B dense GEMM at 8k tokens to 63%.  A few tokens
  run as matrix-vector products on the vector units instead: ``flops / (0.7 x fp32 peak)``; the faster of
  the two paths counts.
* ``t_layer``/``t_moe``: fixed per-layer costs of a step (kernel launches, routing, top-k and token sorting)
  that dominate small MoE models at batch 1 (Qwen3-30B-A3B bf16 on H20 runs at 23% of bandwidth in SGLang,
  Qwen's speed benchmark); ``eta_bw`` and these per engine (:data:`SPEEDS`), from published measurements.
* ``t_comm``: tensor parallel: two all-reduces of ``B x h x 2`` bytes per layer, ring time
  ``alpha + 2 (tp-1)/tp x bytes / link``; expert parallel: dispatch and combine all-to-all of
  ``B x k x h x 2 x (ep-1)/ep`` bytes per MoE layer; pipeline: one hop per stage boundary.

**Prefill** of a ``P``-token prompt runs in chunks of the engine's batched tokens; each chunk reads the
weights once (all experts once a chunk has ``E/k`` tokens) and is mostly compute-bound.  Time to first token
= prefill + one decode step.

The band: *low* and *high* take the engine's pessimistic and optimistic bandwidth efficiency, 1.5x and
0.6x the fixed costs, and 0.8x / 1.15x the compute efficiency.  A calibration (``moeplan calibrate``)
replaces the engine's factors for the GPU it measured.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

from moeplan.deploy.memory import MemoryModel
from moeplan.hardware.gpus import GpuSpec
from moeplan.model.flops import _mean_attended, flops_per_token
from moeplan.model.spec import ArchSpec
from moeplan.records import Value

US = 1e-6


@dataclass(frozen=True, repr=False, eq=False)
class Efficiency(Value):
    """How close an engine gets to the hardware's peaks, and its fixed costs per step."""

    bw: tuple[float, float, float]
    """Achieved share of peak memory bandwidth (low, expected, high)."""
    compute_max: float
    """``eta_max``: the best share of peak TFLOP/s a large GEMM reaches."""
    kernel_s: float
    """Fixed seconds per kernel of a step (launch and the small kernels' own latency), see :func:`layer_kernels`."""
    moe_layer_s: float
    """Extra fixed seconds per MoE layer per step beyond its kernels (fused-MoE alignment and padding)."""
    source: str = ""
    calibrated: str | None = None
    """The calibration profile these factors come from, if any."""

    def gemm(self, m: float, n: float, k: float) -> float:
        """Share of the tensor-core peak for an ``m x k`` by ``k x n`` GEMM (see the module docstring)."""
        return self.compute_max * m / (m + 128) * n / (n + 1024) * k / (k + 1024)


SPEEDS: dict[str, Efficiency] = {
    "vllm": Efficiency(
        (0.60, 0.78, 0.90),
        0.75,
        2 * US,
        55 * US,
        "Qwen speed benchmark (Qwen3-30B-A3B, SGLang, H20: 137 tok/s bf16, 156 fp8); Baseten (Mixtral int8, "
        "TensorRT-LLM, A100: 81 tok/s); VeOmni PR #460 (fused MoE 22-25% of H100 peak)",
    ),
    "sglang": Efficiency(
        (0.60, 0.78, 0.90),
        0.75,
        2 * US,
        55 * US,
        "as vllm: Qwen speed benchmark (SGLang 0.4.6, H20)",
    ),
    "llama.cpp": Efficiency(
        (0.55, 0.72, 0.88),
        0.55,
        3 * US,
        0.0,
        "llama-bench: gpt-oss-120b MXFP4 on DGX Spark 59 tok/s (NVIDIA forum, 2025-12); Mixtral Q4_K_M/Q8_0 on "
        "M2 Max 34.7/22.9 tok/s (llama.cpp PR #4406)",
    ),
    "transformers": Efficiency(
        (0.30, 0.45, 0.60),
        0.55,
        10 * US,
        400 * US,
        "eager PyTorch: a Python loop over experts and no CUDA graphs (ml-engineering inference notes)",
    ),
}


# Metal dispatches cost more than CUDA graph replays (command encoding per kernel).
LAUNCH_SCALE = {"apple": 2.5}
# The optimistic end of the band assumes real, skewed routing (a few popular experts) when none is given.
HIGH_SKEW = 1.0


def layer_kernels(arch: ArchSpec, layer: int) -> int:
    """Kernels one decoder layer runs per step (an engine's graph, fused where engines fuse).

    Attention: norm, q/k/v, rope, attention, output, residual = 8 (+2 with q/k norms); MLA: norm, q_a,
    q_norm, q_b, kv_a, kv_norm, rope, the absorbed k_b and v_b with their copies, attention, output,
    residual = 20.  Dense MLP: norm, gate-up, activation, down, residual = 5.  MoE: norm, router, softmax,
    top-k, sort, gather, gate-up, activation, down, weighted combine, residual = 11; shared experts +4.
    """
    att = arch.attention
    n = 20 if att.mla is not None else 8 + (2 if att.qk_norm != "none" else 0)
    moe = arch.moe
    if moe is not None and arch.is_moe_layer(layer):
        n += 11 + (4 if moe.shared_intermediate_size else 0) + (5 if moe.residual_mlp else 0)
    else:
        n += 5
    return n


@functools.lru_cache(maxsize=256)
def selection_probabilities(num_experts: int, top_k: int, skew: float) -> tuple[float, ...]:
    """Probability that one token picks each expert: ``q_i = min(1, c / i^s)`` with ``sum q_i = k``."""
    weights = [float(i) ** -skew for i in range(1, num_experts + 1)]
    capped: set[int] = set()
    while True:
        free = sum(w for i, w in enumerate(weights) if i not in capped)
        c = (top_k - len(capped)) / free
        over = {i for i, w in enumerate(weights) if i not in capped and c * w > 1}
        if not over:
            return tuple(1.0 if i in capped else c * w for i, w in enumerate(weights))
        capped |= over


@functools.lru_cache(maxsize=4096)
def distinct_experts(num_experts: int, top_k: int, batch: int, skew: float = 0.0) -> float:
    """Expected number of distinct experts ``batch`` tokens route to in one layer.

    Uniform (``skew`` 0): ``E x (1 - (1 - k/E)^B)``; Mixtral (8, top-2) at B=1: 2, B=8: 7.2, B=64: 8.0.
    ``skew`` s > 0: ``sum_i 1 - (1 - q_i)^B`` with :func:`selection_probabilities` (Zipf-like popularity,
    still exactly ``k`` experts for one token).
    """
    e, k = num_experts, top_k
    if skew <= 0:
        return float(e * (1.0 - (1.0 - k / e) ** batch))
    return float(sum(1.0 - (1.0 - q) ** batch for q in selection_probabilities(e, k, skew)))


@dataclass(frozen=True, repr=False, eq=False)
class Step(Value):
    """One decode step (or prefill chunk), the whole deployment."""

    seconds: float
    memory_s: float
    compute_s: float
    fixed_s: float
    comm_s: float
    bytes_read: float
    """Bytes one GPU reads, summed over pipeline stages."""

    @property
    def bound(self) -> str:
        """The largest term of the step: ``memory``, ``compute``, ``overhead`` (fixed costs) or ``communication``.

        Memory and compute overlap (the step takes the larger), so the smaller of the two never bounds it.
        """
        roofline = ("memory", self.memory_s) if self.memory_s >= self.compute_s else ("compute", self.compute_s)
        terms = [roofline, ("overhead", self.fixed_s), ("communication", self.comm_s)]
        return max(terms, key=lambda t: t[1])[0]


@dataclass(frozen=True, repr=False, eq=False)
class Speed(Value):
    """Speed figures for one scenario of the band."""

    decode: Step
    tokens_per_s: float
    throughput_tokens_per_s: float
    prefill_tokens_per_s: float
    time_to_first_token_s: float


@dataclass(frozen=True, repr=False, eq=False)
class SpeedBand(Value):
    """Speeds at the low, expected and high efficiencies."""

    low: Speed
    expected: Speed
    high: Speed
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, repr=False, eq=False)
class PerfInputs(Value):
    """What the speed model needs beyond the memory model."""

    gpu: GpuSpec
    efficiency: Efficiency
    compute_dtype: str = "bf16"
    routing_skew: float = 0.0
    num_nodes: int = 1


def _link(gpu: GpuSpec, multi_node: bool) -> tuple[float, float]:
    """(bytes/s one way, latency s) between two GPUs of a deployment."""
    if multi_node:
        return 50e9, 20 * US  # a 400 Gb/s NIC per GPU (InfiniBand / RoCE)
    if gpu.nvlink_gb_s:
        return gpu.nvlink_gb_s / 2 * 1e9, 8 * US
    if gpu.pcie_gb_s:
        return gpu.pcie_gb_s / 2 * 1e9, 25 * US
    return 16e9, 25 * US


def peak_flops(gpu: GpuSpec, dtype: str) -> float:
    """Dense peak FLOP/s for ``dtype``, falling back to bf16/fp16, then fp32."""
    for d in (dtype, "bf16", "fp32"):
        v = gpu.dense_tflops(d)
        if v:
            return v * 1e12
    return 1e12


class SpeedModel:
    """Decode and prefill time of one deployment (a MemoryModel on a GPU)."""

    def __init__(self, mm: MemoryModel, inputs: PerfInputs) -> None:
        self.mm, self.inp = mm, inputs
        self.arch: ArchSpec = mm.arch
        arch = self.arch
        self.moe = arch.moe
        par = mm.req.parallel
        self.tp, self.ep, self.pp = par.tp, par.ep, par.pp
        self.bw = inputs.gpu.bandwidth_gb_s * 1e9
        self.peak = peak_flops(inputs.gpu, inputs.compute_dtype)
        vec = inputs.gpu.dense_tflops("fp32")
        self.vector_peak = 0.7 * (vec * 1e12 if vec else self.peak / 8)
        # Per stage: bytes of weights always read, and of routed experts (this GPU's share).
        self.stage_dense: list[float] = []
        self.stage_experts: list[float] = []
        for weights in mm.stage_weights:
            experts = float(weights.get("routed_experts", 0))
            self.stage_experts.append(experts)
            self.stage_dense.append(float(sum(weights.values())) - experts - weights.get("embedding", 0))
        self.stage_moe_layers = [sum(1 for i in r if arch.is_moe_layer(i)) for r in mm.stage_layers]
        self.stage_kernels = [sum(layer_kernels(arch, i) for i in r) for r in mm.stage_layers]
        self.stage_kernels[-1] += 3  # final norm, output head, sampling
        self.launch_scale = LAUNCH_SCALE.get(inputs.gpu.kind, 1.0)

    # -- pieces ---------------------------------------------------------------------------------------

    def _kv_read(self, stage: int, context: int, batch: int) -> float:
        att = self.arch.attention
        layers = self.mm.stage_layers[stage]
        tokens = sum(_mean_attended(att.layer_kind(i), att.window_tokens, context, "decode") for i in layers)
        return tokens * self.mm.kv_layer_bytes * batch

    def _compute_s(
        self, flops_by_kind: dict[str, float], tokens: float, eff: Efficiency, scale: float, skew: float
    ) -> float:
        """Seconds for ``flops_by_kind`` (this GPU's share) done for ``tokens`` tokens at once."""
        arch, moe = self.arch, self.moe
        h = arch.hidden_size
        total = 0.0
        for kind, f in flops_by_kind.items():
            if f <= 0:
                continue
            if kind == "routed_experts" and moe is not None:
                used = distinct_experts(moe.num_experts, moe.top_k, max(1, round(tokens)), skew)
                m = tokens * moe.top_k / max(used, 1e-9)
                eta = eff.gemm(m, 2 * moe.expert_intermediate_size / self.tp * self.ep, h)
            elif kind == "attention_scores":
                eta = eff.compute_max * 0.6  # flash attention kernels
            elif kind == "lm_head":
                eta = eff.gemm(tokens, arch.vocab_size / self.tp, h)
            else:
                eta = eff.gemm(tokens, max(h / self.tp, 256), h)
            tensor_path = f / (self.peak * min(0.95, eta * scale))
            total += min(tensor_path, f / (self.vector_peak * scale))
        return total

    def _comm_s(self, batch_tokens: float) -> float:
        arch, moe = self.arch, self.moe
        multi = self.mm.req.parallel.num_gpus > 8 or self.inp.num_nodes > 1
        link, alpha = _link(self.inp.gpu, multi and self.tp > 8)
        t = 0.0
        h = arch.hidden_size
        if self.tp > 1:
            size = batch_tokens * h * 2
            t += arch.num_layers * 2 * (alpha + 2 * (self.tp - 1) / self.tp * size / link)
        if self.ep > 1 and moe is not None:
            size = batch_tokens * moe.top_k * h * 2 * (self.ep - 1) / self.ep
            t += arch.num_moe_layers * 2 * (alpha + size / link)
        if self.pp > 1:
            plink, palpha = _link(self.inp.gpu, multi)
            t += (self.pp - 1) * (palpha + batch_tokens * h * 2 / plink)
        return t

    def _step(
        self,
        tokens: float,
        read_experts_for: float,
        kv_context: int | None,
        eff: Efficiency,
        scales: tuple[float, float, float, float],
        flops_tokens: dict[str, float],
    ) -> Step:
        """A forward pass of ``tokens`` tokens; ``read_experts_for`` tokens decide the experts read.

        ``scales``: (bandwidth efficiency, fixed-cost factor, compute-efficiency factor, routing skew) of the
        scenario.
        """
        bw_eff, fixed_scale, compute_scale, skew = scales
        moe = self.moe
        mem = comp = fixed = 0.0
        bytes_read = 0.0
        share = 1.0 / (self.tp * self.pp)  # this GPU's share of the FLOPs (each stage does 1/pp)
        per_gpu_flops = {k: v * share for k, v in flops_tokens.items()}
        for s in range(self.pp):
            read = self.stage_dense[s]
            if moe is not None and self.stage_experts[s]:
                used = distinct_experts(moe.num_experts, moe.top_k, max(1, round(read_experts_for)), skew)
                read += self.stage_experts[s] * min(1.0, used / moe.num_experts)
            if kv_context is not None:
                read += self._kv_read(s, kv_context, round(tokens))
            bytes_read += read
            mem += read / (self.bw * bw_eff)
            kernels = self.stage_kernels[s] * eff.kernel_s * self.launch_scale
            fixed += (kernels + self.stage_moe_layers[s] * eff.moe_layer_s) * fixed_scale
        comp = self._compute_s(per_gpu_flops, tokens, eff, compute_scale, skew) * self.pp
        comm = self._comm_s(tokens)
        return Step(max(mem, comp) + fixed + comm, mem, comp, fixed, comm, bytes_read)

    # -- public ---------------------------------------------------------------------------------------

    def _skew(self, scenario: int) -> float:
        """Routing skew of a scenario: the user's everywhere, and at least HIGH_SKEW at the optimistic end."""
        skew = self.inp.routing_skew
        return max(skew, HIGH_SKEW) if scenario == 2 else skew

    def decode_step(self, context: int, batch: int, scenario: str = "expected") -> Step:
        eff = self.inp.efficiency
        i = {"low": 0, "expected": 1, "high": 2}[scenario]
        fixed_scale = (1.5, 1.0, 0.6)[i]
        compute_scale = (0.8, 1.0, 1.15)[i]
        f = flops_per_token(self.arch, context, "decode").by_kind
        flops = {k: v * batch for k, v in f.items()}
        return self._step(batch, batch, context, eff, (eff.bw[i], fixed_scale, compute_scale, self._skew(i)), flops)

    def prefill_seconds(self, prompt: int, scenario: str = "expected") -> float:
        """Seconds to prefill one ``prompt``-token sequence, in chunks of the engine's batched tokens."""
        eff = self.inp.efficiency
        i = {"low": 0, "expected": 1, "high": 2}[scenario]
        chunk = self.mm.req.engine.batched_tokens or prompt
        chunk = max(1, min(chunk, prompt))
        n_chunks = math.ceil(prompt / chunk)
        f = flops_per_token(self.arch, prompt, "prefill").by_kind
        per_chunk = {k: v * chunk for k, v in f.items()}
        scales = (eff.bw[i], (1.5, 1.0, 0.6)[i], (0.8, 1.0, 1.15)[i], self._skew(i))
        step = self._step(chunk, chunk, None, eff, scales, per_chunk)
        return step.seconds * n_chunks

    def speed(self, context: int, batch: int, prompt: int, scenario: str = "expected") -> Speed:
        step = self.decode_step(context, batch, scenario)
        pre = self.prefill_seconds(prompt, scenario)
        return Speed(
            decode=step,
            tokens_per_s=1.0 / step.seconds,
            throughput_tokens_per_s=batch / step.seconds,
            prefill_tokens_per_s=prompt / pre,
            time_to_first_token_s=pre + step.seconds,
        )

    def band(self, context: int, batch: int, prompt: int) -> SpeedBand:
        low, expected, high = (self.speed(context, batch, prompt, s) for s in ("low", "expected", "high"))
        return SpeedBand(low, expected, high)


def with_calibration(eff: Efficiency, bw: float | None, compute_max: float | None, label: str) -> Efficiency:
    """``eff`` with measured factors: the band narrows to +-10% around the measured bandwidth efficiency."""
    out = eff
    if bw is not None:
        out = replace(out, bw=(bw * 0.9, bw, min(1.0, bw * 1.1)))
    if compute_max is not None:
        out = replace(out, compute_max=compute_max)
    return replace(out, calibrated=label)
