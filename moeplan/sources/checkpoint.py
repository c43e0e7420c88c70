"""What a checkpoint's tensor list says: parameters and bytes by kind, the native format, and where it differs
from the config.

Tensors are classed by their names (Hugging Face and llama.cpp conventions): routed experts per expert
(``experts.7.w1``) or fused (``experts.gate_up_proj``, ``ffn_up_exps``), shared experts, router, attention,
dense MLP, embedding, output head, norms; multi-token-prediction layers (layer index past the config's layer
count, or ``mtp``/``nextn`` in the name) and vision towers apart.  Quantization companions (scales, zero
points, ``g_idx``) count as bytes of the weight they belong to but not as parameters; packed weights count
their logical parameters (GPTQ/AWQ ``qweight``: 32/bits per int32; MXFP4 ``_blocks``: 2 per byte).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from moeplan.model.spec import CheckpointInfo, ModelSpec
from moeplan.sources.safetensors_headers import TensorInfo

_AUX = re.compile(
    r"(weight_scale_inv|weight_scale|input_scale|_scales|scales|qzeros|g_idx|absmax|quant_map|SCB|zeros)$"
)
_LAYER = re.compile(r"(?:^|\.)(?:layers|blk|h|blocks)\.(\d+)\.")


def classify(name: str, num_layers: int | None = None) -> str:
    """The kind of a tensor from its name: a ParamKind, or ``mtp``, ``vision``."""
    n = name.lower()
    if any(k in n for k in ("vision", "visual", "multi_modal_projector", "mm_projector", "image_newline")):
        return "vision"
    if "mtp" in n or "nextn" in n:
        return "mtp"
    m = _LAYER.search(n)
    if m and num_layers is not None and int(m.group(1)) >= num_layers:
        return "mtp"
    if any(k in n for k in ("embed_tokens", "token_embd", "wte.", "tok_embeddings", "word_embeddings")):
        return "embedding"
    if n.startswith(("lm_head", "output.", "embed_out")) or n == "output.weight":
        return "lm_head"
    last = n.rsplit(".", 2)
    if "norm" in (last[-2] if len(last) > 1 else n) or n.endswith(("_norm.weight", "ln_f.weight")):
        return "norm"
    if any(k in n for k in ("shared_expert", "shared_experts", "_shexp")):
        return "shared_experts"
    if any(k in n for k in ("e_score_correction", "exp_probs_b", "ffn_gate_inp", ".router.", "router.weight")):
        return "router"
    if re.search(r"(mlp|block_sparse_moe|feed_forward|moe)\.gate\.(weight|bias)$", n):
        return "router"
    if any(k in n for k in (".experts.", "_exps", "input_linear", "output_linear")):
        return "routed_experts"
    if any(k in n for k in ("self_attn", "attention", "attn", "norm_attn_norm")):
        return "attention"
    if any(k in n for k in ("mlp", "feed_forward", "ffn")):
        return "dense_mlp"
    return "other"


def _logical_params(t: TensorInfo, bits: int | None) -> int:
    """Parameters a stored tensor holds (0 for quantization companions)."""
    base = t.name.rsplit(".", 1)[-1]
    if _AUX.search(base) or _AUX.search(t.name):
        return 0
    if base == "qweight" and t.dtype == "I32":
        return t.elements * (32 // (bits or 4))
    if t.name.endswith("_blocks") and t.dtype == "U8":
        return t.elements * 2  # MXFP4: two e2m1 values per byte
    return t.elements


def _quant_config(config: Mapping[str, Any]) -> Any:
    """``quantization_config``, or the language model's (Kimi K2.5 keeps it in ``text_config``)."""
    q = config.get("quantization_config")
    text = config.get("text_config")
    if q is None and isinstance(text, Mapping):
        q = text.get("quantization_config")
    return q


def native_format(config: Mapping[str, Any], hf_quant: Mapping[str, Any] | None = None) -> str | None:
    """The checkpoint's own weight format from ``quantization_config`` or ModelOpt's ``hf_quant_config.json``."""
    if hf_quant:
        algo = str((hf_quant.get("quantization") or {}).get("quant_algo", "")).upper()
        if "NVFP4" in algo:
            return "nvfp4"
        if "FP8" in algo:
            return "fp8"
    q = _quant_config(config)
    if not isinstance(q, Mapping):
        return None
    method = str(q.get("quant_method", "")).lower()
    if method == "fp8":
        block = q.get("weight_block_size")
        return "fp8-block128" if block == [128, 128] else "fp8"
    if method == "fbgemm_fp8":
        return "fp8-channel"
    if method == "mxfp4":
        return "mxfp4-experts"
    if method in ("gptq", "gptqmodel"):
        return _gptq_name(int(q.get("bits", 4)), int(q.get("group_size", 128)))
    if method == "awq":
        return "awq-int4"
    if method == "bitsandbytes":
        if q.get("load_in_8bit"):
            return "int8"
        kind = str(q.get("bnb_4bit_quant_type", "fp4"))
        return kind + ("-dq" if q.get("bnb_4bit_use_double_quant") else "")
    if method == "compressed-tensors":
        return _compressed_tensors(q)
    if method in ("modelopt",):
        algo = str(q.get("quant_algo", "")).upper()
        if algo == "MIXED_PRECISION":
            return _modelopt_mixed(q)
        return _modelopt_algo(algo)
    return None


