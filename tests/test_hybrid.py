"""Hybrid models: layers with a recurrent state (linear attention, state-space mixers) are never read as attention."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import moeplan
from moeplan import EstimateRequest, estimate
from moeplan.errors import SpecError


@pytest.mark.parametrize(
    ("arch_name", "extra"), [("falcon-h1", {}), ("rwkv7", {}), ("llama", {"llama.ssm.conv_kernel": 4})]
)
def test_a_gguf_with_recurrent_layers_is_refused_not_misread(
    tmp_path: Path, arch_name: str, extra: dict[str, int]
) -> None:
    """A recurrent GGUF moeplan cannot read is refused (a qwen3next GGUF was once read as full attention in every
    layer: KV and context 4x wrong, silently)."""
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf
    from test_inputs import _tiny_moe

    from moeplan.sources.gguf_spec import spec_from_gguf

    path = write_gguf(tmp_path / "m.gguf", arch_name, _tiny_moe(), "Q8_0", extra_meta=extra)[0]
    with pytest.raises(SpecError, match="recurrent state") as e:
        spec_from_gguf(path)
    assert "config.json" in str(e.value)


def _next(context: int, batch: int, engine: str = "vllm") -> Any:
    return estimate(EstimateRequest(model="qwen3-next", gpu="h200", num_gpus=4, context=context, batch=batch,
                                    engine=engine, quant=None if engine == "vllm" else "Q4_K_M"))  # fmt: skip


def test_qwen3_next_kv_grows_only_in_its_full_attention_layers() -> None:
    """12 of 48 layers are full attention: KV per token is 12 x 2 KV heads x 256 x 2 (k, v) x 2 B = 24,576."""
    r = _next(8192, 1)
    assert r.memory.kv_bytes_per_token == 12 * 2 * 256 * 2 * 2
    layers_ = moeplan.layers(r.spec.arch)
    assert sum(layer.mixer.kv_elements_per_token > 0 for layer in layers_) == 12
    assert sum(layer.mixer.state_elements_per_sequence > 0 for layer in layers_) == 36


def test_state_bytes_by_engine_rule() -> None:
    """vLLM keeps Qwen3-Next's states in bf16 (its config declares no mamba_ssm_dtype), llama.cpp in fp32."""
    per_layer = 3 * 8192 + 32 * 128 * 128
    assert _next(8192, 1).memory.state_bytes_per_sequence == 36 * per_layer * 2
    assert _next(8192, 1, "llama.cpp").memory.state_bytes_per_sequence == 36 * per_layer * 4
    forced = estimate(EstimateRequest(model="qwen3-next", gpu="h200", num_gpus=4, state_dtype="fp32"))
    assert forced.memory.state_dtype == "fp32" and forced.memory.conv_state_dtype == "bf16"


@settings(max_examples=25, deadline=None)
@given(st.integers(1024, 200_000), st.integers(1, 64))
def test_state_grows_with_batch_not_context(context: int, batch: int) -> None:
    a, b = _next(context, batch), _next(context * 2, batch)
    assert a.memory.state_bytes == b.memory.state_bytes == a.memory.state_bytes_per_sequence * batch
    # the memory grows with the context only through the attention layers' KV cache
    grown = b.memory.per_gpu_bytes - a.memory.per_gpu_bytes
    kv_grown = b.memory.per_gpu_kv_cache_bytes - a.memory.per_gpu_kv_cache_bytes
    assert grown - kv_grown == pytest.approx(b.memory.per_gpu_activation_bytes - a.memory.per_gpu_activation_bytes,
                                             abs=2)  # fmt: skip
    assert _next(context, batch + 1).memory.state_bytes > a.memory.state_bytes


def test_linear_attention_decode_cost_is_constant_in_the_context() -> None:
    """Decode FLOPs grow with the context only in the 12 attention layers."""
    short, long = _next(4096, 1), _next(131072, 1)
    assert short.flops is not None and long.flops is not None
    scores = long.flops.decode_by_kind["attention_scores"] - short.flops.decode_by_kind["attention_scores"]
    per_token = 12 * 2 * 16 * (256 + 256)  # 12 layers x 2 x heads x (d_k + d_v)
    assert scores == pytest.approx(per_token * (131072 - 4096))


