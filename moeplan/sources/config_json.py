"""Hugging Face ``config.json`` -> ModelSpec, one adapter per ``model_type``.

Each adapter reads the keys the ``transformers`` model class reads, with the same defaults where a key is
missing or null (``head_dim: null`` means ``hidden_size // num_attention_heads``), so the parameter counts
equal the reference implementation's; ``tests/test_reference_counts.py`` checks that against the
``transformers`` classes themselves.  The shape keys a model cannot be built without (``hidden_size``,
``num_hidden_layers``, ...) are required: a config missing one is an error naming the key, never a guess.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from moeplan.errors import SpecError, UnsupportedArchitectureError
from moeplan.model.spec import ArchSpec, AttentionSpec, MlaSpec, MlpSpec, ModelSpec, MoeSpec
from moeplan.records import checked
from moeplan.sources.checkpoint import native_format

MAX_CONFIG_BYTES = 4 * 1024 * 1024
"""A config.json larger than this is not a config (the largest real ones are a few tens of KB)."""

_MISSING = object()


_MAX_INT = 1 << 31  # no shape of a real model comes near; larger values are corrupt or hostile


class _Config:
    """A config dict with typed, error-reporting access; ``where`` names the file in messages."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def _fail(self, key: str, why: str) -> SpecError:
        return SpecError(f"{self.where}: field '{key}' {why}")

    def _raw(self, key: str) -> Any:
        value = self.data.get(key, _MISSING)
        return _MISSING if value is None else value

    def integer(self, key: str, default: int | object | None = _MISSING, *, positive: bool = True) -> int:
        value = self._raw(key)
        if value is _MISSING:
            if default is _MISSING:
                raise self._fail(key, "is missing")
            assert isinstance(default, int)
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise self._fail(key, f"must be an integer, not {value!r}")
        if positive and value <= 0:
            raise self._fail(key, f"must be positive, not {value}")
        if not positive and value < 0:
            raise self._fail(key, f"must not be negative, not {value}")
        if value > _MAX_INT:
            raise self._fail(key, f"is implausibly large ({value:,})")
        return value

    def layers(self, key: str) -> int:
        """A layer count: positive and at most 4096 (checked before anything loops over the layers)."""
        value = self.integer(key)
        if value > 4096:
            raise self._fail(key, f"is implausibly large ({value:,} layers)")
        return value

    def opt_int(self, key: str) -> int | None:
        return None if self._raw(key) is _MISSING else self.integer(key)

    def flag(self, key: str, default: bool) -> bool:
        value = self._raw(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise self._fail(key, f"must be true or false, not {value!r}")
        return value

    def int_list(self, key: str) -> list[int] | None:
        value = self._raw(key)
        if value is _MISSING:
            return None
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self._fail(key, "must be a list of integers")
        if len(value) > 65536 or any(abs(v) > _MAX_INT for v in value):
            raise self._fail(key, "is implausibly large")
        return list(value)

    def str_list(self, key: str) -> list[str] | None:
        value = self._raw(key)
        if value is _MISSING:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "must be a list of strings")
        return list(value)

    def sub(self, key: str) -> _Config:
        value = self._raw(key)
        if value is _MISSING:
            return _Config({}, f"{self.where} [{key}]")
        if not isinstance(value, dict):
            raise self._fail(key, "must be an object")
        return _Config(value, f"{self.where} [{key}]")


def _head_dim(c: _Config, default: int | None = None) -> int:
    """``head_dim``, or ``hidden_size // num_attention_heads`` when missing or null."""
    heads = c.integer("num_attention_heads")
    fallback = default if default is not None else c.integer("hidden_size") // heads
    return c.integer("head_dim", fallback)


def _kv_heads(c: _Config, default: int | None = None) -> int:
    """``num_key_value_heads``: when null, the query heads (MHA); when absent, the class's own default
    (a constant in some classes, the query heads in the others), as ``transformers`` builds it."""
    heads = c.integer("num_attention_heads")
    if "num_key_value_heads" not in c.data:
        return default if default is not None else heads
    return c.integer("num_key_value_heads", heads)


