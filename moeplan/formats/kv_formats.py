"""KV cache and recurrent-state formats: bytes per element, as engines store them.

bf16/fp16 2 B, fp8 1 B, fp32 4 B, and llama.cpp's block types with their scales: q8_0 34/32, q5_1 24/32,
q5_0 22/32, q4_1 20/32, q4_0 and iq4_nl 18/32 bytes per element (ggml ``block_q*`` structs).  The block types
exist only in llama.cpp (:data:`GGML_ONLY`).
"""

from __future__ import annotations

from moeplan.errors import InputError

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
GGML_ONLY = {"q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl"}


def kv_dtype(name: str) -> str:
    """Canonical KV format name, or InputError listing the known ones."""
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in KV_DTYPES:
        raise InputError(f"unknown KV cache format '{name}'", f"one of: {', '.join(KV_DTYPES)}")
    return key


STATE_DTYPES: dict[str, float] = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0}
"""Bytes per element of a recurrent state (linear attention, state-space layers): fp32 by default in engines."""


def state_dtype(name: str) -> str:
    """Canonical recurrent-state format name, or InputError listing the known ones."""
    key = _ALIASES.get(name.strip().lower().replace("-", "_"), name.strip().lower())
    if key not in STATE_DTYPES:
        raise InputError(f"unknown recurrent-state format '{name}'", f"one of: {', '.join(STATE_DTYPES)}")
    return key
