"""GGUF block types and llama.cpp's per-tensor mixes, checked against real file sizes.

Real figures: llama.cpp ``tools/quantize/README.md`` (Llama-3.1-8B bits per weight of each mix, as
``llama-quantize`` prints them); file sizes on the Hub of mradermacher/Mixtral-8x7B-v0.1-GGUF and
bartowski/Mixtral-8x22B-v0.1-GGUF (llama.cpp b2636); llama-bench's model size for ggml-org's gpt-oss-120b
MXFP4 GGUF (59.02 GiB, NVIDIA developer forum, 2025-12-19); llama.cpp's loader for Qwen3-30B-A3B Q4_K_M
(17.34 GiB, mostlygeek/llama-swap issue #142).
"""

from __future__ import annotations

import dataclasses

import pytest

from moeplan.errors import InputError
from moeplan.formats.ggml import GGML_TYPES, storable_type, tensor_bytes
from moeplan.formats.gguf_mix import FTYPES, ftype_name, gguf_type_for, use_more_bits
from moeplan.formats.schemes import named_scheme, parse_scheme, quantized_tensors
from moeplan.model.layers import model_tensors
from moeplan.model.params import count_params
from moeplan.model.spec import ModelSpec
from moeplan.model.tensors import Tensor
from moeplan.sources.catalog import load_catalog, resolve_model

GIB = 2**30


def _file(model: str, quant: str) -> tuple[int, float]:
    """(bytes, bits per weight) of ``model`` quantized as ``quant``."""
    spec = resolve_model(model)
    total = sum(b for _, _, b in quantized_tensors(spec.arch, parse_scheme(quant)))
    return total, total * 8 / count_params(spec).total


@pytest.mark.parametrize(
    ("name", "bpw"),
    [("Q4_K", 4.5), ("Q6_K", 6.5625), ("Q3_K", 3.4375), ("Q2_K", 2.625), ("Q8_0", 8.5), ("IQ4_XS", 4.25),
     ("IQ2_XXS", 2.0625), ("IQ1_S", 1.5625), ("MXFP4", 4.25), ("NVFP4", 4.5), ("Q5_K", 5.5), ("TQ1_0", 1.6875)],
)  # fmt: skip
def test_block_types_store_the_bits_ggml_common_h_says(name: str, bpw: float) -> None:
    assert GGML_TYPES[name].bits_per_weight == bpw


