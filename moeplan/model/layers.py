"""The layer list: one entry per decoder layer, with its token mixer and its feed-forward block.

Everything moeplan counts per layer is a method of these entries, and every model-wide figure is a sum over
:func:`layers`: the tensors (hence parameters and weight bytes), the cache one token keeps (KV), the state one
sequence keeps whatever its length (recurrent mixers; none of today's kinds has one), the tokens attention
reads and the FLOPs it spends on them, and the kernels one step runs.

Mixers (``h`` hidden size, ``n_h``/``n_kv`` query/KV heads of width ``d``, values ``d_v``):

* :class:`Attention` (MHA, GQA, MQA) over the full context (``F``), a sliding window (``S``) or chunks
  (``C``).  Cache per token: ``n_kv x (d + d_v)`` elements; Mixtral 8x7B: 8 x (128 + 128) = 2,048 per layer.
* :class:`LatentAttention` (MLA, DeepSeek-V2/V3, Kimi K2): the cache keeps the compressed latent and the
  shared rotary key, ``kv_lora_rank + qk_rope_head_dim`` elements; DeepSeek-V3: 512 + 64 = 576 per layer.
* :class:`SparseLatentAttention` (MLA with DeepSeek Sparse Attention, DeepSeek-V3.2, GLM-5): the indexer keeps
  one more key per token (128 elements) and decode attention reads its top 2,048 tokens, not the context.
* :class:`LinearAttention` (Gated DeltaNet, Qwen3-Next): no cache per token; a state per sequence of
  ``(K - 1) x conv channels + n_v x d_k x d_v`` elements whatever the context; Qwen3-Next: 548,864 per layer.
* :class:`StateSpace` (Mamba2: Nemotron-H, Granite 4.0-H; Mamba1: Jamba): no cache per token; a state per
  sequence of ``(d_conv - 1) x channels + d_inner x d_state``; Nemotron 3 Nano: 542,720 elements per layer.
* :class:`NoMixer`: a block with only a feed-forward part.

Feed-forward blocks: :class:`DenseMlp` (gated ``3hI`` or plain ``2hI``), :class:`MoeBlock` (router ``E x h``,
``E`` routed experts, shared experts, a residual dense MLP beside them for Arctic) and :class:`NoFeedForward`.

A new kind of layer is a new subclass here with its tensors, cache, FLOPs and kernels; the sums pick it up.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from moeplan.model.spec import ArchSpec, AttentionSpec, IndexerSpec, LinearAttentionSpec, MlpSpec, MoeSpec, SsmSpec
from moeplan.model.tensors import (
    Tensor,
    attention_tensors,
    gqa_tensors,
    linear_attention_tensors,
    mla_tensors,
    mlp_tensors,
    ssm_tensors,
)
from moeplan.records import Value

Mode = Literal["decode", "prefill"]
Span = Literal["F", "S", "C"]
LINEAR_CHUNK = 64
"""Tokens per chunk of linear attention's chunked-scan prefill (flash-linear-attention ``chunk_gated_delta_rule``)."""


@dataclass(frozen=True, repr=False, eq=False)
class Mixer(Value):
    """The token mixer of one layer.  The defaults describe a mixer with no cache, no state and no work."""

    def tensors(self, h: int, layer: int) -> list[Tensor]:
        return []

    @property
    def kv_elements_per_token(self) -> int:
        """Cache elements one token keeps in this layer (the whole width, before any sharding)."""
        return 0

    @property
    def conv_state_elements(self) -> int:
        """Elements of the convolution state one sequence keeps (the last ``K - 1`` inputs); none for attention."""
        return 0

    @property
    def recurrent_state_elements(self) -> int:
        """Elements of the recurrent state one sequence keeps whatever its length; none for attention."""
        return 0

    @property
    def state_elements_per_sequence(self) -> int:
        """Convolution and recurrent state of one sequence."""
        return self.conv_state_elements + self.recurrent_state_elements

    @property
    def kernels(self) -> int:
        return 0

    @property
    def prefill_kernels(self) -> int:
        """Kernels a prefill pass runs in this mixer: a decode step's, unless its prefill algorithm differs."""
        return self.kernels

    def cache_elements(self, sparse_element_bytes: float) -> float:
        """Cache elements per token in an engine's layout: the plain elements, unless the engine keeps sparse
        attention its own way (``sparse_element_bytes`` > 0, see :class:`SparseLatentAttention`)."""
        return self.kv_elements_per_token

    def kv_share(self, tp: int) -> float:
        """The share of this layer's cache (and state) one tensor-parallel rank keeps."""
        return 1.0 / tp

    def score_flops_per_attended(self, mode: Mode) -> int:
        """FLOPs of QK^T and AV (or a state update) for one query against one attended token."""
        return 0

    @property
    def window(self) -> int | None:
        """Tokens a sliding or chunked layer attends to at most; None for full attention (or no attention)."""
        return None

    def attended(self, context: int, mode: Mode) -> float:
        """Tokens one query attends to (see :class:`AttentionMixer`)."""
        return 0.0

    def score_flops(self, context: int, mode: Mode) -> float:
        """FLOPs per token beyond the weights: attention scores (or a state update) at ``context``."""
        return self.score_flops_per_attended(mode) * self.attended(context, mode)

    def kv_read_elements(self, context: int) -> float:
        """Cache elements one decode step reads per sequence at ``context`` (the whole width)."""
        return self.attended(context, "decode") * self.kv_elements_per_token


