"""config.json adapter: real-file quirks and every bad input becomes one clear SpecError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moeplan.errors import SpecError, UnsupportedArchitectureError
from moeplan.model.params import count_params
from moeplan.sources.config_adapters import SUPPORTED_MODEL_TYPES, spec_from_config
from moeplan.sources.config_fields import read_config_file, weights_dtype

DATA = Path(__file__).parent / "data" / "hf_configs"


def _config(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((DATA / name).read_text())


def test_issue_list_of_model_types_is_supported() -> None:
    wanted = {
        "mixtral",
        "mistral",
        "llama",
        "llama4",
        "qwen2",
        "qwen3",
        "qwen2_moe",
        "qwen3_moe",
        "deepseek_v2",
        "deepseek_v3",
        "dbrx",
        "gpt_oss",
        "olmoe",
        "phimoe",
        "glm4_moe",
        "granitemoe",
    }
    assert wanted <= set(SUPPORTED_MODEL_TYPES)


def test_unsupported_model_type_names_the_supported_ones() -> None:
    with pytest.raises(UnsupportedArchitectureError) as e:
        spec_from_config({"model_type": "bert", "hidden_size": 768}, where="x/config.json")
    text = str(e.value)
    assert "x/config.json" in text and "'bert'" in text and "mixtral" in text and "YAML spec" in text


@pytest.mark.parametrize("key", ["hidden_size", "num_hidden_layers", "vocab_size", "num_attention_heads"])
def test_missing_shape_key_is_named(key: str) -> None:
    cfg = _config("mistralai__Mixtral-8x7B-v0.1.json")
    del cfg[key]
    with pytest.raises(SpecError, match=f"field '{key}' is missing"):
        spec_from_config(cfg, where="c.json")


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("hidden_size", -4096, "must be positive"),
        ("hidden_size", "4096", "must be an integer"),
        ("num_local_experts", 0, "must be positive"),
        ("tie_word_embeddings", "yes", "must be true or false"),
        ("num_experts_per_tok", 9, "top_k"),
        ("num_key_value_heads", 7, "multiple of num_kv_heads"),
    ],
)
def test_bad_values_name_the_field(key: str, value: object, why: str) -> None:
    cfg = _config("mistralai__Mixtral-8x7B-v0.1.json")
    cfg[key] = value
    with pytest.raises(SpecError, match=why) as e:
        spec_from_config(cfg, where="c.json")
    assert str(e.value).startswith("c.json: ")


def test_null_and_missing_head_dim_fall_back_to_hidden_over_heads() -> None:
    cfg = _config("mistralai__Mixtral-8x7B-v0.1.json")
    cfg["head_dim"] = None
    a = count_params(spec_from_config(cfg))
    cfg.pop("head_dim")
    b = count_params(spec_from_config(cfg))
    assert a == b and spec_from_config(cfg).arch.attention.head_dim == 128


def test_old_and_new_key_names() -> None:
    assert weights_dtype({"torch_dtype": "bfloat16"}) == "bf16"
    assert weights_dtype({"dtype": "float16"}) == "fp16"
    assert weights_dtype({"text_config": {"torch_dtype": "float32"}}) == "fp32"
    cfg = _config("meta-llama__Llama-3.1-8B.json")
    old = dict(cfg, rope_theta=500000.0)
    old.pop("rope_parameters")
    assert count_params(spec_from_config(old)) == count_params(spec_from_config(cfg))


def test_sliding_and_chunked_layer_patterns() -> None:
    oss = spec_from_config(_config("openai__gpt-oss-120b.json")).arch.attention
    assert (oss.layer_pattern, oss.window_tokens) == ("SF", 128)
    scout = spec_from_config(_config("meta-llama__Llama-4-Scout-17B-16E.json")).arch.attention
    assert (scout.layer_pattern, scout.window_tokens) == ("CCCF", 8192)
    mistral = spec_from_config(_config("mistralai__Mistral-7B-v0.1.json")).arch.attention
    assert (mistral.layer_pattern, mistral.window_tokens) == ("S", 4096)
    qwen = spec_from_config(_config("Qwen__Qwen3-30B-A3B.json")).arch.attention
    assert qwen.layer_pattern == "F"


def test_unknown_layer_type_is_an_error() -> None:
    cfg = _config("openai__gpt-oss-20b.json")
    cfg["layer_types"] = ["mamba"] * cfg["num_hidden_layers"]
    with pytest.raises(SpecError, match="layer_types"):
        spec_from_config(cfg)


def test_olmoe_head_dim_must_match_hidden() -> None:
    cfg = {
        "model_type": "olmoe",
        "vocab_size": 100,
        "hidden_size": 64,
        "intermediate_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "head_dim": 32,
    }
    with pytest.raises(SpecError, match="head_dim"):
        spec_from_config(cfg)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "invalid JSON at line 1"),
        ("[1, 2]", "must hold a JSON object"),
        ("\x00\xff\xfe", "invalid JSON|not a text file"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply|invalid JSON"),
    ],
)
def test_bad_config_files(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(SpecError, match=why) as e:
        read_config_file(path)
    assert str(path) in str(e.value)


def test_huge_config_is_refused_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    with path.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    with pytest.raises(SpecError, match="too large"):
        read_config_file(path)


def test_non_object_and_missing_model_type() -> None:
    with pytest.raises(SpecError, match="model_type"):
        spec_from_config({"hidden_size": 1})


def test_llama4_empty_lists_follow_transformers() -> None:
    raw = json.loads((Path(__file__).parent / "data/hf_configs/meta-llama__Llama-4-Scout-17B-16E.json").read_text())
    text = dict(raw["text_config"])
    text["no_rope_layers"] = []  # empty = the default interval of 4
    text.pop("layer_types", None)
    spec = spec_from_config({**raw, "text_config": text}, where="scout")
    assert spec.arch.attention.layer_pattern == "CCCF"
    text["moe_layers"] = []  # no MoE layer at all: a dense model
    dense = spec_from_config({**raw, "text_config": text}, where="scout")
    assert dense.arch.moe is None and dense.arch.mlp is not None
