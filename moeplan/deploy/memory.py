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

Per GPU: ``total = weights + kv + activations + overhead``; it fits when ``total <= usable memory``, where the
overhead holds the CUDA context, communication buffers, CUDA graphs, allocator slack and the share the engine
leaves unused (vLLM: ``1 - gpu_memory_utilization``).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from moeplan.deploy.engines import GIB, EngineProfile
from moeplan.errors import InputError
from moeplan.formats.schemes import Scheme, quantized_tensors
from moeplan.model.kv import KV_DTYPES, LLAMA_CPP_UBATCH, layer_kv_elements, swa_ring_cells
from moeplan.model.spec import ArchSpec, ParamKind
from moeplan.model.tensors import Tensor
from moeplan.records import Value


@dataclass(frozen=True, repr=False, eq=False)
class Parallel(Value):
    """Tensor, expert and pipeline parallel sizes; GPUs = tp x pp."""

    tp: int = 1
    ep: int = 1
    pp: int = 1

    @property
    def num_gpus(self) -> int:
        return self.tp * self.pp


def check_parallel(arch: ArchSpec, par: Parallel) -> None:
    """Reject layouts no engine can run, with the reason."""
    att = arch.attention
    if min(par.tp, par.ep, par.pp) < 1:
        raise InputError("--tp, --ep and --pp must be at least 1")
    if att.num_heads % par.tp:
        raise InputError(f"--tp {par.tp} does not divide the {att.num_heads} attention heads")
    n_kv = att.num_kv_heads
    if att.mla is None and n_kv % par.tp and par.tp % n_kv:
        raise InputError(f"--tp {par.tp} and the {n_kv} KV heads must divide one another")
    if par.pp > arch.num_layers:
        raise InputError(f"--pp {par.pp} exceeds the {arch.num_layers} layers")
    if par.ep > 1:
        if arch.moe is None:
            raise InputError("--ep needs an MoE model")
        if par.tp % par.ep:
            raise InputError(f"--ep {par.ep} must divide --tp {par.tp} (experts are spread over the TP ranks)")
        if par.ep > arch.moe.num_experts:
            raise InputError(f"--ep {par.ep} exceeds the {arch.moe.num_experts} experts")


