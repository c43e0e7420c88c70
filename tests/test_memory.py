"""Memory: weights under formats, KV cache per engine, sharding and fit, against real engine logs.

Every figure compared here comes from a real log or a publisher, cited beside it.  GPU capacities are what
CUDA reports (vLLM logs): H100 80GB 79.22 GiB, A10 24GB and RTX 3090/4090 23.58 GiB.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_params import DATA

from moeplan.deploy.deployment import EstimateRequest, Layout, check_layout
from moeplan.deploy.engines import ENGINES, GIB
from moeplan.deploy.kv_cache import check_kv_dtype, kv_bytes_per_token, kv_cache_bytes
from moeplan.deploy.memory import MemoryModel
from moeplan.deploy.resolve import resolve
from moeplan.errors import InputError
from moeplan.formats.kv_formats import kv_dtype
from moeplan.formats.schemes import FORMATS, parse_scheme, weights_bytes_by_kind
from moeplan.hardware.gpus import resolve_gpu
from moeplan.model.layers import layers
from moeplan.model.spec import ModelSpec
from moeplan.sources.catalog import load_catalog, resolve_model

H100 = 79.22 * GIB
H200 = 139.8 * GIB  # 141 GB HBM3e less what the driver keeps (estimate, see hardware catalogue)
GOLDEN = {g["hf_id"]: g for g in yaml.safe_load((DATA / "reference_param_counts.yaml").read_text())}


def weights(model: str, quant: str | None = None) -> float:
    spec = resolve_model(model)
    scheme = parse_scheme(quant or spec.native_quant or spec.weights_dtype, spec.native_quant)
    return sum(weights_bytes_by_kind(spec.arch, scheme).values())


def model(
    spec: ModelSpec,
    quant: str,
    usable: float,
    par: Layout,
    context: int = 8192,
    batch: int = 1,
    engine: str = "vllm",
    kv: str = "bf16",
) -> MemoryModel:
    """The memory model of ``spec`` on GPUs of ``usable`` bytes (an H100 resized), as ``estimate`` resolves it."""
    gpu = replace(resolve_gpu("h100"), memory_gib=usable / GIB, usable_memory_gib=usable / GIB)
    request = EstimateRequest(model=spec.id, quant=quant, engine=engine, kv_dtype=kv, context=context, batch=batch,
                              tp=par.tp, ep=par.ep, pp=par.pp)  # fmt: skip
    return MemoryModel(resolve(request, spec=spec, gpu=gpu, fewest=False))


# ---- weights against publishers and engine logs ---------------------------------------------------------


def test_gpt_oss_mxfp4_checkpoints_match_published_sizes() -> None:
    # gpt-oss model card (arXiv 2508.10925): checkpoints of 12.8 GiB and 60.8 GiB.
    assert weights("gpt-oss-20b") / GIB == pytest.approx(12.8, rel=0.02)
    assert weights("gpt-oss-120b") / GIB == pytest.approx(60.8, rel=0.02)


def test_dbrx_bf16_needs_about_264_gb() -> None:
    assert weights("dbrx", "bf16") / 1e9 == pytest.approx(264, rel=0.01)


def test_qwen3_30b_tp4_rank_matches_vllm_log() -> None:
    # vLLM issue #17469: "Model loading took 14.2474 GiB" on each of 4 A10 ranks, bf16.
    spec = resolve_model("qwen3-30b-a3b")
    g = model(spec, "bf16", 23.58 * GIB, Layout(4, 1, 1), 1024).gpu(1024, 1)
    assert g.weights_bytes / GIB == pytest.approx(14.2474, rel=0.02)


def test_qwen3_30b_single_gpu_matches_transformers_peak() -> None:
    # Qwen speed benchmark (H20, transformers): peak 58462 MiB bf16 for 1 token in, 2048 out.
    assert weights("qwen3-30b-a3b", "bf16") / 2**20 == pytest.approx(58462, rel=0.02)


def test_deepseek_v3_fp8_rank_matches_gaudi_log() -> None:
    # HabanaAI/vllm-fork issue #809: DeepSeek-R1 fp8, TP=8: 79.41 GiB weights per device (with the MTP module).
    spec = resolve_model("deepseek-r1")
    g = model(spec, "fp8-block128", 94.6 * GIB, Layout(8, 1, 1), 1024).gpu(1024, 1)
    assert g.weights_bytes / GIB == pytest.approx(79.41, rel=0.02)


def test_block_scales_cost_what_the_format_says() -> None:
    fp8 = FORMATS["fp8-block128"].nominal_bpw(7168, 2048)
    assert fp8 == pytest.approx(8 + 32 / 16384, abs=1e-6)
    assert FORMATS["mxfp4"].nominal_bpw() == pytest.approx(4.25)
    assert FORMATS["nvfp4"].nominal_bpw() == pytest.approx(4.5, abs=1e-4)
    assert FORMATS["nf4-dq"].nominal_bpw() == pytest.approx(4.127, abs=1e-3)
    assert FORMATS["gptq-int4"].nominal_bpw() == pytest.approx(4 + 20 / 128 + 32 / 4096)
    assert FORMATS["awq-int4"].nominal_bpw() == pytest.approx(4.15625)


def test_per_class_override_and_toolchain_exclusions() -> None:
    spec = resolve_model("mixtral-8x7b")
    gptq = weights_bytes_by_kind(spec.arch, parse_scheme("gptq-int4"))
    bf16 = weights_bytes_by_kind(spec.arch, parse_scheme("bf16"))
    assert gptq["router"] == bf16["router"] and gptq["embedding"] == bf16["embedding"]  # AutoGPTQ skips them
    mixed = weights_bytes_by_kind(spec.arch, parse_scheme("experts=mxfp4,attention=bf16"))
    assert mixed["attention"] == bf16["attention"] and mixed["routed_experts"] < gptq["routed_experts"] * 1.03


@pytest.mark.parametrize("bad", ["fp7", "experts=fp7", "expertz=fp8", "fp8,gptq-int4", "", "fp8,,experts=bf16"])
def test_bad_quant_is_an_input_error(bad: str) -> None:
    with pytest.raises(InputError):
        parse_scheme(bad)


# ---- KV cache ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [s for s in load_catalog() if s.hf_id in GOLDEN], ids=lambda s: s.id)
def test_kv_per_token_matches_reference_for_full_context_engines(spec: ModelSpec) -> None:
    assert (
        kv_bytes_per_token(spec.arch, "bf16", ENGINES["transformers"]) == GOLDEN[spec.hf_id]["kv_bytes_per_token_bf16"]
    )


def test_gpt_oss_120b_kv_under_both_engines() -> None:
    arch = resolve_model("gpt-oss-120b").arch
    assert kv_bytes_per_token(arch, "bf16", ENGINES["transformers"]) == 73_728
    assert kv_bytes_per_token(arch, "bf16", ENGINES["vllm"]) == 36_864
    assert kv_bytes_per_token(arch, "bf16", ENGINES["llama.cpp"]) == 36_864
    # vLLM <= 0.20 log (hf-mem issue #60): "GPU KV cache size" = num_blocks // 2 groups x 16 = the pool over all
    # 36 layers' 73,728 B/token: 5.38 GiB -> 78,384 tokens.
    assert 5.38 * GIB / kv_bytes_per_token(arch, "bf16", ENGINES["transformers"]) == pytest.approx(78_384, rel=0.001)
    # Ollama/llama.cpp log (ollama #16480): 262,144 cells over 2 sequences: 9216 MiB + SWA ring of 1280 cells
    # per sequence (window 128 + ubatch 1024, padded to 256): 90 MiB.
    total = kv_cache_bytes(arch, 131_072, 2, "bf16", ENGINES["llama.cpp"], ubatch=1024)
    assert total / 2**20 == pytest.approx(9216 + 90, abs=0.01)


def test_mla_latent_is_replicated_and_matches_sglang_log() -> None:
    # ktransformers issue #1804 (SGLang, TP=2): 10,000 tokens of DeepSeek-V3 KV: 0.65 GB per rank.
    spec = resolve_model("deepseek-v3")
    m = model(spec, "fp8-block128", 200 * GIB, Layout(2, 1, 1), 10_000, engine="sglang")
    assert m.kv_gpu_bytes(0, 10_000, 1) / GIB == pytest.approx(0.654, rel=0.01)


def test_llama_cpp_kv_formats_have_block_overheads() -> None:
    arch = resolve_model("mixtral-8x7b").arch
    f16 = kv_bytes_per_token(arch, "fp16", ENGINES["llama.cpp"])
    assert kv_bytes_per_token(arch, "q8_0", ENGINES["llama.cpp"]) == pytest.approx(f16 / 2 * 34 / 32)
    assert kv_bytes_per_token(arch, "q4_0", ENGINES["llama.cpp"]) == pytest.approx(f16 / 2 * 18 / 32)
    with pytest.raises(InputError):
        check_kv_dtype("q4_0", ENGINES["vllm"])
    with pytest.raises(InputError):
        kv_dtype("int3")


# ---- fit verdicts people found in practice -------------------------------------------------------------


def test_deepseek_v3_fp8_needs_h200_not_h100() -> None:
    spec = resolve_model("deepseek-v3")
    assert not model(spec, "fp8-block128", H100, Layout(8, 1, 1)).fits(8192, 1)
    assert model(spec, "fp8-block128", H200, Layout(8, 1, 1)).fits(32768, 1)


def test_gpt_oss_120b_fits_one_80gb_gpu_at_short_context() -> None:
    spec = resolve_model("gpt-oss-120b")
    assert model(spec, "mxfp4-experts", H100, Layout(1, 1, 1)).fits(8192, 1)


def test_gpt_oss_20b_fits_16_gb() -> None:
    spec = resolve_model("gpt-oss-20b")  # "runs within 16GB of memory" (model card), as llama.cpp/Ollama run it
    assert model(spec, "mxfp4-experts", 15.6 * GIB, Layout(1, 1, 1), engine="llama.cpp").fits(8192, 1)


def test_mixtral_8x7b_bf16_needs_more_than_one_80gb_gpu() -> None:
    spec = resolve_model("mixtral-8x7b")
    assert not model(spec, "bf16", H100, Layout(1, 1, 1)).fits(1024, 1)
    assert model(spec, "bf16", H100, Layout(2, 1, 1)).fits(8192, 1)


# ---- properties ----------------------------------------------------------------------------------------

SPECS = [s for s in load_catalog()]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SPECS), st.integers(1, 200_000), st.integers(1, 64))
def test_memory_grows_with_context_and_batch(spec: ModelSpec, context: int, batch: int) -> None:
    """More context never needs less memory, and more only while some layer still caches it: a model whose
    every layer has a sliding window (Mistral 7B) stops growing once vLLM's windowed cache is full."""
    m = model(spec, "bf16", H100, Layout(1, 1, 1), engine="vllm")
    base = m.gpu(context, batch).total_bytes
    longer = m.gpu(context + 1000, batch).total_bytes
    assert longer >= base
    windows = [w for w in (getattr(layer.mixer, "window", None) for layer in layers(spec.arch)) if w is not None]
    bounded = windows and len(windows) == spec.arch.num_layers and context > min(windows)
    assert longer > base or bounded
    assert m.gpu(context, batch + 1).total_bytes > base


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(SPECS), st.integers(1, 100_000), st.integers(1, 16))
def test_kv_is_linear_in_tokens(spec: ModelSpec, context: int, batch: int) -> None:
    per_token = kv_bytes_per_token(spec.arch, "bf16", ENGINES["transformers"])
    assert kv_cache_bytes(spec.arch, context, batch, "bf16", ENGINES["transformers"]) == pytest.approx(
        per_token * context * batch
    )


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_memory_grows_with_bits(spec: ModelSpec) -> None:
    order = ["gptq-int4", "mxfp4", "nf4", "fp8", "bf16", "fp32"]  # 4.16 < 4.25 < 4.5 < 8 bpw
    sizes = [sum(weights_bytes_by_kind(spec.arch, parse_scheme(q)).values()) for q in order]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_adding_gpus_never_grows_per_gpu_memory_and_shards_add_up(spec: ModelSpec) -> None:
    prev = None
    for tp in (1, 2, 4, 8):
        par = Layout(tp, 1, 1)
        try:
            check_layout(spec.arch, par)
        except InputError:
            continue
        m = model(spec, "bf16", 1e15, par)
        g = m.gpu(4096, 1)
        if prev is not None:
            assert g.weights_bytes <= prev
        prev = g.weights_bytes
        # Shards add back to the whole, up to what is replicated on every rank (norms, router, KV-head copies).
        assert g.weights_bytes * tp >= sum(m.weights_by_kind.values()) - tp
    for pp in (1, 2, 4):
        m = model(spec, "bf16", 1e15, Layout(1, 1, pp))
        assert sum(sum(w.values()) for w in m.stage_weights) == sum(m.weights_by_kind.values())