@pytest.mark.parametrize(
    ("alias", "trained"),
    [
        ("qwen3-30b-a3b", 40_960),
        ("qwen3-30b-a3b-instruct-2507", 262_144),
        ("glm-4.5", 131_072),
        ("glm-4.6", 202_752),
        ("glm-4.7", 202_752),
        ("kimi-k2", 131_072),
        ("kimi-k2-instruct-0905", 262_144),
    ],
)
def test_every_alias_carries_its_own_context_limit(alias: str, trained: int) -> None:
    """The -2507 Qwen3 releases and GLM-4.6 share their shapes with an earlier release, not its context."""
    spec = moeplan.resolve_model(alias)
    assert spec.arch.max_context == trained
    r = estimate(EstimateRequest(model=alias, gpu="h200", num_gpus=8, context=150_000))
    warned = any(a.startswith("warning:") for a in r.assumptions)
    assert warned == (trained < 150_000)


def test_compressed_tensors_ignore_list_quantizes_only_what_it_leaves() -> None:
    """Kimi K2 Thinking: int4 (symmetric, a bf16 scale per 32) routed experts only; the ``ignore`` list keeps
    attention, shared experts, the dense layer and the output head in bf16.  Its safetensors hold 594 GB
    (https://huggingface.co/moonshotai/Kimi-K2-Thinking, files total)."""
    from moeplan.sources.checkpoint import native_format

    q = {
        "quant_method": "compressed-tensors",
        "config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "group_size": 32,
                                                                    "symmetric": True}}},
        "ignore": ["lm_head", "re:.*self_attn.*", "re:.*shared_experts.*", "re:.*mlp\\.(gate|up|gate_up|down)_proj.*"],
    }  # fmt: skip
    assert native_format({"quantization_config": q}) == "experts=int4-g32"
    assert native_format({"quantization_config": {**q, "ignore": ["lm_head"]}}) == "int4-g32"
    r = estimate(EstimateRequest(model="kimi-k2-thinking", gpu="h200"))
    assert r.memory.formats_by_kind["routed_experts"] == ["int4-g32"]
    assert r.memory.formats_by_kind["attention"] == ["bf16"]
    assert r.memory.weights_bytes / 1e9 == pytest.approx(594, rel=0.005)


def test_identity_experts_make_the_active_count_a_range() -> None:
    """LongCat-Flash: top-12 over 512 experts + 256 identity experts reaches 0-12 real experts, 8 on average.

    Published (arXiv 2509.01322): 18.6B-31.3B activated, without the 0.81B embedding.
    """
    from moeplan.model.params import count_params
    from moeplan.sources.catalog import resolve_model

    spec = resolve_model("longcat-flash")
    p = count_params(spec)
    emb = p.embedding
    assert p.total == 560_664_958_976
    assert (p.active_min - emb) / 1e9 == pytest.approx(18.6, rel=0.01)
    assert (p.active_max - emb) / 1e9 == pytest.approx(31.3, rel=0.01)
    # each real pick is one expert in each of the 28 MoE layers; the average sits 8/12 of the way up
    assert p.active_max - p.active_min == 12 * p.per_expert * p.num_moe_layers
    assert p.active == p.active_min + 8 * p.per_expert * p.num_moe_layers
    result = estimate(EstimateRequest(model="longcat-flash", gpu="h200", num_gpus=8, quant="fp8", batch=1))
    assert result.performance is not None
    assert result.performance.distinct_experts_per_layer == pytest.approx(8.0)
    data = result.to_json()
    assert data["params"]["active_range"] == [p.active_min, p.active_max]
    assert data["model"]["zero_experts"] == 256


def test_models_without_identity_experts_have_a_point_active_count() -> None:
    from moeplan.model.params import count_params
    from moeplan.sources.catalog import resolve_model

    p = count_params(resolve_model("mixtral-8x7b"))
    assert p.active_min == p.active == p.active_max == 12_879_925_248


