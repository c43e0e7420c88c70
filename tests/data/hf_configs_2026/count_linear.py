#!/usr/bin/env python3
"""Exact parameter counts for the hybrid linear-attention / VL MoE configs in this folder.

Reference implementation: transformers 5.23.0 (torch 2.13.0 CPU), every model built on the
meta device from the config.json files next to this script (keys starting with "_" are dropped
before building).  Families handled: qwen3_next, qwen3_5_moe, qwen3_vl_moe, kimi_linear; other
files in the folder are skipped.

    /work/main/.venv/bin/python tests/data/hf_configs_2026/count_linear.py  > param_counts_linear.yaml

Writes YAML to stdout (or to --out).  Counting is by parameter name, see classify().

Kinds:
  attention_full    softmax-attention mixers (q/k/v/o, q_norm/k_norm; MLA a/b projections and norms)
  attention_linear  linear-attention mixers (Gated DeltaNet / KDA projections, conv1d, A_log,
                    dt_bias, gated output norm)
  routed_experts, shared_experts (incl. shared_expert_gate), dense_mlp, router, embedding,
  lm_head, norm (per-layer input/post norms + final norm), vision (outside the text model),
  mtp (0: transformers 5.23.0 does not build MTP modules; the checkpoint tensors are counted
  separately as mtp_checkpoint, from one full-attention decoder layer + fc + 3 norms).
active = total_text - routed_experts * (1 - top_k / experts)   (vision and MTP excluded).
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import sys

import torch
import transformers
from transformers import CONFIG_MAPPING

FAMILIES = {
    "qwen3_next": "Qwen3NextForCausalLM",
    "qwen3_5_moe": "Qwen3_5MoeForConditionalGeneration",
    "qwen3_vl_moe": "Qwen3VLMoeForConditionalGeneration",
    "kimi_linear": "KimiLinearForCausalLM",
}

LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.(.*)$")


def load_config(path):
    with open(path) as f:
        raw = json.load(f)
    clean = {k: v for k, v in raw.items() if not k.startswith("_")}
    mt = clean.get("model_type")
    if mt not in FAMILIES:
        return None, None, raw
    cfg = CONFIG_MAPPING[mt].from_dict(clean)
    return mt, cfg, raw


def text_config(cfg):
    return getattr(cfg, "text_config", None) or cfg


def classify(name, tcfg):
    """Return (kind, sub) for a parameter name."""
    if name.startswith("mtp."):
        return "mtp", None
    if ".visual." in name or name.startswith("visual.") or name.startswith("model.visual."):
        return "vision", None
    if name.endswith("lm_head.weight"):
        return "lm_head", None
    if "embed_tokens" in name:
        return "embedding", None
    m = LAYER_RE.search(name)
    if not m:
        if name.endswith("norm.weight"):
            return "norm", "final_norm"
        raise ValueError(f"unclassified parameter {name}")
    idx, rest = int(m.group(1)), m.group(2)
    ltype = tcfg.layer_types[idx] if getattr(tcfg, "layer_types", None) else "full_attention"
    if rest.startswith(("input_layernorm", "post_attention_layernorm")):
        return "norm", rest.split(".")[0]
    if rest.startswith(("linear_attn.", "self_attn.")):
        sub = rest.split(".", 1)[1]
        kind = "attention_linear" if ltype == "linear_attention" else "attention_full"
        return kind, sub
    if rest.startswith("mlp."):
        sub = rest[4:]
        if sub.startswith("experts."):
            return "routed_experts", sub
        if sub.startswith(("shared_expert.", "shared_experts.", "shared_expert_gate")):
            return "shared_experts", sub
        if sub.startswith("gate."):
            return "router", sub
        if sub.startswith(("gate_proj", "up_proj", "down_proj")):
            return "dense_mlp", sub
    raise ValueError(f"unclassified parameter {name}")


def build(mt, cfg):
    cls = getattr(transformers, FAMILIES[mt])
    with torch.device("meta"):
        model = cls(cfg)
    return cls.__name__, model


def layer_kind(tcfg, idx, layer):
    mixer = tcfg.layer_types[idx] if getattr(tcfg, "layer_types", None) else "full_attention"
    mlp = layer.mlp
    ffn = "moe" if (hasattr(mlp, "experts")) else "dense"
    return f"{mixer}+{ffn}"


def find_layers(model):
    for name, mod in model.named_modules():
        if name.endswith("layers") and isinstance(mod, torch.nn.ModuleList) and "visual" not in name:
            return name, mod
    raise ValueError("no decoder layer list")


def mtp_checkpoint_params(mt, tcfg, layers):
    """MTP tensors as stored in the Qwen3-Next / Qwen3.5 checkpoints (transformers drops them):
    mtp.fc [H, 2H], mtp.pre_fc_norm_embedding [H], mtp.pre_fc_norm_hidden [H], mtp.norm [H] and
    mtp.layers.{0..n-1} = a full-attention decoder layer with the same MoE block (the MTP layer
    shares embed_tokens and lm_head with the main model)."""
    if mt == "qwen3_next":
        n = 1  # Qwen3-Next checkpoints ship mtp.layers.0 (config has no count; vLLM: num_nextn_predict_layers=1)
    elif mt == "qwen3_5_moe":
        n = getattr(tcfg, "mtp_num_hidden_layers", 0) or 0
    else:
        return 0, 0
    if n == 0:
        return 0, 0
    H = tcfg.hidden_size
    full_idx = tcfg.layer_types.index("full_attention")
    per_layer = sum(p.numel() for p in layers[full_idx].parameters())
    routed = sum(p.numel() for nm, p in layers[full_idx].named_parameters() if nm.startswith("mlp.experts."))
    return 2 * H * H + 3 * H + n * per_layer, n * routed


def count(path):
    mt, cfg, raw = load_config(path)
    if mt is None:
        return None, None
    clsname, model = build(mt, cfg)
    tcfg = text_config(cfg)
    kinds = collections.Counter()
    linear_sub = collections.Counter()
    full_sub = collections.Counter()
    for name, p in model.named_parameters():
        kind, sub = classify(name, tcfg)
        kinds[kind] += p.numel()
        if kind == "attention_linear":
            linear_sub[sub] += p.numel()
        elif kind == "attention_full":
            full_sub[sub] += p.numel()
    total = sum(kinds.values())
    assert total == sum(p.numel() for p in model.parameters())
    # per-layer-kind tensor lists (first layer of each kind)
    lname, layers = find_layers(model)
    kinds_seen = collections.OrderedDict()
    counts_by_kind = collections.Counter()
    for i, layer in enumerate(layers):
        k = layer_kind(tcfg, i, layer)
        counts_by_kind[k] += 1
        if k not in kinds_seen:
            kinds_seen[k] = (
                i,
                {n: list(p.shape) for n, p in layer.named_parameters()},
                sum(p.numel() for p in layer.parameters()),
            )
    buffers = {n: list(b.shape) for n, b in model.named_buffers() if "e_score_correction_bias" in n}
    experts = getattr(tcfg, "num_experts", None) or getattr(tcfg, "num_local_experts", None)
    top_k = getattr(tcfg, "num_experts_per_tok", None)
    if mt == "kimi_linear":
        experts = model.model.layers[1].mlp.gate.num_experts
        top_k = model.model.layers[1].mlp.gate.top_k
    vision = kinds.get("vision", 0)
    total_text = total - vision
    routed = kinds.get("routed_experts", 0)
    active_text = total_text - routed * (experts - top_k) // experts
    assert (routed * (experts - top_k)) % experts == 0
    mtp_ckpt, mtp_routed = mtp_checkpoint_params(mt, tcfg, layers)
    entry = collections.OrderedDict()
    entry["model_type"] = mt
    entry["cls"] = clsname
    entry["source"] = raw.get("_source")
    entry["total"] = total
    entry["total_text"] = total_text
    entry["active_text"] = active_text
    entry["experts"] = experts
    entry["top_k"] = top_k
    order = [
        "attention_full",
        "attention_linear",
        "routed_experts",
        "shared_experts",
        "dense_mlp",
        "router",
        "embedding",
        "lm_head",
        "norm",
        "mtp",
        "vision",
    ]
    entry["breakdown"] = collections.OrderedDict((k, kinds.get(k, 0)) for k in order)
    entry["attention_linear_by_tensor"] = dict(sorted(linear_sub.items()))
    entry["attention_full_by_tensor"] = dict(sorted(full_sub.items()))
    entry["layers"] = len(layers)
    entry["layer_kind_counts"] = dict(counts_by_kind)
    entry["layer_kinds"] = collections.OrderedDict(
        (k, {"first_layer": i, "params_per_layer": n, "tensors": t}) for k, (i, t, n) in kinds_seen.items()
    )
    if buffers:
        first = next(iter(buffers))
        entry["non_parameter_checkpoint_tensors"] = {
            "note": "router e_score_correction_bias is an nn.Buffer in transformers 5.23.0 (not counted above) but a tensor in the checkpoint",
            "per_moe_layer_shape": buffers[first],
            "moe_layers": len(buffers),
            "elements": sum(v[0] for v in buffers.values()),
        }
    if mtp_ckpt:
        entry["mtp_checkpoint"] = {
            "note": "not built by transformers 5.23.0 (checkpoint keys mtp.* ignored on load); one full-attention decoder layer (+MoE) + fc[H,2H] + 3 RMSNorms",
            "params": mtp_ckpt,
            "routed_experts": mtp_routed,
            "total_text_plus_mtp": total_text + mtp_ckpt,
        }
    return os.path.basename(path)[:-5], entry


def to_yaml(obj, indent=0):
    pad = "  " * indent
    out = []
    for k, v in obj.items():
        if isinstance(v, dict):
            if not v:
                out.append(f"{pad}{k}: {{}}")
                continue
            if all(isinstance(x, list) for x in v.values()) and k == "tensors":
                out.append(f"{pad}{k}:")
                for kk, vv in v.items():
                    out.append(f"{pad}  {kk}: [{', '.join(map(str, vv))}]")
                continue
            out.append(f"{pad}{k}:")
            out.extend(to_yaml(v, indent + 1))
        elif isinstance(v, list):
            out.append(f"{pad}{k}: [{', '.join(map(str, v))}]")
        elif isinstance(v, str):
            out.append(f"{pad}{k}: {json.dumps(v)}")
        elif v is None:
            out.append(f"{pad}{k}: null")
        else:
            out.append(f"{pad}{k}: {v}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out")
    args = ap.parse_args()
    entries = collections.OrderedDict()
    for path in sorted(glob.glob(os.path.join(args.dir, "*.json"))):
        key, entry = count(path)
        if entry is not None:
            entries[key] = entry
    head = [
        "# Exact parameter counts of the hybrid linear-attention / VL MoE configs in hf_configs_2026/,",
        f"# from the reference implementation: transformers {transformers.__version__} built on the meta device (torch {torch.__version__}).",
        "# Written by count_linear.py (same folder). active_text = total_text - routed_experts x (1 - top_k/experts).",
        "# Vision tower counted under breakdown.vision and excluded from total_text / active_text.",
        "# transformers stores routed experts fused: mlp.experts.gate_up_proj [E, 2*I, H] and mlp.experts.down_proj [E, H, I].",
    ]
    text = "\n".join(head + to_yaml(entries)) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