@dataclass(frozen=True, repr=False, eq=False)
class NoMixer(Mixer):
    """A block without a token mixer (a feed-forward-only block of Nemotron-H-style patterns)."""


@dataclass(frozen=True, repr=False, eq=False)
class AttentionMixer(Mixer):
    """Softmax attention over the full context, a sliding window or chunks."""

    spec: AttentionSpec
    span: Span
    """``F`` full context, ``S`` sliding window, ``C`` chunks of ``spec.window_tokens``."""

    @property
    def window(self) -> int | None:
        return None if self.span == "F" else self.spec.window_tokens

    def attended(self, context: int, mode: Mode) -> float:
        """Tokens one query attends to: decode at ``context`` cached tokens, or the mean over a ``context``-token
        prompt.  Full layers: ``c`` (decode), ``(P + 1) / 2`` (prefill); sliding layers cap each position at the
        window ``w``; chunked layers attend within their chunk.  Llama 4 Scout, chunk 8,192, prefill of 16,384
        tokens: 4,096.5 per query."""
        w = self.window
        if mode == "decode":
            return float(context if w is None else min(context, w))
        p = context
        if w is None:
            return (p + 1) / 2
        if self.span == "S":  # mean over positions i of min(i, w)
            if p <= w:
                return (p + 1) / 2
            return (w * (w + 1) / 2 + (p - w) * w) / p
        full, rest = divmod(p, w)  # chunked: position inside the chunk
        return (full * w * (w + 1) / 2 + rest * (rest + 1) / 2) / p


@dataclass(frozen=True, repr=False, eq=False)
class Attention(AttentionMixer):
    """MHA, GQA or MQA: ``n_kv x (d + d_v)`` cache elements per token, split over TP ranks down to one head."""

    def tensors(self, h: int, layer: int) -> list[Tensor]:
        return gqa_tensors(self.spec, h, layer) + attention_tensors(self.spec, h, layer)

    @property
    def kv_elements_per_token(self) -> int:
        att = self.spec
        return att.num_kv_heads * (att.head_dim + att.value_dim)

    @property
    def kernels(self) -> int:
        """norm, q/k/v, rope, attention, output, residual = 8 (+2 with q/k norms, +2 with a gated output, +2 with a
        low-rank query)."""
        att = self.spec
        return 8 + 2 * ((att.qk_norm != "none") + att.gated_output + (att.q_lora_rank is not None))

    def kv_share(self, tp: int) -> float:
        n_kv = self.spec.num_kv_heads
        return max(1, n_kv // tp) / n_kv

    def score_flops_per_attended(self, mode: Mode) -> int:
        """``2 x n_h x (d + d_v)``; Llama-3.1-8B: 2 x 32 x 256 = 16,384."""
        att = self.spec
        return 2 * att.num_heads * (att.head_dim + att.value_dim)


@dataclass(frozen=True, repr=False, eq=False)
class LatentAttention(AttentionMixer):
    """Multi-head latent attention: the latent and rotary key are cached whole on every TP rank."""

    def tensors(self, h: int, layer: int) -> list[Tensor]:
        return mla_tensors(self.spec, h, layer) + attention_tensors(self.spec, h, layer)

    @property
    def kv_elements_per_token(self) -> int:
        m = self.spec.mla
        assert m is not None
        return m.kv_lora_rank + m.qk_rope_head_dim

    @property
    def kernels(self) -> int:
        """norm, q_a, q_norm, q_b, kv_a, kv_norm, rope, the absorbed k_b and v_b with their copies, attention,
        output, residual = 20."""
        return 20

    def kv_share(self, tp: int) -> float:
        return 1.0

    def score_flops_per_attended(self, mode: Mode) -> int:
        """Decode runs the absorbed form against the latent, ``2 x n_h x (2 r_kv + d_rope)``; prefill the
        expanded form, ``2 x n_h x (d_nope + d_rope + d_v)``.  DeepSeek-V3 decode: 2 x 128 x 1,088 = 278,528."""
        m, n_h = self.spec.mla, self.spec.num_heads
        assert m is not None
        if mode == "decode":
            return 2 * n_h * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
        return 2 * n_h * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim)