def test_top_k_beyond_real_and_identity_experts_is_refused() -> None:
    from moeplan.model.spec import MoeSpec

    with pytest.raises(ValueError, match=r"exceeds num_experts \(4\) \+ zero_experts \(2\)"):
        MoeSpec(num_experts=4, top_k=7, expert_intermediate_size=8, zero_experts=2)
    assert MoeSpec(num_experts=4, top_k=6, expert_intermediate_size=8, zero_experts=2).pick_range == (4, 4)


def _tiny_next() -> Any:
    """Qwen3-Next's layer list at a small size: Gated DeltaNet with full attention every 4th layer."""
    from dataclasses import replace

    from moeplan.model.spec import LinearAttentionSpec

    arch = moeplan.resolve_model("qwen3-next").arch
    att = replace(arch.attention, num_heads=4, num_kv_heads=2, head_dim=32)
    assert arch.moe is not None
    moe = replace(arch.moe, num_experts=8, top_k=2, expert_intermediate_size=64, shared_intermediate_size=64)
    linear = LinearAttentionSpec(num_key_heads=2, num_value_heads=4, key_head_dim=32, value_head_dim=32)
    return replace(arch, vocab_size=256, hidden_size=128, num_layers=8, attention=att, moe=moe,
                   linear_attention=linear, mtp_layers=0, max_context=4096)  # fmt: skip


@pytest.mark.parametrize("arch_name", ["qwen3next", "qwen35moe"])
def test_a_gated_deltanet_gguf_is_read_layer_by_layer(tmp_path: Path, arch_name: str) -> None:
    """The GGUF's tensors and ssm.* metadata give back the layer list: KV only in its full-attention layers,
    the recurrent state of the others, the same parameters by kind as the config's spec."""
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf

    from moeplan.model.params import count_params
    from moeplan.model.spec import ModelSpec
    from moeplan.sources.gguf_spec import spec_from_gguf

    arch = _tiny_next()
    path = write_gguf(tmp_path / "next.gguf", arch_name, arch, "Q4_K_M")[0]
    got = spec_from_gguf(path)
    assert got.arch.attention.layer_pattern == "LLLFLLLF"
    assert got.arch.linear_attention == arch.linear_attention
    assert got.arch.attention.gated_output
    want = count_params(ModelSpec(id="x", name="x", architecture="qwen3_next", arch=arch))
    assert count_params(got).breakdown == want.breakdown
    assert got.checkpoint is not None
    assert sum(got.checkpoint.params_by_kind.values()) == want.total
    memory = estimate(EstimateRequest(model=str(path), gpu="rtx-4090", context=4096, batch=2)).memory
    # KV: 2 full-attention layers x 2 KV heads x 32 x (k, v) x 2 B; state (llama.cpp, F32): 6 Gated DeltaNet
    # layers x (3 x (2 x 64 + 128) conv + 4 x 32 x 32 recurrent) x 4 B
    assert memory.kv_bytes_per_token == 2 * 2 * 32 * 2 * 2
    assert memory.state_bytes_per_sequence == 6 * (3 * 256 + 4 * 32 * 32) * 4


def test_a_gated_deltanet_gguf_whose_tensors_disagree_with_its_interval_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf

    from moeplan.sources.gguf_spec import spec_from_gguf

    path = write_gguf(tmp_path / "next.gguf", "qwen3next", _tiny_next(), "Q8_0",
                      extra_meta={"qwen3next.full_attention_interval": 2})[0]  # fmt: skip
    with pytest.raises(SpecError, match="full_attention_interval"):
        spec_from_gguf(path)


@pytest.mark.parametrize(
    ("model", "engine", "kv", "per_token"),
    [
        # vLLM FlashMLASparseBackend fp8_ds_mla (656 B) + fp8 indexer key with its scale (132 B), 61 layers
        ("deepseek-v3.2", "vllm", "fp8", 61 * (656 + 132)),
        ("deepseek-v3.2", "sglang", "fp8", 61 * (656 + 132)),
        ("deepseek-v3.2", "vllm", "bf16", 61 * (1152 + 132)),
        ("glm-5", "vllm", "fp8", 78 * (656 + 132)),  # 61,464 B
        # llama.cpp keeps every element in the KV format: (512 + 64 + 128) x 2 B
        ("deepseek-v3.2", "llama.cpp", "bf16", 61 * 704 * 2),
    ],
)
def test_sparse_attention_cache_in_each_engines_layout(model: str, engine: str, kv: str, per_token: int) -> None:
    quant = "Q4_K_M" if engine == "llama.cpp" else "fp8"
    r = estimate(EstimateRequest(model=model, gpu="h200", num_gpus=8, engine=engine, kv_dtype=kv, quant=quant))
    assert r.memory.kv_bytes_per_token == per_token


