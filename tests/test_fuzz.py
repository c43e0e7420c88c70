"""Fuzzing the loaders and the estimate: thousands of generated inputs, no unhandled exception, no absurd number.

Every input either gives a result whose figures are finite and non-negative, or a MoeplanError (one line for
the user).  Counts: config dicts 1,500, YAML specs 800, GGUF mutations 1,000, safetensors headers 600, estimate
requests 400.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moeplan import EstimateRequest, estimate
from moeplan.errors import MoeplanError
from moeplan.model.params import count_params
from moeplan.sources.catalog import load_spec_file
from moeplan.sources.config_adapters import SUPPORTED_MODEL_TYPES, spec_from_config
from moeplan.sources.safetensors_headers import parse_header

SHAPE_KEYS = [
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "num_local_experts", "num_experts", "num_experts_per_tok",
    "moe_intermediate_size", "shared_expert_intermediate_size", "n_routed_experts", "n_shared_experts",
    "first_k_dense_replace", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
    "sliding_window", "decoder_sparse_step", "tie_word_embeddings", "attention_bias", "max_position_embeddings",
]  # fmt: skip
VALUES = st.one_of(
    st.integers(-5, 300), st.none(), st.booleans(), st.text(max_size=5), st.floats(allow_nan=True),
    st.lists(st.integers(-2, 8), max_size=4), st.integers(10**12, 10**15),
)  # fmt: skip


def _finite_counts(spec: Any) -> None:
    c = count_params(spec)
    assert c.total > 0 and 0 < c.active <= c.total
    assert all(v >= 0 for v in c.breakdown.values())


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SUPPORTED_MODEL_TYPES)), st.dictionaries(st.sampled_from(SHAPE_KEYS), VALUES))
def test_config_adapters_never_crash(model_type: str, fields: dict[str, Any]) -> None:
    from reference_impl import small_config

    config = {**small_config(model_type), **fields}
    try:
        spec = spec_from_config(config, where="fuzz.json")
    except MoeplanError:
        return
    _finite_counts(spec)


YAML_TEXT = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda k, v: f"id: x\nname: x\narchitecture: x\narch:\n  {k}: {v}\n",
        st.sampled_from(["vocab_size", "hidden_size", "num_layers", "attention", "moe", "mlp", "bogus"]),
        st.sampled_from(["1", "-1", "0", "{}", "[1, 2]", "{num_heads: 0}", "null", "'x'", "1e99", "&a [*a]"]),
    ),
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(YAML_TEXT)
def test_yaml_specs_never_crash(tmp_path: Path, text: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8", errors="replace")
    try:
        spec = load_spec_file(path)
    except MoeplanError:
        return
    _finite_counts(spec)


@settings(max_examples=600, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=10),
        st.one_of(
            st.fixed_dictionaries(
                {"dtype": st.sampled_from(["BF16", "F32", "Q9", "", "U8"]),
                 "shape": st.lists(st.integers(-3, 2**50), max_size=3),
                 "data_offsets": st.lists(st.integers(-5, 2**60), max_size=3)}
            ),
            VALUES,
        ),
        max_size=5,
    ),
    st.one_of(st.none(), st.integers(0, 10**6)),
)  # fmt: skip
def test_safetensors_headers_never_crash(header: dict[str, Any], data_len: int | None) -> None:
    raw = json.dumps(header).encode()
    try:
        tensors = parse_header(raw, data_len, "fuzz.safetensors")
    except MoeplanError:
        return
    assert all(t.nbytes >= 0 and t.elements >= 0 for t in tensors)


@pytest.fixture(scope="module")
def gguf_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf
    from test_inputs import _tiny_moe

    path = write_gguf(tmp_path_factory.mktemp("g") / "t.gguf", "qwen3moe", _tiny_moe(), "Q4_K_M")[0]
    return path.read_bytes()


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_gguf_mutations_never_crash(tmp_path: Path, gguf_bytes: bytes, data: st.DataObject) -> None:
    from moeplan.sources.gguf_spec import spec_from_gguf

    buf = bytearray(gguf_bytes[:20000])  # the header lives here; the data after it is zeros
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(buf) - 8))
        kind = data.draw(st.sampled_from(["byte", "u64", "cut"]))
        if kind == "byte":
            buf[pos] = data.draw(st.integers(0, 255))
        elif kind == "u64":
            buf[pos : pos + 8] = struct.pack("<Q", data.draw(st.sampled_from([0, 1, 2**31, 2**63, 2**64 - 1])))
        else:
            del buf[pos:]
            break
    path = tmp_path / "m.gguf"
    path.write_bytes(bytes(buf) + gguf_bytes[len(buf) :] if len(buf) >= 20000 else bytes(buf))
    try:
        spec = spec_from_gguf(path)
    except MoeplanError:
        return
    _finite_counts(spec)


GPUS = ["h100", "a100", "4090", "m3-ultra", "mi300x", "t4", None]
QUANTS = [None, "bf16", "fp8", "awq-int4", "Q4_K_M", "IQ2_XXS", "experts=mxfp4", "nf4", "Q8_0"]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["mixtral-8x7b", "deepseek-v3", "gpt-oss-20b", "qwen3-30b-a3b", "llama-3.1-8b", "glm-4.5-air"]),
    st.sampled_from(GPUS),
    st.sampled_from(QUANTS),
    st.integers(-2, 2_000_000),
    st.integers(-1, 600),
    st.sampled_from(["auto", "vllm", "llama.cpp", "sglang", "transformers"]),
)
def test_estimates_are_finite_or_refused(
    model: str, gpu: str | None, quant: str | None, context: int, batch: int, engine: str
) -> None:
    try:
        r = estimate(EstimateRequest(model=model, gpu=gpu, quant=quant, context=context, batch=batch, engine=engine))
    except MoeplanError:
        return
    d = r.to_json()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if k not in ("headroom_bytes", "ram_headroom_bytes"):
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, float):
            assert math.isfinite(x) and x >= 0, x
        elif isinstance(x, int) and not isinstance(x, bool):
            assert x >= 0, x

    walk({k: d[k] for k in ("params", "memory", "fit", "flops", "performance", "cost")})


def _gguf_u32_keys(raw: bytes, prefix: str) -> list[tuple[str, int]]:
    """(key, offset of its uint32 value) for every ``prefix*`` key stored as a uint32 (GGUF type 4)."""
    out = []
    start = 0
    while (i := raw.find(prefix.encode(), start)) >= 0:
        start = i + 1
        n = struct.unpack_from("<Q", raw, i - 8)[0]
        if not 0 < n < 200:
            continue
        key = raw[i : i + n].decode(errors="replace")
        if struct.unpack_from("<I", raw, i + n)[0] == 4:
            out.append((key, i + n + 4))
    return out


@pytest.mark.parametrize("arch_name", ["qwen3moe", "deepseek2"])
def test_every_gguf_count_at_zero_or_huge_is_refused_or_finite(tmp_path: Path, arch_name: str) -> None:
    """Each architecture count of a real GGUF set to 0, 1 and 2^32-1 in turn: a clear refusal, or a spec whose
    estimate is finite (``head_count = 0`` once divided by zero in the reader)."""
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf
    from test_inputs import _tiny_moe

    from moeplan.sources.gguf_spec import spec_from_gguf

    arch = _tiny_moe()
    if arch_name == "deepseek2":
        from moeplan.model.spec import MlaSpec

        mla = MlaSpec(q_lora_rank=32, kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16)
        att = dataclasses.replace(
            arch.attention, kind="mla", mla=mla, head_dim=24, num_kv_heads=arch.attention.num_heads
        )
        arch = dataclasses.replace(arch, attention=att)
    good = write_gguf(tmp_path / "good.gguf", arch_name, arch, "Q8_0")[0].read_bytes()
    keys = _gguf_u32_keys(good, f"{arch_name}.")
    assert len(keys) >= 8
    for key, offset in keys:
        for value in (0, 1, 2**32 - 1):
            buf = bytearray(good)
            struct.pack_into("<I", buf, offset, value)
            path = tmp_path / "m.gguf"
            path.write_bytes(bytes(buf))
            try:
                spec = spec_from_gguf(path)
                r = estimate(EstimateRequest(model=str(path), gpu="h100", context=2048))
            except MoeplanError as e:
                assert "\n" not in str(e), (key, value)
                continue
            _finite_counts(spec)
            assert r.memory.per_gpu_bytes > 0, (key, value)
