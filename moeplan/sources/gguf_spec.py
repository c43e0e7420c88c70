"""A ModelSpec from a GGUF file: shapes from its metadata and tensor table, bytes from its tensors.

Keys read (``{arch}`` = ``general.architecture``): ``block_count``, ``embedding_length``,
``feed_forward_length``, ``attention.head_count``, ``attention.head_count_kv``, ``attention.key_length``,
``attention.value_length`` (or their ``_mla`` forms), ``attention.q_lora_rank``, ``attention.kv_lora_rank``,
``rope.dimension_count``, ``attention.sliding_window``, ``expert_count``, ``expert_used_count``,
``expert_shared_count``, ``expert_feed_forward_length``, ``leading_dense_block_count``,
``nextn_predict_layers``, ``context_length``; for Gated DeltaNet (``qwen3next``, ``qwen35moe``) and Mamba
hybrids (``jamba``, ``nemotron_h(_moe)``, ``granitehybrid``) ``ssm.*`` (and ``full_attention_interval``);
for DeepSeek Sparse Attention ``attention.indexer.*``.  Biases, q/k norms, sinks, gating, shared experts, router
terms, tied embeddings and which layers are dense are read from the tensors themselves (llama.cpp names:
``blk.N.attn_q.bias``, ``ffn_gate_exps``, ``ffn_up_shexp``, ``ffn_gate_inp``, ``exp_probs_b``...).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from moeplan.errors import SpecError
from moeplan.model.spec import (
    ArchSpec,
    AttentionSpec,
    IndexerSpec,
    LinearAttentionSpec,
    MlaSpec,
    MlpSpec,
    ModelSpec,
    MoeSpec,
    SsmSpec,
)
from moeplan.records import checked
from moeplan.sources.config_fields import slug
from moeplan.sources.gguf_file import FILE_TYPES, GgufTensor, read_model

_RECURRENT_ARCHS = frozenset(
    {
        "mamba",
        "mamba2",
        "falcon-h1",
        "lfm2",
        "lfm2moe",
        "plamo2",
        "rwkv6",
        "rwkv7",
        "arwkv7",
        "rwkv6qwen2",
    }
)
"""llama.cpp architectures with linear-attention or state-space layers (src/llama-arch.cpp) that moeplan does not
read from GGUF yet (their config.json is read)."""
_LINEAR_ATTENTION_ARCHS = frozenset({"qwen3next", "qwen35moe", "kimi-linear"})
"""llama.cpp architectures of linear attention (Gated DeltaNet; Kimi Delta Attention) beside full attention."""
_MAMBA_HYBRID_ARCHS = frozenset({"jamba", "nemotron_h", "nemotron_h_moe", "granitehybrid"})
"""llama.cpp architectures of Mamba layers beside attention (and MoE or MLP blocks), read here."""
_SINGLE_NORMS = ("attn_q_norm", "attn_k_norm", "attn_q_a_norm", "attn_kv_a_norm", "ssm_norm", "indexer")


def _int(meta: dict[str, Any], key: str, default: int | None = None, where: str = "") -> int:
    v = meta.get(key, default)
    if isinstance(v, list):  # per-layer arrays (head counts): the largest
        v = max((x for x in v if isinstance(x, int)), default=default)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        if default is None:
            raise SpecError(f"{where}: metadata {key} is missing or not a count")
        return default
    return v


def spec_from_gguf(path: Path) -> ModelSpec:
    """The spec of a GGUF file (or split set), with its exact tensor bytes attached."""
    meta, tensors, parts = read_model(path)
    where = str(path)
    arch_name = meta.get("general.architecture")
    if not isinstance(arch_name, str) or not arch_name:
        raise SpecError(f"{where}: no general.architecture in its metadata")
    by_name = {t.name: t for t in tensors}
    try:
        arch = checked(_arch(meta, by_name, arch_name, where), f"{where}: the metadata describes no valid model")
    except ValueError as e:  # a rule between fields, checked on construction
        raise SpecError(f"{where}: the metadata describes no valid model ({e})") from None
    ftype = meta.get("general.file_type")
    native = FILE_TYPES.get(ftype) if isinstance(ftype, int) else None
    infos = [_as_info(t) for t in tensors]
    from moeplan.sources.checkpoint import summarize
    from moeplan.sources.gguf_file import split_parts

    first = split_parts(path)[0].name
    info = summarize(infos, {}, arch.num_layers, f"{first} ({parts} part{'s' if parts > 1 else ''}, GGUF)")
    dtypes: dict[str, int] = {}
    for t in tensors:
        dtypes[t.type_name] = dtypes.get(t.type_name, 0) + _elements(t)
    info = replace(info, dtypes=dtypes, native_format=native)
    name = meta.get("general.name") if isinstance(meta.get("general.name"), str) else path.stem
    ident = slug(path.stem, "gguf")
    spec = ModelSpec(
        id=ident,
        name=str(name),
        architecture=f"gguf:{arch_name}",
        weights_dtype={"F16": "fp16", "F32": "fp32"}.get(str(native), "bf16"),
        native_quant=native,  # F16/BF16 files too: a GGUF file, its bytes and llama.cpp's kernels
        arch=arch,
        origin=where,
        checkpoint=info,
    )
    return checked(spec, where)


def _elements(t: GgufTensor) -> int:
    n = 1
    for d in t.shape:
        n *= d
    return n


def _as_info(t: GgufTensor) -> Any:
    from moeplan.sources.safetensors_headers import TensorInfo

    return TensorInfo(t.name, t.type_name, t.shape, t.nbytes, t.file)


def _arch(meta: dict[str, Any], by_name: dict[str, GgufTensor], a: str, where: str) -> ArchSpec:
    def key(k: str, default: int | None = None) -> int:
        return _int(meta, f"{a}.{k}", default, where)

    def count(k: str) -> int:
        """A count every model has at least one of (heads, width, experts used): zero is refused here."""
        v = key(k)
        if v <= 0:
            raise SpecError(f"{where}: metadata {a}.{k} is {v}; a model needs at least one")
        return v

    recurrent = sorted({k for k in meta if k.startswith((f"{a}.ssm.", f"{a}.wkv.", f"{a}.rwkv", f"{a}.shortconv"))})
    recurrent += sorted({n.split(".")[2] for n in by_name if n.startswith("blk.") and ".ssm_" in n})[:1]
    if (recurrent and a not in _LINEAR_ATTENTION_ARCHS | _MAMBA_HYBRID_ARCHS) or a in _RECURRENT_ARCHS:
        what = recurrent[0] if recurrent else f"architecture {a}"
        raise SpecError(
            f"{where}: {a} has layers with a recurrent state ({what}), which moeplan does not read from GGUF "
            "metadata yet; reading them as attention would misstate the KV cache",
            "use the model's config.json (or hf:ORG/NAME) instead",
        )
    blocks = key("block_count")
    nextn = key("nextn_predict_layers", 0)
    layers = blocks - nextn
    if not 0 < layers <= 4096:
        raise SpecError(f"{where}: {a}.block_count {blocks} (less {nextn} MTP layers) is not a plausible layer count")
    hidden = count("embedding_length")
    embd = by_name.get("token_embd.weight")
    if embd is None:
        raise SpecError(f"{where}: no token_embd.weight tensor")
    vocab = embd.shape[1] if len(embd.shape) > 1 else _int(meta, f"{a}.vocab_size", None, where)
    heads = count("attention.head_count")
    kv_heads = key("attention.head_count_kv", heads) or heads

    def has(name: str, layer: int = 0) -> bool:
        return f"blk.{layer}.{name}" in by_name

    def shape(name: str, layer: int = 0) -> tuple[int, ...] | None:
        t = by_name.get(f"blk.{layer}.{name}")
        return t.shape if t else None

    linear = None
    ssm = None
    ffn_pattern = None
    att_layer = 0  # the layer whose attention tensors tell biases, norms and sinks
    if a == "kimi-linear":
        linear, linear_pattern = _kimi_delta(meta, by_name, a, layers, heads, where)
        att_layer = linear_pattern.index("F") if "F" in linear_pattern else 0
    elif a in _LINEAR_ATTENTION_ARCHS:
        linear, linear_pattern = _gated_deltanet(meta, by_name, a, layers, where)
        att_layer = linear_pattern.index("F") if "F" in linear_pattern else 0
    elif a in _MAMBA_HYBRID_ARCHS:
        ssm, linear_pattern, ffn_pattern = _mamba(meta, by_name, a, layers, where)
        att_layer = linear_pattern.index("F") if "F" in linear_pattern else 0
    kv_lora = key("attention.kv_lora_rank", 0)
    mla = None
    indexer = None
    if kv_lora:
        rope = key("rope.dimension_count")
        k_len = key("attention.key_length_mla", 0) or key("attention.key_length")
        v_len = key("attention.value_length_mla", 0) or key("attention.value_length")
        mla = MlaSpec(
            q_lora_rank=key("attention.q_lora_rank", 0) or None,
            kv_lora_rank=kv_lora,
            qk_nope_head_dim=k_len - rope,
            qk_rope_head_dim=rope,
            v_head_dim=v_len,
        )
        head_dim, kv_heads = k_len, heads
        indexer = _indexer(meta, by_name, a, layers, where)
    else:
        head_dim = key("attention.key_length", 0) or hidden // heads
    value_len = key("attention.value_length", head_dim)
    qn = shape("attn_q_norm.weight", att_layer)
    qk_norm: Literal["none", "per_head", "full"] = "none"
    if qn is not None:
        qk_norm = "per_head" if qn[0] == head_dim else "full"
    window = key("attention.sliding_window", 0) or None
    pattern = "F"
    if window:
        pattern = "SF" if a == "gpt-oss" else "S"
    gated = False
    if linear is not None:
        pattern = linear_pattern
        q = shape("attn_q.weight", att_layer)
        gated = q is not None and q[1] == 2 * heads * head_dim  # the output gate rides in attn_q
    elif ssm is not None:
        pattern = linear_pattern
    attention = AttentionSpec(
        kind="mla" if mla else "gqa",
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        v_head_dim=None if mla or value_len == head_dim else value_len,
        qkv_bias=has("attn_q.bias", att_layer) or has("attn_q_a.bias", att_layer),
        o_bias=has("attn_output.bias", att_layer),
        qk_norm=qk_norm,
        sinks=has("attn_sinks.weight", att_layer),
        mla=mla,
        window_tokens=window,
        layer_pattern=pattern,
        gated_output=gated,
        indexer=indexer,
    )
    experts = key("expert_count", 0)
    moe = None
    dense_layers = tuple(i for i in range(layers) if not has("ffn_gate_inp.weight", i))
    if ffn_pattern is not None:  # hybrids: which layers are MoE, dense or neither comes from ffn_pattern
        dense_layers = tuple(i for i, k in enumerate(ffn_pattern) if k == "D")
    first_moe = next((i for i in range(layers) if has("ffn_gate_inp.weight", i)), None)
    if experts and first_moe is not None:
        up = shape("ffn_up_exps.weight", first_moe)
        width = key("expert_feed_forward_length", 0) or (up[1] if up else 0)
        shexp = shape("ffn_up_shexp.weight", first_moe)
        moe = MoeSpec(
            num_experts=experts,
            top_k=count("expert_used_count"),
            expert_intermediate_size=width,
            gated=has("ffn_gate_exps.weight", first_moe),
            expert_bias=has("ffn_up_exps.bias", first_moe),
            router_bias=has("ffn_gate_inp.bias", first_moe),
            router_correction_bias=has("exp_probs_b.bias", first_moe),
            num_shared_experts=key("expert_shared_count", 1) if shexp else 0,
            shared_intermediate_size=shexp[1] if shexp else None,
            shared_expert_gate=has("ffn_gate_inp_shexp.weight", first_moe),
            dense_layers=dense_layers if ffn_pattern is None else (),
        )
    mlp = None
    dense = dense_layers[0] if dense_layers else None
    if dense is not None:
        up = shape("ffn_up.weight", dense)
        mlp = MlpSpec(
            intermediate_size=up[1] if up else key("feed_forward_length"),
            gated=has("ffn_gate.weight", dense),
            bias=has("ffn_up.bias", dense),
        )
    # a layer with both a mixer and a feed-forward block tells the norms per layer (one-block layers have one)
    norm_layer = 0
    if ffn_pattern is not None:
        norm_layer = next((i for i, k in enumerate(ffn_pattern) if k != "X" and pattern[i] != "X"), 0)
    norms = sum(
        1
        for n in by_name
        if n.startswith(f"blk.{norm_layer}.")
        and n.endswith("_norm.weight")
        and n.split(".")[2] not in _SINGLE_NORMS
        and not n.split(".")[2].startswith("ssm_")
    )
    norm_bias = "blk.0.attn_norm.bias" in by_name
    return ArchSpec(
        vocab_size=vocab,
        hidden_size=hidden,
        num_layers=layers,
        tie_embeddings="output.weight" not in by_name,
        lm_head_bias="output.bias" in by_name,
        norm="layer" if norm_bias else "rms",
        norm_bias=norm_bias,
        norms_per_layer=norms,
        attention=attention,
        linear_attention=linear,
        ssm=ssm,
        ffn_pattern=ffn_pattern,
        mlp=mlp,
        moe=moe,
        mtp_layers=nextn,
        max_context=key("context_length", 0) or None,
    )


def _gated_deltanet(
    meta: dict[str, Any], by_name: dict[str, GgufTensor], a: str, layers: int, where: str
) -> tuple[LinearAttentionSpec, str]:
    """Qwen3-Next / Qwen3.5 GGUF: the Gated DeltaNet shapes and which layers are full attention.

    llama.cpp's converter writes ``ssm.group_count`` = key heads, ``ssm.time_step_rank`` = value heads,
    ``ssm.state_size`` = key head width, ``ssm.inner_size`` = value heads x value head width and
    ``ssm.conv_kernel``; a layer with ``attn_q`` is full attention, one with ``ssm_conv1d`` is Gated DeltaNet
    (the tensors decide, ``full_attention_interval`` must agree).  Qwen3-Next-80B-A3B: 16, 32, 128, 4096, 4.
    """

    def ssm(k: str) -> int:
        v = _int(meta, f"{a}.ssm.{k}", None, where)
        if v <= 0:
            raise SpecError(f"{where}: metadata {a}.ssm.{k} is {v}; Gated DeltaNet needs at least one")
        return v

    value_heads, inner = ssm("time_step_rank"), ssm("inner_size")
    if inner % value_heads:
        raise SpecError(f"{where}: {a}.ssm.inner_size {inner} is not a multiple of ssm.time_step_rank {value_heads}")
    letters = []
    for i in range(layers):
        attn, conv = f"blk.{i}.attn_q.weight" in by_name, f"blk.{i}.ssm_conv1d.weight" in by_name
        if attn == conv:
            raise SpecError(f"{where}: layer {i} has {'both' if attn else 'neither'} attn_q and ssm_conv1d")
        letters.append("F" if attn else "L")
    pattern = "".join(letters)
    interval = meta.get(f"{a}.full_attention_interval")
    if isinstance(interval, int) and interval > 0:
        expected = "".join("F" if (i + 1) % interval == 0 else "L" for i in range(layers))
        if expected != pattern:
            raise SpecError(f"{where}: its tensors place full attention unlike {a}.full_attention_interval {interval}")
    try:
        linear = LinearAttentionSpec(
            num_key_heads=ssm("group_count"),
            num_value_heads=value_heads,
            key_head_dim=ssm("state_size"),
            value_head_dim=inner // value_heads,
            conv_kernel=ssm("conv_kernel"),
        )
    except ValueError as e:
        raise SpecError(f"{where}: the ssm metadata describes no Gated DeltaNet ({e})") from None
    return linear, pattern


def _indexer(
    meta: dict[str, Any], by_name: dict[str, GgufTensor], a: str, layers: int, where: str
) -> IndexerSpec | None:
    """DeepSeek Sparse Attention (``deepseek32``, ``glm-dsa``): ``attention.indexer.{head_count,key_length,top_k}``
    and an ``indexer.*`` tensor set in every layer (a file whose layers differ is refused, not guessed)."""
    present = [f"blk.{i}.indexer.attn_k.weight" in by_name for i in range(layers)]
    keys = [f"{a}.attention.indexer.{k}" for k in ("head_count", "key_length", "top_k")]
    if not any(present) and not any(k in meta for k in keys):
        return None
    if not all(present):
        raise SpecError(
            f"{where}: only {sum(present)} of {layers} layers carry indexer tensors; layers that share another "
            "layer's top-k are not expressible yet",
            "use the model's config.json (or hf:ORG/NAME) instead",
        )
    try:
        return IndexerSpec(
            num_heads=_int(meta, keys[0], None, where),
            head_dim=_int(meta, keys[1], None, where),
            topk=_int(meta, keys[2], None, where),
        )
    except ValueError as e:
        raise SpecError(f"{where}: the indexer metadata describes no indexer ({e})") from None


def _mamba(
    meta: dict[str, Any], by_name: dict[str, GgufTensor], a: str, layers: int, where: str
) -> tuple[SsmSpec, str, str]:
    """Jamba, Nemotron-H and Granite 4.0-H GGUF: the Mamba shapes from ``ssm.*`` and each layer's blocks from its
    tensors: ``ssm_in`` a Mamba mixer (M), ``attn_q`` attention (F), neither none (X); ``ffn_gate_inp`` the MoE
    block (E), ``ffn_up`` a dense MLP (D), neither none (X, Nemotron-H's one-block layers).

    llama.cpp writes ``ssm.inner_size`` = d_inner, ``ssm.state_size`` = d_state, ``ssm.conv_kernel``,
    ``ssm.group_count`` = Mamba2 groups and ``ssm.time_step_rank`` = Mamba2 heads or Mamba1's dt rank; Mamba1
    carries ``ssm_x`` (Jamba), Mamba2 a 1-D ``ssm_d`` per head.  Nemotron 3 Nano: 4096, 128, 4, 8, 64.
    """

    def ssm(k: str, default: int | None = None) -> int:
        v = _int(meta, f"{a}.ssm.{k}", default, where)
        if v <= 0:
            raise SpecError(f"{where}: metadata {a}.ssm.{k} is {v}; a Mamba layer needs at least one")
        return v

    mixers, ffns = [], []
    for i in range(layers):
        has = [f"blk.{i}.{n}.weight" in by_name for n in ("ssm_in", "attn_q", "ffn_gate_inp", "ffn_up", "ffn_up_exps")]
        if has[0] and has[1]:
            raise SpecError(f"{where}: layer {i} has both a Mamba mixer and attention")
        mixers.append("M" if has[0] else "F" if has[1] else "X")
        ffns.append("E" if has[2] else "D" if has[3] else "X")
    mixer_pattern, ffn_pattern = "".join(mixers), "".join(ffns)
    first = mixer_pattern.find("M")
    if first < 0:
        raise SpecError(f"{where}: {a} declares Mamba layers but no layer has an ssm_in tensor")
    mamba1 = f"blk.{first}.ssm_x.weight" in by_name
    try:
        spec = SsmSpec(
            kind="mamba1" if mamba1 else "mamba2",
            d_inner=ssm("inner_size"),
            d_state=ssm("state_size"),
            d_conv=ssm("conv_kernel", 4),
            num_heads=None if mamba1 else ssm("time_step_rank"),
            n_groups=1 if mamba1 else ssm("group_count", 1),
            dt_rank=ssm("time_step_rank") if mamba1 else None,
            conv_bias=f"blk.{first}.ssm_conv1d.bias" in by_name,
            proj_bias=f"blk.{first}.ssm_in.bias" in by_name,
            inner_norms=f"blk.{first}.ssm_dt_norm.weight" in by_name,
        )
    except ValueError as e:
        raise SpecError(f"{where}: the ssm metadata describes no Mamba layer ({e})") from None
    return spec, mixer_pattern, ffn_pattern


def _kimi_delta(
    meta: dict[str, Any], by_name: dict[str, GgufTensor], a: str, layers: int, heads: int, where: str
) -> tuple[LinearAttentionSpec, str]:
    """Kimi-Linear GGUF: Kimi Delta Attention layers (with ``ssm_beta``; ``attention.head_count_kv`` 0) beside
    MLA layers; ``kda.head_dim`` and ``ssm.conv_kernel`` give the KDA shapes, ``ssm_beta`` its head count.
    Kimi-Linear-48B-A3B: 32 heads of 128, 4 taps, MLA in layers 3, 7, ..., 26."""
    letters = []
    for i in range(layers):
        kda = f"blk.{i}.ssm_beta.weight" in by_name
        mla = f"blk.{i}.attn_kv_a_mqa.weight" in by_name
        if kda == mla:
            raise SpecError(f"{where}: layer {i} has {'both' if kda else 'neither'} ssm_beta and attn_kv_a_mqa")
        letters.append("L" if kda else "F")
    d = _int(meta, f"{a}.kda.head_dim", None, where)
    conv = _int(meta, f"{a}.ssm.conv_kernel", 4, where)
    beta = by_name.get(f"blk.{letters.index('L')}.ssm_beta.weight") if "L" in letters else None
    n = beta.shape[1] if beta is not None and len(beta.shape) > 1 else heads  # ssm_beta: h -> one beta per head
    try:
        spec = LinearAttentionSpec.kda(n, d, conv)
    except ValueError as e:
        raise SpecError(f"{where}: the kda metadata describes no Kimi Delta Attention ({e})") from None
    return spec, "".join(letters)
