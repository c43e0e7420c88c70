"""Sliding-window and chunked layers under each engine's cache manager (moeplan.deploy.kv_cache)."""

from __future__ import annotations

import pytest

from moeplan.deploy.engines import ENGINES
from moeplan.deploy.kv_cache import (
    kv_bytes_per_token,
    kv_cache_bytes,
    logged_kv_tokens,
    swa_ring_cells,
    vllm_window_cells,
)
from moeplan.plans.accuracy import check
from moeplan.sources.catalog import resolve_model

GIB = 2**30
CTX = 131_072


def test_vllm_window_cells_follow_sliding_window_spec() -> None:
    # SlidingWindowSpec.max_memory_usage_bytes: (cdiv(min(w - 1 + T, max_model_len), 16) + 1) blocks of 16.
    assert vllm_window_cells(128, CTX, 8192) == (520 + 1) * 16 == 8336
    assert vllm_window_cells(128, CTX, 2048) == (136 + 1) * 16 == 2192
    assert vllm_window_cells(8192, CTX, 8192) == (1024 + 1) * 16
    assert vllm_window_cells(128, 1000, 8192) == 1000  # never more than the context itself
    assert swa_ring_cells(128, CTX, 512) == 768  # llama.cpp unchanged: pad256(window + ubatch)


def test_gpt_oss_120b_vllm_caches_windows_by_window() -> None:
    arch = resolve_model("gpt-oss-120b").arch
    vllm, full = ENGINES["vllm"], ENGINES["transformers"]
    assert kv_bytes_per_token(arch, "bf16", vllm) == 18 * 2048
    got = kv_cache_bytes(arch, CTX, 1, "bf16", vllm, ubatch=8192)
    assert got == 18 * 2048 * CTX + 18 * 2048 * 8336
    # 128K, one sequence: 9.0 GiB before (every layer full), 4.79 GiB now.
    assert kv_cache_bytes(arch, CTX, 1, "bf16", full) / GIB == pytest.approx(9.0)
    assert got / GIB == pytest.approx(4.79, abs=0.01)


def test_llama_4_chunked_layers_under_vllm_and_sglang() -> None:
    arch = resolve_model("llama-4-scout").arch  # 48 layers, CCCF: 12 full, 36 chunked (8,192), 4,096 B/layer/token
    vllm = kv_cache_bytes(arch, CTX, 1, "bf16", ENGINES["vllm"], ubatch=8192)
    assert vllm == 12 * 4096 * CTX + 36 * 4096 * (1024 + 1) * 16
    assert vllm / GIB == pytest.approx(8.25, abs=0.01)  # was 24 GiB with every layer full
    # SGLang keeps Llama 4's chunked layers full unless --hybrid-kvcache-ratio is given.
    assert kv_bytes_per_token(arch, "bf16", ENGINES["sglang"]) == 48 * 4096


def test_sglang_pools_gpt_oss_windows_at_the_swa_ratio() -> None:
    arch = resolve_model("gpt-oss-120b").arch
    assert kv_bytes_per_token(arch, "bf16", ENGINES["sglang"]) == pytest.approx(18 * 2048 * 1.8)
    # A model with sliding layers only (Mistral 7B) is not a hybrid-SWA model: cached in full.
    mistral = resolve_model("mistral-7b").arch
    assert kv_bytes_per_token(mistral, "bf16", ENGINES["sglang"]) == 32 * 2048 * 2


def test_vllm_logged_cache_size_before_and_after_v0_21() -> None:
    arch = resolve_model("gpt-oss-120b").arch
    vllm = ENGINES["vllm"]
    # vLLM <= 0.20 (hf-mem issue #60): 5.38 GiB -> "GPU KV cache size: 78,384 tokens".
    assert logged_kv_tokens(arch, "bf16", vllm, 5.38 * GIB, "vllm_groups") == pytest.approx(78_384, rel=0.001)
    # vLLM >= 0.21 logs max_concurrency x max_model_len: about twice as many tokens for the same pool.
    new = logged_kv_tokens(arch, "bf16", vllm, 5.38 * GIB, "vllm_concurrency", CTX, 8192)
    assert new == pytest.approx(5.38 * GIB / (36_864 * (CTX + 8336)) * CTX)
    assert 1.8 < new / 78_384 < 2.0


def test_measured_vllm_log_record_scores_exactly() -> None:
    record = {
        "id": "K03", "kind": "kv_tokens", "model": "gpt-oss-120b", "engine": "vllm", "kv_bytes": "5.38 GiB",
        "value": 78384, "unit": "tokens", "log": "vllm_groups",
    }  # fmt: skip
    c = check(record)
    assert c.predicted == pytest.approx(78_384, rel=0.001)


def test_window_caching_decides_gpu_count_for_llama_4_scout_fp8() -> None:
    from moeplan.deploy.deployment import EstimateRequest
    from moeplan.deploy.resolve import resolve

    request = EstimateRequest(model="llama-4-scout", engine="vllm", quant="fp8", context=CTX, batch=4, gpu="h100")
    d = resolve(request)
    assert d.layout.num_gpus == 2  # every layer full (24 GiB per sequence) needed 4
