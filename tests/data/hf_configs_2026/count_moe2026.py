#!/usr/bin/env python
"""Exact parameter counts of the 2026 MoE configs in this folder, from transformers on the meta device.

Usage:  python count_moe2026.py [--yaml OUT.yaml]

* Reads the ``*.json`` next to this script whose model_type is one of MY_MODEL_TYPES, drops the top-level keys that start with ``_`` (``_source``) and
  ``quantization_config`` (shapes are counted as the bf16 class builds them), maps the few legacy/remote-code
  ``model_type`` values onto the transformers class that reproduces their shapes (see ``ADAPTERS``), builds the
  ``*ForCausalLM`` (or, for ``kimi_k25``, ``*ForConditionalGeneration``) with ``torch.device("meta")`` and sorts
  every parameter into a kind by its name.
* Adds two entries that have no config file here (no verbatim public config.json was found): the class defaults
  of ``LongcatFlashConfig`` (docstring checkpoint meituan-longcat/LongCat-Flash-Chat) and of ``Kimi_K25Config``
  (text_config = DeepseekV3Config defaults are NOT Kimi; only its vision tower defaults are reported).
* ``active = total - routed_experts * (1 - k/E)`` (embedding and lm_head included).
* MTP layers are not built by any of these classes; for DeepSeek-V3.2 / GLM-5 the script sizes one MTP module as
  one sparse decoder layer of the same class + ``eh_proj`` (hidden x 2*hidden) + ``enorm``/``hnorm``/
  ``shared_head.norm`` (hidden each), i.e. without the checkpoint's duplicate embed_tokens / shared_head.head copies.

Tested with transformers 5.23.0 and torch 2.13.0 (CPU).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoModelForCausalLM
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

HERE = Path(__file__).resolve().parent

# Legacy / remote-code model_type -> (transformers model_type, extra kwargs derived from the config)
ADAPTERS: dict[str, Any] = {
    # Kimi K2 (remote code, DeepseekV3ForCausalLM shapes); transformers' Kimi_K25Config also remaps kimi_k2 -> deepseek_v3
    "kimi_k2": lambda c: ("deepseek_v3", {}),
    # Tencent's GitHub/HF config of Hunyuan-A13B says model_type "hunyuan" (remote code); transformers' class is
    # hunyuan_v1_moe. Its attention reads config.head_dim (None by default -> crash), so pass attention_head_dim.
    "hunyuan": lambda c: ("hunyuan_v1_moe", {"head_dim": c.get("attention_head_dim")}),
}
# keys that only affect runtime / are validated in ways irrelevant to shapes
DROP_KEYS = {
    "quantization_config",
    "rope_scaling",
    "rope_parameters",
    "auto_map",
    "architectures",
    "transformers_version",
    "torch_dtype",
    "dtype",
}

KIND_ORDER = [
    "embedding",
    "lm_head",
    "attention",
    "norm",
    "dense_mlp",
    "shared_experts",
    "routed_experts",
    "router",
    "vision",
    "other",
]


def kind_of(name: str) -> str:
    """Kind of one parameter, by name (all norms -> norm, as in tests/data/reference_param_counts.yaml)."""
    if re.search(r"(^|\.)(vision_tower|vision_model|mm_projector|multi_modal_projector|visual)\.", name):
        return "vision"
    if re.search(r"(embed_tokens|wte)\.weight$", name):
        return "embedding"
    if name.startswith("lm_head."):
        return "lm_head"
    if re.search(r"(norm|layernorm)(\.\d+)?\.(weight|bias)$", name):
        return "norm"
    if re.search(r"(shared_expert|shared_mlp)", name):
        return "shared_experts"
    if re.search(r"\.experts\.(gate_up_proj|down_proj|\d+\.)", name):
        return "routed_experts"
    if re.search(
        r"(\.gate\.weight$|\.gate\.wg\.weight$|\.router\.classifier\.|e_score_correction_bias|moe_statics)", name
    ):
        return "router"
    if re.search(r"(self_attn|\.attn\.|\.attention\.)", name):
        return "attention"
    if re.search(r"\.(mlp|mlps\.\d+)\.(gate_proj|up_proj|down_proj)\.", name):
        return "dense_mlp"
    return "other"


def reference_impl_kind(name: str) -> str:
    """The project's tests/reference_impl.py rule (copied), to flag names it would sort differently."""
    pats = [
        ("embedding", r"(embed_tokens|wte)\.weight$"),
        ("lm_head", r"^lm_head\."),
        ("norm", r"(norm|layernorm|ln_\w+|norm_\d|norm_f)\.(weight|bias)$"),
        ("shared_experts", r"shared_expert"),
        ("routed_experts", r"\.experts\.|\.experts$|experts\.mlp\."),
        ("router", r"(\.gate\.(weight|bias)$|\.router\.|router\.layer\.)"),
        ("attention", r"(self_attn|\.attn\.|\.attention\.)"),
        ("dense_mlp", r"(\.mlp\.|feed_forward\.|block_sparse_moe\.)"),
    ]
    for kind, p in pats:
        if re.search(p, name):
            return kind
    return "other"


