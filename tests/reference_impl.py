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
    ("embedding", re.compile(r"(embed_tokens|wte|backbone\.embeddings|model\.embeddings)\.weight$")),
    ("lm_head", re.compile(r"^lm_head\.")),
    ("norm", re.compile(r"(norm|layernorm|ln_\w+|norm_\d|norm_f)(\.\d+)?\.(weight|bias)$")),
    ("shared_experts", re.compile(r"shared_expert|shared_mlp")),
    ("routed_experts", re.compile(r"\.experts\.|\.experts$|experts\.mlp\.")),
    ("router", re.compile(r"(\.gate\.(weight|bias)$|\.router\.|router\.layer\.|\.gate\.moe_statics\.|\.gate\.wg\.)")),
    ("dense_mlp", re.compile(r"\.mixer\.(up_proj|down_proj|gate_proj)\.")),  # Nemotron-H's MLP blocks
    ("dense_mlp", re.compile(r"\.mlps\.\d+\.")),  # LongCat-Flash's two dense MLPs per layer
    ("attention", re.compile(r"(self_attn|\.attn\.|\.attention\.|\.linear_attn\.|\.mixer\.|\.mamba\.)")),
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
        if model_type in ("qwen3_vl_moe", "qwen3_5_moe", "kimi_k25"):
            from transformers import AutoModelForImageTextToText

            return AutoModelForImageTextToText.from_config(cfg)
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
            (
                "model.vision_model.",
                "model.multi_modal_projector.",
                "vision_model.",
                "multi_modal_projector.",
                "model.visual.",
                "visual.",
                "model.vision_tower.",
                "vision_tower.",
                "model.mm_projector.",
            )
        ):
            vision += p.numel()
            continue
        name = name.replace("model.language_model.", "model.").replace("language_model.", "")
        n = p.numel()
        if config["model_type"] == "longcat_flash" and name.endswith("experts.gate_up_proj"):
            # transformers 5.23.0 sizes gate_up_proj for the identity experts too ([E + Z, 2F, h]); they have no
            # weights (down_proj is [E, h, F], and the checkpoint holds E experts), so count the E real ones.
            n = n * config["n_routed_experts"] // (config["n_routed_experts"] + config["zero_expert_num"])
        counts[kind_of(name)] += n
    return counts, vision


def small_config(model_type: str) -> dict[str, Any]:
    """A small config of ``model_type`` with every shape key given."""
    base: dict[str, Any] = {
        "model_type": model_type,
        "vocab_size": 320,
        "hidden_size": 128,
        "intermediate_size": 96,
        "num_hidden_layers": 4,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "max_position_embeddings": 512,
    }
    if model_type in ("mixtral", "phimoe", "granitemoe", "gpt_oss", "llama4_text", "olmoe", "qwen3_moe"):
        base.update(num_local_experts=6, num_experts_per_tok=2)
    if model_type in ("olmoe", "qwen2_moe", "qwen3_moe", "qwen3_next"):
        base.update(num_experts=6, num_experts_per_tok=2)
    if model_type == "nemotron_h":
        base.update(hybrid_override_pattern="M*EM-E", mamba_num_heads=8, mamba_head_dim=16, n_groups=2,
                    ssm_state_size=8, head_dim=8, n_routed_experts=6, num_experts_per_tok=2,
                    moe_intermediate_size=40, moe_shared_expert_intermediate_size=48)  # fmt: skip
    if model_type == "granitemoehybrid":
        base.update(layer_types=["mamba", "attention", "mamba", "mamba"], mamba_n_heads=8, mamba_d_head=32,
                    mamba_n_groups=2, mamba_d_state=8, num_local_experts=6, num_experts_per_tok=2,
                    shared_intermediate_size=48)  # fmt: skip
    if model_type == "jamba":
        base.update(num_hidden_layers=8, attn_layer_period=4, attn_layer_offset=1, expert_layer_period=2,
                    expert_layer_offset=1, num_experts=6, num_experts_per_tok=2, mamba_d_state=8,
                    mamba_dt_rank=12)  # fmt: skip
    if model_type == "hunyuan_v1_moe":
        base.update(num_experts=6, moe_topk=2, head_dim=8)
    if model_type == "kimi_linear":
        base.update(num_local_experts=6, num_experts_per_tok=2, moe_intermediate_size=40, kv_lora_rank=16,
                    qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8, linear_head_dim=8, linear_num_heads=4,
                    num_key_value_heads=32, layer_types=["linear_attention", "full_attention"] * 2,
                    pad_token_id=0)  # fmt: skip
    if model_type == "longcat_flash":
        base.update(n_routed_experts=6, zero_expert_num=3, moe_topk=2, expert_ffn_hidden_size=40, ffn_hidden_size=96,
                    q_lora_rank=24, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
                    num_key_value_heads=32)  # fmt: skip
    if model_type == "minimax_m2":
        base.update(num_local_experts=6, num_experts_per_tok=2, head_dim=8)
    if model_type == "ernie4_5_moe":
        base.update(moe_num_experts=6, moe_k=2, moe_intermediate_size=40, moe_num_shared_experts=1)
    if model_type in ("qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3", "glm4_moe", "qwen3_next"):
        base.update(moe_intermediate_size=40)
    if model_type in ("qwen2_moe", "qwen3_next"):
        base.update(shared_expert_intermediate_size=80)
    if model_type == "qwen3_next":
        base.update(
            head_dim=8,
            linear_num_key_heads=4,
            linear_num_value_heads=8,
            linear_key_head_dim=8,
            linear_value_head_dim=12,
            linear_conv_kernel_dim=3,
            full_attention_interval=2,
        )
    if model_type in ("deepseek_v32", "glm_moe_dsa"):
        base.update(index_n_heads=4, index_head_dim=8, index_topk=16, moe_intermediate_size=40)
    if model_type in ("deepseek_v2", "deepseek_v3", "deepseek_v32", "glm_moe_dsa"):
        base.update(
            n_routed_experts=6,
            num_experts_per_tok=2,
            n_shared_experts=1,
            first_k_dense_replace=1,
            q_lora_rank=24,
            kv_lora_rank=16,
            qk_nope_head_dim=8,
            qk_rope_head_dim=4,
            v_head_dim=8,
            num_key_value_heads=32,
            n_group=1,
            topk_group=1,
        )
    if model_type == "glm4_moe":
        base.update(
            n_routed_experts=6,
            num_experts_per_tok=2,
            n_shared_experts=1,
            first_k_dense_replace=1,
            n_group=1,
            topk_group=1,
        )
    if model_type == "llama4_text":
        base.update(intermediate_size_mlp=128, head_dim=8)
    if model_type == "gpt_oss":
        base.update(head_dim=8, sliding_window=16)
    if model_type == "dbrx":
        base = {
            "model_type": "dbrx",
            "vocab_size": 320,
            "d_model": 128,
            "n_heads": 32,
            "n_layers": 3,
            "max_seq_len": 512,
            "attn_config": {"kv_n_heads": 2, "rope_theta": 10000},
            "ffn_config": {"ffn_hidden_size": 96, "moe_num_experts": 4, "moe_top_k": 2},
        }
    return base
