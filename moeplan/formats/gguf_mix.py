"""llama.cpp quantization mixes (``llama-quantize`` file types): which ggml type each tensor gets.

A mix such as Q4_K_M is not one format: ``llama-quantize`` starts from the mix's base type (Q4_K) and gives
some tensors more bits by role and layer, keeps others unquantized, and falls back where a row length does
not fit the block.  This module re-implements that choice per tensor from the model's shapes, following
``llama_tensor_get_type_impl``, ``tensor_allows_quantization`` and ``llama_ftype_get_default_type`` in
llama.cpp ``src/llama-quant.cpp`` (007dbbf, 2026).  The main rules:

* never quantized: 1-D tensors (norms, biases, sinks) and the MoE router ``ffn_gate_inp`` (kept in F32, as
  the converter writes them);
* ``output`` (and ``token_embd`` when tied): Q6_K, except Q8_0 for Q8_0 and MXFP4_MOE, Q5_K for the 1-2 bit
  i-quant mixes, Q8_0 when the row does not fit the base block;
* ``attn_v`` (and MLA's ``attn_kv_b``): Q6_K on the ``use_more_bits`` layers in Q4_K_M/Q5_K_M; Q8_0 for
  models with exactly 8 experts (Mixtral), which also get Q8_0 ``attn_k`` and Q5_K ``attn_output``;
* ``ffn_down`` (dense, ``_exps``, ``_shexp``): Q6_K on ``use_more_bits`` layers in Q4_K_M/Q5_K_M, Q3_K in
  Q2_K, Q5_K on the first eighth in Q4_K_S, ...;
* MXFP4_MOE: 3-D expert tensors MXFP4, every other quantizable tensor Q8_0.

``use_more_bits(i, n) = i < n/8 or i >= 7n/8 or (i - n/8) % 3 == 2`` (integer division) is true on half of
the layers.  Checked against real files: Llama-3.1-8B at ten mixes to 4 decimals of bpw (llama.cpp
``tools/quantize/README.md``), Mixtral 8x7B and 8x22B GGUF sizes within 0.1% (tests/test_gguf_mix.py).

* ``attn_qkv`` (Gated DeltaNet's fused q/k/v): Q4_K in Q3_K_M/Q3_K_L/IQ3_M, Q5_K in Q4_K_M, Q6_K in Q5_K_M;
  ``attn_v`` counts its layers among the attention tensors only (``i_attention_wv`` of ``n_attention_wv``).

Not modelled: Falcon's own rules, ``--tensor-type``/``--pure`` overrides, and
current DeepSeek files that split ``attn_kv_b`` into ``attn_k_b``/``attn_v_b`` (about 0.1% of the weights).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from moeplan.formats.ggml import GGML_TYPES, storable_type
from moeplan.model.spec import ArchSpec
from moeplan.model.tensors import Tensor
from moeplan.records import Value

# llama_ftype_get_default_type: the base ggml type of each file type.
FTYPES: dict[str, str] = {
    "F32": "F32",
    "F16": "F16",
    "BF16": "BF16",
    "Q8_0": "Q8_0",
    "Q6_K": "Q6_K",
    "Q5_K_M": "Q5_K",
    "Q5_K_S": "Q5_K",
    "Q5_1": "Q5_1",
    "Q5_0": "Q5_0",
    "Q4_K_M": "Q4_K",
    "Q4_K_S": "Q4_K",
    "Q4_1": "Q4_1",
    "Q4_0": "Q4_0",
    "IQ4_XS": "IQ4_XS",
    "IQ4_NL": "IQ4_NL",
    "Q3_K_L": "Q3_K",
    "Q3_K_M": "Q3_K",
    "Q3_K_S": "Q3_K",
    "IQ3_M": "IQ3_S",
    "IQ3_S": "IQ3_S",
    "IQ3_XS": "IQ3_S",
    "IQ3_XXS": "IQ3_XXS",
    "Q2_K": "Q2_K",
    "Q2_K_S": "Q2_K",
    "IQ2_M": "IQ2_S",
    "IQ2_S": "IQ2_XS",
    "IQ2_XS": "IQ2_XS",
    "IQ2_XXS": "IQ2_XXS",
    "IQ1_M": "IQ1_M",
    "IQ1_S": "IQ1_S",
    "TQ2_0": "TQ2_0",
    "TQ1_0": "TQ1_0",
    "Q2_0": "Q2_0",
    "Q1_0": "Q1_0",
    "MXFP4_MOE": "MXFP4",
    "NVFP4": "NVFP4",
}

# llama-quantize accepts these short names for the _M mixes.
FTYPE_ALIASES = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}

# Mixes whose types need an importance matrix (tensor_requires_imatrix): files of them are always made with
# one, and a few rules differ with it.
IMATRIX_FTYPES = frozenset({"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "Q2_K_S"})

_LOW_BIT_IQ = frozenset({"IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"})
_UNQUANTIZED = frozenset({"F32", "F16", "BF16"})


def ftype_name(name: str) -> str | None:
    """The canonical mix name for ``name`` (case-insensitive, short aliases allowed), or None."""
    key = name.strip().upper()
    key = FTYPE_ALIASES.get(key, key)
    return key if key in FTYPES else None


def use_more_bits(i: int, n: int) -> bool:
    """llama.cpp's choice of the layers that get more bits: the first and last eighth, every third between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _category(t: Tensor, tied: bool) -> str:
    role = t.role
    if role == "output" or (role == "token_embd" and tied):
        return "output"
    if role == "token_embd":
        return "token_embd"
    if role in ("attn_v", "attn_kv_b"):
        return "attn_v"
    if role == "attn_qkv":
        return "attn_qkv"
    if role in ("attn_k", "attn_q", "attn_output"):
        return role
    for prefix in ("ffn_up", "ffn_gate", "ffn_down"):
        if role.startswith(prefix):
            return prefix
    return "other"