def test_expert_parallel_holds_whole_experts() -> None:
    spec = resolve_model("deepseek-v3")
    tp8 = model(spec, "fp8-block128", 1e15, Layout(8, 1, 1)).gpu(1024, 1)
    ep8 = model(spec, "fp8-block128", 1e15, Layout(8, 8, 1)).gpu(1024, 1)
    assert ep8.weights_by_kind["routed_experts"] == pytest.approx(tp8.weights_by_kind["routed_experts"], rel=1e-6)


@pytest.mark.parametrize(
    ("par", "why"),
    [
        (Layout(3, 1, 1), "divide"),
        (Layout(8, 3, 1), "--ep"),
        (Layout(1, 1, 1000), "--pp"),
    ],
)
def test_impossible_layouts(par: Layout, why: str) -> None:
    with pytest.raises(InputError, match=why):
        check_layout(resolve_model("mixtral-8x7b").arch, par)


# ---- the largest batch: a guided search, the same answer as a bisection ----------------------------------------


@settings(max_examples=60, deadline=None)
@given(limit=st.integers(2, 1 << 20), last=st.integers(0, 1 << 20), guess=st.integers(-5, (1 << 20) + 5))
def test_guided_search_finds_the_bisection_answer(limit: int, last: int, guess: int) -> None:
    """Any guess (exact, far off, outside the range) gives the largest n with ok(n), as plain bisection does."""
    from moeplan.deploy.memory import largest

    def ok(n: int) -> bool:
        return n <= last

    assert largest(ok, limit, guess) == largest(ok, limit) == (0 if last < 1 else min(last, limit))


@pytest.mark.parametrize(
    ("name", "quant", "engine", "context"),
    [("deepseek-v3", "fp8", "vllm", 2048), ("qwen3-30b-a3b", "bf16", "sglang", 32768),
     ("mixtral-8x7b", "Q4_K_M", "llama.cpp", 8192), ("qwen3-next-80b-a3b", "bf16", "sglang", 4096)],
)  # fmt: skip
def test_max_batch_is_the_largest_that_fits(name: str, quant: str, engine: str, context: int) -> None:
    """The guided search's batch fits and one more does not (KV cache, buffers, states and slack all counted)."""
    spec = resolve_model(name)
    gpus = {"deepseek-v3": 8, "qwen3-next-80b-a3b": 2}.get(name, 1)
    mm = model(spec, quant, H200, Layout(tp=gpus), context=context, engine=engine)
    b = mm.max_batch(context)
    assert b >= 1
    assert mm.fits(context, b) and not mm.fits(context, b + 1)
