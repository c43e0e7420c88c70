"""``config.json`` adapters of families whose modeling code ships with the checkpoint (transformers 5.23.0 has
no class for them): Step3 (vLLM ``step3_text.py``) and Ling 2.0 (inclusionAI's ``modeling_bailing_moe_v2.py``).
Their counts are checked module by module against that code in ``tests/test_reference_counts.py``."""

from __future__ import annotations

from moeplan.errors import SpecError, UnsupportedArchitectureError
from moeplan.model.spec import ArchSpec, AttentionSpec, MlpSpec, MoeSpec
from moeplan.sources.config_fields import Config, dense_mlp, gqa_attention, shared_expert_moe


def step3_text(c: Config) -> ArchSpec:
    """Step3 (``step3_text``, the text model of ``step3_vl``): multi-matrix factorization attention, a low-rank
    query (``share_q_dim``, RMSNorm, then every head) beside ``num_attention_groups`` KV heads (one: MQA) of
    ``head_dim``; MoE in ``moe_layers_enum`` (a comma-separated string or a list) with one shared expert of
    ``share_expert_dim``, dense MLPs elsewhere.  Counted from vLLM ``step3_text.py`` (transformers has no
    class): Step3 316.3B, 38.9B active."""
    n = c.layers("num_hidden_layers")
    raw = c.data.get("moe_layers_enum")
    if raw is None:
        moe_layers = set(range(4, n - 1))  # vLLM's Step3TextConfig default: layers 4..59 of 61
    else:
        try:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            moe_layers = {int(x) for x in items}
        except (TypeError, ValueError):
            raise SpecError(f"{c.where}: field 'moe_layers_enum' must list layer numbers, not {raw!r}") from None
    if any(not 0 <= i < n for i in moe_layers):
        raise SpecError(f"{c.where}: field 'moe_layers_enum' names layers beyond num_hidden_layers ({n})")
    dense = tuple(i for i in range(n) if i not in moe_layers)
    shared = c.integer("share_expert_dim", 5120, positive=False)
    context = c.opt_int("max_position_embedding") or c.opt_int("max_position_embeddings")
    return ArchSpec(
        vocab_size=c.integer("vocab_size"),
        hidden_size=c.integer("hidden_size"),
        num_layers=n,
        tie_embeddings=c.flag("tie_word_embeddings", False),
        max_context=context,
        attention=AttentionSpec(
            kind="gqa",
            num_heads=c.integer("num_attention_heads"),
            num_kv_heads=c.integer("num_attention_groups", 1),
            head_dim=c.integer("head_dim", 256),
            q_lora_rank=c.integer("share_q_dim", 2048),
        ),
        mlp=MlpSpec(intermediate_size=c.integer("intermediate_size")) if dense else None,
        moe=MoeSpec(
            num_experts=c.integer("moe_num_experts", 48),
            top_k=c.integer("moe_top_k", 3),
            expert_intermediate_size=c.integer("moe_intermediate_size", 5120),
            num_shared_experts=1 if shared else 0,
            shared_intermediate_size=shared or None,
            dense_layers=dense,
        )
        if moe_layers
        else None,
    )


def bailing_moe_v2(c: Config) -> ArchSpec:
    """Ling 2.0 (``bailing_moe`` configs of ``BailingMoeV2ForCausalLM``, inclusionAI's modeling code): fused q/k/v
    with per-head q/k norms, dense first ``first_k_dense_replace`` layers, then MoE with
    ``num_shared_experts x moe_intermediate_size`` of shared expert; the last ``num_nextn_predict_layers`` of
    ``num_hidden_layers`` are MTP layers.  Ling-mini-2.0: 16.26B, 1.43B active."""
    names = c.data.get("architectures") or ["BailingMoeV2ForCausalLM"]
    if "BailingMoeV2ForCausalLM" not in names:
        raise UnsupportedArchitectureError(
            f"{c.where}: bailing_moe architecture {names} is not supported (only BailingMoeV2ForCausalLM, Ling 2.0)",
            "describe the model in a YAML spec instead",
        )
    total = c.layers("num_hidden_layers")
    nextn = c.integer("num_nextn_predict_layers", 0, positive=False)
    n = total - nextn
    if n < 1:
        raise SpecError(f"{c.where}: num_nextn_predict_layers ({nextn}) leaves no decoder layer of {total}")
    experts = c.opt_int("num_experts")
    first_dense = min(c.integer("first_k_dense_replace", 1, positive=False), n) if experts else n
    dense = tuple(range(first_dense))
    width = c.integer("moe_intermediate_size", 512)
    shared = c.opt_int("num_shared_experts") or 0
    return ArchSpec(
        vocab_size=c.integer("vocab_size"),
        hidden_size=c.integer("hidden_size"),
        num_layers=n,
        tie_embeddings=c.flag("tie_word_embeddings", False),
        max_context=c.opt_int("max_position_embeddings"),
        attention=gqa_attention(
            c,
            qkv_bias=c.flag("use_qkv_bias", False),
            o_bias=c.flag("use_bias", False),
            qk_norm="per_head" if c.flag("use_qk_norm", True) else "none",
        ),
        mlp=dense_mlp(c) if dense else None,
        moe=shared_expert_moe(
            experts=experts,
            top_k=c.integer("num_experts_per_tok"),
            width=width,
            n_shared=shared,
            dense=dense,
            correction=c.flag("moe_router_enable_expert_bias", True),
        )
        if experts
        else None,
        mtp_layers=nextn,
    )
