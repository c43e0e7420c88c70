"""Quantization schemes: the exact storage of every weight tensor, scales and zero points included.

A *format* stores one tensor (``bf16``, ``fp8-block128``, ``gptq-int4``, ``mxfp4``, a GGUF block type such as
``q4_k``...).  A *scheme* says which format each tensor class gets: named schemes follow what their toolchains
do (GPTQ and AWQ leave the router, embedding and output head in 16-bit; llama.cpp's mixes give some tensors
more bits by role and layer), and ``--quant experts=mxfp4,attention=bf16`` overrides per class, after an
optional base scheme (``--quant fp8,experts=mxfp4``).  1-D tensors (norms, biases, sinks) always stay in the
checkpoint dtype.

Storage bits of one ``N x K`` matrix (K = row length = input features), ``c`` copies:

    bits = c * (N*K*b + N*ceil(K/g)*s_g + N*s_row + K*s_col + s_tensor + ceil(N/B)*ceil(K/B)*s_tile)

with b the payload bits and s_* the scale/zero/index bits per group g, row, column, tensor and BxB tile.
Worked values (Mixtral-size K = 4096): GPTQ 4-bit g128 = 4 + 20/128 + 32/N = 4.164 bpw; AWQ 4.156; bnb nf4
4.5 (4.127 with double quantization); MXFP4 4.25; NVFP4 4.5; fp8 128x128 blocks 8.002.  Sources:
AutoGPTQ ``QuantLinear`` buffers, AutoAWQ ``WQLinear_GEMM``, bitsandbytes ``quantize_4bit``, OCP MX v1.0,
NVIDIA's NVFP4 blog (2025-06-24), DeepSeek-V3 README_WEIGHTS.md.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from moeplan.errors import InputError
from moeplan.model.layers import model_tensors
from moeplan.model.spec import ArchSpec, ModelSpec, ParamKind, PublishedLayout
from moeplan.model.tensors import Tensor
from moeplan.records import Value


@dataclass(frozen=True, repr=False, eq=False)
class WeightFormat(Value):
    """Storage of one tensor; see the module docstring for the formula."""

    name: str
    bits: float
    group: int | None = None
    group_bits: float = 0.0
    row_bits: float = 0.0
    col_bits: float = 0.0
    tensor_bits: float = 0.0
    tile: int | None = None
    tile_bits: float = 0.0
    description: str = ""
    matmul: str = "bf16"
    """The dtype engines multiply in where the GPU has units for it (else bf16): fp8 checkpoints run fp8 GEMMs."""
    kernels: str = "any"
    """What a GPU needs to run it as stored: ``any``; ``fp8`` (fp8 units, or NVIDIA's W8A16 kernels);
    ``packed4`` (GPTQ/AWQ kernels: NVIDIA Turing or newer, AMD MI300 or newer); ``mxfp4`` (as ``packed4`` but from
    NVIDIA Ampere: vLLM's MXFP4 needs compute capability 8.0); ``nvfp4`` (NVIDIA's own format: Blackwell's fp4 units,
    Marlin's FP4 kernels on Ampere and Hopper; no AMD kernels); ``apple`` (MLX's kernels: Apple silicon only)."""
    gguf_equivalent: str = "Q4_K_M"
    """The llama.cpp file type people make from a checkpoint in this format."""

    def tensor_bytes(self, t: Tensor) -> int:
        """Bytes of ``t`` in this format (1-D tensors: payload only)."""
        if not t.is_matrix:
            return math.ceil(t.elements * self.bits / 8)
        n, k, c = t.rows // t.count, t.row_length, t.count
        bits = n * k * self.bits + n * self.row_bits + k * self.col_bits + self.tensor_bits
        if self.group:
            bits += n * math.ceil(k / self.group) * self.group_bits
        if self.tile:
            bits += math.ceil(n / self.tile) * math.ceil(k / self.tile) * self.tile_bits
        return math.ceil(c * bits / 8)

    def nominal_bpw(self, k: int = 4096, n: int = 4096) -> float:
        """Bits per weight of one ``n x k`` matrix, overheads included."""
        return self.tensor_bytes(Tensor("other", "x", (n, k))) * 8 / (n * k)


_FP8: dict[str, Any] = {"matmul": "fp8", "kernels": "fp8", "gguf_equivalent": "Q8_0"}


def _gptq(bits: int, group: int | None) -> WeightFormat:
    # fp16 scale + b-bit packed zero per group (per column when group is None: g = K), int32 g_idx per column.
    g = f"g{group}" if group else "per-channel"
    return WeightFormat(
        f"gptq-int{bits}" + (f"-g{group}" if group and group != 128 else "" if group else "-pc"),
        bits,
        group=group or 10**12,
        group_bits=16 + bits,
        col_bits=32,
        description=f"GPTQ {bits}-bit {g}: fp16 scale and {bits}-bit zero per {'group' if group else 'output row'}, "
        "int32 g_idx per input column",
        kernels="packed4",
    )


FORMATS: dict[str, WeightFormat] = {
    f.name: f
    for f in [
        WeightFormat("fp32", 32, description="IEEE float32", gguf_equivalent="F16"),
        WeightFormat("bf16", 16, description="bfloat16", gguf_equivalent="BF16"),
        WeightFormat("fp16", 16, description="IEEE float16", gguf_equivalent="F16"),
        WeightFormat("fp8", 8, tensor_bits=32, description="fp8 e4m3, one fp32 scale per tensor", **_FP8),
        WeightFormat("fp8-channel", 8, row_bits=32, description="fp8 e4m3, one fp32 scale per output row", **_FP8),
        WeightFormat(
            "fp8-block128",
            8,
            tile=128,
            tile_bits=32,
            description="fp8 e4m3, fp32 scale per 128x128 tile (DeepSeek-V3)",
            **_FP8,
        ),
        WeightFormat(
            "int8",
            8,
            row_bits=32,
            description="int8 weights, fp32 scale per output row (LLM.int8, W8A16)",
            gguf_equivalent="Q8_0",
        ),
        WeightFormat("mxfp8", 8, group=32, group_bits=8, description="OCP MXFP8: e4m3 + e8m0 scale per 32"),
        WeightFormat("mxfp6", 6, group=32, group_bits=8, description="OCP MXFP6: e2m3 + e8m0 scale per 32"),
        WeightFormat(
            "mxfp4",
            4,
            group=32,
            group_bits=8,
            description="OCP MXFP4: e2m1 + e8m0 scale per 32 (gpt-oss)",
            kernels="mxfp4",
        ),
        WeightFormat(
            "nvfp4",
            4,
            group=16,
            group_bits=8,
            tensor_bits=32,
            description="NVFP4: e2m1, fp8 scale per 16, fp32 per tensor",
            kernels="nvfp4",
            gguf_equivalent="NVFP4",
        ),
        WeightFormat("nf4", 4, group=64, group_bits=32, description="bitsandbytes NF4, fp32 absmax per 64"),
        WeightFormat("fp4", 4, group=64, group_bits=32, description="bitsandbytes FP4, fp32 absmax per 64"),
        WeightFormat(
            "nf4-dq", 4, group=64, group_bits=8 + 32 / 256, description="bitsandbytes NF4 with double quantization"
        ),
        WeightFormat(
            "fp4-dq", 4, group=64, group_bits=8 + 32 / 256, description="bitsandbytes FP4 with double quantization"
        ),
        _gptq(4, 128),
        _gptq(4, 64),
        _gptq(4, 32),
        _gptq(4, None),
        _gptq(8, 128),
        _gptq(3, 128),
        _gptq(2, 128),
        WeightFormat(
            "awq-int4",
            4,
            group=128,
            group_bits=20,
            description="AWQ 4-bit g128: fp16 scale, 4-bit zero",
            kernels="packed4",
        ),
        WeightFormat("hqq-int4", 4, group=64, group_bits=32, description="HQQ 4-bit g64: fp16 scale and zero"),
        *(
            WeightFormat(
                f"mlx-{b}bit",
                b,
                group=64,
                group_bits=32,
                kernels="apple",
                gguf_equivalent=mix,
                description=f"MLX affine {b}-bit g64: fp16 scale and bias (mlx.core.quantize)",
            )
            for b, mix in ((3, "Q3_K_M"), (4, "Q4_K_M"), (6, "Q6_K"), (8, "Q8_0"))
        ),
        *(
            WeightFormat(
                f"int4-g{g}",
                4,
                group=g,
                group_bits=16,
                description=f"int4 symmetric, one 16-bit scale per {g} (compressed-tensors pack-quantized, W4A16)",
                kernels="packed4",
            )
            for g in (32, 64, 128)
        ),
        WeightFormat("hqq-int3", 3, group=64, group_bits=32, description="HQQ 3-bit g64: fp16 scale and zero"),
        WeightFormat("hqq-int2", 2, group=16, group_bits=32, description="HQQ 2-bit g16: fp16 scale and zero"),
    ]
}
FORMAT_ALIASES = {
    "float32": "fp32",
    "f32": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "f16": "fp16",
    "half": "fp16",
    "fp8-e4m3": "fp8",
    "fp8-tensor": "fp8",
    "fp8-block": "fp8-block128",
    "int8-weight-only": "int8",
    "w8a16": "int8",
    "llm.int8": "int8",
    "gptq": "gptq-int4",
    "gptq-int4-g128": "gptq-int4",
    "gptq-int8-g128": "gptq-int8",
    "awq": "awq-int4",
    "bnb-nf4": "nf4",
    "bnb-fp4": "fp4",
    "hqq": "hqq-int4",
}

# Tensor classes a user can name in a per-class override, with their aliases.
CLASSES: dict[str, ParamKind] = {
    "experts": "routed_experts",
    "routed_experts": "routed_experts",
    "shared_experts": "shared_experts",
    "shared": "shared_experts",
    "attention": "attention",
    "attn": "attention",
    "dense_mlp": "dense_mlp",
    "mlp": "dense_mlp",
    "embedding": "embedding",
    "embeddings": "embedding",
    "lm_head": "lm_head",
    "head": "lm_head",
    "output": "lm_head",
    "router": "router",
    "norm": "norm",
    "norms": "norm",
}

_LINEAR: tuple[ParamKind, ...] = ("attention", "routed_experts", "shared_experts", "dense_mlp")


@dataclass(frozen=True, repr=False, eq=False)
class Scheme(Value):
    """Which format each tensor class gets.

    ``base`` applies to the classes in ``quantized`` (the others keep ``rest``); ``gguf`` names a llama.cpp
    mix that decides per tensor instead; ``overrides`` win over both.  ``kept_roles``: tensors (by role, such as
    ``attn_q_b``) a published checkpoint keeps at ``rest`` inside a quantized class (:func:`model_scheme`).
    """

    name: str
    base: str = "bf16"
    quantized: tuple[ParamKind, ...] = _LINEAR
    rest: str = "bf16"
    gguf: str | None = None
    overrides: dict[ParamKind, str] = field(default_factory=dict)
    kept_roles: tuple[str, ...] = ()

    def __hash__(self) -> int:  # the overrides dict is part of the value: hash its items
        overrides = tuple(sorted(self.overrides.items()))
        return hash((self.name, self.base, self.quantized, self.rest, self.gguf, overrides, self.kept_roles))

    @property
    def is_gguf(self) -> bool:
        """Whether llama.cpp types are involved (a mix, or a GGUF block type given for a class)."""
        return self.gguf is not None or any(v.isupper() for v in self.overrides.values())


# Named schemes: the format, and the classes its toolchain quantizes (quant.md section 5).
_SCHEME_CLASSES: dict[str, tuple[ParamKind, ...]] = {
    # bitsandbytes quantizes every nn.Linear but the output head: the router included.
    "nf4": (*_LINEAR, "router"),
    "fp4": (*_LINEAR, "router"),
    "nf4-dq": (*_LINEAR, "router"),
    "fp4-dq": (*_LINEAR, "router"),
    "int8": (*_LINEAR, "router"),
}


def _format_name(raw: str) -> str:
    key = raw.strip().lower().replace("_", "-")
    return FORMAT_ALIASES.get(key, key)


def weight_format(name: str) -> WeightFormat | None:
    """A non-GGUF format by name or alias, or None."""
    return FORMATS.get(_format_name(name))


def _is_gguf_type(name: str) -> bool:
    from moeplan.formats.ggml import GGML_TYPES

    return name.strip().upper() in GGML_TYPES


def _is_gguf_mix(name: str) -> bool:
    from moeplan.formats.gguf_mix import ftype_name

    return ftype_name(name) is not None


def _check_format(name: str, where: str) -> str:
    if weight_format(name) is not None:
        return _format_name(name)
    if _is_gguf_type(name):
        return name.strip().upper()
    if _is_gguf_mix(name):  # Q4_K_M picks a type per tensor: it is a whole scheme, not one class's format
        raise InputError(f"{name} in {where} is a GGUF mix (a type per tensor), not one type",
                         f"--quant {name} for the mix, or a type for the class (Q4_K, Q6_K, Q8_0, ...)")  # fmt: skip
    raise InputError(f"unknown weight format '{name}' in {where}", "run `moeplan quants` for the list")


@functools.lru_cache(maxsize=1024)
def parse_scheme(text: str, native: str | None = None, dtype: str = "bf16") -> Scheme:
    """``--quant`` -> Scheme.  ``native`` (the checkpoint's own scheme) applies when ``text`` names only overrides.

    Forms: ``fp8``; ``Q4_K_M``; ``experts=mxfp4,attention=bf16``; ``fp8,experts=mxfp4``.
    """
    if not text or not text.strip():
        raise InputError("empty --quant", "name a format such as bf16, fp8, gptq-int4 or Q4_K_M")
    base_name: str | None = None
    overrides: dict[ParamKind, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise InputError(f"--quant '{text}' has an empty item")
        if "=" in part:
            cls, _, fmt = part.partition("=")
            kind = CLASSES.get(cls.strip().lower().replace("-", "_"))
            if kind is None:
                raise InputError(
                    f"--quant: '{cls.strip()}' is not a tensor class", f"one of: {', '.join(sorted(set(CLASSES)))}"
                )
            if kind in overrides:
                raise InputError(f"--quant '{text}' gives the class '{cls.strip()}' twice", "give each class once")
            overrides[kind] = _check_format(fmt, f"--quant {cls.strip()}=")
        elif base_name is not None:
            raise InputError(f"--quant '{text}' names two base schemes", "give one, then class=format overrides")
        else:
            base_name = part
    if base_name is None and native and "=" in native:  # a per-class native scheme (Kimi K2 Thinking's)
        base = parse_scheme(native, None, dtype)
    elif base_name is None:
        base = named_scheme(native, dtype) if native else named_scheme(dtype, dtype)
    else:
        base = named_scheme(base_name, dtype)
    if not overrides:
        return base
    merged = {**base.overrides, **overrides}
    label = ",".join([base.name.split(",")[0], *(f"{k}={v}" for k, v in merged.items())])
    return Scheme(label, base.base, base.quantized, base.rest, base.gguf, merged, base.kept_roles)


def sixteen_bit(spec: ModelSpec) -> str:
    """The 16-bit format of a model's weights (its own dtype where that is bf16 or fp16, else bf16): what a search
    adds under ``--min-bits`` above 8 for a checkpoint published in fp8 or MXFP4."""
    return spec.weights_dtype if spec.weights_dtype in ("bf16", "fp16") else "bf16"


def article(word: str) -> str:
    """``a`` or ``an`` before a format name read letter by letter: an nvfp4, an fp8, an mxfp4, an awq-int4, a bf16
    (a letter whose name starts with a vowel sound: a, e, f, h, i, l, m, n, o, r, s, x)."""
    return "an" if word[:1].lower() in "aefhilmnorsx" else "a"


def local_checkpoint(stem: str, source: str, scheme: str, like: str = "") -> tuple[str, str]:
    """A local directory for a checkpoint in ``scheme`` that no repository moeplan knows holds, and the comment that
    says what it must hold (a launch line that names it fails loudly until it does, where the base repository
    would load another format): ``./Qwen3-30B-A3B-awq-int4``, "an awq-int4 checkpoint of Qwen/Qwen3-30B-A3B"."""
    path = f"./{stem}-{scheme.replace(',', '+').replace('=', '-')}"  # per-class overrides: no comma or = in a path
    return path, f"{path}: {article(scheme)} {scheme} checkpoint of {source}{like} (make one, or name a published one)"


def shipped_layout(spec: ModelSpec, scheme: Scheme) -> PublishedLayout | None:
    """The publisher's checkpoint whose layout ``scheme`` follows (:func:`model_scheme`), or None."""
    if not scheme.kept_roles:
        return None
    return next((x for x in spec.published_layouts if x.kept_roles == scheme.kept_roles), None)


def model_scheme(spec: ModelSpec, text: str) -> Scheme:
    """``--quant`` for ``spec``: :func:`parse_scheme`, and where the format is one a publisher ships the model in
    (``spec.published_layouts``, named plainly: no class overrides) the tensors that checkpoint keeps in its
    float dtype.  DeepSeek-V3/R1 in NVFP4 (nvidia/DeepSeek-R1-0528-NVFP4-v2): the experts, shared experts, dense
    MLP and the attention output in NVFP4, the other attention projections in bf16 -- 4.25B parameters, 6.1 GB
    more than NVFP4 everywhere (386 GB of weights, not 380), and GEMMs that run at the bf16 peak."""
    scheme = parse_scheme(text, spec.native_quant, spec.weights_dtype)
    if scheme.gguf is not None or scheme.overrides:
        return scheme
    for layout in spec.published_layouts:
        if _format_name(layout.format) == scheme.base and scheme.name == scheme.base:
            return Scheme(scheme.name, scheme.base, scheme.quantized, scheme.rest, None, {}, layout.kept_roles)
    return scheme


def named_scheme(name: str, dtype: str = "bf16") -> Scheme:
    """A scheme by name: a GGUF mix, ``mxfp4-experts`` (gpt-oss), or a format applied as its toolchain does."""
    rest = _format_name(dtype) if weight_format(dtype) else "bf16"
    key = _format_name(name)
    if key == "mxfp4-experts":
        return Scheme("mxfp4-experts", "mxfp4", ("routed_experts",), rest)
    fmt = weight_format(key)
    if fmt is None and _is_gguf_mix(name):
        from moeplan.formats.gguf_mix import ftype_name

        mix = ftype_name(name)
        assert mix is not None
        return Scheme(mix, gguf=mix)
    if fmt is None:
        from moeplan.formats.gguf_labels import publisher_label

        pub = publisher_label(name)
        if pub is not None:  # UD-Q4_K_XL, Q2_K_L: the default mix it starts from, named as published
            return Scheme(pub[0], gguf=pub[1])
        from difflib import get_close_matches

        from moeplan.formats.gguf_mix import FTYPES

        def bare(text: str) -> str:  # Q4_K_M, q4-k-m and q4km alike
            return text.lower().replace("_", "").replace("-", "")

        names = {bare(n): n for n in (*FTYPES, *FORMATS, "mxfp4-experts")}  # a format over a mix of its name
        close = get_close_matches(bare(name), list(names), n=3, cutoff=0.5)
        near = [names[n] for n in close] or [n for b, n in names.items() if b.startswith(bare(name))][:3]
        hint = f"did you mean {', '.join(near)}? " if near else ""
        raise InputError(f"unknown quantization '{name}'", f"{hint}`moeplan quants` lists the formats and GGUF mixes")
    if fmt.bits >= 16:  # an unquantized dtype: everything in it
        return Scheme(fmt.name, fmt.name, (*_LINEAR, "router", "embedding", "lm_head"), fmt.name)
    return Scheme(fmt.name, fmt.name, _SCHEME_CLASSES.get(fmt.name, _LINEAR), rest)


def tensor_format(scheme: Scheme, t: Tensor, arch: ArchSpec) -> str:
    """The format name one tensor is stored in under ``scheme``."""
    if not t.is_matrix:
        return scheme.rest if scheme.gguf is None else "F32"
    if t.kind in scheme.overrides:
        fmt = scheme.overrides[t.kind]
        if weight_format(fmt) is None:  # a GGUF type: stored in llama.cpp's fallback where the row does not fit
            from moeplan.formats.ggml import storable_type

            return storable_type(fmt, t.row_length)
        return fmt
    if scheme.gguf is not None:
        from moeplan.formats.gguf_mix import gguf_type_for

        return gguf_type_for(scheme.gguf, t, arch)
    return scheme.base if t.kind in scheme.quantized and t.role not in scheme.kept_roles else scheme.rest


def format_bytes(fmt: str, t: Tensor) -> int:
    """Bytes of ``t`` in format ``fmt`` (a moeplan format or a GGUF block type)."""
    wf = weight_format(fmt)
    if wf is not None:
        return wf.tensor_bytes(t)
    from moeplan.formats.ggml import tensor_bytes

    return tensor_bytes(t, fmt.upper())


@functools.lru_cache(maxsize=512)
def quantized_tensors(arch: ArchSpec, scheme: Scheme) -> tuple[tuple[Tensor, str, int], ...]:
    """Every tensor with its format and bytes under ``scheme`` (cached per model and scheme)."""
    return tuple(
        (t, fmt, format_bytes(fmt, t)) for t in model_tensors(arch) for fmt in [tensor_format(scheme, t, arch)]
    )


def weights_bytes_by_kind(arch: ArchSpec, scheme: Scheme) -> dict[ParamKind, int]:
    """Bytes of all weights under ``scheme``, by tensor class."""
    return dict(_bytes_by_kind(arch, scheme))


@functools.lru_cache(maxsize=512)
def _bytes_by_kind(arch: ArchSpec, scheme: Scheme) -> tuple[tuple[ParamKind, int], ...]:
    c: Counter[ParamKind] = Counter()
    for t, _, b in quantized_tensors(arch, scheme):
        c[t.kind] += b
    return tuple(c.items())


def catalog_formats() -> list[tuple[str, float, str]]:
    """``(name, bits per weight of a 4096 x 4096 matrix, description)`` for every non-GGUF format."""
    return [(f.name, f.nominal_bpw(), f.description) for f in FORMATS.values()]


def scheme_formats(scheme: Scheme) -> set[str]:
    """The formats a (non-GGUF) scheme stores its quantized tensors in: its base and its overrides."""
    return {scheme.base, *scheme.overrides.values()}


def kernel_needs(scheme: Scheme) -> set[str]:
    """What a GPU needs to run ``scheme`` as stored (see :attr:`WeightFormat.kernels`); GGUF types need nothing."""
    return {f.kernels for name in scheme_formats(scheme) if (f := weight_format(name)) is not None} - {"any"}


def gguf_equivalent(native: str) -> str:
    """The llama.cpp file type people make from a checkpoint whose own format is ``native``.

    gpt-oss's MXFP4 experts -> MXFP4_MOE; bf16 -> BF16; fp16/fp32 -> F16; fp8 and int8 -> Q8_0; NVFP4 -> NVFP4;
    a GGUF mix stays itself; anything else -> Q4_K_M (what most published GGUF repositories lead with).
    """
    key = native.strip().lower()
    if key in ("mxfp4-experts", "mxfp4_moe"):
        return "MXFP4_MOE"
    fmt = weight_format(key)
    if fmt is not None:
        return fmt.gguf_equivalent
    return native.upper() if native.isupper() else "Q4_K_M"


def offload_quant(native: str | None) -> str:
    """What people offload with llama.cpp: a GGUF file's own mix, gpt-oss's 4-bit experts, else Q4_K_M."""
    mix = gguf_equivalent(native) if native else "Q4_K_M"
    return mix if mix == "MXFP4_MOE" or (native and native.isupper()) else "Q4_K_M"


def stored_scheme(native_quant: str | None, scheme: Scheme, gguf_file: bool = False) -> Scheme:
    """``scheme`` as a file of it really stores a model whose checkpoint is ``native_quant``: gpt-oss's GGUF files,
    under any label, keep the routed experts in their native MXFP4 (llama.cpp's converter writes them so even for
    F16/BF16; unsloth's Q2_K..Q5_K_M gpt-oss-20b files are 11.5-11.7 GB, F16 13.8 GB).  ``gguf_file``: the engine
    loads GGUF files, so a float label (``F16``, ``bf16``) names such a file too (ggml-org's gpt-oss-20b-F16.gguf:
    12.83 GiB, not the 39 GiB of every weight in fp16)."""
    if (
        (scheme.gguf or (gguf_file and scheme.base == scheme.rest and scheme.base in ("bf16", "fp16", "fp32")))
        and (native_quant or "").lower() in ("mxfp4", "mxfp4-experts")
        and "routed_experts" not in scheme.overrides
        and scheme.gguf != "MXFP4_MOE"
    ):
        return replace(scheme, overrides={**scheme.overrides, "routed_experts": "MXFP4"})
    return scheme
