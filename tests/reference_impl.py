"""The reference implementation: ``transformers`` model classes built on the meta device.

Used only by the tests, to check moeplan's parameter counts parameter by parameter.  Every parameter the
model class builds is put in one of moeplan's kinds by its name.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

# Order matters: the first pattern that matches a parameter's name decides its kind.
_KIND_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("embedding", re.compile(r"(embed_tokens|wte)\.weight$")),
    ("lm_head", re.compile(r"^lm_head\.")),
    ("norm", re.compile(r"(norm|layernorm|ln_\w+|norm_\d|norm_f)\.(weight|bias)$")),
    ("shared_experts", re.compile(r"shared_expert")),
    ("routed_experts", re.compile(r"\.experts\.|\.experts$|experts\.mlp\.")),
    ("router", re.compile(r"(\.gate\.(weight|bias)$|\.router\.|router\.layer\.)")),
    ("attention", re.compile(r"(self_attn|\.attn\.|\.attention\.)")),
    ("dense_mlp", re.compile(r"(\.mlp\.|feed_forward\.|block_sparse_moe\.)")),
]


def kind_of(name: str) -> str:
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(name):
            return kind
    return "other"


def build_meta_model(config: dict[str, Any]) -> Any:
    """The ``transformers`` causal-LM model for ``config``, on the meta device (no memory used)."""
    import torch
    from transformers import CONFIG_MAPPING, AutoModelForCausalLM

    model_type = config["model_type"]
    kwargs = {k: v for k, v in config.items() if k != "model_type"}
    cfg = CONFIG_MAPPING[model_type](**kwargs)
    with torch.device("meta"):
        if model_type == "llama4":
            from transformers import Llama4ForConditionalGeneration

            return Llama4ForConditionalGeneration(cfg)
        return AutoModelForCausalLM.from_config(cfg)


def reference_counts(config: dict[str, Any]) -> tuple[Counter[str], int]:
    """``(elements by kind of the language model, elements of the vision tower)``."""
    model = build_meta_model(config)
    counts: Counter[str] = Counter()
    vision = 0
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        if name.startswith(
            ("model.vision_model.", "model.multi_modal_projector.", "vision_model.", "multi_modal_projector.")
        ):
            vision += p.numel()
            continue
        name = name.replace("model.language_model.", "model.").replace("language_model.", "")
        counts[kind_of(name)] += p.numel()
    return counts, vision