# This folder is shared with other counting scripts (count_ssm.py, count_linear.py); only these model types are ours.
MY_MODEL_TYPES = {
    "deepseek_v32",
    "glm_moe_dsa",
    "longcat_flash",
    "minimax_m2",
    "ernie4_5_moe",
    "hunyuan",
    "hunyuan_v1_moe",
    "kimi_k2",
    "kimi_k25",
    "bailing_moe_v2",
    "step3_vl",
    "mistral3",
}


def load_configs() -> list[tuple[str, dict[str, Any], str]]:
    out = []
    for path in sorted(HERE.glob("*.json")):
        raw = json.loads(path.read_text())
        if raw.get("model_type") not in MY_MODEL_TYPES:
            continue
        src = raw.get("_source", "")
        cfg = {k: v for k, v in raw.items() if not k.startswith("_")}
        out.append((path.stem, cfg, src))
    return out


def build(cfg: dict[str, Any]):
    mt = cfg["model_type"]
    extra: dict[str, Any] = {}
    if mt in ADAPTERS:
        mt, extra = ADAPTERS[mt](cfg)
    kwargs = {k: v for k, v in cfg.items() if k != "model_type" and k not in DROP_KEYS}
    kwargs.update(extra)
    conf = CONFIG_MAPPING[mt](**kwargs)
    with torch.device("meta"):
        if mt == "kimi_k25":
            from transformers import Kimi_K25ForConditionalGeneration as C  # type: ignore[attr-defined]

            model = C(conf)
        else:
            model = AutoModelForCausalLM.from_config(conf)
    return mt, conf, model


def layer_index(name: str) -> int | None:
    m = re.search(r"(?:^|\.)layers\.(\d+)\.", name)
    return int(m.group(1)) if m else None


def moe_numbers(mt: str, conf) -> tuple[int, int, int]:
    """(routed experts E with weights, top_k, zero/identity experts)."""
    tc = getattr(conf, "text_config", None) or conf
    E = (
        getattr(tc, "n_routed_experts", None)
        or getattr(tc, "num_local_experts", None)
        or getattr(tc, "moe_num_experts", None)
        or getattr(tc, "num_experts", None)
    )
    k = getattr(tc, "num_experts_per_tok", None) or getattr(tc, "moe_topk", None) or getattr(tc, "moe_k", None)
    if isinstance(k, list):
        k = k[0]
    zero = getattr(tc, "zero_expert_num", 0) or 0
    return int(E), int(k), int(zero)


