"""KV cache: bytes per token and for batch x context, as each engine allocates it.

Per layer and token (bytes, ``e`` = bytes per element of the KV format):

* MHA/GQA: ``(n_kv * head_dim + n_kv * v_head_dim) * e``.  Mixtral 8x7B, bf16: 32 layers x 2 x 8 x 128 x 2
  = 131,072 B/token.
* MLA: the compressed latent and the shared rotary key, ``(kv_lora_rank + qk_rope_head_dim) * e``, which every
  engine keeps whole on every tensor-parallel rank.  DeepSeek-V3, bf16: 61 x 576 x 2 = 70,272 B/token.

Sliding-window and chunked layers are where engines differ.  vLLM sizes every layer for the full context when
it reports capacity (gpt-oss-120b: 73,728 B/token, vLLM "GPU KV cache size" logs); llama.cpp keeps a ring of
``window + n_ubatch`` cells per sequence for those layers, so only the full-attention layers grow with the
context (gpt-oss-120b: 36,864 B/token, plus a fixed ring; llama.cpp ``llama_kv_cache`` logs).

KV formats: bf16/fp16 2 B, fp8 1 B, fp32 4 B, and llama.cpp's block types with their scales: q8_0 34/32,
q5_1 24/32, q5_0 22/32, q4_1 20/32, q4_0 and iq4_nl 18/32 bytes per element (ggml ``block_q*`` structs).
"""

from __future__ import annotations

from dataclasses import dataclass

from moeplan.errors import InputError
from moeplan.model.spec import ArchSpec
from moeplan.records import Value

KV_DTYPES: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "fp8_e4m3": 1.0,
    "fp8_e5m2": 1.0,
    "q8_0": 34 / 32,
    "q5_1": 24 / 32,
    "q5_0": 22 / 32,
    "q4_1": 20 / 32,
    "q4_0": 18 / 32,
    "iq4_nl": 18 / 32,
}
_ALIASES = {"f32": "fp32", "f16": "fp16", "float16": "fp16", "bfloat16": "bf16", "auto": "bf16", "fp8-e4m3": "fp8"}
_GGML_ONLY = {"q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl"}

LLAMA_CPP_UBATCH = 512
"""llama.cpp's default ``--ubatch-size``."""


def swa_ring_cells(window: int, context: int, ubatch: int = LLAMA_CPP_UBATCH) -> int:
    """Cells llama.cpp keeps per sequence for a sliding-window layer: ``pad256(window + n_ubatch)``, at most
    the context (``llama_kv_cache_iswa``; Ollama's gpt-oss-120b log: window 128 + ubatch 1024 -> 1280 cells)."""
    return min(context, -(-(window + ubatch) // 256) * 256)


def kv_dtype(name: str) -> str:
    """Canonical KV format name, or InputError listing the known ones."""
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in KV_DTYPES:
        raise InputError(f"unknown KV cache format '{name}'", f"one of: {', '.join(KV_DTYPES)}")
    return key


def layer_kv_elements(arch: ArchSpec) -> int:
    """KV elements one token stores in one attention layer (whole model width, no sharding)."""
    att = arch.attention
    if att.mla is not None:
        return att.mla.kv_lora_rank + att.mla.qk_rope_head_dim
    return att.num_kv_heads * (att.head_dim + att.value_dim)


@dataclass(frozen=True, repr=False, eq=False)
class KvLayout(Value):
    """How many layers grow with the context, and how many keep a fixed window ring."""

    growing_layers: int
    windowed_layers: int
    window_tokens: int


def kv_layout(arch: ArchSpec, engine: str, mtp_layers: int = 0) -> KvLayout:
    """Layers whose cache grows with context under ``engine`` (``llama.cpp`` rings windowed layers)."""
    att = arch.attention
    windowed = sum(1 for i in range(arch.num_layers) if att.layer_kind(i) != "F")
    if engine == "llama.cpp" and windowed and att.window_tokens is not None:
        return KvLayout(arch.num_layers - windowed + mtp_layers, windowed, att.window_tokens)
    return KvLayout(arch.num_layers + mtp_layers, 0, 0)


def kv_bytes_per_token(arch: ArchSpec, dtype: str = "bf16", engine: str = "vllm", mtp_layers: int = 0) -> float:
    """KV bytes one more token of one sequence costs, the whole model (windowed rings excluded)."""
    if dtype in _GGML_ONLY and engine != "llama.cpp":
        raise InputError(f"KV format '{dtype}' is a llama.cpp format", "use --engine llama.cpp, or fp8/bf16")
    layout = kv_layout(arch, engine, mtp_layers)
    return layout.growing_layers * layer_kv_elements(arch) * KV_DTYPES[dtype]


def kv_cache_bytes(
    arch: ArchSpec,
    context: int,
    batch: int,
    dtype: str = "bf16",
    engine: str = "vllm",
    mtp_layers: int = 0,
    ubatch: int = LLAMA_CPP_UBATCH,
) -> float:
    """KV cache for ``batch`` sequences of ``context`` tokens, the whole model (no sharding).

    Windowed layers under llama.cpp add a ring of :func:`swa_ring_cells` cells per sequence.
    """
    if context <= 0 or batch <= 0:
        raise InputError("context and batch must be positive")
    layout = kv_layout(arch, engine, mtp_layers)
    per_layer = layer_kv_elements(arch) * KV_DTYPES[dtype]
    growing = layout.growing_layers * per_layer * context
    ring = layout.windowed_layers * per_layer * swa_ring_cells(layout.window_tokens, context, ubatch)
    return (growing + ring) * batch
