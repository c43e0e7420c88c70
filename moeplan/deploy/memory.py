"""Memory per GPU: weights under a scheme, KV cache, activations and overheads, sharded over GPUs; fit answers.

Sharding rules (what vLLM and SGLang do; llama.cpp splits by layers, which is pipeline parallelism here):

* Tensor parallel (TP): attention heads split (q, o, MLA's q_b/kv_b/o, sinks); KV heads split down to one per
  rank and replicated beyond that (``max(1, n_kv/TP)`` heads per rank); MLA's q_a/kv_a projections and latent
  cache replicated; dense and shared MLPs split; router and norms replicated; embedding and output head split
  by vocabulary.  Routed experts: each expert's width split over the TP ranks.
* Expert parallel (EP, within the TP group): ``ceil(E/EP)`` whole experts per EP rank, each split over
  ``TP/EP`` ranks.
* Pipeline parallel (PP): layers in contiguous stages; the first stage holds the embedding, the last the final
  norm and output head.  The largest stage decides.
* Attention data-parallel (``Layout.dp_attention``): attention (and linear-attention) weights whole on every rank;
  each rank caches only its own ``ceil(batch / TP)`` sequences, each whole; the MLPs and experts as above.

The layout itself (defaults and checks) is :mod:`moeplan.deploy.deployment`'s.

Per GPU: ``total = weights + kv + recurrent state + activations + overhead``; it fits when
``total <= usable memory``, where the overhead holds the CUDA context, communication buffers, CUDA graphs,
allocator slack and the share the engine leaves unused (vLLM: ``1 - gpu_memory_utilization``).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from moeplan.deploy.deployment import EPLB_REDUNDANT, Deployment, Layout
from moeplan.deploy.engines import GIB, Engine
from moeplan.deploy.kv_cache import cache_bytes, layer_caches_for, sparse_layout
from moeplan.formats.kv_formats import KV_DTYPES, STATE_DTYPES
from moeplan.formats.schemes import Scheme, quantized_tensors
from moeplan.model.layers import Layer, Mixer, layers
from moeplan.model.spec import ArchSpec, ParamKind
from moeplan.model.tensors import Tensor
from moeplan.records import Value


def _stage_layers(num_layers: int, pp: int) -> list[range]:
    base, extra = divmod(num_layers, pp)
    out, start = [], 0
    for s in range(pp):
        n = base + (1 if s < extra else 0)
        out.append(range(start, start + n))
        start += n
    return out


def _share_class(t: Tensor) -> str:
    """How tensor parallelism splits ``t``: ``rep`` (every rank), ``kv`` (by KV heads), ``exp``, or ``split``."""
    role = t.role
    if t.kind in ("norm", "router") or role in ("attn_q_a", "attn_q_a.bias", "attn_kv_a_mqa", "attn_kv_a_mqa.bias"):
        return "rep"
    if role in ("attn_k", "attn_v", "attn_k.bias", "attn_v.bias"):
        return "kv"
    if t.kind == "routed_experts":
        return "exp"
    if role in ("attn_output.bias", "ffn_gate_inp_shexp") or (role.startswith("ffn_down") and role.endswith(".bias")):
        return "rep"  # added after the all-reduce, or a single row: every rank keeps it
    return "split"


def _class_share(cls: str, arch: ArchSpec, par: Layout) -> float:
    """The share of a tensor of class ``cls`` one TP rank holds."""
    tp = par.tp
    if cls == "rep":
        return 1.0
    if cls == "kv":
        n_kv = arch.attention.num_kv_heads
        return max(1, n_kv // tp) / n_kv
    if cls == "exp":
        assert arch.moe is not None
        e = arch.moe.num_experts
        redundant = 1 + EPLB_REDUNDANT if par.eplb and par.ep > 1 else 1.0
        return math.ceil(e / par.ep) * redundant / e / (tp // par.ep)
    return 1.0 / tp


@functools.lru_cache(maxsize=256)
def _groups(
    arch: ArchSpec, scheme: Scheme, scale: tuple[tuple[str, float], ...]
) -> dict[tuple[int, ParamKind, str], int]:
    """Bytes by (layer, or -1 for the embedding and -2 for the head and final norm; kind; TP class)."""
    factors = dict(scale)
    out: Counter[tuple[int, ParamKind, str]] = Counter()
    for t, _, raw in quantized_tensors(arch, scheme):
        where = t.layer if t.layer is not None else (-1 if t.role == "token_embd" else -2)
        out[(where, t.kind, _share_class(t))] += round(raw * factors.get(t.kind, 1.0))
    return dict(out)


@functools.lru_cache(maxsize=1024)
def _stage_weights(
    arch: ArchSpec,
    scheme: Scheme,
    par: Layout,
    scale: tuple[tuple[str, float], ...] = (),
    extra: int = 0,
    whole_kinds: tuple[str, ...] = ("attention",),
) -> tuple[dict[ParamKind, int], list[dict[ParamKind, int]]]:
    """Weights of the whole model by kind, and of one GPU of each pipeline stage by kind (cached).

    ``scale`` multiplies a kind's bytes: a real checkpoint's bytes over what the scheme predicts; ``extra``
    bytes (a checkpoint's vision tower) sit on the first stage as ``other``, split over its TP ranks.
    ``whole_kinds``: under data-parallel attention, the kinds every rank holds whole (:func:`dp_whole_kinds`).
    """
    stages = _stage_layers(arch.num_layers, par.pp)
    stage_of = [i for i, r in enumerate(stages) for _ in r]
    whole: Counter[ParamKind] = Counter()
    per_stage: list[Counter[ParamKind]] = [Counter() for _ in stages]
    groups = _groups(arch, scheme, scale)
    shares = {cls: _class_share(cls, arch, par) for cls in {c for _, _, c in groups}}
    for (where, kind, cls), nbytes in groups.items():
        whole[kind] += nbytes
        stage = 0 if where == -1 else len(stages) - 1 if where == -2 else stage_of[where]  # embedding first, head last
        share = 1.0 if par.dp_attention and kind in whole_kinds else shares[cls]  # DP attention: whole on each rank
        per_stage[stage][kind] += round(nbytes * share)
    if extra:
        whole["other"] += extra
        per_stage[0]["other"] += round(extra / par.tp)
    return dict(whole), [dict(c) for c in per_stage]


def dp_whole_kinds(engine: Engine) -> tuple[str, ...]:
    """Weights every rank holds whole under data-parallel attention: the attention, the shared experts (SGLang's
    DeepEP path and TensorRT-LLM run them on each rank's own tokens) and the embedding (SGLang builds it without TP
    under DP attention); the dense layers' MLP where the engine runs it data-parallel; and vLLM's data-parallel
    ranks, engines of their own, the output head too.  DeepSeek-V3 fp8 at DP 32: ~5 GiB more a GPU than 1/32 of
    them."""
    kinds: tuple[str, ...] = ("attention", "shared_experts", "embedding")
    if engine.dense_dp is not None:
        kinds += ("dense_mlp",)
    if engine.dense_dp == "":  # an engine per rank (vLLM): nothing is sliced but the experts
        kinds += ("lm_head",)
    return kinds


def model_weight_bytes(arch: ArchSpec, scheme: Scheme) -> int:
    """Bytes of the whole model's weights in ``scheme`` (one GPU, no checkpoint scaling)."""
    whole, _ = _stage_weights(arch, scheme, Layout(1, 1, 1))
    return sum(whole.values())


@dataclass(frozen=True, repr=False, eq=False)
class GpuMemory(Value):
    """One GPU's share (the largest pipeline stage)."""

    weights_by_kind: dict[ParamKind, int]
    kv_bytes: float
    activation_bytes: float
    overhead_bytes: float
    state_bytes: float = 0.0
    """Recurrent state of the batch's sequences (linear-attention and SSM layers), constant in the context."""

    @property
    def weights_bytes(self) -> int:
        return sum(self.weights_by_kind.values())

    @property
    def total_bytes(self) -> float:
        return self.weights_bytes + self.kv_bytes + self.state_bytes + self.activation_bytes + self.overhead_bytes


@dataclass(frozen=True, repr=False, eq=False)
class StagePlan(Value):
    """What each pipeline stage holds of the layer list, summed once per model, engine and layout."""

    layers: tuple[tuple[Layer, ...], ...]
    """The decoder layers of each stage (MTP layers aside)."""
    growing: tuple[float, ...]
    """Cache elements per token (x this GPU's share) that grow with the context."""
    rings: tuple[tuple[tuple[int, float], ...], ...]
    """(window, cache elements x share) of the layers kept in rings."""
    read: tuple[tuple[tuple[Mixer, float], ...], ...]
    """Each distinct mixer with its layers on the stage x this GPU's share, for the cache a decode step reads."""
    conv_state: tuple[float, ...]
    """Convolution-state elements per sequence (x this GPU's share), whatever the context."""
    state: tuple[float, ...]
    """Recurrent-state elements per sequence (x this GPU's share), whatever the context."""
    kernels: tuple[int, ...]
    prefill_kernels: tuple[int, ...]
    moe_layers: tuple[int, ...]


@functools.lru_cache(maxsize=1024)
def stage_plan(arch: ArchSpec, window_cache: str, mtp_layers: int, tp: int, pp: int, sparse: float = 0.0) -> StagePlan:
    """Each stage's share of the layer list: its cache (MTP layers sit on the last stage), kernels, MoE layers."""
    stages = _stage_layers(arch.num_layers, pp)
    stage_of = [i for i, r in enumerate(stages) for _ in r]
    growing = [0.0] * pp
    rings: list[dict[int, float]] = [{} for _ in stages]
    read: list[dict[Mixer, float]] = [{} for _ in stages]
    state, conv_state = [0.0] * pp, [0.0] * pp
    for layer, cache in layer_caches_for(arch, window_cache, mtp_layers, sparse):
        s = stage_of[min(layer.index, arch.num_layers - 1)]
        e = cache.elements * layer.mixer.kv_share(tp)
        state[s] += layer.mixer.recurrent_state_elements * layer.mixer.kv_share(tp)
        conv_state[s] += layer.mixer.conv_state_elements * layer.mixer.kv_share(tp)
        if cache.ring is None:
            growing[s] += e
        else:
            rings[s][cache.ring] = rings[s].get(cache.ring, 0.0) + e
        if layer.index < arch.num_layers:
            read[s][layer.mixer] = read[s].get(layer.mixer, 0.0) + layer.mixer.kv_share(tp)
    by_stage = tuple(tuple(layers(arch)[i] for i in r) for r in stages)
    return StagePlan(
        layers=by_stage,
        growing=tuple(growing),
        rings=tuple(tuple(r.items()) for r in rings),
        read=tuple(tuple(r.items()) for r in read),
        conv_state=tuple(conv_state),
        state=tuple(state),
        kernels=tuple(sum(layer.kernels for layer in ls) for ls in by_stage),
        prefill_kernels=tuple(sum(layer.prefill_kernels for layer in ls) for ls in by_stage),
        moe_layers=tuple(sum(1 for layer in ls if layer.is_moe) for ls in by_stage),
    )


class MemoryModel:
    """The static part of one deployment (weights and cache per token of each stage), evaluated for any context
    and batch."""

    def __init__(self, d: Deployment) -> None:
        self.d = d
        arch, par = d.spec.arch, d.layout
        self.arch = arch
        stages = _stage_layers(arch.num_layers, par.pp)
        self.weights_by_kind, self.stage_weights = _stage_weights(
            arch, d.scheme, par, d.weights_scale, d.extra_weight_bytes, dp_whole_kinds(d.engine)
        )
        self.stage_layers = stages
        sparse = sparse_layout(d.engine, d.kv_dtype)
        self.ranks = par.attention_ranks
        """Ranks the sequences are spread over: each holds ``ceil(batch / ranks)`` sequences' whole cache."""
        cache_tp = 1 if par.dp_attention else par.tp
        self.stages = stage_plan(arch, d.engine.window_cache, d.mtp_layers, cache_tp, par.pp, sparse)
        self.kv_element_bytes = KV_DTYPES[d.kv_dtype]
        self.state_element_bytes = STATE_DTYPES[d.state_dtype]
        self.conv_state_element_bytes = STATE_DTYPES[d.conv_state_dtype]

    # -- per token and per GPU ----------------------------------------------------------------------

    def local(self, batch: int) -> int:
        """Sequences of a ``batch`` one GPU holds and attends to: all of them under TP, its own share under DP
        attention (``ceil(batch / ranks)``: 64 sequences over 8 ranks, 8 each)."""
        return -(-batch // self.ranks)

    def state_gpu_bytes(self, stage: int, batch: int) -> float:
        """Recurrent state one GPU of ``stage`` holds: ``batch`` x its layers' state elements x share x dtype
        bytes, the convolution state in its own dtype (Qwen3-Next-80B-A3B, 36 Gated DeltaNet layers, fp32, one GPU:
        36 x 548,864 x 4 B = 75.4 MiB per sequence)."""
        plan = self.stages
        per_sequence = plan.state[stage] * self.state_element_bytes
        per_sequence += plan.conv_state[stage] * self.conv_state_element_bytes
        return per_sequence * self.local(batch)

    @property
    def state_pool(self) -> tuple[float, int, int] | None:
        """The engine's split of cache memory into a state pool and a KV cache
        (:attr:`~moeplan.deploy.engines.Engine.state_pool`), where the model has recurrent states; else None."""
        return self.d.engine.state_pool if any(self.stages.state) else None

    @property
    def state_slots(self) -> int:
        """Recurrent states a running request holds (:meth:`~moeplan.deploy.engines.Engine.states_held`): 1
        without a state pool."""
        return self.d.engine.states_held(self.d.draft_tokens) if self.state_pool else 1

    def kv_gpu_bytes(self, stage: int, context: int, batch: int) -> float:
        """KV cache one GPU of ``stage`` holds: its layers' cached tokens x elements x its share x dtype bytes,
        for the sequences it holds (:meth:`local`)."""
        return self._kv_bytes(stage, context, self.local(batch))

    def _kv_bytes(self, stage: int, context: int, sequences: int) -> float:
        plan, mode = self.stages, self.d.engine.window_cache
        ub = self.d.batched_tokens
        return cache_bytes(plan.growing[stage], plan.rings[stage], self.kv_element_bytes, context, sequences, ub, mode)

    def activation_bytes(self, context: int, batch: int) -> float:
        """Peak working buffers of one forward pass on one GPU (bytes); see the formula per engine below.

        Planned (vLLM/SGLang): ``T * 2 B * (4h + qkv/TP + ffn/TP) + min(batch, 256) * V * 4 B`` for the planned
        ``T = max_num_batched_tokens`` (Llama-3-8B: 0.9 GiB; logs show 1.26 GiB).  One ubatch (llama.cpp): the
        compute buffer ``max(0.25 GiB, n_ubatch * (V + 4h) * 4 B)`` plus ``n_ctx * n_ubatch * n_head * 4 B``
        without flash attention.  Eager (transformers): the same per-token buffers for the whole prompt of every
        sequence.
        """
        d = self.d
        arch, eng, tp = self.arch, d.engine, d.layout.tp
        h, v, att = arch.hidden_size, arch.vocab_size, arch.attention
        qkv = att.num_heads * att.head_dim + 2 * att.num_kv_heads * att.value_dim
        ffn = 2 * arch.mlp.intermediate_size if arch.mlp else 0
        if arch.moe is not None:
            ffn = max(ffn, arch.moe.pick_range[1] * (2 * arch.moe.expert_intermediate_size + h))
        per_token = 2 * (4 * h + (qkv + ffn) / tp)
        if eng.activations == "ubatch":
            ub = d.batched_tokens
            buf = max(0.25 * GIB, ub * (v + 4 * h) * 4.0)
            if not d.flash_attention:
                buf += context * batch * min(ub, context) * att.num_heads * 4.0
            return buf
        if eng.activations == "eager":
            return batch * context * per_token + batch * v * 4.0
        tokens = min(d.rank_tokens, max(context * batch, 1))  # each rank plans for its own pass
        return tokens * per_token + min(batch, 256) * v * 4.0

    def overhead_bytes(self, live: float) -> float:
        d, eng = self.d, self.d.engine
        graphs = eng.graph_bytes_moe if self.arch.moe is not None else eng.graph_bytes_dense
        comm = eng.sharded_extra_bytes if d.layout.num_gpus > 1 else 0.0
        return eng.context_bytes + comm + graphs + eng.reserve_fraction * d.usable_bytes + eng.slack_fraction * live

    def stage_gpus(self, context: int, batch: int) -> list[GpuMemory]:
        """One GPU of each pipeline stage at ``context`` and ``batch``."""
        act = self.activation_bytes(context, batch)
        out = []
        for s in range(len(self.stage_layers)):
            weights = self.stage_weights[s]
            kv = self.kv_gpu_bytes(s, context, batch)
            state = self.state_gpu_bytes(s, batch) * self.state_slots
            live = sum(weights.values()) + kv + state + act
            out.append(GpuMemory(weights, kv, act, self.overhead_bytes(live), state))
        return out

    def gpu(self, context: int, batch: int) -> GpuMemory:
        """The largest GPU (pipeline stage) at ``context`` and ``batch``."""
        return max(self.stage_gpus(context, batch), key=lambda g: g.total_bytes)

    def deployment_state_bytes(self, batch: int) -> float:
        """Recurrent state of the whole deployment: every TP rank's share; under DP attention each of the
        ``batch`` sequences once, on the rank that holds it."""
        stages = range(len(self.stage_layers))
        if self.d.layout.dp_attention:
            return sum(self.state_gpu_bytes(s, 1) * batch for s in stages) * self.state_slots
        return sum(self.state_gpu_bytes(s, batch) * self.d.layout.tp for s in stages) * self.state_slots

    def deployment_kv_bytes(self, context: int, batch: int) -> float:
        """KV cache of the whole deployment: every TP rank's share (replicas included); under DP attention each of
        the ``batch`` sequences' cache once, on the rank that holds it."""
        stages = range(len(self.stage_layers))
        if self.d.layout.dp_attention:
            return sum(self._kv_bytes(s, context, batch) for s in stages)
        return sum(self.kv_gpu_bytes(s, context, batch) * self.d.layout.tp for s in stages)

    def headroom(self, context: int, batch: int) -> float:
        """Bytes to spare on the tightest GPU at ``context`` and ``batch`` (negative: short by that much).  Where the
        engine splits the memory left after weights, buffers and overhead into a recurrent-state pool and a KV
        cache (:attr:`~moeplan.deploy.engines.Engine.state_pool`, SGLang's hybrid models), the room left in the
        tighter of the two: the KV cache gets ``rest / (1 + r)``, the states ``rest x r / (1 + r)`` for
        :attr:`state_slots` states a running request.  SGLang's Qwen3.5-122B-A10B fp8 on one B200 with 3 MTP
        drafts at 9,216 tokens: 36.8 GiB left, 17.4 GiB for states at 147 MiB a request x (5 + 4): 13 running
        (vLLM, whose states take what the batch needs, fits 116)."""
        pool = self.state_pool
        if pool is None:
            return self.d.usable_bytes - self.gpu(context, batch).total_bytes
        r = pool[0]
        room = math.inf
        for g in self.stage_gpus(context, batch):
            rest = self.d.usable_bytes - (g.total_bytes - g.kv_bytes - g.state_bytes)
            room = min(room, rest / (1 + r) - g.kv_bytes, rest * r / (1 + r) - g.state_bytes)
        return room

    def fits(self, context: int, batch: int) -> bool:
        """Whether ``batch`` sequences of ``context`` tokens fit on every GPU (:meth:`headroom` not negative)."""
        return self.headroom(context, batch) >= 0

    def max_context(self, batch: int, limit: int) -> int:
        """The longest context (tokens, up to ``limit``) that fits at ``batch``; 0 if none does."""
        return largest(lambda c: self.fits(c, batch), limit)

    def max_batch(self, context: int, limit: int = 1 << 20) -> int:
        """The largest batch that fits at ``context``; 0 if none does.  The search starts where the headroom's
        slope over the first two sequences runs out, refined by one secant step (memory is close to affine in the
        batch: the KV cache and the slack grow with it, the buffers stop at the planned tokens), which takes ~9
        memory evaluations where a plain bisection of ``[1, 2^20]`` takes 21; the answer is the same (the
        predicate is monotone)."""
        first = self.headroom(context, 1)
        if first < 0:
            return 0
        slope = first - self.headroom(context, 2)
        guess = limit if slope <= 0 else min(limit, max(2, int(1 + first / slope)))
        if 2 < guess < limit:  # one secant step over [1, guess]: the buffers' growth stops below the guess
            slope = (first - self.headroom(context, guess)) / (guess - 1)
            guess = min(limit, max(2, int(1 + first / slope))) if slope > 0 else limit
        return largest(lambda b: self.fits(context, b), limit, guess)


def largest(ok: Callable[[int], bool], limit: int, guess: int | None = None) -> int:
    """Largest n in [1, limit] with ok(n), for a monotone predicate; 0 if ok(1) fails.  With a ``guess``, the
    bracket is found by steps doubling away from it (1 first), then bisected: an exact guess costs three calls,
    one off by ``e`` about ``2 log2(e)``."""
    if not ok(1):
        return 0
    if guess is not None and 1 < guess < limit:
        step = 1
        if ok(guess):
            lo, hi = guess, min(limit, guess + step)
            while hi < limit and ok(hi):
                lo, step = hi, step * 2
                hi = min(limit, hi + step)
            if hi == limit and ok(limit):
                return limit
        else:
            lo, hi = max(1, guess - step), guess
            while lo > 1 and not ok(lo):
                hi, step = lo, step * 2
                lo = max(1, lo - step)
    else:
        if ok(limit):
            return limit
        lo, hi = 1, limit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo
