"""ArchSpec -> the list of weight tensors a checkpoint holds, with their shapes and roles.

Memory under a quantization scheme depends on more than element counts: block formats need the row length,
llama.cpp's mixes give some tensors more bits by role and layer, and 1-D tensors (norms, biases) are never
quantized.  This module lists every tensor once, as ``count`` identical tensors of ``shape`` (the routed experts
of a layer are one entry with ``count = num_experts``).  Shapes follow PyTorch's Linear convention
``(out_features, in_features)``: the last dimension is the row length that block formats group along (GGUF's
``ne[0]``).  The elements add up to :func:`moeplan.model.params.count_params` exactly (tested).

The model's list is :func:`moeplan.model.layers.model_tensors`, built from these per layer.

Roles use llama.cpp's tensor names where there is one (``attn_q``, ``attn_kv_b``, ``ffn_down_exps``,
``ffn_gate_inp`` for the router, ``output`` for the head) so its quantization rules can be applied by role.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from moeplan.model.spec import AttentionSpec, LinearAttentionSpec, MlpSpec, ParamKind, SsmSpec

UNQUANTIZED_ROLES = frozenset({"ssm_conv1d", "ssm_a"})
"""Tensors of two or more dimensions that no toolchain quantizes (llama-quantize keeps ``ssm_conv1d`` in F32)."""


@dataclass(frozen=True, slots=True)
class Tensor:
    """``count`` identical weight tensors of ``shape`` in decoder layer ``layer`` (None outside layers)."""

    kind: ParamKind
    role: str
    shape: tuple[int, ...]
    layer: int | None = None
    count: int = 1

    @property
    def elements(self) -> int:
        return prod(self.shape) * self.count

    @property
    def row_length(self) -> int:
        """Elements along the dimension block formats group by (the input features of a Linear)."""
        return self.shape[-1]

    @property
    def rows(self) -> int:
        """Rows of ``row_length`` elements across all ``count`` copies."""
        return prod(self.shape[:-1]) * self.count

    @property
    def is_matrix(self) -> bool:
        """A weight matrix that formats quantize (a convolution's taps are not: engines keep them as they are)."""
        return len(self.shape) >= 2 and self.role not in UNQUANTIZED_ROLES


def mlp_tensors(kind: ParamKind, suffix: str, h: int, mlp: MlpSpec, layer: int, count: int = 1) -> list[Tensor]:
    i = mlp.intermediate_size
    out = [
        Tensor(kind, f"ffn_up{suffix}", (i, h), layer, count),
        Tensor(kind, f"ffn_down{suffix}", (h, i), layer, count),
    ]
    if mlp.gated:
        out.insert(0, Tensor(kind, f"ffn_gate{suffix}", (i, h), layer, count))
    if mlp.bias:
        n_in = 2 * i if mlp.gated else i
        out += [
            Tensor(kind, f"ffn_up{suffix}.bias", (n_in,), layer, count),
            Tensor(kind, f"ffn_down{suffix}.bias", (h,), layer, count),
        ]
    return out


def gqa_tensors(att: AttentionSpec, h: int, layer: int) -> list[Tensor]:
    """The projections of MHA/GQA/MQA attention: q (or a low-rank q_a, its norm and q_b), k, v, output (+ q/k/v
    biases, q/k norms).  Step3 (7168 wide, query rank 2048, 64 heads and one KV head of 256): 7168 x 2048 + 2048 +
    2048 x 16384 + 2 x 7168 x 256 + 16384 x 7168 = 169,347,072 per layer."""
    n_h, d, d_v, n_kv = att.num_heads, att.head_dim, att.value_dim, att.num_kv_heads
    q_width = n_h * d * (2 if att.gated_output else 1)  # a gated output doubles the query projection
    r = att.q_lora_rank
    query = (
        [Tensor("attention", "attn_q", (q_width, h), layer)]
        if r is None
        else [
            Tensor("attention", "attn_q_a", (r, h), layer),
            Tensor("norm", "attn_q_a_norm", (r,), layer),
            Tensor("attention", "attn_q_b", (q_width, r), layer),
        ]
    )
    out = [
        *query,
        Tensor("attention", "attn_k", (n_kv * d, h), layer),
        Tensor("attention", "attn_v", (n_kv * d_v, h), layer),
        Tensor("attention", "attn_output", (h, n_h * d_v), layer),
    ]
    if att.qkv_bias:
        out += [
            Tensor("attention", "attn_q.bias" if r is None else "attn_q_b.bias", (q_width,), layer),
            Tensor("attention", "attn_k.bias", (n_kv * d,), layer),
            Tensor("attention", "attn_v.bias", (n_kv * d_v,), layer),
        ]
    if att.qk_norm == "per_head":
        out += [Tensor("norm", "attn_q_norm", (d,), layer), Tensor("norm", "attn_k_norm", (d,), layer)]
    elif att.qk_norm == "full":
        out += [Tensor("norm", "attn_q_norm", (n_h * d,), layer), Tensor("norm", "attn_k_norm", (n_kv * d,), layer)]
    return out


def mla_tensors(att: AttentionSpec, h: int, layer: int) -> list[Tensor]:
    """The projections of multi-head latent attention: q (low-rank or plain), kv_a, kv_b, output, their norms."""
    m, n_h = att.mla, att.num_heads
    assert m is not None
    qk = m.qk_nope_head_dim + m.qk_rope_head_dim
    out: list[Tensor] = []
    if m.q_lora_rank is None:
        out.append(Tensor("attention", "attn_q", (n_h * qk, h), layer))
    else:
        out += [
            Tensor("attention", "attn_q_a", (m.q_lora_rank, h), layer),
            Tensor("norm", "attn_q_a_norm", (m.q_lora_rank,), layer),
            Tensor("attention", "attn_q_b", (n_h * qk, m.q_lora_rank), layer),
        ]
        if att.qkv_bias:
            out.append(Tensor("attention", "attn_q_a.bias", (m.q_lora_rank,), layer))
    kv_a = m.kv_lora_rank + m.qk_rope_head_dim
    out += [
        Tensor("attention", "attn_kv_a_mqa", (kv_a, h), layer),
        Tensor("norm", "attn_kv_a_norm", (m.kv_lora_rank,), layer),
        Tensor("attention", "attn_kv_b", (n_h * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank), layer),
        Tensor("attention", "attn_output", (h, n_h * m.v_head_dim), layer),
    ]
    if att.qkv_bias:
        out.append(Tensor("attention", "attn_kv_a_mqa.bias", (kv_a,), layer))
    ix = att.indexer
    if ix is not None:  # transformers DeepseekV32Indexer: wq_b, wk, k_norm (a LayerNorm), weights_proj
        q_in = m.q_lora_rank or h
        out += [
            Tensor("attention", "indexer.attn_q_b", (ix.num_heads * ix.head_dim, q_in), layer),
            Tensor("attention", "indexer.attn_k", (ix.head_dim, h), layer),
            Tensor("norm", "indexer.k_norm", (2 * ix.head_dim,), layer),
            Tensor("attention", "indexer.proj", (ix.num_heads, h), layer),
        ]
    return out


def attention_tensors(att: AttentionSpec, h: int, layer: int) -> list[Tensor]:
    """What every attention kind may add after its projections: the output bias and the sinks."""
    out = []
    if att.o_bias:
        out.append(Tensor("attention", "attn_output.bias", (h,), layer))
    if att.sinks:
        out.append(Tensor("attention", "attn_sinks", (att.num_heads,), layer))
    return out


def linear_attention_tensors(la: LinearAttentionSpec, h: int, layer: int) -> list[Tensor]:
    """Gated DeltaNet (transformers ``Qwen3NextGatedDeltaNet``): ``in_proj_qkvz`` (h -> 2 n_k d_k + 2 n_v d_v),
    ``in_proj_ba`` (h -> 2 n_v), a depthwise ``conv1d`` over ``2 n_k d_k + n_v d_v`` channels of ``K`` taps,
    ``dt_bias`` and ``A_log`` (n_v each), a gated RMSNorm of ``d_v`` and ``out_proj`` (n_v d_v -> h).  Roles are
    llama.cpp's (``attn_qkv``, ``attn_gate``, ``ssm_ba``, ``ssm_conv1d``, ...).  Qwen3-Next-80B-A3B (16 key heads
    of 128, 32 value heads of 128, K = 4): 2048 x 8192 + 2048 x 4096 (... 4096 wide q/k/v and z) per layer."""
    key, value = la.num_key_heads * la.key_head_dim, la.num_value_heads * la.value_head_dim
    conv = 2 * key + value
    if la.kind == "kda":
        # transformers KimiDeltaAttention: q/k/v projections and convolutions, low-rank forget gate (f_a, f_b)
        # and output gate (g_a, g_b), a per-channel dt bias, A_log per head, beta, gated norm, output
        d, hk, heads = key, la.key_head_dim, la.num_key_heads
        return [
            Tensor("attention", "attn_q", (d, h), layer),
            Tensor("attention", "attn_k", (d, h), layer),
            Tensor("attention", "attn_v", (d, h), layer),
            Tensor("attention", "ssm_conv1d", (3 * d, 1, la.conv_kernel), layer),
            Tensor("attention", "ssm_f_a", (hk, h), layer),
            Tensor("attention", "ssm_f_b", (d, hk), layer),
            Tensor("attention", "ssm_dt.bias", (d,), layer),
            Tensor("attention", "ssm_a", (heads,), layer),
            Tensor("attention", "ssm_beta", (heads, h), layer),
            Tensor("attention", "ssm_g_a", (hk, h), layer),
            Tensor("attention", "ssm_g_b", (d, hk), layer),
            Tensor("norm", "ssm_norm", (hk,), layer),
            Tensor("attention", "ssm_out", (h, d), layer),
        ]
    # llama.cpp splits in_proj_qkvz into attn_qkv and attn_gate (z) and keeps in_proj_ba as ssm_ba
    return [
        Tensor("attention", "attn_qkv", (2 * key + value, h), layer),
        Tensor("attention", "attn_gate", (value, h), layer),
        Tensor("attention", "ssm_ba", (2 * la.num_value_heads, h), layer),
        Tensor("attention", "ssm_conv1d", (conv, 1, la.conv_kernel), layer),
        Tensor("attention", "ssm_dt.bias", (la.num_value_heads,), layer),
        Tensor("attention", "ssm_a", (la.num_value_heads,), layer),
        Tensor("norm", "ssm_norm", (la.value_head_dim,), layer),
        Tensor("attention", "ssm_out", (h, value), layer),
    ]


def ssm_tensors(ssm: SsmSpec, h: int, layer: int) -> list[Tensor]:
    """A Mamba mixer (transformers ``NemotronHMamba2Mixer``, ``GraniteMoeHybridMambaLayer``, ``JambaMambaMixer``).

    Mamba2: ``in_proj`` (h -> 2 d_in + 2 g d_s + n_h), a depthwise ``conv1d`` over ``d_in + 2 g d_s`` channels,
    ``dt_bias``, ``A_log`` and ``D`` (n_h each), a gated RMSNorm of ``d_in``, ``out_proj`` (d_in -> h).
    Mamba1: ``in_proj`` (h -> 2 d_in), ``conv1d`` over ``d_in``, ``x_proj`` (d_in -> R + 2 d_s), ``dt_proj``
    (R -> d_in, with a bias), ``A_log`` (d_in x d_s), ``D`` (d_in), Jamba's dt/B/C norms, ``out_proj``.
    """
    di, ds, dc = ssm.d_inner, ssm.d_state, ssm.d_conv
    out: list[Tensor] = []
    if ssm.kind == "mamba2":
        assert ssm.num_heads is not None
        nh, conv = ssm.num_heads, di + 2 * ssm.n_groups * ds
        width = 2 * di + 2 * ssm.n_groups * ds + nh
        out += [
            Tensor("attention", "ssm_in", (width, h), layer),
            Tensor("attention", "ssm_conv1d", (conv, 1, dc), layer),
            Tensor("attention", "ssm_dt.bias", (nh,), layer),
            Tensor("attention", "ssm_a", (nh,), layer),
            Tensor("attention", "ssm_d", (nh,), layer),
            Tensor("norm", "ssm_norm", (di,), layer),
        ]
    else:
        assert ssm.dt_rank is not None
        r, conv, width = ssm.dt_rank, di, 2 * di
        out += [
            Tensor("attention", "ssm_in", (width, h), layer),
            Tensor("attention", "ssm_conv1d", (conv, 1, dc), layer),
            Tensor("attention", "ssm_x", (r + 2 * ds, di), layer),
            Tensor("attention", "ssm_dt", (di, r), layer),
            Tensor("attention", "ssm_dt.bias", (di,), layer),
            Tensor("attention", "ssm_a", (di, ds), layer),
            Tensor("attention", "ssm_d", (di,), layer),
        ]
        if ssm.inner_norms:
            out += [
                Tensor("norm", "ssm_dt_norm", (r,), layer),
                Tensor("norm", "ssm_b_norm", (ds,), layer),
                Tensor("norm", "ssm_c_norm", (ds,), layer),
            ]
    if ssm.proj_bias:
        out.append(Tensor("attention", "ssm_in.bias", (width,), layer))
    if ssm.conv_bias:
        out.append(Tensor("attention", "ssm_conv1d.bias", (conv,), layer))
    out.append(Tensor("attention", "ssm_out", (h, di), layer))
    if ssm.proj_bias:
        out.append(Tensor("attention", "ssm_out.bias", (h,), layer))
    return out
