"""KV cache as each engine allocates it (bytes per token and for batch x context, summed over the layer list), and
the recurrent state of linear-attention and state-space layers (bytes per sequence, constant in the context).

Per layer and token a mixer keeps ``Mixer.kv_elements_per_token`` elements (:mod:`moeplan.model.layers`) of
``e`` bytes each (:mod:`moeplan.formats.kv_formats`).  Mixtral 8x7B in bf16: 32 layers x 2,048 x 2 B =
131,072 B/token; DeepSeek-V3 (MLA): 61 x 576 x 2 = 70,272 B/token.

Sliding-window and chunked layers are where engines differ (``Engine.window_cache``):

* ``paged`` (vLLM's hybrid KV cache manager, on by default for sliding-window models since v0.10 and for Llama 4's
  chunked local attention since ``VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE`` defaulted to 1, PR #29627):
  a windowed layer holds at most ``window - 1 + max_num_batched_tokens`` tokens in 16-token blocks plus one
  block (``SlidingWindowSpec.max_memory_usage_bytes``, vllm/v1/kv_cache_interface.py; chunked layers
  ``chunk + max_num_batched_tokens``, one block fewer, not modelled).  gpt-oss-120b grows by 36,864 B/token
  (18 full layers) plus 18 x 8,336 tokens x 2,048 B per sequence at the default 8,192 batched tokens.
* ``ring`` (llama.cpp since the SWA cache of PR #13194, b5xxx; ``--swa-full`` restores full caches): a ring of
  ``pad256(window + n_ubatch)`` cells per sequence (gpt-oss-120b: 36,864 B/token plus the ring; Ollama log).
* ``pool`` (SGLang's hybrid SWA pool, gpt-oss and the other models on its allowlist): the window layers get
  a pool of ``swa_full_tokens_ratio`` (0.8 by default) x the full layers' tokens, so they cost 0.8 of a full
  layer per token (SGLang server_args.py ``swa_full_tokens_ratio``; PR #22389 ``F*nf + r*S*ns``).  Llama 4's
  chunked layers stay full (its ``--hybrid-kvcache-ratio`` is off by default).
* ``full``: every layer for the whole context (transformers, TensorRT-LLM as modelled, and the rest).

vLLM before v0.21 logged "GPU KV cache size" as ``num_blocks // groups x block_size``: for gpt-oss that is the
pool divided by all 36 layers' 73,728 B/token (5.38 GiB -> 78,384 tokens, hf-mem issue #60) even though a
sequence only grows by 18 layers; v0.21+ logs ``max_concurrency x max_model_len`` (vLLM issue #43308).
Multi-token-prediction layers (``--mtp``) cache like a full layer.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from moeplan.deploy.engines import LLAMA_CPP_UBATCH, Engine
from moeplan.errors import InputError
from moeplan.formats.kv_formats import GGML_ONLY, KV_DTYPES, STATE_DTYPES
from moeplan.model.layers import Layer, layers, make_layer
from moeplan.model.spec import ArchSpec
from moeplan.records import Value

VLLM_BLOCK = 16
"""vLLM's default KV block size (tokens)."""
SGLANG_SWA_RATIO = 0.8
"""SGLang's ``--swa-full-tokens-ratio`` default: SWA pool tokens per full-attention pool token."""