@pytest.mark.parametrize(
    ("model", "vllm", "llama_cpp"),
    [
        # worked numbers from each engine's sizing code (docs/families/linear_attention.md, state_space.md)
        ("qwen3-next", 39_518_208, 79_036_416),  # bf16 both / F32 (MambaStateDtypeCalculator, n_embd_r/s)
        ("kimi-linear-48b-a3b", 43_417_600, 44_892_160),  # KDA recurrent always fp32 in vLLM
        ("nemotron-3-nano-30b-a3b", 49_082_368, 49_930_240),  # config mamba_ssm_cache_dtype float32
        ("jamba-1.5-mini", 8_716_288, 17_432_576),
    ],
)
def test_state_per_sequence_equals_each_engines_sizing(model: str, vllm: int, llama_cpp: int) -> None:
    for engine, expected in (("vllm", vllm), ("llama.cpp", llama_cpp)):
        quant = "Q4_K_M" if engine == "llama.cpp" else None
        r = estimate(EstimateRequest(model=model, gpu="h200", engine=engine, quant=quant))
        assert r.memory.state_bytes_per_sequence == expected, engine


def _tiny_dsa() -> Any:
    """DeepSeek-V3.2's layer list at a small size: MLA with an indexer in every layer."""
    from dataclasses import replace

    from moeplan.model.spec import IndexerSpec, MlaSpec

    arch = moeplan.resolve_model("deepseek-v3.2").arch
    mla = MlaSpec(q_lora_rank=64, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=16, v_head_dim=16)
    att = replace(arch.attention, num_heads=4, num_kv_heads=4, head_dim=32, mla=mla,
                  indexer=IndexerSpec(num_heads=4, head_dim=32, topk=64))  # fmt: skip
    assert arch.moe is not None and arch.mlp is not None
    moe = replace(arch.moe, num_experts=8, top_k=2, expert_intermediate_size=64, shared_intermediate_size=64,
                  dense_layers=(0,))  # fmt: skip
    return replace(arch, vocab_size=256, hidden_size=128, num_layers=4, attention=att, moe=moe,
                   mlp=replace(arch.mlp, intermediate_size=96), mtp_layers=0, max_context=4096)  # fmt: skip


def test_a_sparse_attention_gguf_keeps_its_indexer(tmp_path: Path) -> None:
    """A deepseek32 GGUF read without its indexer would cache 18% too little and attend to the whole context."""
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf

    from moeplan.model.params import count_params
    from moeplan.model.spec import ModelSpec
    from moeplan.sources.gguf_spec import spec_from_gguf

    arch = _tiny_dsa()
    got = spec_from_gguf(write_gguf(tmp_path / "dsa.gguf", "deepseek32", arch, "Q8_0")[0])
    assert got.arch.attention.indexer == arch.attention.indexer
    want = count_params(ModelSpec(id="x", name="x", architecture="deepseek_v32", arch=arch))
    assert count_params(got).breakdown == want.breakdown