@dataclass(frozen=True, repr=False, eq=False)
class _Model(Value):
    """The hyperparameters llama.cpp's rules look at."""

    n_layer: int
    n_expert: int
    n_gqa: int
    is_70b: bool
    tied: bool
    ffn_down_order: dict[tuple[int, str], int]
    attn_v_order: dict[int, int]
    """Layer -> its index among the attn_v tensors (``qs.i_attention_wv``): equal unless some layers have none."""
    n_attention_wv: int
    """attn_v, attn_qkv and attn_kv_b tensors in the model (``qs.n_attention_wv``): ``n_layer`` unless a layer has
    none or two (Qwen3-Next: 12 attn_v + 36 attn_qkv = 48)."""


@functools.lru_cache(maxsize=64)
def _model(arch: ArchSpec) -> _Model:
    att = arch.attention
    n_expert = arch.moe.num_experts if arch.moe is not None else 0
    # Tensors are visited in (layer, name) order; the low-bit i-quant rule counts ffn_down tensors that way.
    downs = sorted(
        (t.layer or 0, t.role)
        for layer in range(arch.num_layers)
        for t in _layer_tensors(arch, layer)
        if t.is_matrix and t.role.startswith("ffn_down")
    )
    wv = [
        (t.layer or 0, t.role)
        for layer in range(arch.num_layers)
        for t in _layer_tensors(arch, layer)
        if t.role in ("attn_v", "attn_qkv", "attn_kv_b")
    ]
    v_layers = sorted({layer for layer, role in wv if role in ("attn_v", "attn_kv_b")})
    return _Model(
        n_layer=arch.num_layers,
        attn_v_order={layer: i for i, layer in enumerate(v_layers)},
        n_attention_wv=len(wv) or arch.num_layers,
        n_expert=n_expert,
        n_gqa=att.num_heads // att.num_kv_heads,
        is_70b=arch.moe is None and arch.num_layers == 80,  # llama.cpp's LLM_TYPE_70B: 80-layer dense models
        tied=arch.tie_embeddings,
        ffn_down_order={key: i for i, key in enumerate(downs)},
    )


def _layer_tensors(arch: ArchSpec, layer: int) -> list[Tensor]:
    from moeplan.model.layers import layer_tensors

    return layer_tensors(arch, layer)


def gguf_type_for(mix: str, t: Tensor, arch: ArchSpec, *, imatrix: bool | None = None) -> str:
    """The ggml type ``llama-quantize`` gives tensor ``t`` of ``arch`` under file type ``mix``.

    ``imatrix`` says whether an importance matrix was used; by default only for the mixes that require one.
    """
    ftype = ftype_name(mix)
    if ftype is None:
        raise KeyError(mix)
    if not t.is_matrix or t.role.startswith("ffn_gate_inp"):
        return "F32"  # 1-D tensors and routers are never quantized; the converter writes them in F32
    base = FTYPES[ftype]
    if base in _UNQUANTIZED:
        return base
    has_imatrix = ftype in IMATRIX_FTYPES if imatrix is None else imatrix
    m = _model(arch)
    chosen = _impl(ftype, base, t, m, has_imatrix)
    return storable_type(chosen, t.row_length)


