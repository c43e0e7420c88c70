"""ggml tensor types: block size and bytes per block, exactly as GGUF files store them.

A quantized ggml type stores a row of ``ne[0]`` elements as ``ne[0] / block`` blocks of ``size`` bytes, so

    bytes(tensor) = rows * (row_length / block) * size,   bits per weight = 8 * size / block

with no per-tensor extra (GGUF pads each tensor's data to 32 bytes, which is negligible and left out).
Worked value: Q4_K stores 256 weights in 144 bytes (two fp16 super-scales, 12 bytes of 6-bit sub-block
scales and mins, 128 bytes of 4-bit codes) = 4.5 bpw.

A type can only store rows whose length is a multiple of its block; ``llama-quantize`` then falls back to a
compatible type (``tensor_type_fallback``): Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0, the
256-block i-quants -> IQ4_NL, and F16 if even that fails.  gpt-oss (hidden 2880 = 11.25 x 256) meets this.

Source: ``ggml/src/ggml-common.h`` block structs and their static_asserts, ``ggml.c`` ``type_traits``
(ggml-org/ggml d99724f, 2026); fallbacks from llama.cpp ``src/llama-quant.cpp`` (007dbbf, 2026).
"""

from __future__ import annotations

from dataclasses import dataclass

from moeplan.model.tensors import Tensor
from moeplan.records import Value


@dataclass(frozen=True, repr=False, eq=False)
class GgmlType(Value):
    """One ggml storage type: ``size`` bytes per ``block`` elements."""

    name: str
    block: int
    size: int
    description: str

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.size / self.block


GGML_TYPES: dict[str, GgmlType] = {
    t.name: t
    for t in [
        GgmlType("F32", 1, 4, "IEEE float32"),
        GgmlType("F16", 1, 2, "IEEE float16"),
        GgmlType("BF16", 1, 2, "bfloat16"),
        GgmlType("Q8_0", 32, 34, "fp16 scale + 32 int8"),
        GgmlType("Q6_K", 256, 210, "16 sub-blocks of 16, 6-bit codes, int8 scales, fp16 super-scale"),
        GgmlType("Q5_K", 256, 176, "8 sub-blocks of 32, 5-bit codes, 6-bit scales/mins, fp16 d/dmin"),
        GgmlType("Q4_K", 256, 144, "8 sub-blocks of 32, 4-bit codes, 6-bit scales/mins, fp16 d/dmin"),
        GgmlType("Q3_K", 256, 110, "16 sub-blocks of 16, 3-bit codes, 6-bit scales, fp16 d"),
        GgmlType("Q2_K", 256, 84, "16 sub-blocks of 16, 2-bit codes, 4-bit scales/mins, fp16 d/dmin"),
        GgmlType("Q5_0", 32, 22, "fp16 scale + 32 5-bit codes"),
        GgmlType("Q5_1", 32, 24, "fp16 scale and min + 32 5-bit codes"),
        GgmlType("Q4_0", 32, 18, "fp16 scale + 32 4-bit codes"),
        GgmlType("Q4_1", 32, 20, "fp16 scale and min + 32 4-bit codes"),
        GgmlType("IQ4_XS", 256, 136, "non-linear 4-bit grid, 6-bit sub-block scales"),
        GgmlType("IQ4_NL", 32, 18, "non-linear 4-bit grid, fp16 scale per 32"),
        GgmlType("IQ3_XXS", 256, 98, "3.06-bit lattice codes"),
        GgmlType("IQ3_S", 256, 110, "3.44-bit lattice codes with signs and scales"),
        GgmlType("IQ2_XXS", 256, 66, "2.06-bit E8 lattice codes"),
        GgmlType("IQ2_XS", 256, 74, "2.31-bit E8 lattice codes with scales"),
        GgmlType("IQ2_S", 256, 82, "2.56-bit lattice codes"),
        GgmlType("IQ1_S", 256, 50, "1.56-bit ternary-like codes"),
        GgmlType("IQ1_M", 256, 56, "1.75-bit codes"),
        GgmlType("TQ1_0", 256, 54, "ternary, 5 trits per byte"),
        GgmlType("TQ2_0", 256, 66, "ternary, 2 bits per trit"),
        GgmlType("MXFP4", 32, 17, "OCP MXFP4: e8m0 scale + 32 e2m1"),
        GgmlType("NVFP4", 64, 36, "NVFP4: 4 fp8 scales per 16 + 64 e2m1"),
        GgmlType("Q1_0", 128, 18, "fp16 scale + 128 1-bit codes"),
        GgmlType("Q2_0", 64, 18, "fp16 scale + 64 2-bit codes"),
    ]
}

# llama-quant.cpp tensor_type_fallback: the type used when a row length is not a multiple of the block.
_FALLBACK: dict[str, str] = {
    **dict.fromkeys(["IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_XS"], "IQ4_NL"),
    **dict.fromkeys(["Q2_0", "Q2_K", "Q3_K", "TQ1_0", "TQ2_0"], "Q4_0"),
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
}


def ggml_type(name: str) -> GgmlType:
    """The type by name (case-insensitive); KeyError when there is none."""
    return GGML_TYPES[name.strip().upper()]


def storable_type(name: str, row_length: int) -> str:
    """The type llama.cpp really writes for rows of ``row_length`` when ``name`` is asked for.

    >>> storable_type("Q4_K", 2880), storable_type("Q4_K", 4096), storable_type("Q8_0", 100)
    ('Q5_0', 'Q4_K', 'F16')
    """
    t = ggml_type(name)
    if row_length % t.block == 0:
        return t.name
    fallback = _FALLBACK.get(t.name, "F16")
    return fallback if row_length % GGML_TYPES[fallback].block == 0 else "F16"


def tensor_bytes(t: Tensor, name: str) -> int:
    """Bytes of ``t`` stored as ggml type ``name``: rows x (row_length / block) x size.

    Rows whose length does not fit the block are stored in the fallback type (:func:`storable_type`).
    """
    gt = GGML_TYPES[storable_type(name, t.row_length)]
    if not t.is_matrix:
        return -(-t.elements // gt.block) * gt.size
    return t.rows * (t.row_length // gt.block) * gt.size
