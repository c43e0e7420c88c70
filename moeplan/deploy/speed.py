"""Speed: a roofline per step, made for MoE, with a band instead of one falsely precise number.

**Decode** (one step makes one token for each of ``B`` sequences, all at context ``c``), per pipeline stage,
summed over the stages (a step crosses them in turn; an engine that ``pipelines_stages`` runs a round of ``pp``
micro-batches of ``B/pp`` as one pass of ``B/pp``):

    t_step = max(bytes / (BW x eta_bw), flops / (peak x eta_c)) + layers x t_layer + MoE layers x t_moe + t_comm

* ``bytes`` one GPU reads: its share of every weight but the embedding table (a lookup) and the routed
  experts; of the routed experts, the share the batch touches: ``E x (1 - (1 - k/E)^B)`` distinct experts per
  layer under uniform routing (so batch 1 reads ``k`` experts and a batch of hundreds reads nearly all
  ``E``), or under Zipf-skewed routing ``sum_i 1 - (1 - q_i)^B`` with ``q_i = min(1, c / i^s)``,
  ``sum q_i = k``; and the
  KV cache the attention reads: every cached token for full layers, the window for sliding ones; and the
  recurrent state of linear-attention layers, read and written once per step.
* ``flops``: ``B`` x the decode FLOPs per token (:mod:`moeplan.model.flops`), this GPU's share.
* ``peak`` and ``eta_c`` follow the kernel path (:mod:`moeplan.deploy.kernels`): the tensor dtype the GEMMs
  run in (fp8 for fp8 weights on fp8 units, int8 for llama.cpp's CUDA MMQ, bf16 for weight-only kernels) and
  the efficiency of a GEMM of ``m`` tokens, ``n`` outputs, ``k`` inputs
  (:meth:`~moeplan.deploy.engines.Efficiency.gemm`): ``eta_max x m/(m + m_half) x n/(n + nk_half) x
  k/(k + nk_half)``, constant per row below a 16-row tile.  For vLLM a Qwen3-30B-A3B expert (2048 -> 768) at
  2,048 tokens per expert comes to 26% (fused MoE kernels measure 22-25% of H100's peak there, VeOmni PR
  #460) and a 70B dense GEMM at 8k tokens to 58%; routed experts take ``m`` = tokens x k / distinct experts.
* ``t_layer``/``t_moe``: fixed per-layer costs of a step (``Layer.kernels`` kernels of ``Efficiency.kernel_s``
  each: kernel launches, routing, top-k and token sorting) that dominate small MoE models at batch 1
  (Qwen3-30B-A3B bf16 on H20 runs at 23% of bandwidth in SGLang,
  Qwen's speed benchmark); ``eta_bw`` and these per engine (``Engine.speed``), from published measurements.
* ``t_comm``: the collectives of :mod:`moeplan.deploy.comm` per interconnect and group size: tensor parallel
  all-reduces of ``B x h x 2`` bytes (one after attention, one after a dense MLP), expert-parallel dispatch and
  combine in place of the MoE layer's all-reduce, one hand-off per pipeline stage boundary.

**Prefill** of a ``P``-token prompt runs in chunks of the engine's batched tokens; each chunk reads the
weights once (all experts once a chunk has ``E/k`` tokens) and is mostly compute-bound, but never faster than the
host can issue its kernels outside CUDA graphs (``Engine.prefill_dispatch_s`` per kernel).  Time to first token
= prefill + one decode step.

The band: *low* and *high* are the :data:`SCENARIOS`: the engine's pessimistic and optimistic bandwidth
efficiency, 1.5x and 0.6x the fixed costs, and the kernel path's spread of compute efficiency (0.7x / 1.3x for
checkpoint engines, 0.65x / 1.3x for llama.cpp's backends).  A calibration
(``moeplan calibrate``) replaces the engine's factors for the GPU it measured.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass, field, replace

from moeplan.deploy.comm import step_comm_s
from moeplan.deploy.deployment import BATCH_OVERLAP_MIN_TOKENS, EPLB_REDUNDANT, accepted_tokens
from moeplan.deploy.engines import Efficiency
from moeplan.deploy.kernels import DECODE_ATTENTION_VECTOR, attention_peak, scan_kernel, tensor_peak, vector_peak
from moeplan.deploy.memory import MemoryModel, dp_whole_kinds
from moeplan.formats.schemes import Scheme, quantized_tensors, weight_format
from moeplan.hardware.gpus import GpuSpec
from moeplan.model.flops import flops_per_token
from moeplan.model.layers import LinearAttention, mixer_counts
from moeplan.model.spec import ArchSpec
from moeplan.records import Value

EPLB_LEFT = 0.2
"""Share of the expert-parallel load imbalance left after EPLB's redundant experts, assumed: copies of the
hottest experts placed by observed load remove most of the excess (the DeepSeek-V3 report, section 3.4, describes
the mechanism and publishes no residual; moeplan has no measurement of one yet)."""
VEC_BATCH = 8
"""llama.cpp runs decode attention of up to this many sequences with its vector FlashAttention kernels."""
TP_HOST_WAIT = 1.75
"""Host time per kernel of eager prefill with tensor parallelism, relative to one GPU: every rank's host issues
every kernel and the ranks meet at each all-reduce, so the slowest host sets the pace (SGLang's 610-token TTFT at
TP 2-8: 1.1-2.5 ms per layer for 21-35 kernels, against 0.9 ms for ERNIE-4.5's 23 on one GPU)."""
# The optimistic end of the band assumes real, skewed routing (a few popular experts) when none is given.
HIGH_SKEW = 1.0

DP_GEMM_KINDS = ("attention", "shared_experts", "dense_mlp")
"""FLOP kinds whose GEMMs run whole on each rank's own tokens where the rank holds their weights whole under
data-parallel attention (:func:`~moeplan.deploy.memory.dp_whole_kinds`); the output head keeps its vocab-sliced
GEMM shape."""


@dataclass(frozen=True, repr=False, eq=False)
class Scenario(Value):
    """One end (or the middle) of the speed band: which bandwidth efficiency, and factors on the others."""

    name: str
    index: int
    """Into ``Efficiency.bw``: 0 low, 1 expected, 2 high."""
    fixed_scale: float
    """On the fixed per-step costs (kernels, MoE layers, hand-offs)."""


SCENARIOS = {
    "low": Scenario("low", 0, 1.5),
    "expected": Scenario("expected", 1, 1.0),
    "high": Scenario("high", 2, 0.6),
}
"""The band: pessimistic and optimistic bandwidth efficiency, 1.5x and 0.6x the fixed costs, and the kernel
path's spread of compute efficiency (``Efficiency.compute_spread``; the offload model uses the same three)."""


@functools.lru_cache(maxsize=256)
def selection_probabilities(num_experts: int, top_k: float, skew: float) -> tuple[float, ...]:
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
def distinct_experts(num_experts: int, top_k: float, batch: int, skew: float = 0.0) -> float:
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
    tokens: float = 1.0
    """Tokens each sequence gains per step: 1, or with MTP drafts the expected accepted drafts plus one."""
    hidden_s: float = 0.0
    """Communication run under the step's work by two micro-batches (``--batch-overlap``): ``comm_s`` less it adds."""

    @property
    def per_token_s(self) -> float:
        """Seconds per output token of one sequence: ``seconds / tokens``."""
        return self.seconds / self.tokens

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


def float_kind_scales(arch: ArchSpec, scheme: Scheme, scale: float) -> dict[str, float]:
    """:func:`_float_kind_scales`, cached per model, scheme and scale (every candidate of a search asks again)."""
    return dict(_float_kind_scales(arch, scheme, scale))


@functools.lru_cache(maxsize=512)
def _float_kind_scales(arch: ArchSpec, scheme: Scheme, scale: float) -> tuple[tuple[str, float], ...]:
    """Per GEMM kind, the factor on its FLOPs' time for the weights a scheme keeps in bf16 beside quantized ones
    (:func:`~moeplan.deploy.kernels.float_gemm_scale` ``s`` for those, 1 for the rest), weighted by elements:
    ``1 + (s - 1) x kept / all``.  DeepSeek-V3 in NVIDIA's NVFP4 checkpoint on
    B200: 4.25B of its 11.4B attention parameters in bf16 (all but the output projection), s = 2.13: 1.42; its
    bf16 output head: 2.13.  The routed experts set the kernel path, and embeddings and norms are no GEMMs."""
    if scale <= 1.0 or scheme.gguf is not None:
        return ()
    kept: Counter[str] = Counter()
    every: Counter[str] = Counter()
    for t, fmt, _ in quantized_tensors(arch, scheme):
        if not t.is_matrix or t.kind in ("routed_experts", "embedding", "norm"):
            continue
        every[t.kind] += t.elements
        wf = weight_format(fmt)
        if wf is not None and wf.bits >= 16:
            kept[t.kind] += t.elements
    return tuple((k, 1.0 + (scale - 1.0) * kept[k] / n) for k, n in every.items() if n and kept[k])


def peak_flops(gpu: GpuSpec, dtype: str) -> float:
    """Dense peak FLOP/s for ``dtype`` (derived from another tensor dtype where unpublished, see
    :func:`moeplan.deploy.kernels.tensor_peak`)."""
    return tensor_peak(gpu, dtype)[0]


class SpeedModel:
    """Decode and prefill time of one deployment (a MemoryModel on a GPU)."""

    def __init__(self, mm: MemoryModel) -> None:
        d = mm.d
        assert d.gpu is not None, "speed needs a GPU"
        self.mm, self.d, self.gpu = mm, d, d.gpu
        self.arch: ArchSpec = mm.arch
        arch = self.arch
        self.moe = arch.moe
        self.moe_layers = arch.num_moe_layers  # counted once: every step's collectives ask for it
        par = d.layout
        self.tp, self.ep, self.pp = par.tp, par.ep, par.pp
        self.bw = self.gpu.bandwidth_gb_s * 1e9
        self.peak = peak_flops(self.gpu, d.compute_dtype)
        self.vector = vector_peak(self.gpu)
        own = d.engine.llama_cpp_kernels or self.gpu.vendor == "apple"
        self.attention = attention_peak(self.gpu, d.compute_dtype, d.efficiency.compute_max, own)
        self.dp_kinds = tuple(k for k in dp_whole_kinds(d.engine) if k in DP_GEMM_KINDS)
        """FLOP kinds each rank runs whole for its own sequences under data-parallel attention."""
        self.kind_scale = float_kind_scales(mm.arch, d.scheme, d.float_gemm_scale)
        """Per FLOP kind: how much longer its GEMMs take for the share of its weights kept in bf16."""
        # Chunked linear-attention prefill: its score FLOPs (all heads) and its kernels' seconds per token, whole
        # model, on the GPU that runs a sequence (its heads split by TP; whole under DP attention)
        self.scan_flops = self.scan_token_s = 0.0
        scan = scan_kernel(d.engine, self.gpu)
        for mixer, n in mixer_counts(arch):
            if scan is not None and isinstance(mixer, LinearAttention):
                la = mixer.spec
                heads = la.num_value_heads if par.dp_attention else math.ceil(la.num_value_heads / self.tp)
                self.scan_flops += n * mixer.score_flops(1, "prefill")
                self.scan_token_s += n * scan.token_s(heads, la.key_head_dim, la.value_head_dim, self.gpu)
        # Per stage: bytes of weights always read, and of routed experts (this GPU's share).
        self.stage_dense: list[float] = []
        self.stage_experts: list[float] = []
        for weights in mm.stage_weights:
            experts = float(weights.get("routed_experts", 0))
            self.stage_experts.append(experts)
            self.stage_dense.append(float(sum(weights.values())) - experts - weights.get("embedding", 0))
        if par.eplb and par.ep > 1:  # redundant copies are memory, not extra reads: a step reads the experts it uses
            self.stage_experts = [x / (1 + EPLB_REDUNDANT) for x in self.stage_experts]
        plan = mm.stages
        self.stage_moe_layers = list(plan.moe_layers)
        self.stage_layers = plan.layers
        self.stage_kernels = list(plan.kernels)
        self.stage_kernels[-1] += 3  # final norm, output head, sampling
        self.stage_prefill_kernels = list(plan.prefill_kernels)
        self.stage_prefill_kernels[-1] += 3
        self.stage_read = plan.read

    # -- pieces ---------------------------------------------------------------------------------------

    def _kv_read(self, stage: int, context: int, batch: int) -> float:
        """KV bytes one decode step reads on one GPU of ``stage``: each layer's attended tokens x its cache."""
        tokens = sum(mixer.kv_read_elements(context) * share for mixer, share in self.stage_read[stage])
        return tokens * self.mm.kv_element_bytes * self.mm.local(batch)

    def _compute_s(
        self,
        flops_by_kind: dict[str, float],
        tokens: float,
        eff: Efficiency,
        scale: float,
        skew: float,
        decode: bool = False,
        rank_rows: float | None = None,
    ) -> float:
        """Seconds for ``flops_by_kind`` (this GPU's share) done for ``tokens`` tokens at once.

        GEMM shapes: under TP each rank multiplies all ``tokens`` rows by its ``1/tp`` slice of the weights
        (``tokens x h/tp``); under data-parallel attention the attention projections and the shared experts run
        whole on each rank for its own ``rank_rows`` tokens (``rank_rows x h``), as SGLang and TensorRT-LLM run
        them -- DeepSeek-V3 at DP 32: 16,384 rows of the full 7,168-wide projection, not 524,288 rows of a 224-wide
        slice (whose narrow output keeps it at a fifth of the tensor peak)."""
        arch, moe = self.arch, self.moe
        h = arch.hidden_size
        total = 0.0
        for kind, f in flops_by_kind.items():
            if f <= 0:
                continue
            if kind == "routed_experts" and moe is not None:
                used = distinct_experts(moe.num_experts, moe.expected_picks, max(1, round(tokens)), skew)
                m = tokens * moe.expected_picks / max(used, 1e-9)
                eta = eff.expert_gemm(m, 2 * moe.expert_intermediate_size / self.tp * self.ep, h, used / self.ep)
            elif kind == "attention_scores" and decode and self.d.engine.llama_cpp_kernels and tokens <= VEC_BATCH:
                continue  # llama.cpp's "vec" attention kernels run apart from the weights' reads: _serial_s
            elif kind == "attention_scores":  # flash attention kernels: bf16 operands (attention_peak)
                peak, eta = self.attention
                total += f / (peak * min(0.95, eta * scale))
                continue
            elif kind == "lm_head":
                eta = eff.gemm(tokens, arch.vocab_size / self.tp, h)
            elif rank_rows is not None and kind in self.dp_kinds:
                eta = eff.gemm(max(1.0, rank_rows), h, h)
            else:
                eta = eff.gemm(tokens, max(h / self.tp, 256), h)
            total += f * self.kind_scale.get(kind, 1.0) / (self.peak * min(0.95, eta * scale))
        return total

    def _split_scan(self, per_gpu_flops: dict[str, float], tokens: float, share: float) -> float:
        """Take the chunked linear-attention scans' FLOPs out of a prefill pass's attention scores (``share``: this
        GPU's share of them) and return their kernels' seconds for ``tokens`` tokens instead
        (:class:`~moeplan.deploy.kernels.ScanKernel`): they stream states through memory at a few per cent of the
        tensor peak the attention scores are charged at."""
        if not self.scan_token_s or "attention_scores" not in per_gpu_flops:
            return 0.0
        scores = per_gpu_flops["attention_scores"] - tokens * self.scan_flops * share
        per_gpu_flops["attention_scores"] = max(0.0, scores)
        return tokens * self.scan_token_s

    def _serial_s(self, flops_by_kind: dict[str, float], tokens: float, scale: float, decode: bool) -> float:
        """Seconds of work that overlaps nothing else in the step: llama.cpp's decode attention of a few sequences
        on the vector units ("vec" kernels), which run after the layer's weight GEMVs, so their time adds to the
        step rather than hiding under its memory time (as :data:`DECODE_ATTENTION_VECTOR` was measured)."""
        f = flops_by_kind.get("attention_scores", 0.0)
        if f <= 0 or not decode or not self.d.engine.llama_cpp_kernels or tokens > VEC_BATCH:
            return 0.0
        return f / (self.vector * DECODE_ATTENTION_VECTOR * scale)

    def ep_imbalance(self, tokens: float, skew: float) -> float:
        """Expert load on the busiest expert-parallel rank over the mean (1 without EP).

        Uniform routing spreads ``tokens x k`` picks over ``ep`` ranks: the largest of ``ep`` binomials is about
        ``1 + sqrt(2 ln(ep) (ep - 1) / (tokens x k))`` times the mean (8 ranks, 64 tokens x 8 picks: 1.19).
        Skewed routing puts the hottest expert's share ``q_1`` on one rank: ``ep x (q_1 + (k - q_1)/ep) / k``.
        EPLB's redundant experts take four fifths of the excess away."""
        moe = self.moe
        if self.ep <= 1 or moe is None:
            return 1.0
        n, k = self.ep, moe.expected_picks
        picks = max(1.0, tokens * k)
        statistical = 1 + math.sqrt(2 * math.log(n) * (n - 1) / picks)
        hot = 1.0
        if skew > 0:
            q1 = selection_probabilities(moe.num_experts, k, skew)[0]
            hot = n * (q1 + (k - q1) / n) / k
        f = min(float(n), max(statistical, hot))
        return 1 + (f - 1) * EPLB_LEFT if self.d.layout.eplb else f

    def _comm_s(self, batch_tokens: float, alpha_scale: float, prefill: bool = False) -> float:
        arch, moe = self.arch, self.moe
        return step_comm_s(
            self.gpu, tp=self.tp, ep=self.ep, pp=self.pp, num_nodes=self.d.num_nodes, tokens=batch_tokens,
            hidden=arch.hidden_size, top_k=moe.expected_picks if moe else 0.0, layers=arch.num_layers,
            moe_layers=self.moe_layers, alpha_scale=alpha_scale * self.d.engine.collective_scale,
            measured=self.d.link, dp_attention=self.d.layout.dp_attention, prefill=prefill,
            dense_dp=self.d.engine.dense_dp is not None,
        )  # fmt: skip

    def _step(
        self,
        tokens: float,
        read_experts_for: float,
        kv_context: int | None,
        eff: Efficiency,
        scales: tuple[float, float, float, float],
        flops_tokens: dict[str, float],
        sequences: int | None = None,
    ) -> Step:
        """A forward pass of ``tokens`` tokens of ``sequences`` sequences (default: one token each);
        ``read_experts_for`` tokens decide the experts read.  Under DP attention the busiest rank attends to
        ``ceil(sequences / ranks)`` of them: one prompt's attention runs on one rank.

        ``scales``: (bandwidth efficiency, fixed-cost factor, compute-efficiency factor, routing skew) of the
        scenario.
        """
        bw_eff, fixed_scale, compute_scale, skew = scales
        moe = self.moe
        mem = comp = fixed = 0.0
        bytes_read = 0.0
        share = 1.0 / (self.tp * self.pp)  # this GPU's share of the FLOPs (each stage does 1/pp)
        per_gpu_flops = {k: v * share for k, v in flops_tokens.items()}
        scan_s = 0.0
        if kv_context is None:  # prefill: the chunked linear-attention scans run at their kernels' own speed
            scan_s = self._split_scan(per_gpu_flops, tokens, share)
        rank_rows = None
        if self.d.layout.dp_attention:
            seqs = max(1, sequences if sequences is not None else round(tokens))
            busiest = self.mm.local(seqs) * self.tp / seqs
            scan_s *= busiest / self.tp  # its share of the sequences, each with all its heads
            rank_rows = tokens * busiest / self.tp  # the busiest rank's tokens
            for kind in ("attention_scores", *self.dp_kinds):
                if kind in per_gpu_flops:
                    per_gpu_flops[kind] *= busiest
        if "routed_experts" in per_gpu_flops:  # the busiest EP rank sets the step
            per_gpu_flops["routed_experts"] *= self.ep_imbalance(tokens, skew)
        for s in range(self.pp):
            read = self.stage_dense[s]
            if moe is not None and self.stage_experts[s]:
                used = distinct_experts(moe.num_experts, moe.expected_picks, max(1, round(read_experts_for)), skew)
                busiest = self.ep_imbalance(read_experts_for, skew)
                used_traffic, all_traffic = eff.expert_traffic
                share = min(1.0, used / moe.num_experts * busiest)
                read += self.stage_experts[s] * (share * used_traffic + all_traffic)
            if kv_context is not None:  # decode: the KV cache, and each sequence's recurrent state read and written
                read += self._kv_read(s, kv_context, round(tokens)) + 2 * self.mm.state_gpu_bytes(s, round(tokens))
            bytes_read += read
            mem += read / (self.bw * bw_eff)
            if eff.layer_s is not None:  # measured in a full decode step on this GPU
                fixed += len(self.stage_layers[s]) * eff.layer_s * fixed_scale
            else:
                kernels = self.stage_kernels[s] * eff.kernel_s
                fixed += (kernels + self.stage_moe_layers[s] * eff.moe_layer_s) * fixed_scale
        decode = kv_context is not None
        comp = self._compute_s(per_gpu_flops, tokens, eff, compute_scale, skew, decode, rank_rows) * self.pp + scan_s
        serial = self._serial_s(per_gpu_flops, tokens, compute_scale, decode) * self.pp
        comm = self._comm_s(tokens, fixed_scale, prefill=kv_context is None)
        work = max(mem, comp)
        rank_tokens = rank_rows if rank_rows is not None else tokens  # the busiest rank's (one prompt: all of them)
        exposed = self.exposed_comm_s(work, comm, rank_tokens, prefill=kv_context is None)
        return Step(work + serial + fixed + exposed, mem, comp + serial, fixed, comm, bytes_read,
                    hidden_s=comm - exposed)  # fmt: skip

    def exposed_comm_s(self, work: float, comm: float, rank_tokens: float, prefill: bool) -> float:
        """The seconds a step's collectives add to its GPU work (``max(memory, compute)``): all of them, one after
        the other; with two micro-batches (:attr:`~moeplan.deploy.deployment.Deployment.batch_overlap`) one's
        all-to-all runs under the other's work, the pair taking ``max(work, comm) + min(work, comm) / 2`` -- half
        the shorter stays exposed (the split's smaller GEMMs and the SMs the communication kernels hold), so they add
        ``max(comm / 2, comm - work / 2)``.  Only a step whose ranks carry at least
        :data:`BATCH_OVERLAP_MIN_TOKENS` tokens each is split.  DeepSeek-V3's prefill on 32 H100s (EP32 across 4
        nodes, 16,384 tokens a GPU): ~100 us of compute and ~84 us of dispatch a token, 184 -> 142 us, +30%; LMSYS
        measures +27% to +35% for SGLang's two-batch overlap."""
        least = BATCH_OVERLAP_MIN_TOKENS[1 if prefill else 0]
        if not self.d.batch_overlap or rank_tokens < least:
            return comm
        return max(comm / 2, comm - work / 2)

    # -- public ---------------------------------------------------------------------------------------

    def _skew(self, scenario: Scenario) -> float:
        """Routing skew of a scenario: the user's everywhere, and at least HIGH_SKEW at the optimistic end."""
        skew = self.d.routing_skew
        return max(skew, HIGH_SKEW) if scenario.name == "high" else skew

    def _scales(self, scenario: Scenario) -> tuple[float, float, float, float]:
        eff = self.d.efficiency
        compute = (eff.compute_spread[0], 1.0, eff.compute_spread[1])[scenario.index]
        return eff.bw[scenario.index], scenario.fixed_scale, compute, self._skew(scenario)

    def _scale_options(self, scenario: Scenario) -> list[tuple[float, float, float, float]]:
        """The scales a scenario's figure takes the best of: one set; at the optimistic end under expert parallelism
        both the skewed routing it assumes (fewer distinct experts read) and the user's (even EP ranks), since skew
        that loads one rank more is no optimism (DeepSeek-V3 at EP 32 and 2,048 sequences: 63.6 ms a step skewed,
        50.3 even)."""
        scales = self._scales(scenario)
        if scenario.name != "high" or self.ep <= 1 or scales[3] == self.d.routing_skew:
            return [scales]
        return [scales, (*scales[:3], self.d.routing_skew)]

    def decode_step(self, context: int, batch: int, scenario: str = "expected") -> Step:
        """One decode step of ``batch`` sequences.  With MTP drafts (``k`` per sequence, each accepted with
        probability ``a``) the step verifies ``k + 1`` tokens per sequence -- ``k + 1`` times the FLOPs, and the
        distinct experts of ``batch x (k + 1)`` tokens, the KV cache read once -- plus ``k`` draft passes of one
        layer each, and yields :func:`~moeplan.deploy.deployment.accepted_tokens` tokens (``(1 - a^(k+1)) / (1 - a)``
        while the model has a trained MTP layer per draft, less where its last layer is reused): DeepSeek-V3's one
        draft at 85% gives 1.85, three 2.63."""
        sc = SCENARIOS[scenario]
        k, a = self.d.draft_tokens, self.d.accept_rate
        if self.pp > 1 and batch > 1 and self.d.engine.pipelines_stages:
            # a micro-batch a stage in flight: a round of pp micro-batches of B/pp takes pp stage-passes of B/pp,
            # one pass of B/pp through every stage, and gives each of the B sequences a token (the same where the
            # weights' reads bound a pass, 1/pp of the sequential pass where compute does)
            batch = math.ceil(batch / self.pp)
        f = flops_per_token(self.arch, context, "decode").by_kind
        flops = {name: v * batch * (k + 1) for name, v in f.items()}
        step = min((self._step(batch, batch * (k + 1), context, self.d.efficiency, scales, flops)
                    for scales in self._scale_options(sc)), key=lambda s: s.seconds)  # fmt: skip
        if not k:
            return step
        draft = step.seconds * k / self.arch.num_layers
        tokens = accepted_tokens(k, a, self.d.mtp_layers, self.d.reuse_decay)
        return replace(step, seconds=step.seconds + draft, fixed_s=step.fixed_s + draft, tokens=tokens)

    def prefill_seconds(self, prompt: int, scenario: str = "expected") -> float:
        """Seconds to prefill one ``prompt``-token sequence in ``ceil(P / batched tokens)`` equal chunks."""
        sc = SCENARIOS[scenario]
        limit = self.d.rank_tokens if self.d.batched_tokens else prompt  # one prompt: one rank's chunks
        n_chunks = math.ceil(prompt / max(1, min(limit, prompt)))
        chunk = prompt / n_chunks  # n equal chunks: a larger chunk never means more passes or smaller ones
        f = flops_per_token(self.arch, prompt, "prefill").by_kind
        per_chunk = {k: v * chunk for k, v in f.items()}
        seconds = min(self._step(chunk, chunk, None, self.d.efficiency, scales, per_chunk, sequences=1).seconds
                      for scales in self._scale_options(sc))  # fmt: skip
        return max(seconds, self.prefill_dispatch_s(scenario)) * n_chunks

    def prefill_dispatch_s(self, scenario: str = "expected") -> float:
        """The host's time to issue one eager prefill pass (outside CUDA graphs): kernels x the engine's dispatch
        cost, x :data:`TP_HOST_WAIT` under tensor parallelism (every rank issues them; all-reduces wait for the
        slowest); a pass carrying prompt tokens never takes less."""
        ranks = TP_HOST_WAIT if self.tp > 1 else 1.0
        kernels = sum(self.stage_prefill_kernels)  # chunked scans in recurrent mixers: more kernels than a decode step
        return kernels * self.d.engine.prefill_dispatch_s * ranks * SCENARIOS[scenario].fixed_scale

    def prefill_token_seconds(self, chunk: int, prompt: int, scenario: str = "expected") -> float:
        """Seconds per prompt token when ``chunk`` tokens of ``prompt``-token prompts ride in a step beside a decode:
        their compute (the busiest EP rank's share of the experts), plus the bytes of their activations on the
        step's collectives -- the weights are read and the collectives' latencies paid by the decode anyway.  Used
        by the serving model.  Qwen3-235B-A22B fp8 at TP 8 on MI355X (xGMI, 300 GB/s bus), 20,000-token chunks:
        2 x 94 all-reduces of 20,000 x 4,096 x 2 B add 188 x 2 x 7/8 x 164 MB / 300 GB/s / 20,000 = 9 us a
        token, twice the FLOPs' 4.5 us."""
        return min(self._chunk_token_s(chunk, prompt, scales) for scales in self._scale_options(SCENARIOS[scenario]))

    def _chunk_token_s(self, chunk: int, prompt: int, scales: tuple[float, float, float, float]) -> float:
        """:meth:`prefill_token_seconds` at one set of scales."""
        _, fixed_scale, compute_scale, skew = scales
        f = flops_per_token(self.arch, prompt, "prefill").by_kind
        share = 1.0 / (self.tp * self.pp)
        per_gpu = {k: v * chunk * share for k, v in f.items()}
        scan = self._split_scan(per_gpu, chunk, share)
        if "routed_experts" in per_gpu:  # the busiest EP rank sets the step, as in a standalone prefill
            per_gpu["routed_experts"] *= self.ep_imbalance(chunk, skew)
        rows = chunk / self.tp if self.d.layout.dp_attention else None  # the pass's prompts spread over the ranks
        # the stages in turn, or (engines that pipeline micro-batches) each on another micro-batch's chunk at once
        stages = 1 if self.d.engine.pipelines_stages else self.pp
        compute = self._compute_s(per_gpu, chunk, self.d.efficiency, compute_scale, skew, rank_rows=rows) * stages
        compute += scan
        # the chunk's activations ride the step's collectives: their bytes add, the latencies are the decode's
        comm = self._comm_s(chunk, fixed_scale, prefill=True) - self._comm_s(0, fixed_scale, prefill=True)
        return (compute + self.exposed_comm_s(compute, comm, chunk / self.d.layout.attention_ranks, True)) / chunk

    def loaded_prefill_s(
        self, prompt: int, pass_tokens: int, scenario: str = "expected", context: int | None = None
    ) -> float:
        """A prompt's share of a prefill instance kept busy with full passes of ``pass_tokens`` tokens (many prompts
        a pass, nothing decoding beside them): its compute and activations at that pass size, and its share of the
        pass's host floor, ``max(I x c_p(B), floor x I / B)``.  The instance's input tokens/s is ``I`` over it.
        DeepSeek-V3 in NVFP4 on 2 GB200 with data-parallel attention, 2,000-token prompts in SGLang's default
        8,192-token passes: ~27.8K tokens/s a GPU (LMSYS measures 26,156, benchmarks/prefill_load_measurements.yaml).
        ``context``: the tokens the prompt's attend to (its cached prefix included; default the prompt)."""
        pass_tokens = max(1, pass_tokens)  # a prompt longer than a pass spans several (chunked prefill)
        compute = prompt * self.prefill_token_seconds(pass_tokens, context or prompt, scenario)
        return max(compute, self.prefill_dispatch_s(scenario) * prompt / pass_tokens)

    def speed(self, context: int, batch: int, prompt: int, scenario: str = "expected") -> Speed:
        step = self.decode_step(context, batch, scenario)
        pre = self.prefill_seconds(prompt, scenario)
        return Speed(
            decode=step,
            tokens_per_s=1.0 / step.per_token_s,
            throughput_tokens_per_s=batch / step.per_token_s,
            prefill_tokens_per_s=prompt / pre,
            time_to_first_token_s=pre + step.seconds,
        )

    def band(self, context: int, batch: int, prompt: int) -> SpeedBand:
        low, expected, high = (self.speed(context, batch, prompt, s) for s in ("low", "expected", "high"))
        return SpeedBand(low, expected, high)
