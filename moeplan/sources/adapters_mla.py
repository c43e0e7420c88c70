"""``config.json`` adapters of the multi-head latent attention families: DeepSeek-V2/V3 (Kimi K2), and
DeepSeek Sparse Attention's DeepSeek-V3.2 and GLM-5 (an indexer in every layer), Kimi-Linear (MLA beside Kimi
Delta Attention) and LongCat-Flash (two MLA sublayers per layer, identity experts)."""

from __future__ import annotations

from dataclasses import replace

from moeplan.errors import SpecError
from moeplan.model.spec import ArchSpec, AttentionSpec, IndexerSpec, LinearAttentionSpec, MlaSpec, MlpSpec, MoeSpec
from moeplan.sources.config_fields import Config, common_fields, shared_expert_moe


def mla_attention(c: Config, q_lora_default: int | None = 1536) -> AttentionSpec:
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
            q_lora_rank=c.opt_int("q_lora_rank") if "q_lora_rank" in c.data else q_lora_default,
            kv_lora_rank=c.integer("kv_lora_rank"),
            qk_nope_head_dim=nope,
            qk_rope_head_dim=rope,
            v_head_dim=c.integer("v_head_dim"),
        ),
    )


def deepseek(c: Config, *, v3: bool) -> ArchSpec:
    common = common_fields(c)
    first_dense = c.integer("first_k_dense_replace", 3 if v3 else 0, positive=False)
    dense = tuple(range(min(first_dense, common["num_layers"])))
    n_shared = c.integer("n_shared_experts", 1 if v3 else 2, positive=False)
    moe_width = c.integer("moe_intermediate_size")
    mlp_bias = False if v3 else c.flag("mlp_bias", False)
    return ArchSpec(
        **common,
        attention=mla_attention(c),
        mlp=MlpSpec(intermediate_size=c.integer("intermediate_size"), bias=mlp_bias) if dense else None,
        moe=shared_expert_moe(
            experts=c.integer("n_routed_experts", 256 if v3 else 64),
            top_k=c.integer("num_experts_per_tok"),
            width=moe_width,
            n_shared=n_shared,
            dense=dense,
            correction=v3,
            shared_bias=mlp_bias,
        ),
        mtp_layers=c.integer("num_nextn_predict_layers", 1 if v3 else 0, positive=False),
    )


def _indexer(c: Config, heads: int) -> IndexerSpec:
    """DeepSeek Sparse Attention's indexer; a per-layer pattern of shared indexers is refused, not guessed."""
    types = c.str_list("indexer_types")
    freq = c.data.get("index_topk_freq")
    if (types and any(t != "full" for t in types)) or (isinstance(freq, int) and freq > 1):
        raise SpecError(
            f"{c.where}: layers that reuse another layer's top-k (indexer_types / index_topk_freq) are not "
            "expressible yet",
            "describe the model in a YAML spec with an indexer in every layer, or use a model without them",
        )
    return IndexerSpec(
        num_heads=c.integer("index_n_heads", heads),
        head_dim=c.integer("index_head_dim", 128),
        topk=c.integer("index_topk", 2048),
    )


def _dense_first(c: Config, default: int, num_layers: int) -> tuple[int, ...]:
    """Dense layers from ``mlp_layer_types`` ("dense"/"sparse"), else the first ``first_k_dense_replace``."""
    types = c.str_list("mlp_layer_types")
    if types:
        return tuple(i for i, t in enumerate(types[:num_layers]) if t == "dense")
    first = c.integer("first_k_dense_replace", default, positive=False)
    return tuple(range(min(first, num_layers)))


def deepseek_dsa(c: Config, *, glm: bool) -> ArchSpec:
    """DeepSeek-V3.2 and GLM-5: MLA with DeepSeek Sparse Attention's indexer in every layer, the DeepSeek-V3
    MoE (shared expert, score-correction buffer), dense first layers, MTP modules."""
    common = common_fields(c)
    dense = _dense_first(c, 3, common["num_layers"])
    n_shared = c.integer("n_shared_experts", 1, positive=False)
    moe_width = c.integer("moe_intermediate_size", 2048)
    mla = mla_attention(c, q_lora_default=2048 if glm else 1536)
    return ArchSpec(
        **common,
        attention=replace(mla, indexer=_indexer(c, 32 if glm else 64)),
        mlp=MlpSpec(intermediate_size=c.integer("intermediate_size")) if dense else None,
        moe=shared_expert_moe(
            experts=c.integer("n_routed_experts", 256),
            top_k=c.integer("num_experts_per_tok", 8),
            width=moe_width,
            n_shared=n_shared,
            dense=dense,
        ),
        mtp_layers=c.integer("num_nextn_predict_layers", 1, positive=False),
    )


