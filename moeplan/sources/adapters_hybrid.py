"""``config.json`` adapters of the hybrid families whose linear-attention layers keep a state per sequence
instead of a KV cache: Qwen3-Next and Qwen3.5 (Gated DeltaNet)."""

from __future__ import annotations

from dataclasses import replace

from moeplan.model.spec import ArchSpec, LinearAttentionSpec, MoeSpec
from moeplan.sources.config_fields import Config, common_fields, dense_mlp, gqa_attention, layer_pattern_of


def qwen_moe_layers(c: Config, num_layers: int) -> tuple[int, ...]:
    """Layers without experts: listed in ``mlp_only_layers`` or off the ``decoder_sparse_step`` grid."""
    step = c.integer("decoder_sparse_step", 1)
    only = set(c.int_list("mlp_only_layers") or [])
    return tuple(i for i in range(num_layers) if i in only or (i + 1) % step != 0)


def qwen3_next(c: Config, *, v35: bool = False) -> ArchSpec:
    """Qwen3-Next and Qwen3.5 (its ``text_config``): Gated DeltaNet layers with full attention every
    ``full_attention_interval`` (gated output, per-head q/k norms), and a MoE block with one gated shared expert
    in every layer on the sparse grid (Qwen3.5: every layer; transformers 5.23.0 reads no ``mlp_only_layers``)."""
    common = common_fields(c)
    n = common["num_layers"]
    types = c.str_list("layer_types")
    if not types:
        interval = c.integer("full_attention_interval", 4)
        types = ["linear_attention" if (i + 1) % interval else "full_attention" for i in range(n)]
    dense = () if v35 else qwen_moe_layers(c, n)
    declared = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(str(c.data.get("mamba_ssm_dtype")))
    bias = c.flag("attention_bias", False)
    attention = gqa_attention(c, qkv_bias=bias, o_bias=bias, qk_norm="per_head", kv_default=2, head_dim_default=256,
                              pattern=layer_pattern_of(types, n, c.where))  # fmt: skip
    return ArchSpec(
        **common,
        attention=replace(attention, gated_output=True),
        linear_attention=LinearAttentionSpec(
            num_key_heads=c.integer("linear_num_key_heads", 16),
            num_value_heads=c.integer("linear_num_value_heads", 32),
            key_head_dim=c.integer("linear_key_head_dim", 128),
            value_head_dim=c.integer("linear_value_head_dim", 128),
            conv_kernel=c.integer("linear_conv_kernel_dim", 4),
            state_dtype=declared,  # type: ignore[arg-type]
        ),
        mlp=dense_mlp(c) if dense else None,
        moe=MoeSpec(
            num_experts=c.integer("num_experts", 512),
            top_k=c.integer("num_experts_per_tok", 10),
            expert_intermediate_size=c.integer("moe_intermediate_size", 512),
            num_shared_experts=1,
            shared_intermediate_size=c.integer("shared_expert_intermediate_size", 512),
            shared_expert_gate=True,
            dense_layers=dense,
        ),
        # the checkpoint's mtp.* block (transformers builds none; vLLM reads num_nextn_predict_layers, default 1)
        mtp_layers=c.integer("mtp_num_hidden_layers" if v35 else "num_nextn_predict_layers", 1, positive=False),
    )