def default_parallel(arch: ArchSpec, num_gpus: int, engine: EngineProfile, max_tp: int = 8) -> Parallel:
    """The layout an engine uses for ``num_gpus``: llama.cpp splits layers; the others TP up to a node."""
    if num_gpus < 1:
        raise InputError("the number of GPUs must be at least 1")
    if engine.name == "llama.cpp":
        return Parallel(1, 1, num_gpus)
    tp = 1
    for cand in range(min(num_gpus, max_tp), 0, -1):
        if num_gpus % cand == 0:
            try:
                check_parallel(arch, Parallel(cand, 1, num_gpus // cand))
            except InputError:
                continue
            tp = cand
            break
    return Parallel(tp, 1, num_gpus // tp)


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


def _class_share(cls: str, arch: ArchSpec, par: Parallel) -> float:
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
        return math.ceil(e / par.ep) / e / (tp // par.ep)
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
    arch: ArchSpec, scheme: Scheme, par: Parallel, scale: tuple[tuple[str, float], ...] = (), extra: int = 0
) -> tuple[dict[ParamKind, int], list[dict[ParamKind, int]]]:
    """Weights of the whole model by kind, and of one GPU of each pipeline stage by kind (cached).

    ``scale`` multiplies a kind's bytes: a real checkpoint's bytes over what the scheme predicts; ``extra``
    bytes (a checkpoint's vision tower) sit on the first stage as ``other``, split over its TP ranks.
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
        per_stage[stage][kind] += round(nbytes * shares[cls])
    if extra:
        whole["other"] += extra
        per_stage[0]["other"] += round(extra / par.tp)
    return dict(whole), [dict(c) for c in per_stage]


@dataclass(frozen=True, repr=False, eq=False)
class MemoryRequest(Value):
    """Everything the memory model needs besides the model."""

    scheme: Scheme
    engine: EngineProfile
    usable_bytes: float
    parallel: Parallel
    context: int
    batch: int
    kv_dtype: str = "bf16"
    flash_attention: bool = True
    mtp_layers: int = 0
    weights_scale: tuple[tuple[str, float], ...] = ()
    """Per kind, a checkpoint's real bytes over the scheme's prediction (empty: the prediction)."""
    extra_weight_bytes: int = 0
    """Checkpoint tensors outside the language model that engines load (a vision tower)."""


@dataclass(frozen=True, repr=False, eq=False)
class GpuMemory(Value):
    """One GPU's share (the largest pipeline stage)."""

    weights_by_kind: dict[ParamKind, int]
    kv_bytes: float
    activation_bytes: float
    overhead_bytes: float

    @property
    def weights_bytes(self) -> int:
        return sum(self.weights_by_kind.values())

    @property
    def total_bytes(self) -> float:
        return self.weights_bytes + self.kv_bytes + self.activation_bytes + self.overhead_bytes


class MemoryModel:
    """The static part (weights per stage, KV bytes per token per stage), evaluated for any context and batch."""

    def __init__(self, arch: ArchSpec, req: MemoryRequest) -> None:
        check_parallel(arch, req.parallel)
        self.arch, self.req = arch, req
        par = req.parallel
        stages = _stage_layers(arch.num_layers, par.pp)
        self.weights_by_kind, self.stage_weights = _stage_weights(
            arch, req.scheme, par, req.weights_scale, req.extra_weight_bytes
        )
        self.stage_layers = stages
        # KV per token per GPU in each stage.
        att = arch.attention
        share = 1.0 if att.mla is not None else max(1, att.num_kv_heads // par.tp) / att.num_kv_heads
        per_layer = layer_kv_elements(arch) * KV_DTYPES[req.kv_dtype] * share
        self.kv_layer_bytes = per_layer
        ring = req.engine.swa_ring and att.window_tokens is not None
        self.stage_growing: list[int] = []
        self.stage_ring: list[int] = []
        for i, r in enumerate(stages):
            windowed = sum(1 for layer in r if att.layer_kind(layer) != "F") if ring else 0
            extra = req.mtp_layers if i == len(stages) - 1 else 0
            self.stage_growing.append(len(r) - windowed + extra)
            self.stage_ring.append(windowed)

    # -- per token and per GPU ----------------------------------------------------------------------

    def kv_gpu_bytes(self, stage: int, context: int, batch: int) -> float:
        att = self.arch.attention
        ring_cells = swa_ring_cells(att.window_tokens or 0, context)
        cells = self.stage_growing[stage] * context + self.stage_ring[stage] * ring_cells
        return cells * self.kv_layer_bytes * batch

    def activation_bytes(self, context: int, batch: int) -> float:
        """Peak working buffers of one forward pass on one GPU (bytes); see the formula per engine below.

        vLLM/SGLang: ``T * 2 B * (4h + qkv/TP + ffn/TP) + min(batch, 256) * V * 4 B`` for the planned
        ``T = max_num_batched_tokens`` (Llama-3-8B: 0.9 GiB; logs show 1.26 GiB).  llama.cpp: the compute
        buffer ``max(0.25 GiB, n_ubatch * (V + 4h) * 4 B)`` plus ``n_ctx * n_ubatch * n_head * 4 B`` without
        flash attention.  transformers: the same per-token buffers for the whole prompt of every sequence.
        """
        arch, eng, tp = self.arch, self.req.engine, self.req.parallel.tp
        h, v, att = arch.hidden_size, arch.vocab_size, arch.attention
        qkv = att.num_heads * att.head_dim + 2 * att.num_kv_heads * att.value_dim
        ffn = 2 * arch.mlp.intermediate_size if arch.mlp else 0
        if arch.moe is not None:
            ffn = max(ffn, arch.moe.top_k * (2 * arch.moe.expert_intermediate_size + h))
        per_token = 2 * (4 * h + (qkv + ffn) / tp)
        if eng.name == "llama.cpp":
            buf = max(0.25 * GIB, LLAMA_CPP_UBATCH * (v + 4 * h) * 4.0)
            if not self.req.flash_attention:
                buf += context * batch * min(LLAMA_CPP_UBATCH, context) * att.num_heads * 4.0
            return buf
        if eng.name == "transformers":
            return batch * context * per_token + batch * v * 4.0
        tokens = min(eng.batched_tokens, max(context * batch, 1))
        return tokens * per_token + min(batch, 256) * v * 4.0

    def overhead_bytes(self, live: float) -> float:
        eng, req = self.req.engine, self.req
        graphs = eng.graph_bytes_moe if self.arch.moe is not None else eng.graph_bytes_dense
        comm = eng.sharded_extra_bytes if req.parallel.num_gpus > 1 else 0.0
        return eng.context_bytes + comm + graphs + eng.reserve_fraction * req.usable_bytes + eng.slack_fraction * live

    def gpu(self, context: int, batch: int) -> GpuMemory:
        """The largest GPU (pipeline stage) at ``context`` and ``batch``."""
        act = self.activation_bytes(context, batch)
        best: GpuMemory | None = None
        for s in range(len(self.stage_layers)):
            weights = self.stage_weights[s]
            kv = self.kv_gpu_bytes(s, context, batch)
            live = sum(weights.values()) + kv + act
            g = GpuMemory(weights, kv, act, self.overhead_bytes(live))
            if best is None or g.total_bytes > best.total_bytes:
                best = g
        assert best is not None
        return best

    def deployment_kv_bytes(self, context: int, batch: int) -> float:
        tp = self.req.parallel.tp
        return sum(self.kv_gpu_bytes(s, context, batch) * tp for s in range(len(self.stage_layers)))

    def fits(self, context: int, batch: int) -> bool:
        return self.gpu(context, batch).total_bytes <= self.req.usable_bytes

    def max_context(self, batch: int, limit: int) -> int:
        """The longest context (tokens, up to ``limit``) that fits at ``batch``; 0 if none does."""
        return _largest(lambda c: self.fits(c, batch), limit)

    def max_batch(self, context: int, limit: int = 1 << 20) -> int:
        """The largest batch that fits at ``context``; 0 if none does."""
        return _largest(lambda b: self.fits(context, b), limit)


def _largest(ok: Callable[[int], bool], limit: int) -> int:
    """Largest n in [1, limit] with ok(n), for a monotone predicate (binary search); 0 if ok(1) fails."""
    if not ok(1):
        return 0
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