def count(name: str, cfg: dict[str, Any] | None, src: str, *, conf_obj=None, model=None, mt=None) -> dict:
    if model is None:
        mt, conf, model = build(cfg)
    else:
        conf = conf_obj
    kinds: Counter[str] = Counter()
    ref_kinds: Counter[str] = Counter()
    disagreements: dict[str, str] = {}
    per_layer: dict[int, list[tuple[str, tuple[int, ...], str]]] = {}
    nonlayer: list[tuple[str, tuple[int, ...], str]] = []
    indexer: Counter[str] = Counter()
    seen: set[int] = set()
    for n, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        k = kind_of(n)
        kinds[k] += p.numel()
        rk = reference_impl_kind(n)
        if k != "vision":
            ref_kinds[rk] += p.numel()
        generic = re.sub(r"layers\.\d+\.", "layers.N.", n)
        if rk != k and k != "vision":
            disagreements[generic] = f"this script: {k}; tests/reference_impl.py: {rk}"
        if ".indexer." in n:
            indexer[re.sub(r"^.*\.indexer\.", "indexer.", n)] += p.numel()
        li = layer_index(n)
        entry = (re.sub(r"^.*?layers\.\d+\.", "", n), tuple(p.shape), k)
        if li is None:
            nonlayer.append((n, tuple(p.shape), k))
        else:
            per_layer.setdefault(li, []).append(entry)
    buffers = {}
    for n, b in model.named_buffers():
        if "e_score_correction_bias" in n:
            g = re.sub(r"layers\.\d+\.", "layers.N.", n)
            c, s = buffers.get(g, (0, tuple(b.shape)))
            buffers[g] = (c + 1, s)
    # group layers by signature
    sigs: "OrderedDict[tuple, list[int]]" = OrderedDict()
    for li in sorted(per_layer):
        sig = tuple(per_layer[li])
        sigs.setdefault(sig, []).append(li)
    layer_kinds = []
    for sig, lis in sigs.items():
        tensors = OrderedDict((t, list(s)) for t, s, _ in sig)
        layer_kinds.append(
            {
                "layers": compress(lis),
                "n_layers": len(lis),
                "params_per_layer": int(sum(prod(s) for _, s, _ in sig)),
                "by_kind": dict(sorted(Counter_sum(sig).items())),
                "tensors": {t: s for t, s in tensors.items()},
            }
        )
    total = int(sum(v for kk, v in kinds.items() if kk != "vision"))
    E, k, zero = moe_numbers(mt, conf)
    routed = int(kinds.get("routed_experts", 0))
    res: dict[str, Any] = OrderedDict()
    res["model_type"] = cfg["model_type"] if cfg else mt
    res["built_as"] = mt
    res["class"] = type(model).__name__
    res["source"] = src
    res["total"] = total
    res["by_kind"] = {kk: int(kinds[kk]) for kk in KIND_ORDER if kinds.get(kk) and kk != "vision"}
    if kinds.get("vision"):
        res["vision_outside_total"] = int(kinds["vision"])
    if indexer:
        res["dsa_indexer"] = {
            "note": "subset of attention (+ indexer.k_norm weight/bias in norm); summed over all layers",
            "total": int(sum(indexer.values())),
            "by_tensor": {kk: int(v) for kk, v in sorted(indexer.items())},
        }
    res["experts"] = E
    res["top_k"] = k
    res["active"] = int(round(total - routed * (1 - k / E)))
    res["nonlayer_tensors"] = {n: list(s) for n, s, _ in nonlayer}
    res["layer_kinds"] = layer_kinds
    if buffers:
        res["buffers_not_counted"] = {g: {"layers": c, "shape": list(s)} for g, (c, s) in buffers.items()}
    if disagreements:
        res["reference_impl_kind_disagreements"] = disagreements
        res["reference_impl_by_kind"] = {kk: int(v) for kk, v in sorted(ref_kinds.items())}
    return res, conf, model


def Counter_sum(sig) -> Counter:
    c: Counter[str] = Counter()
    for _, s, kd in sig:
        c[kd] += prod(s)
    return Counter({kk: int(v) for kk, v in c.items()})


def prod(s) -> int:
    out = 1
    for x in s:
        out *= int(x)
    return out


def compress(lis: list[int]) -> str:
    runs, start, prev = [], None, None
    for x in lis:
        if start is None:
            start = prev = x
        elif x == prev + 1:
            prev = x
        else:
            runs.append((start, prev))
            start = prev = x
    if start is not None:
        runs.append((start, prev))
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def mtp_module_params(model, conf) -> int | None:
    """One DeepSeek-style MTP module: a sparse decoder layer + eh_proj + enorm/hnorm/shared_head.norm."""
    layers = model.model.layers
    types = getattr(conf, "mlp_layer_types", None)
    if not types or "sparse" not in types:
        return None
    li = types.index("sparse")
    h = conf.hidden_size
    layer = sum(p.numel() for p in layers[li].parameters())
    return int(layer + 2 * h * h + 3 * h)