def test_rows_that_do_not_fit_the_block_fall_back_as_llama_quantize_does() -> None:
    assert storable_type("Q4_K", 2880) == "Q5_0"  # gpt-oss hidden size
    assert storable_type("Q6_K", 2880) == "Q8_0"
    assert storable_type("IQ2_XXS", 2880) == "IQ4_NL"
    assert storable_type("Q3_K", 4096) == "Q3_K"
    assert storable_type("Q8_0", 100) == "F16"
    t = Tensor("routed_experts", "ffn_up_exps", (5760, 2880), 0, 32)
    assert tensor_bytes(t, "Q4_K") == 5760 * 32 * (2880 // 32) * 22


LLAMA_31_8B_BPW = {  # llama.cpp tools/quantize/README.md
    "Q2_K": 3.1593,
    "Q3_K_S": 3.6429,
    "Q3_K_L": 4.2979,
    "Q4_K_S": 4.6672,
    "Q4_K_M": 4.8944,
    "Q5_K_S": 5.5704,
    "Q5_K_M": 5.7036,
    "Q6_K": 6.5633,
    "Q8_0": 8.5008,
    "IQ4_XS": 4.4597,
}


@pytest.mark.parametrize(("mix", "bpw"), LLAMA_31_8B_BPW.items())
def test_llama_31_8b_bits_per_weight_equal_llama_quantize(mix: str, bpw: float) -> None:
    assert round(_file("llama-3.1-8b", mix)[1], 4) == bpw


MIXTRAL_GB = {  # real file sizes, decimal GB as the Hub shows them
    "mixtral-8x7b": {"Q2_K": 17.3, "Q3_K_S": 20.4, "Q3_K_M": 22.5, "Q3_K_L": 24.2, "Q4_K_S": 26.7, "Q4_K_M": 28.4,
                     "Q5_K_S": 32.2, "Q5_K_M": 33.2, "Q6_K": 38.4, "Q8_0": 49.6, "IQ4_XS": 25.4},
    "mixtral-8x22b": {"Q2_K": 52.10, "Q3_K_M": 67.78, "Q3_K_L": 72.57, "Q4_K_S": 80.47, "Q4_K_M": 85.58,
                      "Q5_K_S": 96.97, "Q5_K_M": 99.96, "IQ4_XS": 76.35},
}  # fmt: skip


@pytest.mark.parametrize(
    ("model", "mix", "gb"), [(m, q, gb) for m, sizes in MIXTRAL_GB.items() for q, gb in sizes.items()]
)
def test_mixtral_gguf_sizes_match_real_files(model: str, mix: str, gb: float) -> None:
    size = _file(model, mix)[0] / 1e9
    # The Hub rounds to 0.1 GB (8x7B) or the file carries ~20 MB of metadata and vocabulary (8x22B).
    assert abs(size - gb) <= 0.06, (size, gb)


def test_gpt_oss_120b_mxfp4_moe_matches_llama_bench() -> None:
    assert round(_file("gpt-oss-120b", "MXFP4_MOE")[0] / GIB, 2) == 59.02


def test_qwen3_30b_q4_k_m_within_one_percent_of_the_real_file() -> None:
    size = _file("qwen3-30b-a3b", "Q4_K_M")[0] / GIB
    assert abs(size / 17.34 - 1) < 0.01


def test_routers_norms_and_biases_stay_f32() -> None:
    arch = resolve_model("mixtral-8x7b").arch
    for t in model_tensors(arch):
        fmt = gguf_type_for("Q2_K", t, arch)
        if t.role == "ffn_gate_inp" or not t.is_matrix:
            assert fmt == "F32", t


def test_mixtral_rules_for_eight_experts() -> None:
    arch = resolve_model("mixtral-8x7b").arch
    kinds = {t.role: t for t in model_tensors(arch) if t.layer == 6}
    assert gguf_type_for("Q4_K_M", kinds["attn_v"], arch) == "Q8_0"
    assert gguf_type_for("Q4_K_M", kinds["attn_k"], arch) == "Q8_0"
    assert gguf_type_for("Q4_K_M", kinds["attn_output"], arch) == "Q5_K"
    assert gguf_type_for("Q4_K_M", kinds["ffn_up_exps"], arch) == "Q4_K"
    assert gguf_type_for("Q4_K_M", kinds["ffn_down_exps"], arch) == "Q6_K"  # layer 6 of 32: (6 - 32/8) % 3 == 2


def test_use_more_bits_is_half_of_the_layers() -> None:
    for n in (24, 32, 48, 61, 80, 94):
        more = sum(use_more_bits(i, n) for i in range(n))
        assert abs(more - n / 2) <= 3, (n, more)


def test_output_head_and_tied_embedding_get_q6_k() -> None:
    arch = resolve_model("llama-3.1-8b").arch
    out = next(t for t in model_tensors(arch) if t.role == "output")
    embd = next(t for t in model_tensors(arch) if t.role == "token_embd")
    assert gguf_type_for("Q4_K_M", out, arch) == "Q6_K"
    assert gguf_type_for("Q4_K_M", embd, arch) == "Q4_K"
    assert gguf_type_for("Q8_0", out, arch) == "Q8_0"
    assert gguf_type_for("IQ2_XXS", out, arch) == "Q5_K"
    tied = dataclasses.replace(arch, tie_embeddings=True)
    embd_tied = next(t for t in model_tensors(tied) if t.role == "token_embd")
    assert gguf_type_for("Q4_K_M", embd_tied, tied) == "Q6_K"


def test_mxfp4_moe_puts_experts_in_mxfp4_and_the_rest_in_q8_0() -> None:
    arch = resolve_model("gpt-oss-20b").arch
    for t in model_tensors(arch):
        if not t.is_matrix or t.role == "ffn_gate_inp":
            continue
        expected = "MXFP4" if t.kind == "routed_experts" else "Q8_0"
        assert gguf_type_for("MXFP4_MOE", t, arch) == expected, t


def test_short_names_are_the_m_mixes() -> None:
    assert ftype_name("q4_k") == "Q4_K_M"
    assert ftype_name("Q5_K") == "Q5_K_M"
    assert ftype_name("Q4_K_XL") is None
    assert named_scheme("q4_k_m").gguf == "Q4_K_M"


ORDERED = ["IQ1_S", "IQ2_XXS", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M"]
ORDERED += ["Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0"]


# Where rows do not fit 256-blocks (gpt-oss: 2880) llama.cpp's fallbacks break the order, as in real files.
BLOCK_FRIENDLY = [s for s in load_catalog() if s.arch.hidden_size % 256 == 0]


@pytest.mark.parametrize("spec", BLOCK_FRIENDLY, ids=[s.id for s in BLOCK_FRIENDLY])
def test_bigger_mixes_are_never_smaller(spec: ModelSpec) -> None:
    sizes = [sum(b for _, _, b in quantized_tensors(spec.arch, named_scheme(m))) for m in ORDERED]
    assert sizes == sorted(sizes), dict(zip(ORDERED, sizes, strict=True))
    assert all(m in FTYPES for m in ORDERED)


def test_per_class_gguf_override_falls_back_where_rows_do_not_fit() -> None:
    arch = resolve_model("gpt-oss-20b").arch
    scheme = parse_scheme("bf16,experts=Q4_K")
    formats = {f for t, f, _ in quantized_tensors(arch, scheme) if t.kind == "routed_experts" and t.is_matrix}
    assert formats == {"Q5_0"}  # rows of 2880 do not fit Q4_K's 256-blocks


def test_unknown_mix_is_an_input_error() -> None:
    with pytest.raises(InputError):
        parse_scheme("Q4_K_XXL")
    with pytest.raises(InputError):
        parse_scheme("UD-Q4_K_ZZ")


def test_publisher_labels_start_from_a_default_mix() -> None:
    assert (parse_scheme("UD-Q4_K_XL").name, parse_scheme("UD-Q4_K_XL").gguf) == ("UD-Q4_K_XL", "Q4_K_M")
    assert parse_scheme("q2_k_xl").gguf == "Q2_K" and parse_scheme("UD-IQ1_S").gguf == "IQ1_S"
    assert parse_scheme("Q3_K_L").gguf == "Q3_K_L"  # a real llama.cpp mix stays itself
