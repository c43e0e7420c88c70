"""Reading a Hugging Face ``config.json``: a bounded parse, typed access with errors naming the key, and the
small readers every family adapter shares (heads, windows, layer patterns, the dense MLP).

The keys follow the ``transformers`` config classes, with their defaults where a key is missing or null.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from moeplan.errors import SpecError
from moeplan.files import read_text
from moeplan.model.spec import AttentionSpec, MlpSpec, MoeSpec

MAX_CONFIG_BYTES = 4 * 1024 * 1024
"""A config.json larger than this is not a config (the largest real ones are a few tens of KB)."""

_MISSING = object()


_MAX_INT = 1 << 31  # no shape of a real model comes near; larger values are corrupt or hostile


class Config:
    """A config dict with typed, error-reporting access; ``where`` names the file in messages."""

    def __init__(self, data: Mapping[str, Any], where: str, defaulted: dict[str, int] | None = None) -> None:
        self.data = data
        self.where = where
        self.defaulted: dict[str, int] = {} if defaulted is None else defaulted
        """Counts this config (and its sub-configs) did not state and got from the family's defaults."""

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
            self.defaulted[key] = default
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

    def sub(self, key: str) -> Config:
        value = self._raw(key)
        if value is _MISSING:
            return Config({}, f"{self.where} [{key}]", self.defaulted)
        if not isinstance(value, dict):
            raise self._fail(key, "must be an object")
        return Config(value, f"{self.where} [{key}]", self.defaulted)


def head_dim_of(c: Config, default: int | None = None) -> int:
    """``head_dim``, or ``hidden_size // num_attention_heads`` when missing or null."""
    heads = c.integer("num_attention_heads")
    fallback = default if default is not None else c.integer("hidden_size") // heads
    return c.integer("head_dim", fallback)


def kv_heads_of(c: Config, default: int | None = None) -> int:
    """``num_key_value_heads``: when null, the query heads (MHA); when absent, the class's own default
    (a constant in some classes, the query heads in the others), as ``transformers`` builds it."""
    heads = c.integer("num_attention_heads")
    if "num_key_value_heads" not in c.data:
        return default if default is not None else heads
    return c.integer("num_key_value_heads", heads)


def layer_pattern_of(types: list[str] | None, num_layers: int, where: str) -> str:
    """Shortest cyclic mixer pattern (F/S/C/L) that reproduces ``layer_types`` over ``num_layers`` layers."""
    if not types:
        return "F"
    codes = {"full_attention": "F", "sliding_attention": "S", "chunked_attention": "C", "linear_attention": "L"}
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


def window_of(c: Config, pattern: str, key: str = "sliding_window") -> int | None:
    if "S" not in pattern and "C" not in pattern:
        return None
    return c.integer(key)


def gqa_attention(
    c: Config,
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
        num_kv_heads=kv_heads_of(c, kv_default),
        head_dim=head_dim_of(c, head_dim_default),
        qkv_bias=qkv_bias,
        o_bias=o_bias,
        qk_norm=qk_norm,
        sinks=sinks,
        window_tokens=window,
        layer_pattern=pattern,
    )


def shared_expert_moe(
    *,
    experts: int,
    top_k: int,
    width: int,
    n_shared: int,
    dense: tuple[int, ...],
    correction: bool = True,
    shared_bias: bool = False,
) -> MoeSpec:
    """The DeepSeek-style MoE block: ``experts`` routed experts of ``width``, ``n_shared`` shared experts held as
    one MLP of ``n_shared x width``, the router's score-correction buffer, ``dense`` first layers."""
    return MoeSpec(
        num_experts=experts,
        top_k=top_k,
        expert_intermediate_size=width,
        num_shared_experts=n_shared,
        shared_intermediate_size=width * n_shared if n_shared else None,
        shared_bias=shared_bias,
        router_correction_bias=correction,
        dense_layers=dense,
    )


def dense_mlp(c: Config, key: str = "intermediate_size", bias: bool = False) -> MlpSpec:
    return MlpSpec(intermediate_size=c.integer(key), gated=True, bias=bias)


def common_fields(c: Config, tie_default: bool = False) -> dict[str, Any]:
    return {
        "vocab_size": c.integer("vocab_size"),
        "hidden_size": c.integer("hidden_size"),
        "num_layers": c.layers("num_hidden_layers"),
        "tie_embeddings": c.flag("tie_word_embeddings", tie_default),
        "max_context": c.opt_int("max_position_embeddings"),
    }


def sliding_pattern(c: Config) -> tuple[str, int | None]:
    """Mistral-style: ``sliding_window`` set means every layer is windowed; ``layer_types`` wins if given."""
    num_layers = c.layers("num_hidden_layers")
    types = c.str_list("layer_types")
    if types:
        pattern = layer_pattern_of(types, num_layers, c.where)
        return pattern, window_of(c, pattern)
    if c._raw("sliding_window") is not _MISSING and c.flag("use_sliding_window", True):
        return "S", c.integer("sliding_window")
    return "F", None


# ---- dense families ---------------------------------------------------------------------------------


_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "float8_e4m3fn": "fp8"}


def weights_dtype(config: Mapping[str, Any]) -> str:
    """The checkpoint's dtype from ``dtype`` (new) or ``torch_dtype`` (old), as a short name."""
    raw = config.get("dtype") or config.get("torch_dtype")
    if not raw and isinstance(config.get("text_config"), dict):
        raw = config["text_config"].get("dtype") or config["text_config"].get("torch_dtype")
    return _DTYPES.get(str(raw), "bf16") if raw else "bf16"


def slug(text: str, default: str = "model") -> str:
    """An id from a file or folder name: ASCII letters and digits, dots and dashes, lower case ('Qwen3 MoE' ->
    'qwen3-moe'; a name in another script, '模型', -> ``default``)."""
    out = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in ".-" else "-" for ch in text.lower()).strip("-.")
    return out or default


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a ``config.json`` with a size bound; every failure is a SpecError naming the file."""
    text = read_text(path, MAX_CONFIG_BYTES, "a JSON config.json").removeprefix("\ufeff")  # editors' byte-order mark
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise SpecError(f"{path}: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a config.json must hold a JSON object, not {type(data).__name__}")
    return data