def longcat_extra(res: dict, conf) -> None:
    """LongCat-Flash: zero-computation (identity) experts; the class over-allocates gate_up_proj."""
    E, zero, k = conf.n_routed_experts, conf.zero_expert_num or 0, conf.moe_topk
    h, inter = conf.hidden_size, conf.expert_ffn_hidden_size
    L = conf.num_layers
    per_expert = 3 * h * inter
    routed_ckpt = L * E * per_expert
    routed_class = res["by_kind"]["routed_experts"]
    phantom = routed_class - routed_ckpt
    total_ckpt = res["total"] - phantom
    base = total_ckpt - routed_ckpt  # everything but routed FFN experts
    res["longcat"] = OrderedDict(
        [
            ("n_routed_experts", E),
            ("zero_expert_num", zero),
            ("moe_topk", k),
            ("router_outputs", E + zero),
            ("class_gate_up_proj_shape", [E + zero, 2 * inter, h]),
            ("class_down_proj_shape", [E, h, inter]),
            ("phantom_params_in_class", int(phantom)),
            (
                "phantom_note",
                "transformers 5.23.0 LongcatFlashExperts allocates gate_up_proj for n_routed+zero experts "
                "but down_proj for n_routed only; checkpoint has no weights for identity experts",
            ),
            ("total_checkpoint_shapes", int(total_ckpt)),
            ("routed_experts_checkpoint", int(routed_ckpt)),
            ("active_min_all_topk_zero", int(base)),
            ("active_max_all_topk_real", int(base + L * k * per_expert)),
            ("active_if_uniform_routing", int(base + L * k * E / (E + zero) * per_expert)),
            ("active_per_real_expert_per_layer_slot", int(L * per_expert)),
        ]
    )
    # the generic formula on the class numbers would count the phantom gate_up rows; report checkpoint-based values
    res["active"] = int(base + L * k * per_expert)
    res["active_note"] = (
        "LongCat: active = active_max_all_topk_real (all 12 picks are FFN experts); "
        "min/uniform in the longcat block; class total includes phantom params"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--yaml", default=None)
    args = ap.parse_args()
    results: "OrderedDict[str, Any]" = OrderedDict()
    for name, cfg, src in load_configs():
        res, conf, model = count(name, cfg, src)
        mtp = (
            mtp_module_params(model, conf)
            if res["built_as"] in ("deepseek_v32", "glm_moe_dsa", "deepseek_v3")
            else None
        )
        n_mtp = cfg.get("num_nextn_predict_layers", 0) or 0
        if mtp and n_mtp:
            res["mtp"] = {
                "modules": n_mtp,
                "params_per_module_excl_shared_embed_head": mtp,
                "note": "not built by the class; sized as one sparse decoder layer + eh_proj + 3 norms",
            }
        results[name] = res
        del model
    # class-default entries (no verbatim config found)
    conf = CONFIG_MAPPING["longcat_flash"]()
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(conf)
    res, conf, model = count("longcat", None, "", conf_obj=conf, model=model, mt="longcat_flash")
    res["source"] = (
        "transformers 5.23.0 LongcatFlashConfig() defaults (@auto_docstring checkpoint "
        "meituan-longcat/LongCat-Flash-Chat); no verbatim config.json found in public sources"
    )
    longcat_extra(res, conf)
    results["_class_default__LongcatFlashConfig"] = res
    conf = CONFIG_MAPPING["kimi_k25"]()
    with torch.device("meta"):
        from transformers import Kimi_K25ForConditionalGeneration as C  # type: ignore[attr-defined]

        model = C(conf)
    vis = sum(p.numel() for n, p in model.named_parameters() if kind_of(n) == "vision")
    results["_class_default__Kimi_K25Config_vision"] = {
        "class": type(model).__name__,
        "source": "transformers 5.23.0 Kimi_K25Config() defaults (docstring checkpoint moonshotai/Kimi-K2.6); "
        "only the vision tower + projector are meaningful (text_config defaults are DeepseekV3Config's)",
        "vision_plus_projector": int(vis),
        "vision_tensors_top": sorted(
            {re.sub(r"\.\d+\.", ".N.", n) for n, _ in model.named_parameters() if kind_of(n) == "vision"}
        )[:60],
    }
    text = json.dumps(results, indent=1)
    if args.yaml:
        import yaml  # type: ignore

        header = (
            "# Exact parameter counts of the configs in hf_configs_2026/ (and two class-default entries),\n"
            f"# transformers {transformers.__version__} classes on the meta device (torch {torch.__version__}).\n"
            "# Written by count_moe2026.py. active = total - routed_experts x (1 - top_k/experts).\n"
            "# Kinds follow tests/reference_impl.py names (all norms -> norm, incl. q_a/kv_a layernorms and\n"
            "# q/k norms); dsa_indexer lists the indexer tensors (already inside attention/norm).\n"
            "# e_score_correction_bias is a non-parameter buffer in most of these classes (see buffers_not_counted).\n"
        )
        Path(args.yaml).write_text(header + yaml.safe_dump(json.loads(text), sort_keys=False, width=120))
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