def kimi_linear(c: Config) -> ArchSpec:
    """Kimi-Linear: Kimi Delta Attention in most layers and MLA (no query bottleneck) in the layers
    ``linear_attn_config.full_attn_layers`` lists (1-based); the DeepSeek-V3 MoE after ``first_k_dense_replace``
    dense layers.  vLLM keeps KDA's recurrent state in fp32 always."""
    common = {**common_fields(c), "tie_embeddings": False}  # transformers 5.23.0 builds the head regardless
    if common["max_context"] is None:  # Moonshot's key, which transformers maps to max_position_embeddings
        common["max_context"] = c.opt_int("model_max_length")
    n = common["num_layers"]
    la = c.sub("linear_attn_config")
    types = c.str_list("layer_types")
    if types:
        full = {i for i, t in enumerate(types[:n]) if t == "full_attention"}
    elif "linear_attn_config" in c.data:
        full = {i - 1 for i in la.int_list("full_attn_layers") or []}
    else:
        full = {i for i in range(n) if i and i % 4 == 0}
    heads = la.integer("num_heads", c.integer("linear_num_heads", 32))
    head_dim = la.integer("head_dim", c.integer("linear_head_dim", 128))
    mla = mla_attention(c, q_lora_default=None)
    dense = _dense_first(c, 1, n)
    n_shared = c.integer("num_shared_experts", c.integer("n_shared_experts", 1, positive=False), positive=False)
    width = c.integer("moe_intermediate_size", 1024)
    return ArchSpec(
        **common,
        attention=replace(mla, layer_pattern="".join("F" if i in full else "L" for i in range(n))),
        linear_attention=LinearAttentionSpec.kda(
            heads, head_dim, la.integer("short_conv_kernel_size", c.integer("linear_conv_kernel_dim", 4))
        ),
        mlp=MlpSpec(intermediate_size=c.integer("intermediate_size", 9216)) if dense else None,
        moe=shared_expert_moe(
            experts=c.integer("num_experts", c.integer("num_local_experts", 256)),
            top_k=c.integer("num_experts_per_token", c.integer("num_experts_per_tok", 8)),
            width=width,
            n_shared=n_shared,
            dense=dense,
        ),
        mtp_layers=c.integer("num_nextn_predict_layers", 0, positive=False),
    )


def longcat_flash(c: Config) -> ArchSpec:
    """LongCat-Flash: each of ``num_layers`` layers runs MLA, a dense MLP, MLA, a dense MLP, and beside them one
    shortcut-connected MoE block whose router also picks among ``zero_expert_num`` identity experts.

    Written as ``2 x num_layers`` sublayers of one mixer each: even ones MLA + the MoE block with the first dense
    MLP as its residual MLP, odd ones MLA + the second dense MLP (two norms each, four per layer, as the
    checkpoint has).  The MLA latent scaling (``mla_scale_q_lora``) has no parameters.  LongCat-Flash-Chat:
    560,664,958,976 parameters, 8 of 12 picks real on average (12 x 512 / 768).
    """
    if c.opt_int("num_layers") is not None:
        num_layers = c.layers("num_layers")
    else:
        sublayers = c.layers("num_hidden_layers")
        if sublayers % 2:
            why = f"must be even (two sublayers per layer), not {sublayers}"
            raise SpecError(f"{c.where}: field 'num_hidden_layers' {why}")
        num_layers = sublayers // 2
    zero_type = c.data.get("zero_expert_type", "identity")
    if zero_type != "identity":
        raise SpecError(f"{c.where}: zero_expert_type {zero_type!r} is not supported (only identity experts)")
    dense = MlpSpec(intermediate_size=c.integer("ffn_hidden_size", 12288))
    heads = c.integer("num_attention_heads")
    if c.opt_int("num_key_value_heads") not in (None, heads):
        raise SpecError(f"{c.where}: field 'num_key_value_heads' must equal num_attention_heads (MLA)")
    return ArchSpec(
        vocab_size=c.integer("vocab_size"),
        hidden_size=c.integer("hidden_size"),
        num_layers=2 * num_layers,
        tie_embeddings=c.flag("tie_word_embeddings", False),
        max_context=c.opt_int("max_position_embeddings"),
        attention=mla_attention(c),
        mlp=dense,
        moe=MoeSpec(
            num_experts=c.integer("n_routed_experts", 512),
            top_k=c.integer("moe_topk", 12),
            expert_intermediate_size=c.integer("expert_ffn_hidden_size", 2048),
            zero_experts=c.integer("zero_expert_num", 0, positive=False),
            router_bias=c.flag("router_bias", False),
            router_correction_bias=True,
            residual_mlp=dense,
        ),
        ffn_pattern="ED",
    )
