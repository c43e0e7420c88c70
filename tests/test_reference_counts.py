"""Cross-check: moeplan's parameter counts equal the reference implementation's, kind by kind.

The reference is the ``transformers`` model class for each ``model_type`` built on the meta device (no
memory, no weights).  Two sets of configs: every real ``config.json`` under ``tests/data/hf_configs`` and,
for every supported architecture, small synthetic configs that switch on the options real files vary in
(biases, missing or null keys, tied embeddings, dense and interleaved layers, shared experts, MLA without a
query bottleneck, sliding windows), so the adapters are exact beyond the files we happen to have.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from moeplan.model.params import count_params
from moeplan.sources.config_adapters import SUPPORTED_MODEL_TYPES, spec_from_config

pytest.importorskip("transformers", reason="the reference implementation is a test dependency")

from reference_impl import reference_counts
from reference_impl import small_config as _small

DATA = Path(__file__).parent / "data"
CONFIGS = sorted([*(DATA / "hf_configs").glob("*.json"), *(DATA / "hf_configs_2026").glob("*.json")])


def _load(path: Path) -> dict[str, Any]:
    """A config as published: the ``_source`` and other ``_`` notes dropped."""
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}


def _type(path: Path) -> str:
    config = _load(path)
    return str(config.get("model_type") or config.get("text_config", {}).get("model_type"))


# transformers 5.23.0 has no class for these; they are counted from their published modeling code below
_NO_REFERENCE_CLASS = ("step3_vl", "step3_text", "bailing_moe")
SUPPORTED = [p for p in CONFIGS if _type(p) in SUPPORTED_MODEL_TYPES and _type(p) not in _NO_REFERENCE_CLASS]
NOT_YET = [p for p in CONFIGS if _type(p) not in SUPPORTED_MODEL_TYPES]
_REFERENCE_TYPES = {"kimi_k2": "deepseek_v3", "hunyuan": "hunyuan_v1_moe"}  # model types transformers names differently


def _check(config: dict[str, Any], label: str, *, reference_may_refuse: bool = False) -> bool:
    """Compare with the reference; False when the reference refuses the config (and that is allowed)."""
    ref_config = dict(config)
    ref_config["model_type"] = _REFERENCE_TYPES.get(config["model_type"], config["model_type"])
    if (
        config["model_type"] == "hunyuan"
    ):  # transformers' class needs head_dim, Tencent's config says attention_head_dim
        ref_config.setdefault("head_dim", config.get("attention_head_dim"))
    try:
        expected, vision = reference_counts(ref_config)
    except Exception:  # the strict config classes raise their own error types
        if reference_may_refuse:
            return False
        raise
    counts = count_params(spec_from_config(config, where=label))
    got = {k: v for k, v in counts.breakdown.items() if v}
    assert got == {k: v for k, v in expected.items() if v}, label
    assert (counts.vision or 0) == vision, label
    return True


@pytest.mark.parametrize("path", SUPPORTED, ids=[p.stem for p in SUPPORTED])
def test_real_configs_match_reference(path: Path) -> None:
    _check(_load(path), path.name)


@pytest.mark.parametrize("path", NOT_YET, ids=[p.stem for p in NOT_YET])
def test_real_configs_of_families_not_yet_read_are_refused_clearly(path: Path) -> None:
    """A config moeplan cannot express yet is refused with its model_type named, never estimated wrongly."""
    from moeplan.errors import UnsupportedArchitectureError

    with pytest.raises(UnsupportedArchitectureError, match=f"model_type '{_type(path)}' is not supported"):
        spec_from_config(_load(path), where=path.name)


# (name, change): each change is applied to a small config; keys set to None are deleted first.
_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("base", {}),
    ("tied", {"tie_word_embeddings": True}),
    ("biases", {"attention_bias": True, "mlp_bias": True, "qkv_bias": False}),
    ("no_head_dim", {"head_dim": None}),
    ("head_dim_null", {"head_dim": "null"}),
    ("explicit_head_dim", {"head_dim": 16}),
    ("kv_heads_absent", {"num_key_value_heads": None}),
    ("kv_heads_null", {"num_key_value_heads": "null"}),
    ("dense_layers", {"mlp_only_layers": [0, 2], "decoder_sparse_step": 1, "first_k_dense_replace": 2}),
    ("sparse_step", {"decoder_sparse_step": 2, "interleave_moe_layer_step": 2}),
    ("no_q_lora", {"q_lora_rank": "null"}),
    ("default_q_lora", {"q_lora_rank": None}),
    ("qk_norm", {"use_qk_norm": True}),
    ("lm_head_bias", {"lm_head_bias": True}),
    ("sliding", {"sliding_window": 32, "use_sliding_window": True}),
    ("no_shared", {"n_shared_experts": 0, "shared_expert_intermediate_size": 0}),
]


def _variant(model_type: str, change: dict[str, Any]) -> dict[str, Any]:
    cfg = copy.deepcopy(_small(model_type))
    for key, value in change.items():
        if value is None:
            cfg.pop(key, None)
        elif value == "null":
            cfg[key] = None
        else:
            cfg[key] = value
    return cfg


# Nested (text_config) families are covered by their text model's variants and by their real configs.
_SYNTHETIC_TYPES = [
    t
    for t in SUPPORTED_MODEL_TYPES
    if t not in ("llama4", "kimi_k2", "kimi_k25", "qwen3_vl_moe", "qwen3_5_moe", "hunyuan", *_NO_REFERENCE_CLASS)
]


@pytest.mark.parametrize("model_type", _SYNTHETIC_TYPES)
def test_synthetic_configs_match_reference(model_type: str) -> None:
    checked = 0
    for name, change in _VARIANTS:
        cfg = _variant(model_type, change)
        if model_type == "deepseek_v3" and name == "no_shared":
            continue  # transformers' DeepseekV3 always builds its shared experts
        if model_type in ("qwen2_moe", "qwen3_next") and name == "no_shared":
            continue  # transformers keeps a gate (h elements) for a zero-width shared expert; moeplan drops both
        if model_type == "olmoe" and name == "explicit_head_dim":
            continue  # cannot run: OLMoE sizes its q/k norms from hidden_size (moeplan refuses it)
        # Some classes refuse a variant outright (a null head_dim, tied DBRX embeddings): nothing to compare.
        checked += _check(cfg, f"{model_type}/{name}", reference_may_refuse=name != "base")
    assert checked >= len(_VARIANTS) // 2, f"the reference refused most {model_type} variants"


def test_kimi_k2_type_is_deepseek_v3() -> None:
    cfg = _small("deepseek_v3")
    cfg["model_type"] = "kimi_k2"
    _check(cfg, "kimi_k2")


@pytest.mark.parametrize("tied", [False, True])
def test_kimi_k25_text_and_moonvit_tower_on_a_small_config(tied: bool) -> None:
    """The vision formula on shapes unlike the real ones, in transformers' own key names."""
    text = _small("deepseek_v3")
    text["model_type"] = "kimi_k2"
    cfg = {
        "model_type": "kimi_k25",
        "tie_word_embeddings": tied,
        "projection_hidden_size": 32,
        "text_config": text,
        "vision_config": {
            "hidden_size": 32,
            "num_hidden_layers": 3,
            "intermediate_size": 48,
            "patch_size": 4,
            "pos_emb_height": 8,
            "pos_emb_width": 6,
            "num_attention_heads": 4,
            "merge_kernel_size": [2, 3],
        },
    }
    _check(cfg, f"kimi_k25/tied={tied}")