def _pattern(types: list[str] | None, num_layers: int, where: str) -> str:
    """Shortest cyclic F/S/C pattern that reproduces ``layer_types`` over ``num_layers`` layers."""
    if not types:
        return "F"
    codes = {"full_attention": "F", "sliding_attention": "S", "chunked_attention": "C"}
    try:
        letters = "".join(codes[t] for t in types[:num_layers])
    except KeyError as e:
        raise SpecError(f"{where}: field 'layer_types' has an unknown attention type {e.args[0]!r}") from None
    if len(letters) < num_layers:
        raise SpecError(f"{where}: field 'layer_types' lists {len(letters)} layers, the model has {num_layers}")
    for period in range(1, num_layers + 1):
        unit = letters[:period]
        if all(letters[i] == unit[i % period] for i in range(num_layers)):
            return unit
    return letters  # pragma: no cover - the loop always returns at period == num_layers


def _window(c: _Config, pattern: str, key: str = "sliding_window") -> int | None:
    if "S" not in pattern and "C" not in pattern:
        return None
    return c.integer(key)


def _gqa(
    c: _Config,
    *,
    qkv_bias: bool = False,
    o_bias: bool = False,
    qk_norm: Literal["none", "per_head", "full"] = "none",
    sinks: bool = False,
    kv_default: int | None = None,
    head_dim_default: int | None = None,
    pattern: str = "F",
    window: int | None = None,
) -> AttentionSpec:
    return AttentionSpec(
        kind="gqa",
        num_heads=c.integer("num_attention_heads"),
        num_kv_heads=_kv_heads(c, kv_default),
        head_dim=_head_dim(c, head_dim_default),
        qkv_bias=qkv_bias,
        o_bias=o_bias,
        qk_norm=qk_norm,
        sinks=sinks,
        window_tokens=window,
        layer_pattern=pattern,
    )


def _dense_mlp(c: _Config, key: str = "intermediate_size", bias: bool = False) -> MlpSpec:
    return MlpSpec(intermediate_size=c.integer(key), gated=True, bias=bias)


def _common(c: _Config, tie_default: bool = False) -> dict[str, Any]:
    return {
        "vocab_size": c.integer("vocab_size"),
        "hidden_size": c.integer("hidden_size"),
        "num_layers": c.layers("num_hidden_layers"),
        "tie_embeddings": c.flag("tie_word_embeddings", tie_default),
        "max_context": c.opt_int("max_position_embeddings"),
    }


def _sliding_pattern(c: _Config) -> tuple[str, int | None]:
    """Mistral-style: ``sliding_window`` set means every layer is windowed; ``layer_types`` wins if given."""
    num_layers = c.layers("num_hidden_layers")
    types = c.str_list("layer_types")
    if types:
        pattern = _pattern(types, num_layers, c.where)
        return pattern, _window(c, pattern)
    if c._raw("sliding_window") is not _MISSING and c.flag("use_sliding_window", True):
        return "S", c.integer("sliding_window")
    return "F", None


# ---- dense families ---------------------------------------------------------------------------------


def _llama(c: _Config) -> ArchSpec:
    bias = c.flag("attention_bias", False)
    pattern, window = _sliding_pattern(c)
    return ArchSpec(
        **_common(c),
        attention=_gqa(c, qkv_bias=bias, o_bias=bias, pattern=pattern, window=window),
        mlp=_dense_mlp(c, bias=c.flag("mlp_bias", False)),
    )


def _mistral(c: _Config) -> ArchSpec:
    pattern, window = _sliding_pattern(c)
    return ArchSpec(**_common(c), attention=_gqa(c, kv_default=8, pattern=pattern, window=window), mlp=_dense_mlp(c))


def _qwen2(c: _Config) -> ArchSpec:
    pattern, window = _sliding_pattern(c)
    return ArchSpec(
        **_common(c),
        attention=_gqa(c, qkv_bias=True, kv_default=32, pattern=pattern, window=window),
        mlp=_dense_mlp(c),
    )


def _qwen3(c: _Config) -> ArchSpec:
    bias = c.flag("attention_bias", False)
    pattern, window = _sliding_pattern(c)
    return ArchSpec(
        **_common(c),
        attention=_gqa(
            c, qkv_bias=bias, o_bias=bias, qk_norm="per_head", head_dim_default=128, pattern=pattern, window=window
        ),
        mlp=_dense_mlp(c),
    )


# ---- MoE families -----------------------------------------------------------------------------------


def _mixtral(c: _Config) -> ArchSpec:
    pattern, window = _sliding_pattern(c)
    return ArchSpec(
        **_common(c),
        attention=_gqa(c, kv_default=8, pattern=pattern, window=window),
        moe=MoeSpec(
            num_experts=c.integer("num_local_experts", 8),
            top_k=c.integer("num_experts_per_tok", 2),
            expert_intermediate_size=c.integer("intermediate_size"),
        ),
    )


