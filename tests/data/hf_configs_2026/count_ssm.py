#!/usr/bin/env python
"""Exact parameter counts of the state-space hybrid MoE families (nemotron_h, granitemoehybrid, jamba).

Standalone: needs only torch and transformers (written against transformers 5.23.0, torch 2.13.0).

For every ``*.json`` next to this script whose ``model_type`` is one of the three families, the config
(with every ``_``-prefixed key dropped) is turned into the transformers config class, the
``*ForCausalLM`` model is built on the meta device (no memory, no weights), and every parameter is
counted once (tied tensors once) and put in one kind:

    attention, ssm, routed_experts, shared_experts, dense_mlp, router, embedding, lm_head, norm

``ssm`` is the Mamba mixer (in_proj, conv1d weight/bias, x_proj, dt_proj weight/bias, dt_bias, A_log,
D, its gated RMSNorm or dt/b/c layernorms, out_proj); ``ssm_tensors`` splits it per tensor name.
``norm`` is the per-layer pre-norms and the final norm (not the norms inside the Mamba mixer).
Buffers are not parameters; Nemotron-H's router ``e_score_correction_bias`` is a persistent buffer
(it is in the checkpoint's state dict) and is reported apart as ``persistent_buffers``.

active = total - routed_experts * (1 - top_k / n_routed)   (embedding and lm_head included).

A second group, DERIVED_CONFIGS below, holds configs that were NOT found as published config.json
files; they are rebuilt from GGUF metadata and third-party excerpts (sources given) and are written to
a separate ``derived_not_published`` section so that nobody mistakes them for the published files.

Usage:  python count_ssm.py [--out param_counts_ssm.yaml]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import OrderedDict
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

HERE = Path(__file__).resolve().parent
FAMILIES = ("nemotron_h", "granitemoehybrid", "jamba")

SSM_NAMES = {
    "in_proj.weight",
    "in_proj.bias",
    "conv1d.weight",
    "conv1d.bias",
    "x_proj.weight",
    "dt_proj.weight",
    "dt_proj.bias",
    "dt_bias",
    "A_log",
    "D",
    "norm.weight",
    "dt_layernorm.weight",
    "b_layernorm.weight",
    "c_layernorm.weight",
    "out_proj.weight",
    "out_proj.bias",
}

# Configs rebuilt from other sources (NOT a published config.json). Only the fields that set shapes.
DERIVED_CONFIGS = {
    "ibm-granite/granite-4.0-h-small (DERIVED)": {
        "_sources": [
            "GGUF metadata of ollama.com/ibm/granite4:small-h-q6_K (granitehybrid.*: embedding_length 4096, "
            "block_count 40, attention.head_count 32, expert_count 72, expert_used_count 10, "
            "feed_forward_length 768, expert_shared_feed_forward_length 1536, ssm.inner_size 8192, "
            "ssm.state_size 128, ssm.group_count 1, ssm.time_step_rank 128, ssm.conv_kernel 4, vocab_size 100352)",
            "num_key_value_heads 8, tie_word_embeddings true and layer_types tally {mamba: 36, attention: 4}: "
            "third-party excerpt of the Hub config quoted in a public repo (find_string id 57624389648); "
            "attention positions do not change the counts",
        ],
        "model_type": "granitemoehybrid",
        "hidden_size": 4096,
        "num_hidden_layers": 40,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 768,
        "shared_intermediate_size": 1536,
        "num_local_experts": 72,
        "num_experts_per_tok": 10,
        "vocab_size": 100352,
        "tie_word_embeddings": True,
        "mamba_n_heads": 128,
        "mamba_d_head": 64,
        "mamba_n_groups": 1,
        "mamba_d_state": 128,
        "mamba_d_conv": 4,
        "mamba_expand": 2,
        "mamba_conv_bias": True,
        "mamba_proj_bias": False,
        "attention_bias": False,
        "position_embedding_type": "nope",
        "layer_types": (["mamba"] * 9 + ["attention"]) * 4,
    },
    "ibm-granite/granite-4.0-h-tiny (DERIVED)": {
        "_sources": [
            "GGUF metadata of ollama.com/library/granite4:tiny-h (granitehybrid.*: embedding_length 1536, "
            "block_count 40, attention.head_count 12, expert_count 64, expert_used_count 6, "
            "feed_forward_length 512, expert_shared_feed_forward_length 1024, ssm.inner_size 3072, "
            "ssm.state_size 128, ssm.group_count 1, ssm.time_step_rank 48, ssm.conv_kernel 4, vocab_size 100352)",
            "num_key_value_heads 4, tie_word_embeddings true, layer_types (4 attention of 40): third-party "
            "excerpt 'GRANITE_H_TINY_HF' in a public repo (find_string id 65865534003)",
        ],
        "model_type": "granitemoehybrid",
        "hidden_size": 1536,
        "num_hidden_layers": 40,
        "num_attention_heads": 12,
        "num_key_value_heads": 4,
        "intermediate_size": 512,
        "shared_intermediate_size": 1024,
        "num_local_experts": 64,
        "num_experts_per_tok": 6,
        "vocab_size": 100352,
        "tie_word_embeddings": True,
        "mamba_n_heads": 48,
        "mamba_d_head": 64,
        "mamba_n_groups": 1,
        "mamba_d_state": 128,
        "mamba_d_conv": 4,
        "mamba_expand": 2,
        "mamba_conv_bias": True,
        "mamba_proj_bias": False,
        "attention_bias": False,
        "position_embedding_type": "nope",
        "layer_types": ["mamba"] * 5
        + ["attention"]
        + ["mamba"] * 9
        + ["attention"]
        + ["mamba"] * 9
        + ["attention"]
        + ["mamba"] * 9
        + ["attention"]
        + ["mamba"] * 4,
    },
}


def kind_of(name: str, model_type: str) -> tuple[str, str | None]:
    """Return (kind, ssm tensor name or None) for a parameter name."""
    if name == "lm_head.weight":
        return "lm_head", None
    if name.endswith(("embed_tokens.weight", "embeddings.weight")):
        return "embedding", None
    if name.endswith(("norm_f.weight", "model.norm.weight", "final_layernorm.weight")):
        return "norm", None
    m = re.match(r"model\.layers\.\d+\.(.*)", name)
    if not m:
        raise ValueError(f"unclassified parameter {name}")
    rest = m.group(1)
    if rest in ("norm.weight", "input_layernorm.weight", "post_attention_layernorm.weight", "pre_ff_layernorm.weight"):
        return "norm", None
    # Mamba mixer: nemotron_h "mixer.<t>", granitemoehybrid / jamba "mamba.<t>"
    for prefix in ("mixer.", "mamba."):
        if rest.startswith(prefix) and rest[len(prefix) :] in SSM_NAMES:
            return "ssm", rest[len(prefix) :]
    if re.search(r"(self_attn|mixer)\.(q_proj|k_proj|v_proj|o_proj)\.(weight|bias)$", rest):
        return "attention", None
    if ".experts." in rest:
        return "routed_experts", None
    if "shared_experts." in rest or "shared_mlp." in rest:
        return "shared_experts", None
    if rest.endswith(("gate.weight", "router.weight", "router.layer.weight")):
        return "router", None
    if re.search(r"(feed_forward|mixer|mlp)\.(gate_proj|up_proj|down_proj)\.weight$", rest):
        return "dense_mlp", None
    raise ValueError(f"unclassified parameter {name}")


def layer_kind(model, i: int) -> str:
    """Mixer kind + feed-forward kind of decoder layer i, from the built module."""
    layer = model.model.layers[i]
    mt = model.config.model_type
    if mt == "nemotron_h":
        return {"linear_attention": "mamba2", "full_attention": "attention", "moe": "moe", "mlp": "mlp"}[
            layer.block_type
        ]
    if mt == "granitemoehybrid":
        mixer = "mamba2" if layer.mamba is not None else "attention"
        ffn = "moe+shared" if layer.block_sparse_moe is not None else "shared_mlp_only"
        return f"{mixer}+{ffn}"
    if mt == "jamba":
        mixer = "mamba1" if hasattr(layer, "mamba") else "attention"
        ffn = "moe" if type(layer.feed_forward).__name__ == "JambaSparseMoeBlock" else "dense_mlp"
        return f"{mixer}+{ffn}"
    raise ValueError(mt)


def experts_topk(cfg) -> tuple[int, int]:
    mt = cfg.model_type
    if mt == "nemotron_h":
        return cfg.n_routed_experts, cfg.num_experts_per_tok
    if mt == "granitemoehybrid":
        return cfg.num_local_experts, cfg.num_experts_per_tok
    return cfg.num_experts, cfg.num_experts_per_tok


def count(raw: dict, label: str, source: str) -> dict:
    d = {k: v for k, v in raw.items() if not k.startswith("_")}
    cfg = AutoConfig.for_model(**d)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    kinds = OrderedDict(
        (k, 0)
        for k in (
            "attention",
            "ssm",
            "routed_experts",
            "shared_experts",
            "dense_mlp",
            "router",
            "embedding",
            "lm_head",
            "norm",
        )
    )
    ssm = OrderedDict()
    total = 0
    for name, p in model.named_parameters():  # named_parameters() yields a tied tensor once
        n = p.numel()
        total += n
        k, t = kind_of(name, cfg.model_type)
        kinds[k] += n
        if t:
            ssm[t] = ssm.get(t, 0) + n
    assert total == sum(p.numel() for p in model.parameters())
    buffers = OrderedDict()
    for name, b in model.named_buffers():
        base = name.rsplit(".", 1)[-1]
        if base in ("e_score_correction_bias",):
            buffers[base] = buffers.get(base, 0) + b.numel()
    # one layer of each layer kind: tensor names and shapes
    per_kind = OrderedDict()
    counts = OrderedDict()
    for i in range(len(model.model.layers)):
        lk = layer_kind(model, i)
        counts[lk] = counts.get(lk, 0) + 1
        if lk in per_kind:
            continue
        prefix = f"model.layers.{i}."
        tensors = OrderedDict(
            (n[len(prefix) :], list(p.shape)) for n, p in model.named_parameters() if n.startswith(prefix)
        )
        per_kind[lk] = OrderedDict([("example_layer", i), ("tensors", tensors)])
    n_exp, k = experts_topk(cfg)
    active = total - kinds["routed_experts"] * (n_exp - k) / n_exp if n_exp else total
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    return OrderedDict(
        [
            ("label", label),
            ("source", source),
            ("model_type", cfg.model_type),
            ("class", type(model).__name__),
            ("num_layers", len(model.model.layers)),
            ("layer_kind_counts", dict(counts)),
            ("total", total),
            ("active", int(round(active))),
            ("experts", n_exp),
            ("top_k", k),
            ("tied_embeddings", tied),
            ("kinds", dict(kinds)),
            ("ssm_tensors", dict(ssm)),
            ("persistent_buffers", dict(buffers)),
            (
                "layer_kinds",
                {
                    k2: {"example_layer": v["example_layer"], "tensors": dict(v["tensors"])}
                    for k2, v in per_kind.items()
                },
            ),
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE / "param_counts_ssm.yaml"))
    args = ap.parse_args()
    published, derived = [], []
    for path in sorted(HERE.glob("*.json")):
        raw = json.loads(path.read_text())
        if raw.get("model_type") not in FAMILIES:
            continue
        published.append(count(raw, path.stem.replace("__", "/"), raw.get("_source", "")))
    for label, raw in DERIVED_CONFIGS.items():
        derived.append(count(raw, label, " | ".join(raw["_sources"])))
    doc = OrderedDict(
        [
            (
                "generated_by",
                f"tests/data/hf_configs_2026/count_ssm.py with transformers {transformers.__version__}, "
                f"torch {torch.__version__}, meta device",
            ),
            (
                "definitions",
                {
                    "total": "every parameter of the *ForCausalLM class, tied tensors once (named_parameters())",
                    "active": "total - routed_experts * (1 - top_k/experts); embedding and lm_head included",
                    "ssm": "Mamba mixer tensors (split in ssm_tensors)",
                    "norm": "per-layer pre-norms + final norm (Mamba-internal norms are in ssm)",
                    "persistent_buffers": "state-dict tensors that are not parameters (not in total)",
                },
            ),
            ("published_configs", published),
            ("derived_not_published", derived),
        ]
    )
    import yaml

    def _repr_od(dumper, data):
        return dumper.represent_dict(data.items())

    yaml.add_representer(OrderedDict, _repr_od)
    text = yaml.dump(doc, sort_keys=False, width=120, default_flow_style=None)
    header = (
        "# Exact parameter counts for the state-space hybrid MoE families (nemotron_h, granitemoehybrid, jamba)\n"
        "# from the transformers 5.23.0 model classes built on the meta device. Regenerate with count_ssm.py.\n"
        "# 'derived_not_published' entries are NOT from a published config.json (see their source).\n"
    )
    Path(args.out).write_text(header + text)
    for e in published + derived:
        print(f"{e['label']:50s} total={e['total']:>15,d} active={e['active']:>15,d}")


if __name__ == "__main__":
    main()