def _modelopt_algo(algo: str) -> str | None:
    """A ModelOpt ``quant_algo`` as a format: NVFP4 (with activations or weight-only, ``W4A16_NVFP4``) or FP8."""
    algo = algo.upper()
    return "nvfp4" if "NVFP4" in algo else "fp8" if "FP8" in algo else None


def _modelopt_mixed(q: Mapping[str, Any]) -> str | None:
    """A ModelOpt ``MIXED_PRECISION`` checkpoint's per-class scheme from its ``quantized_layers``: NVIDIA's
    Qwen3.6-35B-A3B-NVFP4 stores its experts, shared expert and head in weight-only NVFP4 and its attention and
    linear-attention projections in FP8 -> ``experts=nvfp4,shared_experts=nvfp4,attention=fp8,lm_head=nvfp4``; the
    classes it does not list keep the checkpoint's dtype.  A class whose layers disagree takes the format most of them
    use; an algorithm moeplan does not know (or a module it cannot place) leaves the whole checkpoint unread."""
    layers = q.get("quantized_layers")
    if not isinstance(layers, Mapping) or not layers:
        return None
    votes: dict[str, Counter[str]] = {}
    for name, entry in layers.items():
        fmt = _modelopt_algo(str(entry.get("quant_algo", ""))) if isinstance(entry, Mapping) else None
        kind = classify(f"{name}.weight")  # a module's weight, as checkpoints name it
        if kind in ("mtp", "vision"):  # outside the language model's classes
            continue
        if fmt is None or kind not in _OVERRIDE_CLASSES:
            return None
        votes.setdefault(_OVERRIDE_CLASSES[kind], Counter())[fmt] += 1
    return ",".join(f"{cls}={votes[cls].most_common(1)[0][0]}" for cls in _OVERRIDE_CLASSES.values() if cls in votes)


_OVERRIDE_CLASSES = {"routed_experts": "experts", "shared_experts": "shared_experts", "dense_mlp": "dense_mlp",
                     "attention": "attention", "lm_head": "lm_head"}  # fmt: skip
"""The tensor kinds a per-class scheme overrides, as ``--quant`` names them, in the order a scheme lists them."""


def unread_quant_method(config: Mapping[str, Any]) -> str | None:
    """The ``quantization_config`` method of a checkpoint whose format :func:`native_format` does not read (AMD's
    Quark, HQQ, EETQ, AQLM, EXL2, ...), or None: such weights are neither bf16 nor any format moeplan sizes."""
    q = _quant_config(config)
    if q is None or native_format(config) is not None:
        return None
    method = q.get("quant_method") if isinstance(q, Mapping) else q
    return str(method or "unnamed")


def _gptq_name(bits: int, group: int) -> str:
    from moeplan.formats.schemes import FORMATS

    suffix = "-pc" if group <= 0 else "" if group == 128 else f"-g{group}"
    name = f"gptq-int{bits}{suffix}"
    return name if name in FORMATS else f"gptq-int{bits}"


# One module name of each tensor class, as Hugging Face checkpoints name them (DeepSeek/Kimi/Qwen layouts), to
# test a compressed-tensors ``ignore`` list against.
_CLASS_PROBES = {
    "attention": ("model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.kv_b_proj"),
    "shared_experts": ("model.layers.1.mlp.shared_experts.gate_proj", "model.layers.1.mlp.shared_expert.up_proj"),
    "dense_mlp": ("model.layers.0.mlp.gate_proj", "model.layers.0.mlp.down_proj"),
    "experts": ("model.layers.1.mlp.experts.0.gate_proj", "model.layers.1.mlp.experts.7.down_proj"),
    "lm_head": ("lm_head",),
}


def _ignored(name: str, ignore: list[Any]) -> bool:
    """Whether a compressed-tensors ``ignore`` entry (a module name, or ``re:`` and a regular expression)
    covers ``name``."""
    for entry in ignore:
        text = str(entry)
        if text.startswith("re:"):
            try:
                if re.fullmatch(text[3:], name) or re.match(text[3:], name):
                    return True
            except re.error:
                continue
        elif text == name:
            return True
    return False