def _impl(ftype: str, new: str, t: Tensor, m: _Model, has_imatrix: bool) -> str:
    """``llama_tensor_get_type_impl`` for non-Falcon models."""
    cat = _category(t, m.tied)
    layer = t.layer or 0
    n = m.n_layer
    if cat == "output":
        if ftype == "MXFP4_MOE" or t.row_length % GGML_TYPES[new].block:
            return "Q8_0"
        if ftype in _LOW_BIT_IQ or ftype == "IQ3_XXS":
            return "Q5_K"
        return new if new == "Q8_0" else "Q6_K"
    if ftype == "MXFP4_MOE":
        return "MXFP4" if t.count > 1 and t.kind == "routed_experts" else "Q8_0"
    if cat == "token_embd":
        if ftype in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
            return "Q2_K"
        if ftype in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
            return "IQ3_S"
        if ftype in ("TQ1_0", "TQ2_0", "Q2_0"):
            return "Q4_K"
        return new
    if ftype in _LOW_BIT_IQ:
        if cat == "attn_v":
            if m.n_gqa >= 4 or m.n_expert >= 4:
                return "Q4_K"
            return "IQ3_S" if ftype in ("IQ2_S", "IQ2_M") else "Q2_K"
        if m.n_expert == 8 and cat == "attn_k":
            return "Q4_K"
        if cat == "ffn_down":
            if m.ffn_down_order.get((layer, t.role), n) < n // 8:
                return "IQ3_S" if ftype in ("IQ2_S", "IQ2_M") else "Q2_K"
            return new
        if cat == "attn_output":
            if m.n_expert == 8:
                return "Q5_K"
            if ftype in ("IQ1_S", "IQ1_M"):
                return "IQ2_XXS"
            if ftype in ("IQ2_S", "IQ2_M"):
                return "IQ3_S"
        return new
    if cat == "attn_v":
        return _attn_v(ftype, new, m.attn_v_order.get(layer, layer), m, has_imatrix)
    if cat == "attn_qkv":  # fused q/k/v (Gated DeltaNet's attn_qkv): a fixed step up in the K mixes
        return {"Q3_K_M": "Q4_K", "Q3_K_L": "Q4_K", "IQ3_M": "Q4_K", "Q4_K_M": "Q5_K", "Q5_K_M": "Q6_K"}.get(ftype, new)
    if cat == "attn_k":
        if m.n_expert == 8:
            return "Q8_0"
        return {"IQ3_XS": "IQ3_XXS", "IQ3_XXS": "IQ2_S"}.get(ftype, new)
    if cat == "attn_q":
        return {"IQ3_XS": "IQ3_XXS", "IQ3_XXS": "IQ2_S"}.get(ftype, new)
    if cat == "ffn_down":
        return _ffn_down(ftype, new, layer, m, has_imatrix)
    if cat == "attn_output":
        if m.n_expert == 8:
            eight = {"Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S"}
            return "Q5_K" if ftype in eight | {"IQ3_M", "IQ4_XS"} else new
        return {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K", "IQ3_M": "Q4_K"}.get(ftype, new)
    if cat in ("ffn_gate", "ffn_up"):
        if ftype == "IQ3_XS" and n // 8 <= layer < 7 * n // 8:
            return "IQ3_XXS"
        return new
    return new


def _attn_v(ftype: str, new: str, i: int, m: _Model, has_imatrix: bool) -> str:
    """The attn_v rule; ``i`` is the index among attn_v tensors (one per layer)."""
    gqa4 = m.n_gqa >= 4
    if ftype == "Q2_K":
        new = "Q4_K" if gqa4 else "Q3_K"
    elif ftype == "Q2_K_S" and gqa4:
        new = "Q4_K"
    elif ftype == "IQ3_XXS":
        new = "Q4_K" if gqa4 else ("IQ3_S" if not has_imatrix else "IQ3_XXS")
    elif (ftype in ("IQ3_XS", "IQ3_S") and gqa4) or ftype == "IQ3_M":
        new = "Q4_K"
    elif ftype == "Q3_K_M":
        new = "Q5_K" if i < 2 else "Q4_K"
    elif ftype == "Q3_K_L" or (ftype in ("IQ4_NL", "IQ4_XS") and gqa4):
        new = "Q5_K"
    elif ftype in ("Q4_K_M", "Q5_K_M") and use_more_bits(i, m.n_attention_wv):
        new = "Q6_K"
    elif ftype == "Q4_K_S" and i < 4:
        new = "Q5_K"
    if m.is_70b and new in ("Q3_K", "Q4_K"):
        new = "Q5_K"
    if m.n_expert == 8:
        new = "Q8_0"
    return new


def _ffn_down(ftype: str, new: str, i: int, m: _Model, has_imatrix: bool) -> str:
    """The ffn_down rule; ``i`` is the layer (parsed from the tensor name for MoE models)."""
    n = m.n_layer
    if ftype == "Q2_K":
        return "Q3_K"
    if ftype == "Q2_K_S":
        return "Q4_K" if i < n // 8 else new
    if ftype == "IQ3_XXS" and not has_imatrix:
        return "Q4_K" if i < n // 8 else "Q3_K"
    if ftype == "Q3_K_M":
        return "Q5_K" if i < n // 16 else "Q4_K"
    if ftype == "IQ3_M" and (i < n // 8 or (m.n_expert == 8 and use_more_bits(i, n))):
        return "Q4_K"
    if ftype == "Q3_K_L":
        return "Q5_K"
    if ftype == "Q4_K_M":
        return "Q6_K" if use_more_bits(i, n) else new
    if i < n // 8 and ftype in ("IQ4_NL", "IQ4_XS") and not has_imatrix:
        return "Q5_K"
    if ftype == "Q5_K_M" and use_more_bits(i, n):
        return "Q6_K"
    if ftype == "Q4_K_S" and i < n // 8:
        return "Q5_K"
    if ftype in ("Q4_0", "Q5_0") and has_imatrix and i < n // 8:
        return "Q4_1" if ftype == "Q4_0" else "Q5_1"
    return new
