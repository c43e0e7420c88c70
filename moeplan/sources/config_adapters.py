"""Hugging Face ``config.json`` -> ModelSpec, one adapter per ``model_type``.

Each adapter reads the keys the ``transformers`` model class reads, with the same defaults where a key is
missing or null (``head_dim: null`` means ``hidden_size // num_attention_heads``), so the parameter counts
equal the reference implementation's; ``tests/test_reference_counts.py`` checks that against the
``transformers`` classes themselves.  The shape keys a model cannot be built without (``hidden_size``,
``num_hidden_layers``, ...) are required: a config missing one is an error naming the key, never a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from moeplan.errors import SpecError, UnsupportedArchitectureError
from moeplan.model.spec import (
    ArchSpec,
    AttentionSpec,
    MlpSpec,
    ModelSpec,
    MoeSpec,
)
from moeplan.records import checked
from moeplan.sources.adapters_hybrid import granite_moe_hybrid, jamba, nemotron_h, qwen3_next, qwen_moe_layers
from moeplan.sources.adapters_mla import deepseek, deepseek_dsa, kimi_linear, longcat_flash
from moeplan.sources.adapters_remote_code import bailing_moe_v2, step3_text
from moeplan.sources.checkpoint import native_format, unread_quant_method
from moeplan.sources.config_fields import (
    Config,
    common_fields,
    dense_mlp,
    gqa_attention,
    head_dim_of,
    layer_pattern_of,
    shared_expert_moe,
    sliding_pattern,
    slug,
    weights_dtype,
)
from moeplan.sources.vision_towers import (
    kimi_k25_vision_params,
    llama4_vision_params,
    qwen3_vl_vision_params,
    step3_vision_params,
)


def _llama(c: Config) -> ArchSpec:
    bias = c.flag("attention_bias", False)
    pattern, window = sliding_pattern(c)
    return ArchSpec(
        **common_fields(c),
        attention=gqa_attention(c, qkv_bias=bias, o_bias=bias, pattern=pattern, window=window),
        mlp=dense_mlp(c, bias=c.flag("mlp_bias", False)),
    )


def _mistral(c: Config) -> ArchSpec:
    pattern, window = sliding_pattern(c)
    return ArchSpec(
        **common_fields(c), attention=gqa_attention(c, kv_default=8, pattern=pattern, window=window), mlp=dense_mlp(c)
    )


def _qwen2(c: Config) -> ArchSpec:
    pattern, window = sliding_pattern(c)
    return ArchSpec(
        **common_fields(c),
        attention=gqa_attention(c, qkv_bias=True, kv_default=32, pattern=pattern, window=window),
        mlp=dense_mlp(c),
    )


def _qwen3(c: Config) -> ArchSpec:
    bias = c.flag("attention_bias", False)
    pattern, window = sliding_pattern(c)
    return ArchSpec(
        **common_fields(c),
        attention=gqa_attention(
            c, qkv_bias=bias, o_bias=bias, qk_norm="per_head", head_dim_default=128, pattern=pattern, window=window
        ),
        mlp=dense_mlp(c),
    )


# ---- MoE families -----------------------------------------------------------------------------------


def _mixtral(c: Config) -> ArchSpec:
    pattern, window = sliding_pattern(c)
    return ArchSpec(
        **common_fields(c),
        attention=gqa_attention(c, kv_default=8, pattern=pattern, window=window),
        moe=MoeSpec(
            num_experts=c.integer("num_local_experts", 8),
            top_k=c.integer("num_experts_per_tok", 2),
            expert_intermediate_size=c.integer("intermediate_size"),
        ),
    )


def _phimoe(c: Config) -> ArchSpec:
    bias = c.flag("attention_bias", False)
    pattern, window = sliding_pattern(c)
    return ArchSpec(
        **common_fields(c),
        lm_head_bias=c.flag("lm_head_bias", False),
        norm="layer",
        norm_bias=True,
        attention=gqa_attention(c, qkv_bias=bias, o_bias=bias, kv_default=8, pattern=pattern, window=window),
        moe=MoeSpec(
            num_experts=c.integer("num_local_experts", 16),
            top_k=c.integer("num_experts_per_tok", 2),
            expert_intermediate_size=c.integer("intermediate_size"),
        ),
    )


def _olmoe(c: Config) -> ArchSpec:
    bias = c.flag("attention_bias", False)
    if head_dim_of(c) * c.integer("num_attention_heads") != c.integer("hidden_size"):
        # OLMoE's q/k norms are sized from hidden_size: any other head_dim cannot run.
        raise SpecError(f"{c.where}: field 'head_dim' must be hidden_size / num_attention_heads for olmoe")
    return ArchSpec(
        **common_fields(c),
        attention=gqa_attention(c, qkv_bias=bias, o_bias=bias, qk_norm="full"),
        moe=MoeSpec(
            num_experts=c.integer("num_experts", 64),
            top_k=c.integer("num_experts_per_tok", 8),
            expert_intermediate_size=c.integer("intermediate_size"),
        ),
    )


def _granitemoe(c: Config) -> ArchSpec:
    bias = c.flag("attention_bias", False)
    return ArchSpec(
        **common_fields(c),
        attention=gqa_attention(c, qkv_bias=bias, o_bias=bias),
        moe=MoeSpec(
            num_experts=c.integer("num_local_experts", 8),
            top_k=c.integer("num_experts_per_tok", 2),
            expert_intermediate_size=c.integer("intermediate_size"),
        ),
    )


def _minimax_m2(c: Config) -> ArchSpec:
    """MiniMax-M2: GQA with q/k RMSNorms over all heads jointly, a sigmoid router with a score-correction buffer,
    every layer MoE, no shared expert."""
    common = common_fields(c)
    return ArchSpec(
        **common,
        attention=gqa_attention(c, qk_norm="full", kv_default=8, head_dim_default=128),
        moe=MoeSpec(
            num_experts=c.integer("num_local_experts", 256),
            top_k=c.integer("num_experts_per_tok", 8),
            expert_intermediate_size=c.integer("intermediate_size", 1536),
            router_correction_bias=c.flag("use_routing_bias", True),
        ),
    )


def _ernie4_5_moe(c: Config) -> ArchSpec:
    """ERNIE 4.5 MoE: MoE layers from ``moe_layer_start_index`` to ``moe_layer_end_index`` every
    ``moe_layer_interval``, the others dense; ``moe_num_shared_experts`` shared experts as one MLP; the router's
    score-correction bias is a parameter; ``use_bias`` puts biases on attention, MLPs and the output head."""
    common = common_fields(c, tie_default=True)
    n = common["num_layers"]
    start = c.integer("moe_layer_start_index", 1, positive=False)
    end_raw = c.data.get("moe_layer_end_index", -1)
    end = n - 1 if end_raw in (-1, None) else c.integer("moe_layer_end_index", positive=False)
    interval = c.integer("moe_layer_interval", 1)
    dense = tuple(i for i in range(n) if not ((i + 1) % interval == 0 and start <= i <= end))
    bias = c.flag("use_bias", False)
    shared = c.integer("moe_num_shared_experts", 2, positive=False)
    width = c.integer("moe_intermediate_size")
    return ArchSpec(
        **common,
        lm_head_bias=bias,
        attention=gqa_attention(c, qkv_bias=bias, o_bias=bias, kv_default=4),
        mlp=dense_mlp(c, bias=bias) if dense else None,
        moe=MoeSpec(
            num_experts=c.integer("moe_num_experts", 64),
            top_k=c.integer("moe_k", 6),
            expert_intermediate_size=width,
            router_bias=True,
            num_shared_experts=shared,
            shared_intermediate_size=width * shared if shared else None,
            shared_bias=bias,
            dense_layers=dense,
        ),
    )


def _per_layer(c: Config, key: str, default: int) -> int:
    """A count Hunyuan may give per layer (``moe_topk: [8, 8, ...]``): one value, or the same in every layer."""
    value = c.data.get(key, default)
    if isinstance(value, list):
        if not value or any(v != value[0] for v in value) or not isinstance(value[0], int) or value[0] < 1:
            raise SpecError(f"{c.where}: field '{key}' differs between layers, which is not expressible yet")
        return int(value[0])
    return c.integer(key, default)


def _hunyuan_moe(c: Config) -> ArchSpec:
    """Hunyuan-A13B: every layer MoE with a shared MLP; the routed and shared experts both take
    ``intermediate_size`` (transformers 5.23.0 reads no ``moe_intermediate_size``); per-head q/k norms."""
    common = common_fields(c)
    width = c.integer("intermediate_size")
    head_dim = c.integer(
        "head_dim", c.integer("attention_head_dim", common["hidden_size"] // c.integer("num_attention_heads"))
    )
    bias = c.flag("attention_bias", False)
    attention = gqa_attention(c, qkv_bias=bias, o_bias=bias, qk_norm="per_head")
    return ArchSpec(
        **common,
        attention=replace(attention, head_dim=head_dim),
        moe=MoeSpec(
            num_experts=_per_layer(c, "num_experts", 1),
            top_k=_per_layer(c, "moe_topk", 1),
            expert_intermediate_size=width,
            num_shared_experts=1,
            shared_intermediate_size=width,
        ),
    )


def _qwen2_moe(c: Config) -> ArchSpec:
    common = common_fields(c)
    pattern, window = sliding_pattern(c)
    dense = qwen_moe_layers(c, common["num_layers"])
    shared = c.integer("shared_expert_intermediate_size", 0, positive=False)
    return ArchSpec(
        **common,
        attention=gqa_attention(c, qkv_bias=c.flag("qkv_bias", True), kv_default=16, pattern=pattern, window=window),
        mlp=dense_mlp(c) if dense else None,
        moe=MoeSpec(
            num_experts=c.integer("num_experts", 60),
            top_k=c.integer("num_experts_per_tok", 4),
            expert_intermediate_size=c.integer("moe_intermediate_size"),
            num_shared_experts=1 if shared else 0,
            shared_intermediate_size=shared or None,
            shared_expert_gate=bool(shared),
            dense_layers=dense,
        ),
    )


def _qwen3_moe(c: Config) -> ArchSpec:
    common = common_fields(c)
    bias = c.flag("attention_bias", False)
    pattern, window = sliding_pattern(c)
    dense = qwen_moe_layers(c, common["num_layers"])
    experts = c.integer("num_experts", c.integer("num_local_experts", 128))
    return ArchSpec(
        **common,
        attention=gqa_attention(
            c, qkv_bias=bias, o_bias=bias, qk_norm="per_head", kv_default=4, pattern=pattern, window=window
        ),
        mlp=dense_mlp(c) if dense else None,
        moe=MoeSpec(
            num_experts=experts,
            top_k=c.integer("num_experts_per_tok", 8),
            expert_intermediate_size=c.integer("moe_intermediate_size"),
            dense_layers=dense,
        ),
    )


def _glm4_moe(c: Config) -> ArchSpec:
    common = common_fields(c)
    first_dense = c.integer("first_k_dense_replace", 1, positive=False)
    dense = tuple(range(min(first_dense, common["num_layers"])))
    n_shared = c.integer("n_shared_experts", 1, positive=False)
    moe_width = c.integer("moe_intermediate_size")
    return ArchSpec(
        **common,
        attention=gqa_attention(
            c,
            qkv_bias=c.flag("attention_bias", False),
            qk_norm="per_head" if c.flag("use_qk_norm", False) else "none",
            kv_default=8,
        ),
        mlp=dense_mlp(c) if dense else None,
        moe=shared_expert_moe(
            experts=c.integer("n_routed_experts", 128),
            top_k=c.integer("num_experts_per_tok", 8),
            width=moe_width,
            n_shared=n_shared,
            dense=dense,
        ),
        mtp_layers=c.integer("num_nextn_predict_layers", 1, positive=False),
    )


def _gpt_oss(c: Config) -> ArchSpec:
    common = common_fields(c)
    types = c.str_list("layer_types")
    # Without layer_types, transformers slides on even layers and attends fully on odd ones.
    pattern = layer_pattern_of(types, common["num_layers"], c.where) if types else "SF"
    bias = c.flag("attention_bias", True)
    return ArchSpec(
        **common,
        attention=gqa_attention(
            c,
            qkv_bias=bias,
            o_bias=bias,
            sinks=True,
            kv_default=8,
            head_dim_default=64,
            pattern=pattern,
            window=c.integer("sliding_window", 128),
        ),
        moe=MoeSpec(
            num_experts=c.integer("num_local_experts", 128),
            top_k=c.integer("num_experts_per_tok", 4),
            expert_intermediate_size=c.integer("intermediate_size"),
            expert_bias=True,
            router_bias=True,
        ),
    )


def _dbrx(c: Config) -> ArchSpec:
    attn, ffn = c.sub("attn_config"), c.sub("ffn_config")
    heads, hidden = c.integer("n_heads"), c.integer("d_model")
    return ArchSpec(
        vocab_size=c.integer("vocab_size"),
        hidden_size=hidden,
        num_layers=c.layers("n_layers"),
        tie_embeddings=c.flag("tie_word_embeddings", False),
        max_context=c.opt_int("max_seq_len"),
        norm="layer",
        attention=AttentionSpec(num_heads=heads, num_kv_heads=attn.integer("kv_n_heads", 1), head_dim=hidden // heads),
        moe=MoeSpec(
            num_experts=ffn.integer("moe_num_experts", 4),
            top_k=ffn.integer("moe_top_k", 1),
            expert_intermediate_size=ffn.integer("ffn_hidden_size"),
        ),
    )


def _llama4_text(c: Config) -> ArchSpec:
    common = common_fields(c)
    num_layers = common["num_layers"]
    moe_layers = c.int_list("moe_layers")
    if moe_layers is None:
        step = c.integer("interleave_moe_layer_step", 1)
        moe_layers = list(range(step - 1, num_layers, step))
    dense = tuple(i for i in range(num_layers) if i not in set(moe_layers))
    types = c.str_list("layer_types")
    if types:
        pattern = layer_pattern_of(types, num_layers, c.where)
    else:
        nope = c.int_list("no_rope_layers")
        if not nope:  # transformers treats an empty list as absent
            interval = c.integer("no_rope_layer_interval", 4)
            nope = [int((i + 1) % interval != 0) for i in range(num_layers)]
        pattern = layer_pattern_of(["chunked_attention" if r else "full_attention" for r in nope], num_layers, c.where)
    window = c.integer("attention_chunk_size", 8192) if "C" in pattern else None
    bias = c.flag("attention_bias", False)
    width = c.integer("intermediate_size")
    return ArchSpec(
        **common,
        attention=gqa_attention(
            c, qkv_bias=bias, o_bias=bias, kv_default=8, head_dim_default=128, pattern=pattern, window=window
        ),
        mlp=MlpSpec(intermediate_size=c.integer("intermediate_size_mlp", 16384)) if dense else None,
        moe=MoeSpec(
            num_experts=c.integer("num_local_experts", 16),
            top_k=c.integer("num_experts_per_tok", 1),
            expert_intermediate_size=width,
            num_shared_experts=1,
            shared_intermediate_size=width,
            dense_layers=dense,
        )
        if moe_layers
        else None,  # moe_layers: [] builds a dense model
    )


# ---- dispatch ---------------------------------------------------------------------------------------

ADAPTERS: dict[str, Callable[[Config], ArchSpec]] = {
    "llama": _llama,
    "mistral": _mistral,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "mixtral": _mixtral,
    "phimoe": _phimoe,
    "olmoe": _olmoe,
    "granitemoe": _granitemoe,
    "qwen2_moe": _qwen2_moe,
    "qwen3_moe": _qwen3_moe,
    "qwen3_vl_moe": _qwen3_moe,
    "qwen3_next": qwen3_next,
    "qwen3_5_moe": lambda c: qwen3_next(c, v35=True),
    "nemotron_h": nemotron_h,
    "granitemoehybrid": granite_moe_hybrid,
    "jamba": jamba,
    "kimi_linear": kimi_linear,
    "step3_text": step3_text,
    "bailing_moe": bailing_moe_v2,
    "step3_vl": step3_text,  # its text_config is step3_text
    "longcat_flash": longcat_flash,
    "minimax_m2": _minimax_m2,
    "deepseek_v32": lambda c: deepseek_dsa(c, glm=False),
    "glm_moe_dsa": lambda c: deepseek_dsa(c, glm=True),
    "ernie4_5_moe": _ernie4_5_moe,
    "hunyuan_v1_moe": _hunyuan_moe,
    "hunyuan": _hunyuan_moe,  # Tencent's own model_type for the same checkpoint (remote code)
    "deepseek_v2": lambda c: deepseek(c, v3=False),
    "deepseek_v3": lambda c: deepseek(c, v3=True),
    "kimi_k2": lambda c: deepseek(c, v3=True),
    "kimi_k25": lambda c: deepseek(c, v3=True),  # its text_config is Kimi K2's (DeepSeek-V3 shapes)
    "glm4_moe": _glm4_moe,
    "gpt_oss": _gpt_oss,
    "dbrx": _dbrx,
    "llama4": _llama4_text,
    "llama4_text": _llama4_text,
}
SUPPORTED_MODEL_TYPES = tuple(sorted(ADAPTERS))

VISION_TOWERS: dict[str, Callable[[Config, int, Config], int]] = {
    "llama4": llama4_vision_params,
    "qwen3_vl_moe": qwen3_vl_vision_params,
    "qwen3_5_moe": qwen3_vl_vision_params,
    "kimi_k25": kimi_k25_vision_params,
    "step3_vl": step3_vision_params,
}
"""Families whose config nests the language model in ``text_config`` beside a ``vision_config``: the formula
of their vision tower's parameters (outside the total)."""


