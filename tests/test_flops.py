"""FLOPs per token: hand-computed values, MLA forms, windows, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moeplan.model.flops import flops_per_token, prompt_flops
from moeplan.model.params import count_params
from moeplan.model.spec import ModelSpec
from moeplan.sources.catalog import load_catalog, resolve_model

CATALOG = load_catalog()


def test_llama_8b_decode_by_hand() -> None:
    spec = resolve_model("llama-3.1-8b")
    f = flops_per_token(spec.arch, 8192)
    p = count_params(spec)
    matmul = 2 * (p.total - p.embedding - p.breakdown["norm"])
    assert f.matmul == matmul
    assert f.by_kind["attention_scores"] == 2 * 32 * (128 + 128) * 8192 * 32


def test_moe_matmuls_follow_active_parameters() -> None:
    spec = resolve_model("mixtral-8x7b")
    f = flops_per_token(spec.arch, 1)
    p = count_params(spec)
    assert f.by_kind["routed_experts"] == 2 * p.active_breakdown["routed_experts"]
    assert f.matmul == 2 * (p.active - p.embedding - p.breakdown["norm"])


def test_mla_absorbed_decode_and_unabsorbed_prefill() -> None:
    arch = resolve_model("deepseek-v3").arch
    per_layer_decode = 2 * 128 * (2 * 512 + 64)
    assert flops_per_token(arch, 1000).by_kind["attention_scores"] == per_layer_decode * 1000 * 61
    per_layer_prefill = 2 * 128 * (128 + 64 + 128)
    assert flops_per_token(arch, 999, "prefill").by_kind["attention_scores"] == per_layer_prefill * 500 * 61


def test_sliding_windows_cap_attention() -> None:
    arch = resolve_model("gpt-oss-120b").arch  # alternating 128-token windows and full layers
    short, long = (flops_per_token(arch, c).by_kind["attention_scores"] for c in (128, 100_000))
    per_token_layer = 2 * arch.attention.num_heads * (arch.attention.head_dim * 2)
    assert long == per_token_layer * (18 * 100_000 + 18 * 128)
    assert short == per_token_layer * 36 * 128


def test_prompt_flops_is_mean_times_length() -> None:
    arch = resolve_model("qwen3-30b-a3b").arch
    assert prompt_flops(arch, 2048) == pytest.approx(flops_per_token(arch, 2048, "prefill").total * 2048)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CATALOG), st.integers(1, 500_000), st.integers(1, 500_000))
def test_flops_never_fall_with_context(spec: ModelSpec, a: int, b: int) -> None:
    """A decode step and a whole prompt never cost less with more context.  Prefill FLOPs *per token* may: under
    chunked attention (Llama 4, chunks of 8192) the positions past a chunk boundary attend to few tokens, so
    the mean over a 9,510-token prompt is below the mean over 7,807."""
    lo, hi = sorted((a, b))
    assert flops_per_token(spec.arch, lo).total <= flops_per_token(spec.arch, hi).total
    assert prompt_flops(spec.arch, lo) <= prompt_flops(spec.arch, hi)
    assert flops_per_token(spec.arch, lo).total > 0


def test_chunked_attention_prefill_mean_falls_past_a_chunk() -> None:
    arch = resolve_model("llama-4-maverick").arch
    per_token = [flops_per_token(arch, n, "prefill").by_kind["attention_scores"] for n in (8192, 9510)]
    assert per_token[1] < per_token[0]
    assert prompt_flops(arch, 9510) > prompt_flops(arch, 8192)