def test_counts_a_config_leaves_out_are_named_with_the_default_taken(tmp_path: Path) -> None:
    """transformers fills a missing count from the family's defaults; moeplan does too, and says which."""
    import json

    from moeplan.sources.config_adapters import spec_from_config

    path = Path(__file__).parent / "data" / "hf_configs_2026" / "Qwen__Qwen3-Next-80B-A3B-Instruct.json"
    config = {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
    del config["linear_num_key_heads"]
    spec = spec_from_config(config, where="config.json")
    assert spec.notes is not None and "linear_num_key_heads=16" in spec.notes
    (tmp_path / "config.json").write_text(json.dumps(config))
    r = estimate(EstimateRequest(model=str(tmp_path / "config.json"), gpu="h200"))
    assert any("linear_num_key_heads=16" in note for note in r.assumptions)
    from typer.testing import CliRunner

    from moeplan.cli import app

    out = CliRunner().invoke(app, ["estimate", str(tmp_path / "config.json"), "--gpu", "h200"]).stdout
    assert "linear_num_key_heads=16" in " ".join(out.split()[:60])  # in the summary, beside the model it changes


@pytest.mark.parametrize(
    ("model_type", "arch_name"),
    [
        ("nemotron_h", "nemotron_h_moe"),
        ("granitemoehybrid", "granitehybrid"),
        ("jamba", "jamba"),
        ("kimi_linear", "kimi-linear"),
    ],
)
def test_a_recurrent_hybrid_gguf_is_read_layer_by_layer(tmp_path: Path, model_type: str, arch_name: str) -> None:
    """Jamba, Nemotron-H and Granite 4.0-H GGUF files give back their mixers, feed-forward blocks, Mamba shapes and
    parameters by kind; KV only in attention layers."""
    pytest.importorskip("gguf")
    from dataclasses import replace

    from gguf_fixtures import write_gguf
    from reference_impl import small_config

    from moeplan.model.params import count_params
    from moeplan.model.spec import ModelSpec
    from moeplan.sources.config_adapters import spec_from_config
    from moeplan.sources.gguf_spec import spec_from_gguf

    arch = spec_from_config(small_config(model_type)).arch
    got = spec_from_gguf(write_gguf(tmp_path / "m.gguf", arch_name, arch, "Q8_0")[0])
    layers_ = moeplan.layers(arch)
    assert [type(x.mixer) for x in moeplan.layers(got.arch)] == [type(x.mixer) for x in layers_]
    assert [x.ffn.is_moe for x in moeplan.layers(got.arch)] == [x.ffn.is_moe for x in layers_]
    if arch.ssm is not None:
        assert got.arch.ssm is not None
        assert replace(got.arch.ssm, chunk_size=arch.ssm.chunk_size) == arch.ssm  # a GGUF states no scan chunk
    assert got.arch.linear_attention == arch.linear_attention
    want = count_params(ModelSpec(id="x", name="x", architecture=model_type, arch=arch))
    assert count_params(got).breakdown == want.breakdown


def test_an_engine_without_the_architecture_is_refused_and_skipped() -> None:
    """llama.cpp has no LongCat-Flash or Step3: a plan on it is refused, and recommend leaves it out."""
    from moeplan import recommend
    from moeplan.errors import InputError

    for model in ("longcat-flash", "step3"):
        with pytest.raises(InputError, match=r"llama\.cpp has no implementation"):
            estimate(EstimateRequest(model=model, gpu="h200", quant="Q4_K_M", engine="llama.cpp"))
    _, candidates = recommend("step3", context=8192)
    assert candidates and all(c.engine != "llama.cpp" for c in candidates)


def test_a_prefill_pass_issues_the_chunked_scans_kernels() -> None:
    """Gated DeltaNet prefills with the chunked algorithm (cumsum, K K^T, triangular solve, WY, state, output and the
    q/k norms: 16 kernels for a decode step's 9), so a hybrid model's eager-prefill floor counts more kernels than
    its decode step; attention layers run the same kernels either way."""
    from moeplan.deploy.deployment import EstimateRequest
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.resolve import resolve
    from moeplan.deploy.speed import SpeedModel
    from moeplan.model.layers import layers
    from moeplan.sources.catalog import resolve_model

    arch = resolve_model("qwen3-next-80b-a3b").arch
    kinds = {type(layer.mixer).__name__: (layer.kernels, layer.prefill_kernels) for layer in layers(arch)}
    assert kinds["LinearAttention"][1] == kinds["LinearAttention"][0] + 7
    assert kinds["Attention"][1] == kinds["Attention"][0]
    sm = SpeedModel(
        MemoryModel(resolve(EstimateRequest(model="qwen3-next-80b-a3b", gpu="b200", use_calibration=False)))
    )
    assert sum(sm.stage_prefill_kernels) > sum(sm.stage_kernels)


# Per-layer chunked Gated DeltaNet prefill, one sequence, d_k = d_v = 128, as published (ms): flashinfer PRs
# #3788 (H100 80GB HBM3, FLA/Triton and FlashInfer columns), #3001 (B200) and #3659 (RTX PRO 6000 Blackwell).
GDN_PREFILL_MS = [
    ("FLA", "h100-sxm", 8, 65536, 2.006), ("FLA", "h100-sxm", 16, 65536, 2.744),
    ("FLA", "h100-sxm", 32, 65536, 4.408), ("FLA", "h100-sxm", 64, 65536, 8.633),
    ("FLA", "b200", 32, 8192, 0.602), ("FLA", "b200", 64, 8192, 1.021),
    ("FLA", "rtx-pro-6000-blackwell", 16, 65536, 3.734), ("FLA", "rtx-pro-6000-blackwell", 64, 65536, 13.806),
    ("FlashInfer", "h100-sxm", 16, 65536, 0.782), ("FlashInfer", "h100-sxm", 64, 65536, 3.022),
    ("FlashInfer", "b200", 8, 8192, 0.330), ("FlashInfer", "b200", 64, 8192, 0.339),
]  # fmt: skip


@pytest.mark.parametrize(("kernel", "gpu", "heads", "tokens", "ms"), GDN_PREFILL_MS)
def test_chunked_linear_attention_prefill_matches_the_published_kernel_times(
    kernel: str, gpu: str, heads: int, tokens: int, ms: float
) -> None:
    """The scan model reproduces each published per-layer time within 20% (it fits 12 rows of three GPUs with two
    figures per kernel family, the FLA ones shared by H100 and the SM120 card)."""
    from moeplan.deploy.engines import ENGINES
    from moeplan.deploy.kernels import scan_kernel
    from moeplan.hardware.gpus import resolve_gpu

    g = resolve_gpu(gpu)
    engine = ENGINES["vllm"] if kernel == "FlashInfer" else ENGINES["tensorrt-llm"]
    scan = scan_kernel(engine, g)
    assert scan is not None and scan.name.startswith(kernel)
    assert tokens * scan.token_s(heads, 128, 128, g) * 1e3 == pytest.approx(ms, rel=0.2)


def test_engines_take_their_own_linear_attention_prefill_kernels() -> None:
    """vLLM and SGLang run FlashInfer's GDN prefill on Hopper and datacenter Blackwell, FLA's Triton chain on the
    SM120 cards and AMD; llama.cpp's ggml ops are left to the FLOP count."""
    from moeplan.deploy.engines import ENGINES
    from moeplan.deploy.kernels import scan_kernel
    from moeplan.hardware.gpus import resolve_gpu

    def name(engine: str, gpu: str) -> str | None:
        scan = scan_kernel(ENGINES[engine], resolve_gpu(gpu))
        return scan.name if scan else None

    assert name("vllm", "h200-sxm") == "FlashInfer GDN (SM90)" and name("sglang", "gb200") == "FlashInfer GDN (SM100)"
    assert name("vllm", "rtx-pro-6000-blackwell") == name("sglang", "mi300x") == "FLA (Triton)"
    assert name("tensorrt-llm", "b200") == "FLA (Triton) on SM100" and name("llama.cpp", "rtx-4090") is None


def test_a_hybrid_prefill_pays_its_scan_kernels_once() -> None:
    """The scans' FLOPs leave the attention scores and their kernels' seconds take their place: Qwen3.5-35B-A3B's 30
    Gated DeltaNet layers (32 value heads) on one H100 under vLLM add 30 x 8,192 x (1 ns + 32 x 2,400 B / 3.35
    TB/s) = 5.9 ms to an 8,192-token prefill, less the few they had cost as scores."""
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.speed import SpeedModel

    d = moeplan.resolve(EstimateRequest(model="qwen3.5-35b-a3b", gpu="h100", quant="bf16", use_calibration=False))
    sm = SpeedModel(MemoryModel(d))
    assert sm.scan_token_s * 8192 == pytest.approx(30 * 8192 * (1e-9 + 32 * 2400 / 3.35e12), rel=0.01)
    flops = {"attention_scores": 8192 * sm.scan_flops}
    assert sm._split_scan(flops, 8192, 1.0) == pytest.approx(8192 * sm.scan_token_s)
    assert flops["attention_scores"] == pytest.approx(0.0, abs=1.0)  # only the scans' own FLOPs were there
    dense = moeplan.resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="h100", use_calibration=False))
    assert SpeedModel(MemoryModel(dense)).scan_token_s == 0.0