def _compressed_tensors(q: Mapping[str, Any]) -> str | None:
    """The format of a compressed-tensors checkpoint; with an ``ignore`` list that leaves some linear classes
    unquantized, a per-class scheme (Kimi K2 Thinking: ``experts=int4-g32``, the rest as the checkpoint's dtype)."""
    groups = q.get("config_groups")
    if not isinstance(groups, Mapping):
        return None
    fmt = None
    for group in groups.values():
        w = group.get("weights") if isinstance(group, Mapping) else None
        if not isinstance(w, Mapping):
            continue
        bits, kind, strategy = int(w.get("num_bits", 16)), str(w.get("type", "int")), str(w.get("strategy", ""))
        if bits == 8 and kind == "float":
            fmt = {"channel": "fp8-channel", "block": "fp8-block128"}.get(strategy, "fp8")
        elif bits == 4 and kind == "float":
            fmt = "nvfp4"
        elif bits == 8:
            fmt = "int8"
        elif bits == 4:
            group_size = int(w.get("group_size") or 128)
            symmetric = w.get("symmetric") is True and f"int4-g{group_size}" in _int4_groups()
            fmt = f"int4-g{group_size}" if symmetric else _gptq_name(4, group_size)
        if fmt is not None:
            break
    ignore = q.get("ignore")
    if fmt is None or not isinstance(ignore, list) or not ignore:
        return fmt
    kept = [
        cls
        for cls, probes in _CLASS_PROBES.items()
        if cls != "lm_head" and not any(_ignored(n, ignore) for n in probes)
    ]
    if len(kept) == len(_CLASS_PROBES) - 1:
        return fmt
    return ",".join(f"{cls}={fmt}" for cls in kept) or None


def _int4_groups() -> set[str]:
    from moeplan.formats.schemes import FORMATS

    return {name for name in FORMATS if name.startswith("int4-g")}


def summarize(
    tensors: Iterable[TensorInfo],
    config: Mapping[str, Any],
    num_layers: int | None,
    source: str,
    hf_quant: Mapping[str, Any] | None = None,
) -> CheckpointInfo:
    """Bytes and parameters by kind of a checkpoint's tensors."""
    q = config.get("quantization_config")
    bits = int(q["bits"]) if isinstance(q, Mapping) and isinstance(q.get("bits"), int) else None
    nbytes: Counter[str] = Counter()
    params: Counter[str] = Counter()
    dtypes: Counter[str] = Counter()
    files: set[str] = set()
    count = 0
    for t in tensors:
        kind = classify(t.name, num_layers)
        nbytes[kind] += t.nbytes
        params[kind] += _logical_params(t, bits)
        dtypes[t.dtype] += t.elements
        files.add(t.file)
        count += 1
    return CheckpointInfo(
        source=source,
        files=len(files),
        total_bytes=sum(nbytes.values()),
        bytes_by_kind=dict(nbytes),
        params_by_kind=dict(params),
        dtypes=dict(dtypes),
        native_format=native_format(config, hf_quant),
        tensor_count=count,
    )


def compare_with_spec(info: CheckpointInfo, breakdown: Mapping[Any, int], mtp: int, vision: int | None) -> list[str]:
    """Notes where the checkpoint and the shapes from the config disagree."""
    notes = []
    spec_total = sum(breakdown.values())
    file_total = info.language_params
    if spec_total and abs(file_total - spec_total) > max(1, spec_total // 10000):
        diff = file_total - spec_total
        notes.append(
            f"the checkpoint holds {file_total:,} language-model parameters, the config's shapes {spec_total:,} "
            f"({diff:+,}); memory uses the checkpoint's bytes"
        )
    if info.params_by_kind.get("mtp") and not mtp:
        notes.append(f"the checkpoint carries {info.params_by_kind['mtp']:,} multi-token-prediction parameters")
    if info.params_by_kind.get("vision"):
        notes.append(
            f"the checkpoint carries a {info.params_by_kind['vision']:,}-parameter vision tower"
            + ("" if vision else " the config does not describe")
        )
    return notes


def with_checkpoint(
    spec: ModelSpec, tensors: list[Any], config: dict[str, Any], source: str, hf_quant: dict[str, Any] | None
) -> ModelSpec:
    """``spec`` with the checkpoint's tensors summarised (and its native format, if the config missed it)."""
    info = summarize(tensors, config, spec.arch.num_layers, source, hf_quant)
    update: dict[str, Any] = {"checkpoint": info}
    if info.native_format and not spec.native_quant:
        update["native_quant"] = info.native_format
    return replace(spec, **update)
