"""ModelSpec: what moeplan knows about a model's architecture, and where each figure comes from.

Each spec is a frozen record (:mod:`moeplan.records`): a dataclass whose limits pydantic checks when it is
read from a file, refusing unknown keys, so a misspelled key in a YAML file fails with the file and the
field named.  One :class:`ArchSpec` describes the language model's shapes; the
surrounding :class:`ModelSpec` carries the identity (id, aliases, Hub id), the checkpoint's native weight
format and the published figures with their sources.

Conventions (all counts are elements, never bytes):

* ``head_dim`` is the per-head width of queries and keys (MHA/GQA); values use ``v_head_dim`` when it
  differs.  MLA has its own ranks in :class:`MlaSpec`.
* ``shared_intermediate_size`` is the *total* width of the shared-expert block (DeepSeek builds its
  ``n_shared_experts`` shared experts as one MLP of ``n_shared x moe_intermediate_size``).
* ``dense_layers`` lists the decoder layers (0-based) whose feed-forward is the dense MLP instead of the
  MoE block; every other layer is an MoE layer.
* ``layer_pattern`` is repeated cyclically over the layers and names each layer's token mixer: ``F`` full
  attention, ``S`` sliding window of ``window_tokens``, ``C`` chunked attention in chunks of ``window_tokens``,
  ``L`` linear attention (:class:`LinearAttentionSpec`), ``M`` a state-space mixer (:class:`SsmSpec`), ``X`` no
  mixer (a feed-forward-only block).
* ``ffn_pattern`` (optional, cyclic) names each layer's feed-forward block: ``E`` the MoE block, ``D`` the
  dense MLP, ``X`` none (a mixer-only block); without it, ``moe.dense_layers`` decides.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal, get_args

from moeplan.records import Record
from moeplan.units import TOKENS

ParamKind = Literal[
    "attention",
    "routed_experts",
    "shared_experts",
    "dense_mlp",
    "router",
    "embedding",
    "lm_head",
    "norm",
    "other",
]
PARAM_KINDS: tuple[ParamKind, ...] = get_args(ParamKind)


# Upper bounds far beyond any real model (the largest today: hidden 16k, 128 layers, 384 experts, 256k vocab),
# so that a corrupt or hostile file is refused instead of making moeplan loop for hours.
DIM = 1 << 20
COUNT = 1 << 16
LAYERS = 4096
VOCAB = 1 << 24


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class MlaSpec(Record):
    """Multi-head latent attention (DeepSeek-V2/V3, Kimi K2).

    Queries go through a low-rank bottleneck of ``q_lora_rank`` (or a plain projection when it is
    None); keys and values are compressed to a latent of ``kv_lora_rank`` plus a shared rotary key of
    ``qk_rope_head_dim``, which is all the KV cache keeps: ``kv_lora_rank + qk_rope_head_dim`` elements
    per token per layer (DeepSeek-V3: 512 + 64 = 576).
    """

    q_lora_rank: int | None = field(default=None, metadata={"gt": 0, "le": DIM})
    kv_lora_rank: int = field(metadata={"gt": 0, "le": DIM})
    qk_nope_head_dim: int = field(metadata={"gt": 0, "le": DIM})
    qk_rope_head_dim: int = field(metadata={"gt": 0, "le": DIM})
    v_head_dim: int = field(metadata={"gt": 0, "le": DIM})


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class IndexerSpec(Record):
    """DeepSeek Sparse Attention's lightning indexer (DeepSeek-V3.2, GLM-5): ``num_heads`` query heads of
    ``head_dim`` against one key of ``head_dim`` per token, which the indexer caches beside the MLA latent; each
    query then attends to the ``topk`` tokens it scores highest (2,048), not the whole context."""

    num_heads: int = field(metadata={"gt": 0, "le": COUNT})
    head_dim: int = field(metadata={"gt": 0, "le": DIM})
    topk: int = field(metadata={"gt": 0, "le": TOKENS})


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class AttentionSpec(Record):
    """Self-attention of one decoder layer: MHA, GQA and MQA (``kind: gqa``) or MLA."""

    kind: Literal["gqa", "mla"] = "gqa"
    num_heads: int = field(metadata={"gt": 0, "le": COUNT})
    num_kv_heads: int = field(metadata={"gt": 0, "le": COUNT})
    head_dim: int = field(
        metadata={"gt": 0, "le": DIM, "description": "query/key width per head (for MLA: nope + rope)"}
    )
    v_head_dim: int | None = field(
        default=None, metadata={"gt": 0, "le": DIM, "description": "value width per head if not head_dim"}
    )
    qkv_bias: bool = field(
        default=False, metadata={"description": "biases on the q, k, v projections (MLA: q_a, kv_a)"}
    )
    o_bias: bool = False
    qk_norm: Literal["none", "per_head", "full"] = field(
        default="none",
        metadata={"description": "RMSNorm on queries and keys: per_head (width head_dim, Qwen3/GLM) or full (OLMoE)"},
    )
    sinks: bool = field(default=False, metadata={"description": "one learned attention-sink logit per head (gpt-oss)"})
    mla: MlaSpec | None = None
    window_tokens: int | None = field(
        default=None, metadata={"gt": 0, "le": TOKENS, "description": "sliding window or chunk, tokens"}
    )
    layer_pattern: str = field(default="F", metadata={"pattern": r"^[FSCLMX]+$", "max_length": LAYERS})
    indexer: IndexerSpec | None = field(
        default=None, metadata={"description": "DeepSeek Sparse Attention's indexer (MLA layers only)"}
    )
    gated_output: bool = field(
        default=False,
        metadata={"description": "a sigmoid gate on the output from a second query-width projection (Qwen3-Next)"},
    )
    q_lora_rank: int | None = field(
        default=None,
        metadata={
            "gt": 0,
            "le": DIM,
            "description": "a low-rank query for GQA/MQA: h -> rank, RMSNorm, rank -> heads x head_dim (Step3's MFA)",
        },
    )

    def __post_init__(self) -> None:
        if self.q_lora_rank is not None and self.mla is not None:
            raise ValueError("attention.q_lora_rank is for GQA/MQA; MLA gives its own in attention.mla")
        if self.kind == "mla" and self.mla is None:
            raise ValueError("attention.kind 'mla' needs the 'mla' ranks")
        if self.kind == "gqa" and self.mla is not None:
            raise ValueError("attention.mla is given but attention.kind is not 'mla'")
        if self.num_kv_heads > 0 and self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
        if self.indexer is not None and self.mla is None:
            raise ValueError("attention.indexer (DeepSeek Sparse Attention) needs MLA")
        if any(c in self.layer_pattern for c in "SC") and self.window_tokens is None:
            raise ValueError("a layer_pattern with sliding (S) or chunked (C) layers needs window_tokens")

    @property
    def value_dim(self) -> int:
        """Width of one value head."""
        if self.mla is not None:
            return self.mla.v_head_dim
        return self.v_head_dim or self.head_dim

    def layer_kind(self, layer: int) -> Literal["F", "S", "C", "L", "M", "X"]:
        """The mixer letter of decoder layer ``layer`` (0-based): ``F``, ``S``, ``C``, ``L``, ``M`` or ``X``."""
        kind = self.layer_pattern[layer % len(self.layer_pattern)]
        assert kind in ("F", "S", "C", "L", "M", "X")
        return kind  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class LinearAttentionSpec(Record):
    """Linear attention whose per-sequence state does not grow with the context: Gated DeltaNet (Qwen3-Next,
    Qwen3.5).  Queries and keys have ``num_key_heads`` heads of ``key_head_dim``, values ``num_value_heads`` of
    ``value_head_dim``; a causal depthwise convolution of ``conv_kernel`` taps runs over q, k and v.

    State per sequence and layer: the convolution's last ``conv_kernel - 1`` inputs, ``(K - 1) x (2 n_k d_k +
    n_v d_v)``, and the recurrent state, ``n_v x d_k x d_v``.  Qwen3-Next-80B-A3B: 3 x 8,192 + 32 x 128 x 128 =
    548,864 elements.
    """

    kind: Literal["gated_deltanet", "kda"] = "gated_deltanet"
    """``gated_deltanet`` (Qwen3-Next, Qwen3.5) or ``kda``, Kimi Delta Attention (Kimi-Linear: per-channel gates,
    separate q, k and v projections and convolutions; key and value heads equal)."""
    num_key_heads: int = field(metadata={"gt": 0, "le": COUNT})
    num_value_heads: int = field(metadata={"gt": 0, "le": COUNT})
    key_head_dim: int = field(metadata={"gt": 0, "le": DIM})
    value_head_dim: int = field(metadata={"gt": 0, "le": DIM})
    conv_kernel: int = field(default=4, metadata={"gt": 0, "le": 64})
    state_dtype: Literal["fp32", "bf16", "fp16"] | None = field(
        default=None,
        metadata={"description": "the recurrent state's dtype the checkpoint declares (mamba_ssm_dtype), if any"},
    )

    @classmethod
    def kda(cls, heads: int, head_dim: int, conv_kernel: int) -> LinearAttentionSpec:
        """Kimi Delta Attention: ``heads`` key and value heads of one width, its recurrent state in fp32 by design
        (vLLM's ``kda_state_dtype``)."""
        return cls(kind="kda", num_key_heads=heads, num_value_heads=heads, key_head_dim=head_dim,
                   value_head_dim=head_dim, conv_kernel=conv_kernel, state_dtype="fp32")  # fmt: skip

    def __post_init__(self) -> None:
        if self.num_value_heads % self.num_key_heads:
            raise ValueError("linear_attention.num_value_heads must be a multiple of num_key_heads")
        if self.kind == "kda" and (
            self.num_key_heads != self.num_value_heads or self.key_head_dim != self.value_head_dim
        ):
            raise ValueError("Kimi Delta Attention has as many key as value heads, of one width")


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class MlpSpec(Record):
    """A dense feed-forward block: gated (gate, up, down: 3 matrices) or plain (up, down: 2)."""

    intermediate_size: int = field(metadata={"gt": 0, "le": DIM})
    gated: bool = True
    bias: bool = False


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class MoeSpec(Record):
    """The mixture-of-experts feed-forward block and where it sits."""

    num_experts: int = field(metadata={"gt": 0, "le": COUNT, "description": "routed experts per MoE layer"})
    top_k: int = field(metadata={"gt": 0, "le": COUNT, "description": "routed experts each token is sent to"})
    expert_intermediate_size: int = field(metadata={"gt": 0, "le": DIM})
    gated: bool = True
    expert_bias: bool = False
    router_bias: bool = field(default=False, metadata={"description": "a learned bias in the router linear (gpt-oss)"})
    router_correction_bias: bool = field(
        default=False,
        metadata={
            "description": "DeepSeek-V3 style score-correction bias: a buffer in the checkpoint, not a parameter"
        },
    )
    num_shared_experts: int = field(default=0, metadata={"ge": 0, "le": COUNT})
    shared_intermediate_size: int | None = field(
        default=None, metadata={"gt": 0, "le": DIM, "description": "total width of the shared-expert block"}
    )
    shared_bias: bool = field(
        default=False, metadata={"description": "biases in the shared-expert MLP (DeepSeek-V2 mlp_bias)"}
    )
    shared_expert_gate: bool = field(
        default=False, metadata={"description": "sigmoid gate on the shared expert (Qwen2-MoE)"}
    )
    dense_layers: tuple[int, ...] = field(
        default=(),
        metadata={"description": "0-based layers whose feed-forward is the dense MLP instead of the MoE block"},
    )
    residual_mlp: MlpSpec | None = field(
        default=None,
        metadata={"description": "a dense MLP run beside the experts in every MoE layer (Snowflake Arctic)"},
    )
    zero_experts: int = field(
        default=0,
        metadata={
            "ge": 0,
            "le": COUNT,
            "description": "identity experts the router may also pick: no weights, no compute (LongCat-Flash)",
        },
    )

    def __post_init__(self) -> None:
        if self.top_k > self.num_experts + self.zero_experts:
            extra = f" + zero_experts ({self.zero_experts})" if self.zero_experts else ""
            raise ValueError(f"top_k ({self.top_k}) exceeds num_experts ({self.num_experts}){extra}")
        if (self.num_shared_experts > 0) != (self.shared_intermediate_size is not None):
            raise ValueError("num_shared_experts and shared_intermediate_size go together")
        if self.shared_expert_gate and not self.num_shared_experts:
            raise ValueError("shared_expert_gate without shared experts")
        if list(self.dense_layers) != sorted(set(self.dense_layers)):
            raise ValueError("dense_layers must be sorted and unique")

    @property
    def router_width(self) -> int:
        """Candidates the router scores: real experts plus identity experts (LongCat-Flash: 512 + 256 = 768)."""
        return self.num_experts + self.zero_experts

    @property
    def expected_picks(self) -> float:
        """Real experts one token reaches on average: ``k x E / (E + Z)`` with uniform routing over the
        ``E + Z`` candidates, else ``k``.  LongCat-Flash: 12 x 512 / 768 = 8."""
        return self.top_k * self.num_experts / self.router_width

    @property
    def pick_range(self) -> tuple[int, int]:
        """Fewest and most real experts one token can reach: ``(max(0, k - Z), min(k, E))``; LongCat-Flash (0, 12)."""
        return max(0, self.top_k - self.zero_experts), min(self.top_k, self.num_experts)


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class ArchSpec(Record):
    """The language model's shapes: everything the parameter, memory and FLOP counts need."""

    vocab_size: int = field(metadata={"gt": 0, "le": VOCAB})
    hidden_size: int = field(metadata={"gt": 0, "le": DIM})
    num_layers: int = field(metadata={"gt": 0, "le": LAYERS})
    tie_embeddings: bool = False
    lm_head_bias: bool = False
    norm: Literal["rms", "layer"] = "rms"
    norm_bias: bool = False
    norms_per_layer: int = field(
        default=2, metadata={"ge": 0, "le": 16, "description": "hidden-size norms in each decoder layer"}
    )
    attention: AttentionSpec
    mlp: MlpSpec | None = field(
        default=None, metadata={"description": "dense feed-forward (dense models, dense layers)"}
    )
    moe: MoeSpec | None = None
    linear_attention: LinearAttentionSpec | None = field(
        default=None, metadata={"description": "the linear-attention mixer of the L layers of attention.layer_pattern"}
    )
    ssm: SsmSpec | None = field(
        default=None, metadata={"description": "the state-space mixer of the M layers of attention.layer_pattern"}
    )
    ffn_pattern: str | None = field(
        default=None,
        metadata={
            "pattern": r"^[EDX]+$",
            "max_length": LAYERS,
            "description": "feed-forward per layer, cyclic: E MoE, D dense MLP, X none (default: moe.dense_layers)",
        },
    )
    mtp_layers: int = field(
        default=0, metadata={"ge": 0, "le": 64, "description": "multi-token-prediction layers (outside the total)"}
    )
    max_context: int | None = field(
        default=None, metadata={"gt": 0, "le": TOKENS, "description": "max_position_embeddings, tokens"}
    )

    def __post_init__(self) -> None:
        if self.moe is None and self.mlp is None:
            raise ValueError("a model needs 'mlp' (dense) or 'moe' (or both)")
        if "L" in self.attention.layer_pattern and self.linear_attention is None:
            raise ValueError("attention.layer_pattern has linear-attention (L) layers but no 'linear_attention'")
        if "M" in self.attention.layer_pattern and self.ssm is None:
            raise ValueError("attention.layer_pattern has state-space (M) layers but no 'ssm'")
        if self.ffn_pattern is not None:
            if "E" in self.ffn_pattern and self.moe is None:
                raise ValueError("ffn_pattern has MoE (E) layers but there is no 'moe'")
            if "D" in self.ffn_pattern and self.mlp is None:
                raise ValueError("ffn_pattern has dense (D) layers but there is no 'mlp'")
            if self.moe is not None and self.moe.dense_layers:
                raise ValueError("give ffn_pattern or moe.dense_layers, not both")
        if self.moe is not None:
            if self.moe.dense_layers and self.mlp is None:
                raise ValueError("moe.dense_layers needs the dense 'mlp' they use")
            bad = [i for i in self.moe.dense_layers if i >= self.num_layers]
            if bad:
                raise ValueError(f"moe.dense_layers {bad} are beyond num_layers ({self.num_layers})")
            if len(self.moe.dense_layers) >= self.num_layers:
                raise ValueError("moe.dense_layers leave no MoE layer; describe a dense model with 'mlp' alone")

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    def ffn_kind(self, layer: int) -> Literal["E", "D", "X"]:
        """The feed-forward block of decoder layer ``layer`` (0-based): ``E`` MoE, ``D`` dense MLP, ``X`` none."""
        if self.ffn_pattern is not None:
            kind = self.ffn_pattern[layer % len(self.ffn_pattern)]
            assert kind in ("E", "D", "X")
            return kind  # type: ignore[return-value]
        return "E" if self.moe is not None and layer not in self.moe.dense_layers else "D"

    def is_moe_layer(self, layer: int) -> bool:
        """Whether decoder layer ``layer`` (0-based) has the MoE block."""
        return self.ffn_kind(layer) == "E"

    @property
    def num_moe_layers(self) -> int:
        return _moe_layers(self)


@functools.lru_cache(maxsize=256)
def _moe_layers(arch: ArchSpec) -> int:
    """Decoder layers with the MoE block (counted once per architecture: every speed step asks)."""
    if arch.moe is None:
        return 0
    return sum(1 for i in range(arch.num_layers) if arch.is_moe_layer(i))


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Published(Record):
    """What the model's authors state, with the source; publishers define "active" differently."""

    total_b: float = field(metadata={"gt": 0, "description": "published total parameters, billions"})
    active_b: float | None = field(
        default=None, metadata={"gt": 0, "description": "published active parameters, billions"}
    )
    excludes: tuple[ParamKind, ...] = field(
        default=(), metadata={"description": "kinds the publisher leaves out of its active figure (e.g. embedding)"}
    )
    total_includes_vision: bool = field(
        default=False, metadata={"description": "the published total counts the vision tower"}
    )
    tolerance_pct: float = field(default=1.0, metadata={"gt": 0, "le": 10})
    source: str = field(metadata={"min_length": 8})
    note: str | None = None

    def __post_init__(self) -> None:
        if self.tolerance_pct > 1.0 and not self.note:
            raise ValueError("a tolerance above 1% needs a note explaining the difference")


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class CheckpointInfo(Record):
    """The figures of a real checkpoint (safetensors headers or a GGUF file)."""

    source: str
    files: int
    total_bytes: int
    bytes_by_kind: dict[str, int]
    params_by_kind: dict[str, int]
    dtypes: dict[str, int]
    """Elements stored in each dtype (as the file labels them)."""
    native_format: str | None = None
    tensor_count: int = 0
    notes: tuple[str, ...] = ()

    @property
    def language_params(self) -> int:
        return sum(v for k, v in self.params_by_kind.items() if k not in ("mtp", "vision"))


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class SsmSpec(Record):
    """A state-space (Mamba) mixer, whose per-sequence state does not grow with the context.

    ``mamba2`` (Nemotron-H, Granite 4.0-H): ``num_heads`` heads of ``head_dim`` (``d_inner`` in all), B and C in
    ``n_groups`` groups of ``d_state``; ``mamba1`` (Jamba): ``d_inner`` channels, a ``dt_rank`` projection.
    State per sequence and layer: the convolution's last ``d_conv - 1`` inputs (Mamba2: ``d_inner + 2 n_groups
    d_state`` channels; Mamba1: ``d_inner``) and the SSM state, ``d_inner x d_state``.  Nemotron 3 Nano:
    3 x 6,144 + 64 x 64 x 128 = 542,720 elements.
    """

    kind: Literal["mamba2", "mamba1"] = "mamba2"
    d_inner: int = field(metadata={"gt": 0, "le": DIM})
    d_state: int = field(metadata={"gt": 0, "le": DIM})
    d_conv: int = field(default=4, metadata={"gt": 0, "le": 64})
    num_heads: int | None = field(default=None, metadata={"gt": 0, "le": COUNT, "description": "Mamba2 heads"})
    n_groups: int = field(default=1, metadata={"ge": 1, "le": COUNT, "description": "Mamba2 groups of B and C"})
    dt_rank: int | None = field(default=None, metadata={"gt": 0, "le": DIM, "description": "Mamba1 dt rank"})
    conv_bias: bool = True
    proj_bias: bool = False
    inner_norms: bool = field(default=False, metadata={"description": "Jamba's RMSNorms on dt, B and C"})
    chunk_size: int = field(default=256, metadata={"gt": 0, "le": 1 << 16, "description": "chunked scan, tokens"})
    state_dtype: Literal["fp32", "bf16", "fp16"] | None = field(
        default=None, metadata={"description": "the SSM state's dtype the checkpoint declares, if any"}
    )

    def __post_init__(self) -> None:
        if self.kind == "mamba2" and (self.num_heads is None or self.d_inner % self.num_heads):
            raise ValueError("a mamba2 ssm needs num_heads dividing d_inner")
        if self.kind == "mamba1" and self.dt_rank is None:
            raise ValueError("a mamba1 ssm needs dt_rank")


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class AliasContext(Record):
    """A release sold under an alias with its own trained context (Qwen3's -2507 updates: 262,144 tokens)."""

    alias: str
    max_context: int = field(metadata={"gt": 0, "le": TOKENS})
    source: str = field(metadata={"min_length": 8})


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class AliasCheckpoint(Record):
    """A release an alias names that is a checkpoint of its own with the id's shapes (DeepSeek-R1 beside
    DeepSeek-V3): its Hugging Face repository, which launch lines name, and its name for headings (default: the
    repository's)."""

    alias: str
    hf_id: str = field(metadata={"pattern": r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$"})
    name: str | None = None


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class PublishedLayout(Record):
    """How a publisher's checkpoint of the model in one format stores it, where the format's toolchain default
    (every linear class) is not what ships: the tensor roles it keeps in the float dtype, with the checkpoint and
    the source that says so."""

    format: str
    hf_id: str = field(metadata={"pattern": r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$"})
    kept_roles: tuple[str, ...] = field(
        metadata={"description": "tensor roles (attn_q_b, ...) stored in the float dtype inside quantized classes"}
    )
    source: str


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class MtpAcceptance(Record):
    """How the model's MTP drafts are accepted, as published: the first draft's acceptance, and the factor on it for
    each draft beyond the trained MTP depth, where the last MTP layer runs again on its own output (GLM-4.5's falls
    to ~0.13 at the second draft, GLM-5's stays near 0.85).  ``--mtp-accept`` overrides the rate."""

    rate: float = field(metadata={"ge": 0, "lt": 1, "description": "the first draft's acceptance"})
    reuse_decay: float = field(
        metadata={"gt": 0, "le": 1, "description": "factor on the acceptance per pass of a reused MTP layer"}
    )
    source: str = field(metadata={"min_length": 8})


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class ModelSpec(Record):
    """One model: identity, shapes, native format and sources."""

    id: str = field(metadata={"pattern": r"^[a-z0-9][a-z0-9.\-]*$"})
    name: str
    aliases: tuple[str, ...] = ()
    alias_contexts: tuple[AliasContext, ...] = field(
        default=(), metadata={"description": "aliases whose release has another trained context than the id's"}
    )
    alias_checkpoints: tuple[AliasCheckpoint, ...] = field(
        default=(), metadata={"description": "aliases that name a checkpoint of their own, with its repository"}
    )
    hf_id: str | None = None
    remote_code: bool = field(
        default=False,
        metadata={
            "description": "its Hub config names code of its own (auto_map): engines load it with --trust-remote-code"
        },
    )
    published_layouts: tuple[PublishedLayout, ...] = field(
        default=(), metadata={"description": "formats a publisher ships the model in, where not every linear is"}
    )
    architecture: str = field(metadata={"description": "Hugging Face model_type, or the family name"})
    weights_dtype: str = field(
        default="bf16", metadata={"description": "dtype of the unquantized tensors in the checkpoint"}
    )
    native_quant: str | None = field(
        default=None, metadata={"description": "the checkpoint's own weight format when not plain weights_dtype"}
    )
    unread_quant: str | None = field(
        default=None,
        metadata={"description": "a quantization_config method moeplan does not read (the weights then need --quant)"},
    )
    arch: ArchSpec
    vision_params: int | None = field(
        default=None, metadata={"ge": 0, "description": "vision tower, outside the total"}
    )
    published: Published | None = None
    mtp_acceptance: MtpAcceptance | None = field(
        default=None, metadata={"description": "published acceptance of the MTP drafts (None: DeepSeek-V3's)"}
    )
    sources: tuple[str, ...] = field(default=(), metadata={"description": "where the shapes come from"})
    notes: str | None = None
    origin: str = field(default="catalogue", metadata={"description": "catalogue, config.json path, Hub id, ..."})
    checkpoint: CheckpointInfo | None = field(
        default=None,
        metadata={"description": "the real tensors, when the model was read from a checkpoint or GGUF file"},
    )
    release: str | None = field(
        default=None,
        metadata={"description": "the alias a lookup named where it is a release of its own (deepseek-r1)"},
    )

    @property
    def shown_id(self) -> str:
        """The id outputs name the model by: the release asked for (``deepseek-r1``), else the catalogue id."""
        return self.release or self.id