def _step3_by_modules(text: dict[str, Any], vision: dict[str, Any]) -> tuple[int, int]:
    """Step3 counted module by module as vLLM builds it (``step3_text.py``, ``step3_vl.py``), independently of
    moeplan's layer list: ``(language model, vision tower and projector)``."""
    h, n, v = text["hidden_size"], text["num_hidden_layers"], text["vocab_size"]
    heads, d, q_dim = text["num_attention_heads"], text["head_dim"], text["share_q_dim"]
    kv = text["num_attention_groups"]
    moe_layers = {int(x) for x in text["moe_layers_enum"].split(",")}
    attention = h * (q_dim + 2 * kv * d) + q_dim + q_dim * heads * d + heads * d * h  # qkv_proj, inter_norm, wq, o
    expert = 3 * h * text["moe_intermediate_size"]
    moe = text["moe_num_experts"] * (expert + h) + 3 * h * text["share_expert_dim"]  # experts + gate, share_expert
    dense = 3 * h * text["intermediate_size"]
    layers = sum(attention + 2 * h + (moe if i in moe_layers else dense) for i in range(n))
    language = layers + h + 2 * v * h  # final norm, embed_tokens, lm_head
    w, inter, depth = vision["hidden_size"], vision["intermediate_size"], vision["num_hidden_layers"]
    p, o = vision["patch_size"], vision["output_hidden_size"]
    tower = w + (3 * p * p * w + w) + ((vision["image_size"] // p) ** 2 + 1) * w  # class, patch, position
    tower += depth * (3 * (w * w + w) + (w * w + w) + (w * inter + inter) + (inter * w + w) + 2 * 2 * w)
    tower += (w * o * 2 * 2 + o) + (o * 2 * o * 3 * 3 + 2 * o) + 2 * o * h  # two Conv2d downsamplers, projector
    return language, tower


def test_step3_counts_equal_its_modeling_code_and_the_published_figures() -> None:
    path = DATA / "hf_configs_2026" / "stepfun-ai__step3.json"
    config = _load(path)
    counts = count_params(spec_from_config(config, where=path.name))
    language, tower = _step3_by_modules(config["text_config"], config["vision_config"])
    assert (counts.total, counts.vision) == (language, tower)
    # README: 316B LLM, 321B with the vision model, 38B activated (without the embedding)
    assert counts.total / 1e9 == pytest.approx(316, rel=0.002)
    assert (counts.total + tower) / 1e9 == pytest.approx(321, rel=0.002)
    assert (counts.active - counts.embedding) / 1e9 == pytest.approx(38, rel=0.01)
    # projector_bias sits beside vision_config; with it the projector gains one bias of the text width
    biased = count_params(spec_from_config({**config, "projector_bias": True}, where=path.name))
    assert biased.vision == tower + config["text_config"]["hidden_size"]


def _ling_v2_by_modules(c: dict[str, Any]) -> tuple[int, int]:
    """Ling 2.0 counted module by module as inclusionAI's ``modeling_bailing_moe_v2.py`` builds it:
    ``(decoder layers + embeddings + norm, MTP layers)``."""
    h, v, heads, kv, d = (c["hidden_size"], c["vocab_size"], c["num_attention_heads"], c["num_key_value_heads"],
                          c["head_dim"])  # fmt: skip
    attention = h * (heads + 2 * kv) * d + heads * d * h + 2 * d  # query_key_value, dense, q/k layernorms
    e, f = c["num_experts"], c["moe_intermediate_size"]
    moe = e * h + e * 3 * h * f + 3 * h * f * c["num_shared_experts"]  # gate.weight, experts, shared_experts
    dense = 3 * h * c["intermediate_size"]
    main = c["num_hidden_layers"] - c["num_nextn_predict_layers"]
    layers = sum(attention + 2 * h + (moe if i >= c["first_k_dense_replace"] else dense) for i in range(main))
    mtp = c["num_nextn_predict_layers"] * (attention + moe + 2 * h + 3 * h + 2 * h * h)
    return layers + h + 2 * v * h, mtp


@pytest.mark.parametrize("nextn", [0, 1])
def test_ling_2_counts_equal_its_modeling_code_and_the_published_figures(nextn: int) -> None:
    path = DATA / "hf_configs_2026" / "inclusionAI__Ling-mini-2.0.json"
    config = {**_load(path), "num_nextn_predict_layers": nextn}
    counts = count_params(spec_from_config(config, where=path.name))
    assert (counts.total, counts.mtp) == _ling_v2_by_modules(config)
    if nextn == 0:  # model card: 16.26B total, 1.43B activated (789M without the embeddings)
        assert counts.total / 1e9 == pytest.approx(16.26, abs=0.005)
        assert counts.active / 1e9 == pytest.approx(1.43, abs=0.005)
        assert (counts.active - counts.embedding - counts.lm_head) / 1e6 == pytest.approx(789, abs=1)


def test_ling_1_is_refused_not_read_as_ling_2() -> None:
    from moeplan.errors import UnsupportedArchitectureError

    config = {**_load(DATA / "hf_configs_2026" / "inclusionAI__Ling-mini-2.0.json")}
    config["architectures"] = ["BailingMoeForCausalLM"]
    with pytest.raises(UnsupportedArchitectureError, match="BailingMoeV2ForCausalLM"):
        spec_from_config(config)