def arch_from_config(
    config: Mapping[str, Any], where: str = "config.json", defaulted: dict[str, int] | None = None
) -> tuple[str, ArchSpec, int | None]:
    """``(model_type, ArchSpec, vision params or None)`` for a parsed ``config.json``; the counts it did not
    state and took from the family's defaults go into ``defaulted``."""
    c = Config(config, where, defaulted)
    model_type = config.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise SpecError(f"{where}: field 'model_type' must be a string like \"mixtral\", not {model_type!r}")
    if not model_type:
        hint = " (a safetensors index: give its folder)" if str(where).endswith(".index.json") else ""
        raise SpecError(f"{where}: field 'model_type' is missing; this does not look like a model config.json{hint}")
    adapter = ADAPTERS.get(model_type)
    if adapter is None:
        raise UnsupportedArchitectureError(
            f"{where}: model_type '{model_type}' is not supported; supported: {', '.join(SUPPORTED_MODEL_TYPES)}",
            "describe it in a YAML spec instead: `moeplan spec mixtral-8x7b > my-model.yaml` prints one to edit",
        )
    text = c
    vision: int | None = None
    if model_type in VISION_TOWERS:
        sub = c.sub("text_config")
        inner = sub.data.get("model_type")
        if model_type == "kimi_k25" and inner not in (None, "kimi_k2", "deepseek_v3"):
            raise UnsupportedArchitectureError(
                f"{where}: a kimi_k25 text_config of model_type {inner!r} is not supported (only kimi_k2/deepseek_v3)"
            )
        tie = config.get("tie_word_embeddings")  # the top-level flag wins over the text config's default
        text = Config({**sub.data, **({"tie_word_embeddings": tie} if tie is not None else {})}, sub.where, c.defaulted)
        if "vision_config" in config:
            vision = VISION_TOWERS[model_type](c.sub("vision_config"), text.integer("hidden_size"), c)
    try:
        arch = adapter(text)
    except ValueError as e:  # a rule between fields (ArchSpec and its parts check them on construction)
        raise SpecError(f"{where}: {e}") from None
    return model_type, checked(arch, where), vision


def spec_from_config(
    config: Mapping[str, Any], *, where: str = "config.json", model_id: str | None = None, name: str | None = None
) -> ModelSpec:
    """A ModelSpec for a parsed ``config.json``; ``where`` names it in errors and in ``origin``."""
    if not isinstance(config, Mapping):
        raise SpecError(f"{where}: a config.json must hold a JSON object")
    defaulted: dict[str, int] = {}
    model_type, arch, vision = arch_from_config(config, where, defaulted)
    label = name or model_id or where
    notes = None
    if defaulted:
        stated = ", ".join(f"{k}={v}" for k, v in sorted(defaulted.items()))
        notes = f"not in the config, so the family's defaults (as transformers takes them): {stated}"
    ident = slug(model_id or Path(where).parent.name or model_type)
    spec = ModelSpec(
        id=ident,
        name=label,
        architecture=model_type,
        weights_dtype=weights_dtype(config),
        native_quant=native_format(config),
        unread_quant=unread_quant_method(config),
        arch=arch,
        vision_params=vision,
        origin=where,
        notes=notes,
    )
    return checked(spec, where)
