"""Serving-engine memory profiles: what each engine reserves, allocates and leaves unused on a GPU.

Figures from real logs (see docs/methodology.md for the full list):

* CUDA context and kernels: ~0.5 GiB per GPU with lazy module loading (ml-engineering measurements on A100:
  0.47 GiB); NCCL and custom all-reduce buffers add 1-2 GiB when the model is sharded (vLLM PR #10511:
  non-torch memory 1.79 GiB on 1 GPU... 3.58 GiB at TP=2 on H100).
* vLLM: a budget of ``gpu_memory_utilization`` x usable memory (0.92 by default since v0.21, which also counts
  CUDA-graph memory: ~0.5 GiB dense, ~1.5 GiB MoE, vLLM PR #39559); the peak activation of the profiling run at
  ``max_num_batched_tokens``; the rest becomes KV cache.
* SGLang: ``mem_fraction_static`` of usable memory for weights and KV (0.88 assumed here; SGLang picks it from
  the GPU size), CUDA graphs ~1 GiB.
* llama.cpp: no fractional reserve; a compute buffer for one ubatch, which grows with the context when flash
  attention is off (KQ scores ``n_ctx x n_ubatch x n_head x 4 B``).
* transformers: eager PyTorch; activations for the whole prompt and a caching-allocator slack.
"""

from __future__ import annotations

from dataclasses import dataclass

from moeplan.errors import InputError
from moeplan.records import Value

GIB = 1024**3


@dataclass(frozen=True, repr=False, eq=False)
class EngineProfile(Value):
    """Memory behaviour of one serving engine (per GPU)."""

    name: str
    reserve_fraction: float
    """Share of usable memory the engine leaves unused (1 - gpu_memory_utilization / mem_fraction_static)."""
    context_bytes: float
    """CUDA context, kernels, library workspaces on every GPU."""
    sharded_extra_bytes: float
    """NCCL and all-reduce buffers added when the model spans GPUs."""
    graph_bytes_dense: float
    graph_bytes_moe: float
    batched_tokens: int
    """Tokens in the largest forward pass the engine plans for (vLLM max_num_batched_tokens, llama.cpp ubatch)."""
    swa_ring: bool = False
    """Windowed layers keep a ring of window-sized cache (llama.cpp) instead of the full context."""
    slack_fraction: float = 0.0
    """Allocator fragmentation on top of the live tensors (eager PyTorch)."""
    source: str = ""


ENGINES: dict[str, EngineProfile] = {
    "vllm": EngineProfile(
        "vllm",
        1 - 0.92,
        0.5 * GIB,
        1.5 * GIB,
        0.5 * GIB,
        1.5 * GIB,
        8192,
        source="vLLM cache.py gpu_memory_utilization=0.92 (v0.21+); PRs #10511, #39559",
    ),
    "sglang": EngineProfile(
        "sglang",
        1 - 0.88,
        0.5 * GIB,
        1.5 * GIB,
        1.0 * GIB,
        1.0 * GIB,
        8192,
        source="SGLang mem_fraction_static (chosen by GPU size; 0.88 assumed), chunked_prefill_size 8192",
    ),
    "llama.cpp": EngineProfile(
        "llama.cpp",
        0.0,
        0.5 * GIB,
        0.3 * GIB,
        0.0,
        0.0,
        512,
        swa_ring=True,
        source="llama.cpp compute buffer logs (logdetective PR #106), n_ubatch 512",
    ),
    "transformers": EngineProfile(
        "transformers",
        0.0,
        0.5 * GIB,
        1.0 * GIB,
        0.0,
        0.0,
        0,
        slack_fraction=0.05,
        source="PyTorch caching allocator; ml-engineering debug/pytorch.md",
    ),
}
_ALIASES = {"llamacpp": "llama.cpp", "llama-cpp": "llama.cpp", "ollama": "llama.cpp", "hf": "transformers"}


def engine_profile(name: str) -> EngineProfile:
    """The profile for ``--engine``; an unknown name is an InputError listing the known ones."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ENGINES:
        raise InputError(f"unknown engine '{name}'", f"one of: {', '.join(ENGINES)}")
    return ENGINES[key]