def _phimoe(c: _Config) -> ArchSpec:
    bias = c.flag("attention_bias", False)
    pattern, window = _sliding_pattern(c)
    return ArchSpec(
        **_common(c),
        lm_head_bias=c.flag("lm_head_bias", False),
        norm="layer",
        norm_bias=True,
        attention=_gqa(c, qkv_bias=bias, o_bias=bias, kv_default=8, pattern=pattern, window=window),
        moe=MoeSpec(
            num_experts=c.integer("num_local_experts", 16),
            top_k=c.integer("num_experts_per_tok", 2),
            expert_intermediate_size=c.integer("intermediate_size"),
        ),
    )


def _olmoe(c: _Config) -> ArchSpec:
    bias = c.flag("attention_bias", False)
    if _head_dim(c) * c.integer("num_attention_heads") != c.integer("hidden_size"):
        # OLMoE's q/k norms are sized from hidden_size: any other head_dim cannot run.
        raise SpecError(f"{c.where}: field 'head_dim' must be hidden_size / num_attention_heads for olmoe")
    return ArchSpec(
        **_common(c),
        attention=_gqa(c, qkv_bias=bias, o_bias=bias, qk_norm="full"),
        moe=MoeSpec(
            num_experts=c.integer("num_experts", 64),
            top_k=c.integer("num_experts_per_tok", 8),
            expert_intermediate_size=c.integer("intermediate_size"),
        ),
    )


def _granitemoe(c: _Config) -> ArchSpec:
    bias = c.flag("attention_bias", False)
    return ArchSpec(
        **_common(c),
        attention=_gqa(c, qkv_bias=bias, o_bias=bias),
        moe=MoeSpec(
            num_experts=c.integer("num_local_experts", 8),
            top_k=c.integer("num_experts_per_tok", 2),
            expert_intermediate_size=c.integer("intermediate_size"),
        ),
    )


def _qwen_moe_layers(c: _Config, num_layers: int) -> tuple[int, ...]:
    """Layers without experts: listed in ``mlp_only_layers`` or off the ``decoder_sparse_step`` grid."""
    step = c.integer("decoder_sparse_step", 1)
    only = set(c.int_list("mlp_only_layers") or [])
    return tuple(i for i in range(num_layers) if i in only or (i + 1) % step != 0)


