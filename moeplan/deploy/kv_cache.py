"""KV cache as each engine allocates it (bytes per token and for batch x context, summed over the layer list), and
the recurrent state of linear-attention and state-space layers (bytes per sequence, constant in the context).

Per layer and token a mixer keeps ``Mixer.kv_elements_per_token`` elements (:mod:`moeplan.model.layers`) of
``e`` bytes each (:mod:`moeplan.formats.kv_formats`).  Mixtral 8x7B in bf16: 32 layers x 2,048 x 2 B =
131,072 B/token; DeepSeek-V3 (MLA): 61 x 576 x 2 = 70,272 B/token.

Sliding-window and chunked layers are where engines differ (``Engine.window_cache``).  vLLM sizes every layer
for the full context when it reports capacity (gpt-oss-120b: 73,728 B/token, vLLM "GPU KV cache size" logs);
llama.cpp keeps a ring of ``window + n_ubatch`` cells per sequence for those layers, so only the
full-attention layers grow with the context (gpt-oss-120b: 36,864 B/token, plus a fixed ring; llama.cpp
``llama_kv_cache`` logs).  Multi-token-prediction layers (``--mtp``) cache like a full layer.
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


def swa_ring_cells(window: int, context: int, ubatch: int = LLAMA_CPP_UBATCH) -> int:
    """Cells llama.cpp keeps per sequence for a sliding-window layer: ``pad256(window + n_ubatch)``, at most
    the context (``llama_kv_cache_iswa``; Ollama's gpt-oss-120b log: window 128 + ubatch 1024 -> 1280 cells)."""
    return min(context, -(-(window + ubatch) // 256) * 256)


@dataclass(frozen=True, repr=False, eq=False)
class LayerCache(Value):
    """The cache of one layer under one engine: elements per token, and a ring window if it does not grow."""

    layer: int
    elements: float
    """Elements per token in the KV format (a layout with other formats inside, in equivalent elements)."""
    ring: int | None
    """Window of a ring that stops growing (llama.cpp's sliding layers); None: grows with the context."""

    def cells(self, context: int, ubatch: int) -> int:
        """Tokens cached per sequence at ``context``."""
        return context if self.ring is None else swa_ring_cells(self.ring, context, ubatch)


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
    for layer in layers(arch):
        window = layer.mixer.window if window_cache == "ring" else None
        out.append((layer, LayerCache(layer.index, layer.mixer.cache_elements(sparse), window)))
    for j in range(mtp_layers):
        layer = make_layer(arch, arch.num_layers + j)
        out.append((layer, LayerCache(layer.index, layer.mixer.cache_elements(sparse), None)))
    return tuple(out)


def check_kv_dtype(dtype: str, engine: Engine) -> None:
    """llama.cpp's block types (q8_0, q4_0, ...) exist only in llama.cpp."""
    if dtype in GGML_ONLY and engine.runs != "gguf":
        raise InputError(f"KV format '{dtype}' is a llama.cpp format", "use --engine llama.cpp, or fp8/bf16")


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

    Windowed layers under llama.cpp add a ring of :func:`swa_ring_cells` cells per sequence.
    """
    if context <= 0 or batch <= 0:
        raise InputError("context and batch must be positive")
    growing, rings = _elements(arch, engine.window_cache, mtp_layers, sparse_layout(engine, dtype))
    return cache_bytes(growing, rings, KV_DTYPES[dtype], context, batch, ubatch)


def cache_bytes(
    growing: float, rings: Iterable[tuple[int, float]], element_bytes: float, context: int, batch: int, ubatch: int
) -> float:
    """``(growing x context + sum of ring elements x ring cells) x element bytes x batch``: the one KV formula.

    Mixtral 8x7B, bf16, 8,192 tokens x 4 sequences: 65,536 elements x 8,192 x 2 B x 4 = 4 GiB.
    """
    cells = growing * context + sum(e * swa_ring_cells(w, context, ubatch) for w, e in rings)
    return cells * element_bytes * batch


def state_bytes_per_sequence(arch: ArchSpec, state_dtype: str = "fp32", conv_dtype: str = "fp32") -> float:
    """Recurrent state of one sequence, the whole model: each layer's convolution state in ``conv_dtype`` and
    recurrent state in ``state_dtype``, whatever the context (0 for attention-only models).  Qwen3-Next-80B-A3B,
    36 Gated DeltaNet layers: in fp32 (llama.cpp) 36 x 548,864 x 4 B = 75.4 MiB; in bf16 (vLLM's default for it)
    37.7 MiB."""
    conv = sum(layer.mixer.conv_state_elements for layer in layers(arch))
    state = sum(layer.mixer.recurrent_state_elements for layer in layers(arch))
    return conv * STATE_DTYPES[conv_dtype] + state * STATE_DTYPES[state_dtype]