def _pools_hold(mm: Any, ctx: int, b: int, slots: int) -> bool:
    """Whether SGLang's two pools hold ``b`` requests of ``ctx`` tokens: states 0.9 / 1.9 of what weights, buffers
    and overhead leave, ``slots`` a request; the KV cache the rest."""
    weights = sum(mm.stage_weights[0].values())
    act = mm.activation_bytes(ctx, b)
    live = weights + mm.kv_gpu_bytes(0, ctx, b) + mm.state_gpu_bytes(0, b) + act
    rest = mm.d.usable_bytes - weights - act - mm.overhead_bytes(live)
    return bool(mm.state_gpu_bytes(0, b) * slots <= rest * 0.9 / 1.9 and mm.kv_gpu_bytes(0, ctx, b) <= rest / 1.9)


def test_sglang_splits_a_hybrid_models_cache_memory_into_states_and_kv() -> None:
    """SGLang gives recurrent states 0.9 / 1.9 of the memory left after weights and the KV cache the rest, and a
    running request holds 3 state slots (5 under speculative decoding, plus one per draft token of a step): the
    batch it fits is the largest both pools hold, recomputed here from the pools themselves."""
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.resolve import resolve

    def model(engine: str, **kw: Any) -> MemoryModel:
        req = EstimateRequest(model="qwen3.5-122b-a10b", gpu="b200", num_gpus=1, quant="fp8", engine=engine,
                              use_calibration=False, **kw)  # fmt: skip
        return MemoryModel(resolve(req, fewest=False))

    ctx = 9216
    for kw, slots in (({}, 3), ({"mtp": True, "mtp_drafts": 3}, 5 + 4)):
        mm = model("sglang", **kw)
        n = mm.max_batch(ctx)
        assert 0 < n < model("vllm", **kw).max_batch(ctx)  # vLLM's states take only what the batch needs
        assert _pools_hold(mm, ctx, n, slots) and not _pools_hold(mm, ctx, n + 1, slots)
    dense = MemoryModel(resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="h100", engine="sglang",
                                                use_calibration=False), fewest=False))  # fmt: skip
    assert dense.fits(4096, 8) == (dense.gpu(4096, 8).total_bytes <= dense.d.usable_bytes)  # no states: no split


def test_estimates_verdict_headroom_and_largest_batch_agree_under_sglangs_state_pool() -> None:
    """Above the largest batch the state pool holds, SGLang does not fit: the verdict, the headroom (the room left
    in the tighter pool) and the largest batch say the same, and the memory table counts the states held."""
    base = EstimateRequest(model="qwen3.5-122b-a10b", gpu="b200", num_gpus=1, quant="fp8", engine="sglang",
                           mtp=True, mtp_drafts=3, context=9216, use_calibration=False)  # fmt: skip
    most = estimate(base).fit
    assert most is not None and most.max_batch > 0
    at, over = estimate(replace(base, batch=most.max_batch)), estimate(replace(base, batch=most.max_batch + 1))
    assert at.fit is not None and over.fit is not None
    assert at.fit.fits and at.fit.headroom_bytes >= 0 and not over.fit.fits and over.fit.headroom_bytes < 0
    # 9 states a request (5 slots and the 4 tokens a step verifies), not one
    assert at.memory.per_gpu_state_bytes == pytest.approx(9 * most.max_batch * at.memory.state_bytes_per_sequence,
                                                          rel=1e-6)  # fmt: skip
    assert any("splits the memory left after weights" in a for a in at.assumptions)
