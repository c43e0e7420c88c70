"""Typical quality cost of a weight format, relative to the 16-bit checkpoint, from published measurements.

Each family has a label on a four-step scale (``near-lossless`` < ``small loss`` < ``noticeable loss`` <
``large loss``), the figure behind it and its source with the date.  The figures are for large models
(70B and up, where quantization costs least); small models lose more.  The checkpoint's own format is the
reference (``as published``): gpt-oss's MXFP4 experts or DeepSeek's fp8 blocks cost nothing relative to the
weights their makers released.

What decides a configuration's label is the format of its routed experts (most of an MoE's weights); a
dense model's is that of its MLP and attention matrices.  GGUF mixes are labelled by name.

Sources (each row names its own):
  Kurtic et al., "Give Me BF16 or Give Me Death"? (Red Hat AI / ISTA), arXiv 2411.02355, 2024-11:
    https://arxiv.org/abs/2411.02355 ; over 500,000 evaluations of Llama 3.1 8B-405B.
  llama.cpp examples/perplexity/README.md, Llama 2 70B scorechart (wikitext-2 perplexity vs fp16), 2023:
    https://github.com/ggerganov/llama.cpp/blob/0a21ad6e3f457f81ad6af43b95856bf7064a9ef9/examples/perplexity/README.md
  NVIDIA, "Introducing NVFP4 for Efficient and Accurate Low-Precision Inference", 2025-06-24:
    https://developer.nvidia.com/blog/introducing-nvfp4-for-efficient-and-accurate-low-precision-inference/
  Egiazarian et al., "Bridging the Gap Between Promise and Performance for Microscaling FP4 Quantization",
    arXiv 2509.23202, 2025-09: https://arxiv.org/abs/2509.23202
  Dettmers et al., "QLoRA", arXiv 2305.14314, 2023-05: https://arxiv.org/abs/2305.14314
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from moeplan.records import Value

if TYPE_CHECKING:
    from moeplan.formats.schemes import Scheme
    from moeplan.model.spec import ArchSpec, ModelSpec, ParamKind

LABELS = ("as published", "near-lossless", "small loss", "noticeable loss", "large loss")
"""The scale, best first; ``as published`` and ``near-lossless`` both rank 0."""

_RED_HAT = "https://arxiv.org/abs/2411.02355 (Kurtic et al., Red Hat AI, 2024-11)"
_LLAMA_CPP = (
    "https://github.com/ggerganov/llama.cpp/blob/0a21ad6e3f457f81ad6af43b95856bf7064a9ef9/examples/perplexity/"
    "README.md (Llama 2 70B scorechart, 2023)"
)
_NVIDIA = (
    "https://developer.nvidia.com/blog/introducing-nvfp4-for-efficient-and-accurate-low-precision-inference/ "
    "(2025-06-24)"
)
_MXFP4 = "https://arxiv.org/abs/2509.23202 (Egiazarian et al., 2025-09)"
_QLORA = "https://arxiv.org/abs/2305.14314 (Dettmers et al., 2023-05)"


@dataclass(frozen=True, repr=False, eq=False)
class Quality(Value):
    """The typical quality cost of one format family: its label, the figure behind it, and the source."""

    label: str
    note: str
    source: str

    @property
    def rank(self) -> int:
        """0 (as published, near-lossless) to 3 (large loss): lower is better."""
        return max(0, LABELS.index(self.label) - 1)


def _ppl(delta: str) -> str:
    return f"Llama 2 70B wikitext-2 perplexity {delta} vs fp16"


_K = {  # GGUF mixes: the llama.cpp scorechart's perplexity increase over fp16
    "Q6_K": ("near-lossless", _ppl("+0.16%")),
    "Q5_K_M": ("near-lossless", _ppl("+0.40%")),
    "Q5_K_S": ("near-lossless", _ppl("+0.50%")),
    "Q5_0": ("small loss", _ppl("+1.26%")),
    "Q4_K_M": ("small loss", _ppl("+1.20%")),
    "Q4_K_S": ("small loss", _ppl("+1.57%")),
    "Q4_1": ("noticeable loss", _ppl("+2.37%")),
    "Q4_0": ("noticeable loss", _ppl("+3.61%")),
    "Q3_K_L": ("noticeable loss", _ppl("+3.80%")),
    "Q3_K_M": ("noticeable loss", _ppl("+4.72%")),
    "Q3_K_S": ("large loss", _ppl("+7.89%")),
    "Q2_K": ("large loss", _ppl("+8.82%")),
}
# Mixes the scorechart lacks, placed by bits per weight between the k-quants it has (same source).
_K_BY_SIZE = {
    "Q8_0": ("near-lossless", "8.5 bpw, above Q6_K: " + _ppl("+0.16%") + " for Q6_K"),
    "Q5_1": ("near-lossless", "between Q5_K_S (" + _ppl("+0.50%") + ") and Q6_K"),
    "IQ4_XS": ("small loss", "4.25 bpw, placed with Q4_K_S: " + _ppl("+1.57%")),
    "IQ4_NL": ("small loss", "4.5 bpw, placed with Q4_K_S: " + _ppl("+1.57%")),
    "IQ3_M": ("noticeable loss", "about 3.7 bpw, placed with Q3_K_M: " + _ppl("+4.72%")),
    "IQ3_S": ("noticeable loss", "3.4-3.5 bpw, placed with Q3_K_M: " + _ppl("+4.72%")),
    "IQ3_XS": ("large loss", "3.3 bpw, placed with Q3_K_S: " + _ppl("+7.89%")),
    "IQ3_XXS": ("large loss", "3.06 bpw, placed with Q3_K_S: " + _ppl("+7.89%")),
    "Q2_K_S": ("large loss", "below Q2_K: " + _ppl("+8.82%") + " for Q2_K"),
    "IQ2_M": ("large loss", "2.7 bpw, below Q2_K: " + _ppl("+8.82%") + " for Q2_K"),
    "IQ2_S": ("large loss", "2.5 bpw, below Q2_K: " + _ppl("+8.82%") + " for Q2_K"),
    "IQ2_XS": ("large loss", "2.3 bpw, below Q2_K: " + _ppl("+8.82%") + " for Q2_K"),
    "IQ2_XXS": ("large loss", "2.06 bpw, below Q2_K: " + _ppl("+8.82%") + " for Q2_K"),
    "IQ1_M": ("large loss", "1.75 bpw, far below Q2_K: " + _ppl("+8.82%") + " for Q2_K"),
    "IQ1_S": ("large loss", "1.56 bpw, far below Q2_K: " + _ppl("+8.82%") + " for Q2_K"),
}
_UNQUANTIZED = frozenset({"bf16", "fp16", "fp32", "F16", "BF16", "F32"})

_FP8 = ("near-lossless", "W8A8 fp8: effectively lossless on Llama 3.1 8B-405B (over 500,000 evaluations)", _RED_HAT)
_INT4 = ("small loss", "W4A16 int4 (GPTQ): about 98-99% of bf16 accuracy on Llama 3.1 8B-405B", _RED_HAT)
_INT8_WEIGHTS = ("near-lossless", "8-bit weight-only: no more loss than W8A8 fp8 (effectively lossless)", _RED_HAT)
_SIX = ("near-lossless", "6-bit, placed with Q6_K: " + _ppl("+0.16%"), _LLAMA_CPP)
_NF4 = ("small loss", "NF4: 16-bit parity on MMLU after QLoRA tuning of LLaMA 7B-65B; plain PTQ as int4", _QLORA)
_BNB_FP4 = ("noticeable loss", "bitsandbytes FP4: below NF4 in the QLoRA paper's comparison", _QLORA)
_THREE = ("noticeable loss", "3-bit, placed with Q3_K_M: " + _ppl("+4.72%"), _LLAMA_CPP)
_TWO = ("large loss", "2-bit, below Q2_K: " + _ppl("+8.82%") + " for Q2_K", _LLAMA_CPP)
_FORMATS: dict[str, tuple[str, str, str]] = {
    **dict.fromkeys(("fp8", "fp8-channel", "fp8-block128", "mxfp8"), _FP8),
    "int8": ("small loss", "W8A8 int8: 1-3% accuracy drop on Llama 3.1 (weight-only int8 loses no more)", _RED_HAT),
    **dict.fromkeys(("gptq-int8", "mlx-8bit"), _INT8_WEIGHTS),
    "mlx-6bit": ("near-lossless", "6-bit affine g64, placed with Q6_K: " + _ppl("+0.16%"), _LLAMA_CPP),
    "mxfp6": _SIX,
    "nvfp4": ("small loss", "DeepSeek-R1-0528: within about 1% of fp8 on NVIDIA's benchmarks", _NVIDIA),
    "mxfp4": (
        "noticeable loss",
        "post-training MXFP4 (power-of-two scales per 32) loses clearly more than NVFP4",
        _MXFP4,
    ),
    **dict.fromkeys(
        (
            "awq-int4",
            "gptq-int4",
            "gptq-int4-g64",
            "gptq-int4-g32",
            "int4-g32",
            "int4-g64",
            "int4-g128",
            "hqq-int4",
            "mlx-4bit",
        ),
        _INT4,
    ),
    "gptq-int4-pc": ("noticeable loss", "per-channel int4 without groups: worse than the g128 W4A16 figure", _RED_HAT),
    **dict.fromkeys(("nf4", "nf4-dq"), _NF4),
    **dict.fromkeys(("fp4", "fp4-dq"), _BNB_FP4),
    **dict.fromkeys(("gptq-int3", "hqq-int3", "mlx-3bit"), _THREE),
    **dict.fromkeys(("gptq-int2", "hqq-int2"), _TWO),
}

AS_PUBLISHED = Quality("as published", "the checkpoint's own format: the weights as released", "the model's checkpoint")


def format_quality(name: str) -> Quality | None:
    """The quality row of a format or GGUF mix name (``fp8``, ``awq-int4``, ``Q4_K_M``, ``UD-Q2_K_XL``)."""
    from moeplan.formats.gguf_labels import publisher_label
    from moeplan.formats.gguf_mix import ftype_name
    from moeplan.formats.schemes import weight_format

    if name in _UNQUANTIZED or name.lower() in _UNQUANTIZED:
        return Quality("near-lossless", "16-bit or wider: the reference", "definition")
    wf = weight_format(name)
    if wf is not None:
        row = _FORMATS.get(wf.name)
        if row is not None:
            return Quality(*row)
        if wf.bits >= 16:
            return Quality("near-lossless", "16-bit or wider: the reference", "definition")
        return None
    if name.strip().upper() in ("MXFP4_MOE", "MXFP4"):  # llama.cpp's MXFP4 experts, made from another format
        return Quality(*_FORMATS["mxfp4"])
    mix = ftype_name(name)
    if mix is None:
        pub = publisher_label(name)
        mix = pub[1] if pub is not None else name.strip().upper()
    if mix in _UNQUANTIZED:
        return Quality("near-lossless", "16-bit or wider: the reference", "definition")
    row2 = _K.get(mix) or _K_BY_SIZE.get(mix)
    return Quality(row2[0], row2[1], _LLAMA_CPP) if row2 else None


def table() -> list[tuple[str, Quality]]:
    """Every format and mix with a quality row, for the docs and tests."""
    out = [(name, Quality(*row)) for name, row in _FORMATS.items()]
    out += [(mix, Quality(label, note, _LLAMA_CPP)) for mix, (label, note) in {**_K, **_K_BY_SIZE}.items()]
    return out


def expert_bits(arch: ArchSpec, scheme: Scheme) -> float:
    """Bits per weight of the routed experts under ``scheme``, scales included (a dense model: its MLP and
    attention matrices)."""
    from moeplan.formats.schemes import quantized_tensors

    rows = [(t, b) for t, _, b in quantized_tensors(arch, scheme) if t.is_matrix]
    experts = [(t, b) for t, b in rows if t.kind == "routed_experts"]
    chosen = experts or [(t, b) for t, b in rows if t.kind in ("dense_mlp", "attention", "shared_experts")]
    elements = sum(t.elements for t, _ in chosen)
    return sum(b for _, b in chosen) * 8 / elements if elements else 0.0


def expert_format(spec: ModelSpec, scheme: Scheme) -> str:
    """The format (or GGUF mix) that decides the quality of ``scheme`` on ``spec``: that of its routed experts
    (a dense model's: its MLP's)."""
    kind: ParamKind = "routed_experts" if spec.arch.moe is not None else "dense_mlp"
    if kind in scheme.overrides:
        return scheme.overrides[kind]
    if scheme.gguf is not None:
        return scheme.name
    return scheme.base if kind in scheme.quantized else scheme.rest


def config_quality(spec: ModelSpec, label: str) -> Quality | None:
    """The quality row of running ``spec`` in ``label`` (a --quant value): ``as published`` for the checkpoint's
    own format (and llama.cpp's MXFP4_MOE copy of gpt-oss's MXFP4 experts), else its experts' format's row."""
    from moeplan.formats.schemes import model_scheme, stored_scheme

    native = spec.native_quant or spec.weights_dtype
    if label == native or (label.upper() == "MXFP4_MOE" and native.lower() in ("mxfp4-experts", "mxfp4_moe")):
        return AS_PUBLISHED
    scheme = stored_scheme(spec.native_quant, model_scheme(spec, label))
    native_scheme = model_scheme(spec, native)
    if scheme.overrides.get("routed_experts") == "MXFP4" and native.lower() in ("mxfp4", "mxfp4-experts"):
        return AS_PUBLISHED  # gpt-oss's GGUF files keep its own MXFP4 experts whatever the label
    fmt = expert_format(spec, scheme)
    if fmt == expert_format(spec, native_scheme) and scheme.gguf is None and native_scheme.gguf is None:
        return AS_PUBLISHED  # the experts stay as released (a per-class override of the rest)
    return format_quality(fmt)


def outranks_better(qualities: list[Quality | None]) -> list[bool]:
    """For each of a ranking's formats (best first): whether one ranked below it costs less quality, by
    :attr:`Quality.rank` (formats without a stored figure take no part).  ``[awq-int4 (moderate), nvfp4
    (small)]``: the first outranks a better format, the second does not."""
    out = [False] * len(qualities)
    best_below = 99
    for i in range(len(qualities) - 1, -1, -1):
        q = qualities[i]
        if q is None:
            continue
        out[i] = q.rank > best_below
        best_below = min(best_below, q.rank)
    return out