@dataclass(frozen=True, repr=False, eq=False)
class SparseLatentAttention(LatentAttention):
    """MLA with DeepSeek Sparse Attention: the indexer scores every cached token against its own key cache,
    and the attention reads only the ``topk`` tokens it picks (see :class:`IndexerSpec`)."""

    @property
    def indexer(self) -> IndexerSpec:
        assert self.spec.indexer is not None
        return self.spec.indexer

    @property
    def kv_elements_per_token(self) -> int:
        """The latent and rotary key, and the indexer's key: DeepSeek-V3.2: 512 + 64 + 128 = 704."""
        return super().kv_elements_per_token + self.indexer.head_dim

    @property
    def kernels(self) -> int:
        """MLA's 20, and the indexer's projections, norm, rope, scores, weighting and top-k: 8."""
        return 28

    def attended(self, context: int, mode: Mode) -> float:
        """The ``topk`` tokens the indexer picks (all of them while the context is shorter)."""
        k = self.indexer.topk
        if mode == "decode":
            return float(min(context, k))
        full = (context + 1) / 2
        if context <= k:
            return full
        return (k * (k + 1) / 2 + (context - k) * k) / context

    def indexer_flops_per_token(self, context: int, mode: Mode) -> float:
        """``2 x H_I x (D_I + 1)`` per scored token (q.k, ReLU-weighted sum); the indexer scores them all.
        DeepSeek-V3.2 (64 heads of 128): 16,512 x T; at 128k tokens 2.2 GFLOP per layer per token."""
        ix = self.indexer
        scored = float(context) if mode == "decode" else (context + 1) / 2
        return 2 * ix.num_heads * (ix.head_dim + 1) * scored

    def score_flops(self, context: int, mode: Mode) -> float:
        return super().score_flops(context, mode) + self.indexer_flops_per_token(context, mode)

    def cache_bytes_per_token(self, element_bytes: float) -> float:
        """vLLM's and SGLang's sparse-attention caches per token: the indexer key in fp8 with one fp32 scale per
        128 (``D_I + D_I/128 x 4``), and the latent in the KV format, as ``fp8_ds_mla`` when that is fp8 (the
        ``r_kv`` latent in fp8 with an fp32 scale per 128, the rotary key in bf16).  DeepSeek-V3.2: bf16
        1,152 + 132 = 1,284 B; fp8 512 + 16 + 128 + 132 = 788 B (vLLM ``FlashMLASparseBackend``,
        ``cp_gather_indexer_k_quant_cache``; SGLang ``NSATokenToKVPool``)."""
        mla = self.spec.mla
        assert mla is not None
        d_i = self.indexer.head_dim
        indexer = d_i + -(-d_i // 128) * 4
        if element_bytes >= 2:
            latent = (mla.kv_lora_rank + mla.qk_rope_head_dim) * element_bytes
        else:
            latent = mla.kv_lora_rank + -(-mla.kv_lora_rank // 128) * 4 + mla.qk_rope_head_dim * 2
        return latent + indexer

    def cache_elements(self, sparse_element_bytes: float) -> float:
        """:meth:`cache_bytes_per_token` in elements of ``sparse_element_bytes`` when the engine uses that layout."""
        if not sparse_element_bytes:
            return self.kv_elements_per_token
        return self.cache_bytes_per_token(sparse_element_bytes) / sparse_element_bytes

    def kv_read_elements(self, context: int) -> float:
        """The picked tokens' latents, and every cached token's indexer key."""
        latent = super().kv_elements_per_token
        return min(context, self.indexer.topk) * latent + context * self.indexer.head_dim


@dataclass(frozen=True, repr=False, eq=False)
class LinearAttention(Mixer):
    """Gated DeltaNet: a causal convolution over q, k, v, then a gated delta-rule recurrence whose state, one
    ``d_k x d_v`` matrix per value head, replaces the KV cache (see :class:`LinearAttentionSpec`)."""

    spec: LinearAttentionSpec

    def tensors(self, h: int, layer: int) -> list[Tensor]:
        return linear_attention_tensors(self.spec, h, layer)

    @property
    def conv_dim(self) -> int:
        """Channels the convolution runs over: ``2 n_k d_k + n_v d_v`` (q, k and v)."""
        la = self.spec
        return 2 * la.num_key_heads * la.key_head_dim + la.num_value_heads * la.value_head_dim

    @property
    def conv_state_elements(self) -> int:
        """``(K - 1) x conv_dim`` (vLLM and llama.cpp keep K - 1 columns); Qwen3-Next-80B-A3B: 3 x 8,192 = 24,576."""
        return (self.spec.conv_kernel - 1) * self.conv_dim

    @property
    def recurrent_state_elements(self) -> int:
        """``n_v x d_k x d_v``; Qwen3-Next-80B-A3B: 32 x 128 x 128 = 524,288."""
        la = self.spec
        return la.num_value_heads * la.key_head_dim * la.value_head_dim

    @property
    def kernels(self) -> int:
        """Gated DeltaNet: norm, in-projections, convolution, gates (beta, g), the recurrence, gated norm, output,
        residual = 9.  Kimi Delta Attention as vLLM's ``KimiDeltaAttention.forward`` issues it: norm, the q, k and v
        projections (3), beta's projection and fp32 cast (2), the forget and output gates' low-rank pairs (4), the
        output buffer, three short convolutions (3), the forget gate, beta's sigmoid, the recurrence, gated norm,
        output projection and copy, residual = 21."""
        return 21 if self.spec.kind == "kda" else 9

    @property
    def prefill_kernels(self) -> int:
        """Prefill runs the chunked algorithm in place of the one fused recurrent kernel: the l2 norms of q and k,
        the gates' chunk cumulative sum, the intra-chunk products, their triangular solve, the WY ``w``/``u``, the
        state across chunks and the output (the chunked gated-delta-rule and KDA forwards vLLM and SGLang vendor
        from flash-linear-attention) = 8 for 1: Gated DeltaNet 16, Kimi Delta Attention 28."""
        return self.kernels + 7

    def score_flops_per_attended(self, mode: Mode) -> int:
        """The recurrence per token: decay, delta (``S^T k``), rank-1 update and readout (``S^T q``), about
        ``7 x n_v x d_k x d_v`` FLOPs whatever the context; prefill in chunks of :data:`LINEAR_CHUNK` adds the
        intra-chunk attention, ``2 x n_v x C x (d_k + d_v)``.  Qwen3-Next: 3.67 M per layer per decoded token."""
        la = self.spec
        n, dk, dv = la.num_value_heads, la.key_head_dim, la.value_head_dim
        return 7 * n * dk * dv + (2 * n * LINEAR_CHUNK * (dk + dv) if mode == "prefill" else 0)

    def attended(self, context: int, mode: Mode) -> float:
        return 1.0  # the state stands for the whole context: constant work per token


@dataclass(frozen=True, repr=False, eq=False)
class StateSpace(Mixer):
    """A Mamba mixer: a causal convolution and a selective scan whose state replaces the KV cache
    (see :class:`SsmSpec`)."""

    spec: SsmSpec

    def tensors(self, h: int, layer: int) -> list[Tensor]:
        return ssm_tensors(self.spec, h, layer)

    @property
    def conv_state_elements(self) -> int:
        """``(d_conv - 1) x channels``: Mamba2 ``d_in + 2 g d_s``, Mamba1 ``d_in``; Nemotron 3 Nano: 18,432."""
        ssm = self.spec
        channels = ssm.d_inner + (2 * ssm.n_groups * ssm.d_state if ssm.kind == "mamba2" else 0)
        return (ssm.d_conv - 1) * channels

    @property
    def recurrent_state_elements(self) -> int:
        """``d_in x d_s``; Nemotron 3 Nano: 4,096 x 128 = 524,288; Jamba 1.5 Mini: 8,192 x 16 = 131,072."""
        return self.spec.d_inner * self.spec.d_state

    @property
    def kernels(self) -> int:
        """norm, in-projection, convolution, dt, the scan, gated norm, output, residual = 8."""
        return 8

    @property
    def prefill_kernels(self) -> int:
        """Prefill runs Mamba-2's chunked scan (``mamba_chunk_scan_combined``: the chunks' cumulative sum, their
        states, the state passing, the chunk BMM and the scan) in place of the one state-update kernel: 12."""
        return self.kernels + 4

    def score_flops_per_attended(self, mode: Mode) -> int:
        """The selective scan per token, about ``7 x d_in x d_s`` (Megatron-LM's ``mamba_layer_flops``) whatever
        the context; Mamba2's chunked prefill (chunk ``Q``) adds ``2 Q (g d_s + d_in)`` (the intra-chunk terms of
        transformers' SSD scan).  Nemotron 3 Nano decode: 3.67 M per layer per token."""
        ssm = self.spec
        scan = 7 * ssm.d_inner * ssm.d_state
        if mode == "prefill" and ssm.kind == "mamba2":
            scan += 2 * ssm.chunk_size * (ssm.n_groups * ssm.d_state + ssm.d_inner)
        return scan

    def attended(self, context: int, mode: Mode) -> float:
        return 1.0  # the state stands for the whole context: constant work per token


@dataclass(frozen=True, repr=False, eq=False)
class FeedForward(Value):
    """The feed-forward block of one layer."""

    def tensors(self, h: int, layer: int) -> list[Tensor]:
        raise NotImplementedError

    @property
    def kernels(self) -> int:
        raise NotImplementedError

    @property
    def is_moe(self) -> bool:
        return False


@dataclass(frozen=True, repr=False, eq=False)
class DenseMlp(FeedForward):
    """A dense MLP: gated ``3hI`` or plain ``2hI`` elements (+ biases)."""

    mlp: MlpSpec

    def tensors(self, h: int, layer: int) -> list[Tensor]:
        return mlp_tensors("dense_mlp", "", h, self.mlp, layer)

    @property
    def kernels(self) -> int:
        """norm, gate-up, activation, down, residual = 5."""
        return 5


@dataclass(frozen=True, repr=False, eq=False)
class NoFeedForward(FeedForward):
    """A block without a feed-forward part (a mixer-only block of Nemotron-H-style patterns)."""

    def tensors(self, h: int, layer: int) -> list[Tensor]:
        return []

    @property
    def kernels(self) -> int:
        return 0


@dataclass(frozen=True, repr=False, eq=False)
class MoeBlock(FeedForward):
    """Router, ``E`` routed experts (one tensor entry of ``count = E``), shared experts, a residual MLP."""

    moe: MoeSpec

    @property
    def is_moe(self) -> bool:
        return True

    @property
    def expert(self) -> MlpSpec:
        moe = self.moe
        return MlpSpec(intermediate_size=moe.expert_intermediate_size, gated=moe.gated, bias=moe.expert_bias)

    def tensors(self, h: int, layer: int) -> list[Tensor]:
        moe = self.moe
        e = moe.num_experts
        out = [Tensor("router", "ffn_gate_inp", (moe.router_width, h), layer)]
        if moe.router_bias:
            out.append(Tensor("router", "ffn_gate_inp.bias", (moe.router_width,), layer))
        out += mlp_tensors("routed_experts", "_exps", h, self.expert, layer, count=e)
        if moe.shared_intermediate_size is not None:
            shared = MlpSpec(intermediate_size=moe.shared_intermediate_size, gated=moe.gated, bias=moe.shared_bias)
            out += mlp_tensors("shared_experts", "_shexp", h, shared, layer)
            if moe.shared_expert_gate:
                out.append(Tensor("shared_experts", "ffn_gate_inp_shexp", (1, h), layer))
        if moe.residual_mlp is not None:
            out += mlp_tensors("dense_mlp", "", h, moe.residual_mlp, layer)
        return out

    @property
    def kernels(self) -> int:
        """norm, router, softmax, top-k, sort, gather, gate-up, activation, down, weighted combine, residual = 11;
        shared experts +4, a residual MLP +5."""
        moe = self.moe
        return 11 + (4 if moe.shared_intermediate_size else 0) + (5 if moe.residual_mlp else 0)


@dataclass(frozen=True, repr=False, eq=False)
class Layer(Value):
    """Decoder layer ``index``: its norms, mixer and feed-forward block."""

    index: int
    mixer: Mixer
    ffn: FeedForward
    norms: int
    norm_width: int
    """Elements of one hidden-size norm: ``h``, or ``2h`` with a bias."""

    def tensors(self, h: int) -> list[Tensor]:
        i = self.index
        out = [Tensor("norm", "layer_norm", (self.norm_width,), i, self.norms)] if self.norms else []
        return out + self.mixer.tensors(h, i) + self.ffn.tensors(h, i)

    @property
    def kernels(self) -> int:
        """Kernels one step runs in this layer (an engine's graph, fused where engines fuse)."""
        return self.mixer.kernels + self.ffn.kernels

    @property
    def prefill_kernels(self) -> int:
        """Kernels a prefill pass runs in this layer (chunked scans in recurrent mixers)."""
        return self.mixer.prefill_kernels + self.ffn.kernels

    @property
    def is_moe(self) -> bool:
        return self.ffn.is_moe


def make_layer(arch: ArchSpec, index: int) -> Layer:
    """Layer ``index`` of ``arch`` (an index past the last builds the layer an MTP module repeats)."""
    ffn: FeedForward
    kind = arch.ffn_kind(index)
    if kind == "E":
        assert arch.moe is not None
        ffn = _moe_block(arch.moe)
    elif kind == "D":
        assert arch.mlp is not None
        ffn = _dense_mlp(arch.mlp)
    else:
        ffn = _NO_FFN
    width = arch.hidden_size * (2 if arch.norm_bias else 1)
    mixer_kind = arch.attention.layer_kind(index)
    if index >= arch.num_layers and mixer_kind in ("L", "M", "X"):
        mixer_kind = "F"  # an MTP module repeats a full-attention layer (Qwen3-Next, DeepSeek-V3)
    mixer = _mixer(arch.attention, mixer_kind, arch.linear_attention, arch.ssm)
    # A block with only a mixer or only a feed-forward part has one norm before it.
    norms = arch.norms_per_layer if kind != "X" and not isinstance(mixer, NoMixer) else 1
    return Layer(index, mixer, ffn, norms, width)


_NO_FFN = NoFeedForward()


# Equal layers share one mixer and one feed-forward object, so sums grouped by them compare by identity.
@functools.lru_cache(maxsize=1024)
def _mixer(att: AttentionSpec, kind: str, linear: LinearAttentionSpec | None, ssm: SsmSpec | None) -> Mixer:
    if kind == "X":
        return NoMixer()
    if kind == "L":
        assert linear is not None
        return LinearAttention(linear)
    if kind == "M":
        assert ssm is not None
        return StateSpace(ssm)
    span: Span = kind  # type: ignore[assignment]
    if att.mla is not None:
        return SparseLatentAttention(att, span) if att.indexer is not None else LatentAttention(att, span)
    return Attention(att, span)


@functools.lru_cache(maxsize=1024)
def _moe_block(moe: MoeSpec) -> MoeBlock:
    return MoeBlock(moe)


@functools.lru_cache(maxsize=1024)
def _dense_mlp(mlp: MlpSpec) -> DenseMlp:
    return DenseMlp(mlp)


@functools.lru_cache(maxsize=256)
def layers(arch: ArchSpec) -> tuple[Layer, ...]:
    """One entry per decoder layer."""
    return tuple(make_layer(arch, i) for i in range(arch.num_layers))


@functools.lru_cache(maxsize=256)
def mixer_counts(arch: ArchSpec) -> tuple[tuple[Mixer, int], ...]:
    """Each distinct mixer of the layer list and how many layers have it (sums over layers, done once each)."""
    counts: dict[Mixer, int] = {}
    for layer in layers(arch):
        counts[layer.mixer] = counts.get(layer.mixer, 0) + 1
    return tuple(counts.items())


@functools.lru_cache(maxsize=256)
def model_tensors(arch: ArchSpec) -> tuple[Tensor, ...]:
    """Every tensor of the language model (no MTP layers, no vision tower), in checkpoint order."""
    embedding, *rest = model_tensors_outside_layers(arch)
    out = [embedding]
    for layer in layers(arch):
        out += layer.tensors(arch.hidden_size)
    return (*out, *rest)


def model_tensors_outside_layers(arch: ArchSpec) -> tuple[Tensor, ...]:
    """The token embedding (first), the final norm and the output head: the tensors no layer holds."""
    h, v = arch.hidden_size, arch.vocab_size
    out = [
        Tensor("embedding", "token_embd", (v, h)),
        Tensor("norm", "output_norm", (2 * h,) if arch.norm_bias else (h,)),
    ]
    if not arch.tie_embeddings:
        out.append(Tensor("lm_head", "output", (v, h)))
        if arch.lm_head_bias:
            out.append(Tensor("lm_head", "output.bias", (v,)))
    return tuple(out)


def layer_tensors(arch: ArchSpec, index: int) -> list[Tensor]:
    """Every tensor of decoder layer ``index``."""
    return layers(arch)[index].tensors(arch.hidden_size)
