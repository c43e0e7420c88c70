"""``config.json`` adapters of the hybrid families whose linear-attention layers keep a state per sequence
instead of a KV cache: Qwen3-Next and Qwen3.5 (Gated DeltaNet), Nemotron-H and Granite 4.0-H (Mamba2), Jamba
(Mamba1)."""

from __future__ import annotations

from dataclasses import replace

from moeplan.errors import SpecError
from moeplan.model.spec import ArchSpec, LinearAttentionSpec, MlpSpec, MoeSpec, SsmSpec
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


_NEMOTRON_BLOCKS = {"M": ("M", "X"), "E": ("X", "E"), "*": ("F", "X"), "-": ("X", "D")}
_NEMOTRON_TYPES = {"mamba": "M", "linear_attention": "M", "moe": "E", "attention": "*", "full_attention": "*",
                   "mlp": "-"}  # fmt: skip


def nemotron_h(c: Config) -> ArchSpec:
    """Nemotron-H (Nemotron 3 Nano): each layer is ONE block (a norm and a Mamba2 mixer, attention, a MoE block
    or an MLP) from ``hybrid_override_pattern`` (M, *, E, -) or ``layers_block_type``; relu² experts and shared
    expert (two matrices each); attention of ``head_dim`` without biases; Mamba2 width ``heads x head_dim``."""
    pattern = c.data.get("hybrid_override_pattern")
    if not isinstance(pattern, str) or not pattern:
        types = c.str_list("layers_block_type") or c.str_list("layer_types") or ["mamba", "moe", "attention", "mlp"]
        unknown = sorted({t for t in types if t not in _NEMOTRON_TYPES})
        if unknown:
            raise SpecError(f"{c.where}: layer types {unknown} are not Nemotron-H blocks")
        pattern = "".join(_NEMOTRON_TYPES[t] for t in types)
    if any(ch not in _NEMOTRON_BLOCKS for ch in pattern):
        raise SpecError(f"{c.where}: field 'hybrid_override_pattern' has letters other than M, E, * and -")
    if c.data.get("moe_latent_size") is not None:
        raise SpecError(
            f"{c.where}: MoE layers with a latent projection (moe_latent_size) are not expressible yet",
            "describe the model in a YAML spec without it",
        )
    # transformers 5.23.0 builds Nemotron-H's output head whatever tie_word_embeddings says
    common = {**common_fields(c), "num_layers": len(pattern), "tie_embeddings": False}
    mixers = "".join(_NEMOTRON_BLOCKS[ch][0] for ch in pattern)
    ffns = "".join(_NEMOTRON_BLOCKS[ch][1] for ch in pattern)
    heads, head_dim = c.integer("mamba_num_heads", 128), c.integer("mamba_head_dim", 64)
    declared = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(str(c.data.get("mamba_ssm_cache_dtype")))
    shared = c.integer("moe_shared_expert_intermediate_size", 7688, positive=False)
    attention = gqa_attention(c, kv_default=8, head_dim_default=128)
    return ArchSpec(
        **common,
        norms_per_layer=1,
        attention=replace(attention, layer_pattern=mixers),
        ssm=SsmSpec(
            kind="mamba2",
            d_inner=heads * head_dim,
            d_state=c.integer("ssm_state_size", 128),
            d_conv=c.integer("conv_kernel", 4),
            num_heads=heads,
            n_groups=c.integer("n_groups", 8),
            conv_bias=c.flag("use_conv_bias", True),
            proj_bias=c.flag("use_bias", False),
            chunk_size=c.integer("chunk_size", 128),
            state_dtype=declared,  # type: ignore[arg-type]
        ),
        ffn_pattern=ffns,
        mlp=MlpSpec(
            intermediate_size=c.integer("intermediate_size", 21504), gated=False, bias=c.flag("mlp_bias", False)
        )
        if "D" in ffns
        else None,
        moe=MoeSpec(
            num_experts=c.integer("n_routed_experts", 8),
            top_k=c.integer("num_experts_per_tok", 2),
            expert_intermediate_size=c.integer("moe_intermediate_size", 7688),
            gated=False,
            router_correction_bias=True,
            num_shared_experts=1 if shared else 0,
            shared_intermediate_size=shared or None,
            shared_bias=c.flag("mlp_bias", False),
        )
        if "E" in ffns
        else None,
    )