def _qwen2_moe(c: _Config) -> ArchSpec:
    common = _common(c)
    pattern, window = _sliding_pattern(c)
    dense = _qwen_moe_layers(c, common["num_layers"])
    shared = c.integer("shared_expert_intermediate_size", 0, positive=False)
    return ArchSpec(
        **common,
        attention=_gqa(c, qkv_bias=c.flag("qkv_bias", True), kv_default=16, pattern=pattern, window=window),
        mlp=_dense_mlp(c) if dense else None,
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


def _qwen3_moe(c: _Config) -> ArchSpec:
    common = _common(c)
    bias = c.flag("attention_bias", False)
    pattern, window = _sliding_pattern(c)
    dense = _qwen_moe_layers(c, common["num_layers"])
    experts = c.integer("num_experts", c.integer("num_local_experts", 128))
    return ArchSpec(
        **common,
        attention=_gqa(c, qkv_bias=bias, o_bias=bias, qk_norm="per_head", kv_default=4, pattern=pattern, window=window),
        mlp=_dense_mlp(c) if dense else None,
        moe=MoeSpec(
            num_experts=experts,
            top_k=c.integer("num_experts_per_tok", 8),
            expert_intermediate_size=c.integer("moe_intermediate_size"),
            dense_layers=dense,
        ),
    )


def _mla(c: _Config) -> AttentionSpec:
    heads = c.integer("num_attention_heads")
    bias = c.flag("attention_bias", False)
    nope, rope = c.integer("qk_nope_head_dim"), c.integer("qk_rope_head_dim")
    return AttentionSpec(
        kind="mla",
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=nope + rope,
        qkv_bias=bias,
        o_bias=bias,
        mla=MlaSpec(
            # absent: the class default 1536; null: no query bottleneck (DeepSeek-V2-Lite)
            q_lora_rank=c.opt_int("q_lora_rank") if "q_lora_rank" in c.data else 1536,
            kv_lora_rank=c.integer("kv_lora_rank"),
            qk_nope_head_dim=nope,
            qk_rope_head_dim=rope,
            v_head_dim=c.integer("v_head_dim"),
        ),
    )


def _deepseek(c: _Config, *, v3: bool) -> ArchSpec:
    common = _common(c)
    first_dense = c.integer("first_k_dense_replace", 3 if v3 else 0, positive=False)
    dense = tuple(range(min(first_dense, common["num_layers"])))
    n_shared = c.integer("n_shared_experts", 1 if v3 else 2, positive=False)
    moe_width = c.integer("moe_intermediate_size")
    mlp_bias = False if v3 else c.flag("mlp_bias", False)
    return ArchSpec(
        **common,
        attention=_mla(c),
        mlp=MlpSpec(intermediate_size=c.integer("intermediate_size"), bias=mlp_bias) if dense else None,
        moe=MoeSpec(
            num_experts=c.integer("n_routed_experts", 256 if v3 else 64),
            top_k=c.integer("num_experts_per_tok"),
            expert_intermediate_size=moe_width,
            num_shared_experts=n_shared,
            shared_intermediate_size=moe_width * n_shared if n_shared else None,
            shared_bias=mlp_bias,
            router_correction_bias=v3,
            dense_layers=dense,
        ),
        mtp_layers=c.integer("num_nextn_predict_layers", 1 if v3 else 0, positive=False),
    )


def _glm4_moe(c: _Config) -> ArchSpec:
    common = _common(c)
    first_dense = c.integer("first_k_dense_replace", 1, positive=False)
    dense = tuple(range(min(first_dense, common["num_layers"])))
    n_shared = c.integer("n_shared_experts", 1, positive=False)
    moe_width = c.integer("moe_intermediate_size")
    return ArchSpec(
        **common,
        attention=_gqa(
            c,
            qkv_bias=c.flag("attention_bias", False),
            qk_norm="per_head" if c.flag("use_qk_norm", False) else "none",
            kv_default=8,
        ),
        mlp=_dense_mlp(c) if dense else None,
        moe=MoeSpec(
            num_experts=c.integer("n_routed_experts", 128),
            top_k=c.integer("num_experts_per_tok", 8),
            expert_intermediate_size=moe_width,
            num_shared_experts=n_shared,
            shared_intermediate_size=moe_width * n_shared if n_shared else None,
            router_correction_bias=True,
            dense_layers=dense,
        ),
        mtp_layers=c.integer("num_nextn_predict_layers", 1, positive=False),
    )


def _gpt_oss(c: _Config) -> ArchSpec:
    common = _common(c)
    types = c.str_list("layer_types")
    # Without layer_types, transformers slides on even layers and attends fully on odd ones.
    pattern = _pattern(types, common["num_layers"], c.where) if types else "SF"
    bias = c.flag("attention_bias", True)
    return ArchSpec(
        **common,
        attention=_gqa(
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


def _dbrx(c: _Config) -> ArchSpec:
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


def _llama4_text(c: _Config) -> ArchSpec:
    common = _common(c)
    num_layers = common["num_layers"]
    moe_layers = c.int_list("moe_layers")
    if moe_layers is None:
        step = c.integer("interleave_moe_layer_step", 1)
        moe_layers = list(range(step - 1, num_layers, step))
    dense = tuple(i for i in range(num_layers) if i not in set(moe_layers))
    types = c.str_list("layer_types")
    if types:
        pattern = _pattern(types, num_layers, c.where)
    else:
        nope = c.int_list("no_rope_layers")
        if not nope:  # transformers treats an empty list as absent
            interval = c.integer("no_rope_layer_interval", 4)
            nope = [int((i + 1) % interval != 0) for i in range(num_layers)]
        pattern = _pattern(["chunked_attention" if r else "full_attention" for r in nope], num_layers, c.where)
    window = c.integer("attention_chunk_size", 8192) if "C" in pattern else None
    bias = c.flag("attention_bias", False)
    width = c.integer("intermediate_size")
    return ArchSpec(
        **common,
        attention=_gqa(
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


def llama4_vision_params(v: _Config, text_hidden: int) -> int:
    """Elements of the Llama 4 vision tower, adapter and projector (outside the language model).

    ViT of L layers, width w, MLP I: ``L*(4*(w^2+w) + 2*w*I + I + w + 4w)`` + patch linear ``C*p^2*w`` +
    class and position embeddings ``(patches+2)*w`` + two LayerNorms ``4w`` + pixel-shuffle MLP
    ``I*d_in + d_out^2`` + projector ``d_vis*h_text``.  Scout: 871,932,416.
    """
    w, inter, layers = (
        v.integer("hidden_size", 768),
        v.integer("intermediate_size", 5632),
        v.integer("num_hidden_layers", 34),
    )
    patch, image, channels = v.integer("patch_size", 14), v.integer("image_size", 448), v.integer("num_channels", 3)
    patches = (image // patch) ** 2 + 1
    per_layer = 4 * (w * w + w) + (w * inter + inter) + (inter * w + w) + 2 * 2 * w
    tower = channels * patch * patch * w + w + patches * w + 2 * 2 * w + layers * per_layer
    adapter = inter * v.integer("projector_input_dim", 4096) + v.integer("projector_output_dim", 4096) ** 2
    projector = v.integer("vision_output_dim", 7680) * text_hidden
    return tower + adapter + projector


# ---- dispatch ---------------------------------------------------------------------------------------

ADAPTERS: dict[str, Callable[[_Config], ArchSpec]] = {
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
    "deepseek_v2": lambda c: _deepseek(c, v3=False),
    "deepseek_v3": lambda c: _deepseek(c, v3=True),
    "kimi_k2": lambda c: _deepseek(c, v3=True),
    "glm4_moe": _glm4_moe,
    "gpt_oss": _gpt_oss,
    "dbrx": _dbrx,
    "llama4": _llama4_text,
    "llama4_text": _llama4_text,
}
SUPPORTED_MODEL_TYPES = tuple(sorted(ADAPTERS))

_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "float8_e4m3fn": "fp8"}


def arch_from_config(config: Mapping[str, Any], where: str = "config.json") -> tuple[str, ArchSpec, int | None]:
    """``(model_type, ArchSpec, vision params or None)`` for a parsed ``config.json``."""
    c = _Config(config, where)
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise SpecError(f"{where}: field 'model_type' is missing; this does not look like a model config.json")
    adapter = ADAPTERS.get(model_type)
    if adapter is None:
        raise UnsupportedArchitectureError(
            f"{where}: model_type '{model_type}' is not supported; supported: {', '.join(SUPPORTED_MODEL_TYPES)}",
            "describe the model in a YAML spec instead: see `moeplan models --help` and model_specs/ for examples",
        )
    text = c
    vision: int | None = None
    if model_type == "llama4":
        text = c.sub("text_config")
        if "vision_config" in config:
            vision = llama4_vision_params(c.sub("vision_config"), text.integer("hidden_size"))
    try:
        arch = adapter(text)
    except ValueError as e:  # a rule between fields (ArchSpec and its parts check them on construction)
        raise SpecError(f"{where}: {e}") from None
    return model_type, checked(arch, where), vision


def weights_dtype(config: Mapping[str, Any]) -> str:
    """The checkpoint's dtype from ``dtype`` (new) or ``torch_dtype`` (old), as a short name."""
    raw = config.get("dtype") or config.get("torch_dtype")
    if not raw and isinstance(config.get("text_config"), dict):
        raw = config["text_config"].get("dtype") or config["text_config"].get("torch_dtype")
    return _DTYPES.get(str(raw), "bf16") if raw else "bf16"


def spec_from_config(
    config: Mapping[str, Any], *, where: str = "config.json", model_id: str | None = None, name: str | None = None
) -> ModelSpec:
    """A ModelSpec for a parsed ``config.json``; ``where`` names it in errors and in ``origin``."""
    if not isinstance(config, Mapping):
        raise SpecError(f"{where}: a config.json must hold a JSON object")
    model_type, arch, vision = arch_from_config(config, where)
    label = name or model_id or where
    ident = _slug(model_id or Path(where).parent.name or model_type)
    spec = ModelSpec(
        id=ident,
        name=label,
        architecture=model_type,
        weights_dtype=weights_dtype(config),
        native_quant=native_format(config),
        arch=arch,
        vision_params=vision,
        origin=where,
    )
    return checked(spec, where)


def _slug(text: str) -> str:
    out = "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in text.lower()).strip("-.")
    return out or "model"


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a ``config.json`` with a size bound; every failure is a SpecError naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise SpecError(f"{path}: {size:,} bytes is too large for a config.json")
        text = path.read_text(encoding="utf-8")
    except SpecError:
        raise
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a text file; expected a JSON config.json") from None
    except OSError as e:
        raise SpecError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise SpecError(f"{path}: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a config.json must hold a JSON object, not {type(data).__name__}")
    return data