def swa_ring_cells(window: int, context: int, ubatch: int = LLAMA_CPP_UBATCH) -> int:
    """Cells llama.cpp keeps per sequence for a sliding-window layer: ``pad256(window + n_ubatch)``, at most
    the context (``llama_kv_cache_iswa``; Ollama's gpt-oss-120b log: window 128 + ubatch 1024 -> 1280 cells)."""
    return min(context, -(-(window + ubatch) // 256) * 256)


def vllm_window_cells(window: int, context: int, batched: int) -> int:
    """Tokens vLLM's hybrid KV cache manager holds per sequence for a sliding-window layer: the last
    ``window - 1`` tokens plus one step's ``max_num_batched_tokens``, in 16-token blocks plus one block for a
    window that starts mid-block, at most the context (``SlidingWindowSpec.max_memory_usage_bytes``).
    gpt-oss (window 128) at 8,192 batched tokens: (cdiv(8,319, 16) + 1) x 16 = 8,336."""
    return min(context, (-(-(window - 1 + batched) // VLLM_BLOCK) + 1) * VLLM_BLOCK)


def window_cells(window_cache: str, window: int, context: int, batched: int) -> int:
    """Tokens a windowed layer caches per sequence under an engine's ``window_cache`` semantics."""
    if window_cache == "paged":
        return vllm_window_cells(window, context, batched)
    return swa_ring_cells(window, context, batched)


@dataclass(frozen=True, repr=False, eq=False)
class LayerCache(Value):
    """The cache of one layer under one engine: elements per token, and a ring window if it does not grow."""

    layer: int
    elements: float
    """Elements per token in the KV format (a layout with other formats inside, in equivalent elements)."""
    ring: int | None
    """Window of a cache that stops growing (llama.cpp's rings, vLLM's windowed blocks); None: grows with the
    context."""
    window_cache: str = "ring"

    def cells(self, context: int, ubatch: int) -> int:
        """Tokens cached per sequence at ``context``."""
        return context if self.ring is None else window_cells(self.window_cache, self.ring, context, ubatch)


def sparse_layout(engine: Engine, dtype: str) -> float:
    """The KV element bytes when ``engine`` keeps sparse attention in its own layout (vLLM, SGLang), else 0."""
    return KV_DTYPES[dtype] if engine.sparse_cache == "fp8_indexer" else 0.0


@functools.lru_cache(maxsize=256)
def layer_caches_for(
    arch: ArchSpec, window_cache: str, mtp_layers: int, sparse: float = 0.0
) -> tuple[tuple[Layer, LayerCache], ...]:
    """Every layer's cache (MTP layers after the last), in layer order, for an engine's ``window_cache``
    semantics and sparse-attention layout (``sparse``: the KV element bytes under vLLM's layout, 0 for plain
    elements), cached per model."""
    out = []
    spans = {getattr(layer.mixer, "span", None) for layer in layers(arch)}
    pool = window_cache == "pool" and {"S", "F"} <= spans  # SGLang pools SWA layers of hybrid models only
    for layer in layers(arch):
        window = layer.mixer.window if window_cache in ("ring", "paged") else None
        elements = layer.mixer.cache_elements(sparse)
        if pool and getattr(layer.mixer, "span", None) == "S":
            elements *= SGLANG_SWA_RATIO
        out.append((layer, LayerCache(layer.index, elements, window, window_cache)))
    for j in range(mtp_layers):
        layer = make_layer(arch, arch.num_layers + j)
        out.append((layer, LayerCache(layer.index, layer.mixer.cache_elements(sparse), None)))
    return tuple(out)


def check_kv_dtype(dtype: str, engine: Engine) -> None:
    """llama.cpp's block types (q8_0, q4_0, ...) exist only in llama.cpp, and llama.cpp has no fp8 cache
    (``-ctk``/``-ctv`` take f32, f16, bf16 and the block types)."""
    if dtype in GGML_ONLY and engine.runs != "gguf":
        raise InputError(f"KV format '{dtype}' is a llama.cpp format", "use --engine llama.cpp, or fp8/bf16")
    if dtype.startswith("fp8") and engine.runs == "gguf":
        raise InputError(f"{engine.name} has no fp8 KV cache", "its 8-bit cache is q8_0: --kv-dtype q8_0")


@functools.lru_cache(maxsize=256)
def _elements(
    arch: ArchSpec, window_cache: str, mtp_layers: int, sparse: float = 0.0
) -> tuple[float, tuple[tuple[int, float], ...]]:
    """Cache elements per token that grow with the context, and (window, elements) of the ring layers."""
    growing, rings = 0.0, dict[int, float]()
    for _, c in layer_caches_for(arch, window_cache, mtp_layers, sparse):
        if c.ring is None:
            growing += c.elements
        else:
            rings[c.ring] = rings.get(c.ring, 0) + c.elements
    return growing, tuple(rings.items())


def kv_bytes_per_token(arch: ArchSpec, dtype: str, engine: Engine, mtp_layers: int = 0) -> float:
    """KV bytes one more token of one sequence costs, the whole model (windowed rings excluded)."""
    return _elements(arch, engine.window_cache, mtp_layers, sparse_layout(engine, dtype))[0] * KV_DTYPES[dtype]


def kv_cache_bytes(
    arch: ArchSpec,
    context: int,
    batch: int,
    dtype: str,
    engine: Engine,
    mtp_layers: int = 0,
    ubatch: int = LLAMA_CPP_UBATCH,
) -> float:
    """KV cache for ``batch`` sequences of ``context`` tokens, the whole model (no sharding).

    Windowed layers under llama.cpp add a ring of :func:`swa_ring_cells` cells per sequence, under vLLM
    :func:`vllm_window_cells` tokens (``ubatch``: its ``max_num_batched_tokens``).
    """
    if context <= 0 or batch <= 0:
        raise InputError("context and batch must be positive")
    growing, rings = _elements(arch, engine.window_cache, mtp_layers, sparse_layout(engine, dtype))
    return cache_bytes(growing, rings, KV_DTYPES[dtype], context, batch, ubatch, engine.window_cache)


def cache_bytes(
    growing: float,
    rings: Iterable[tuple[int, float]],
    element_bytes: float,
    context: int,
    batch: int,
    ubatch: int,
    window_cache: str = "ring",
) -> float:
    """``(growing x context + sum of window elements x window cells) x element bytes x batch``: the one KV
    formula.

    Mixtral 8x7B, bf16, 8,192 tokens x 4 sequences: 65,536 elements x 8,192 x 2 B x 4 = 4 GiB.
    """
    cells = growing * context + sum(e * window_cells(window_cache, w, context, ubatch) for w, e in rings)
    return cells * element_bytes * batch


def logged_kv_tokens(
    arch: ArchSpec,
    dtype: str,
    engine: Engine,
    kv_bytes: float,
    log: str = "per_token",
    context: int = 0,
    batched: int = LLAMA_CPP_UBATCH,
) -> float:
    """The token count an engine logs for a KV pool of ``kv_bytes``.

    ``per_token``: the pool over the bytes one more token costs (llama.cpp, and vLLM for models without windowed
    layers).  ``vllm_groups``: vLLM <= 0.20's "GPU KV cache size", ``num_blocks // groups x block_size``, which
    for equal-sized layer groups is the pool over every layer's bytes per token (gpt-oss-120b: 5.38 GiB /
    73,728 B = 78,384, hf-mem issue #60).  ``vllm_concurrency``: vLLM >= 0.21's figure, ``max_concurrency x
    max_model_len``: the pool over one ``context``-token sequence's cache, times ``context`` (vLLM PR #40694,
    issue #43308).
    """
    if log == "vllm_groups":
        every_layer = _elements(arch, "full", 0, sparse_layout(engine, dtype))[0] * KV_DTYPES[dtype]
        return kv_bytes / every_layer
    if log == "vllm_concurrency":
        per_sequence = kv_cache_bytes(arch, context, 1, dtype, engine, ubatch=batched)
        return kv_bytes / per_sequence * context
    return kv_bytes / kv_bytes_per_token(arch, dtype, engine)


@functools.lru_cache(maxsize=512)
def state_bytes_per_sequence(arch: ArchSpec, state_dtype: str = "fp32", conv_dtype: str = "fp32") -> float:
    """Recurrent state of one sequence, the whole model: each layer's convolution state in ``conv_dtype`` and
    recurrent state in ``state_dtype``, whatever the context (0 for attention-only models).  Qwen3-Next-80B-A3B,
    36 Gated DeltaNet layers: in fp32 (llama.cpp) 36 x 548,864 x 4 B = 75.4 MiB; in bf16 (vLLM's default for it)
    37.7 MiB."""
    conv = sum(layer.mixer.conv_state_elements for layer in layers(arch))
    state = sum(layer.mixer.recurrent_state_elements for layer in layers(arch))
    return conv * STATE_DTYPES[conv_dtype] + state * STATE_DTYPES[state_dtype]