def granite_moe_hybrid(c: Config) -> ArchSpec:
    """Granite 4.0-H: Mamba2 layers and attention layers (``layer_types``: mamba / attention), each followed by
    a SwiGLU MoE block (``num_local_experts``, 0: none) and a shared MLP that is always there."""
    common = common_fields(c)
    n = common["num_layers"]
    types = (c.str_list("layer_types") or ["mamba"] * n)[:n]
    codes = {"mamba": "M", "linear_attention": "M", "attention": "F", "full_attention": "F"}
    unknown = sorted({t for t in types if t not in codes})
    if unknown:
        raise SpecError(f"{c.where}: layer types {unknown} are not Granite 4.0-H layers")
    h = common["hidden_size"]
    heads, expand = c.integer("mamba_n_heads", 128), c.integer("mamba_expand", 2)
    d_inner = expand * h
    experts = c.integer("num_local_experts", 8, positive=False)
    shared = c.integer("shared_intermediate_size", 1024)
    moe = (
        MoeSpec(
            num_experts=experts,
            top_k=c.integer("num_experts_per_tok", 2),
            expert_intermediate_size=c.integer("intermediate_size", 11008),
            num_shared_experts=1,
            shared_intermediate_size=shared,
        )
        if experts
        else None
    )
    bias = c.flag("attention_bias", False)
    attention = gqa_attention(c, qkv_bias=bias, o_bias=bias, head_dim_default=h // c.integer("num_attention_heads"))
    return ArchSpec(
        **common,
        attention=replace(attention, layer_pattern="".join(codes[t] for t in types)),
        ssm=SsmSpec(
            kind="mamba2",
            d_inner=d_inner,
            d_state=c.integer("mamba_d_state", 256),
            d_conv=c.integer("mamba_d_conv", 4),
            num_heads=heads,
            n_groups=c.integer("mamba_n_groups", 1),
            conv_bias=c.flag("mamba_conv_bias", True),
            proj_bias=c.flag("mamba_proj_bias", False),
            chunk_size=c.integer("mamba_chunk_size", 256),
        ),
        moe=moe,
        mlp=None if moe else MlpSpec(intermediate_size=shared),
    )


def jamba(c: Config) -> ArchSpec:
    """Jamba: attention every ``attn_layer_period`` layers (at ``attn_layer_offset``), Mamba1 elsewhere; a MoE
    block every ``expert_layer_period`` layers (at ``expert_layer_offset``), a dense MLP elsewhere; no shared
    expert; Mamba1 with RMSNorms on dt, B and C."""
    common = common_fields(c)
    n, h = common["num_layers"], common["hidden_size"]
    period, offset = c.integer("attn_layer_period", 8), c.integer("attn_layer_offset", 4, positive=False)
    e_period, e_offset = c.integer("expert_layer_period", 2), c.integer("expert_layer_offset", 1, positive=False)
    experts = c.integer("num_experts", 16)
    mixers = "".join("F" if i % period == offset else "M" for i in range(n))
    ffns = "".join("E" if experts > 1 and i % e_period == e_offset else "D" for i in range(n))
    rank = c.data.get("mamba_dt_rank", "auto")
    dt_rank = -(-h // 16) if rank in ("auto", None) else c.integer("mamba_dt_rank")
    inter = c.integer("intermediate_size", 14336)
    attention = gqa_attention(c, kv_default=8, head_dim_default=h // c.integer("num_attention_heads"))
    return ArchSpec(
        **common,
        attention=replace(attention, layer_pattern=mixers),
        ssm=SsmSpec(
            kind="mamba1",
            d_inner=c.integer("mamba_expand", 2) * h,
            d_state=c.integer("mamba_d_state", 16),
            d_conv=c.integer("mamba_d_conv", 4),
            dt_rank=dt_rank,
            conv_bias=c.flag("mamba_conv_bias", True),
            proj_bias=c.flag("mamba_proj_bias", False),
            inner_norms=True,
        ),
        ffn_pattern=ffns,
        mlp=MlpSpec(intermediate_size=inter) if "D" in ffns else None,
        moe=MoeSpec(num_experts=experts, top_k=c.integer("num_experts_per_tok", 2), expert_intermediate_size=inter)
        if "E" in ffns
        else None,
    )
