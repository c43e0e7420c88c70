"""Parameter accounting: ArchSpec -> counts by kind, total and active.

Counts equal what the reference implementation builds (the ``transformers`` model classes on the meta
device); ``tests/test_reference_counts.py`` checks that for every supported architecture.

Formulas, with h = hidden_size, V = vocab_size, n_h / n_kv heads of width d (values d_v):

* GQA attention per layer: ``h*n_h*d + h*n_kv*d + h*n_kv*d_v + n_h*d_v*h`` (+ biases, + sinks n_h,
  + q/k norms).  Llama 3.1 8B: 4096*(4096+1024+1024) + 4096*4096 = 41,943,040.
* MLA attention per layer: ``h*r_q + r_q*n_h*(d_nope+d_rope) + h*(r_kv+d_rope) + r_kv*n_h*(d_nope+d_v)
  + n_h*d_v*h`` (+ the r_q and r_kv norms).  DeepSeek-V3: 187,105,280.
* Gated MLP: ``3*h*I``; plain: ``2*h*I`` (+ biases 2I+h or I+h).
* Router: ``E*h`` (+E with a bias).  Norms: ``norms_per_layer*h`` per layer plus the final ``h``.
* Active = total - (E - k) * (one expert) * (MoE layers): the experts a token is not sent to.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from moeplan.model.spec import PARAM_KINDS, ArchSpec, MlpSpec, ModelSpec, ParamKind
from moeplan.records import Value


def mlp_params(hidden: int, mlp: MlpSpec) -> int:
    """Elements of one dense MLP: gated ``3*h*I (+2I+h)``, plain ``2*h*I (+I+h)``."""
    i = mlp.intermediate_size
    if mlp.gated:
        return 3 * hidden * i + ((2 * i + hidden) if mlp.bias else 0)
    return 2 * hidden * i + ((i + hidden) if mlp.bias else 0)


def expert_params(arch: ArchSpec) -> int:
    """Elements of one routed expert (an MLP of ``expert_intermediate_size``, biases if any)."""
    assert arch.moe is not None
    moe = arch.moe
    return mlp_params(
        arch.hidden_size, MlpSpec(intermediate_size=moe.expert_intermediate_size, gated=moe.gated, bias=moe.expert_bias)
    )


def shared_expert_params(arch: ArchSpec) -> int:
    """Elements of the shared-expert block of one MoE layer (and its gate, ``h`` elements)."""
    moe = arch.moe
    if moe is None or moe.shared_intermediate_size is None:
        return 0
    block = mlp_params(
        arch.hidden_size,
        MlpSpec(intermediate_size=moe.shared_intermediate_size, gated=moe.gated, bias=moe.shared_bias),
    )
    return block + (arch.hidden_size if moe.shared_expert_gate else 0)


def router_params(arch: ArchSpec) -> int:
    """Elements of one router: ``E*h`` (+``E`` with a bias)."""
    assert arch.moe is not None
    e = arch.moe.num_experts
    return e * arch.hidden_size + (e if arch.moe.router_bias else 0)


def attention_params(arch: ArchSpec) -> tuple[int, int]:
    """Elements of one layer's attention, as ``(projections and sinks, their norms)``."""
    att = arch.attention
    h = arch.hidden_size
    n_h = att.num_heads
    if att.mla is not None:
        m = att.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        bias = att.qkv_bias
        norms = m.kv_lora_rank
        if m.q_lora_rank is None:
            q = h * n_h * qk
        else:
            q = h * m.q_lora_rank + (m.q_lora_rank if bias else 0) + m.q_lora_rank * n_h * qk
            norms += m.q_lora_rank
        kv_a_out = m.kv_lora_rank + m.qk_rope_head_dim
        kv = h * kv_a_out + (kv_a_out if bias else 0) + m.kv_lora_rank * n_h * (m.qk_nope_head_dim + m.v_head_dim)
        o = n_h * m.v_head_dim * h + (h if att.o_bias else 0)
        proj = q + kv + o
    else:
        d, d_v, n_kv = att.head_dim, att.value_dim, att.num_kv_heads
        q_out, k_out, v_out = n_h * d, n_kv * d, n_kv * d_v
        proj = h * (q_out + k_out + v_out) + n_h * d_v * h
        if att.qkv_bias:
            proj += q_out + k_out + v_out
        if att.o_bias:
            proj += h
        if att.qk_norm == "per_head":
            norms = 2 * d
        elif att.qk_norm == "full":
            norms = q_out + k_out
        else:
            norms = 0
    if att.sinks:
        proj += n_h
    return proj, norms


def _hidden_norm(arch: ArchSpec) -> int:
    """Elements of one hidden-size norm: ``h``, or ``2h`` with a bias."""
    return arch.hidden_size * (2 if arch.norm_bias else 1)


def layer_params(arch: ArchSpec, layer: int) -> Counter[ParamKind]:
    """Elements of decoder layer ``layer`` by kind (all experts counted)."""
    c: Counter[ParamKind] = Counter()
    proj, qk_norms = attention_params(arch)
    c["attention"] += proj
    c["norm"] += qk_norms + arch.norms_per_layer * _hidden_norm(arch)
    if arch.is_moe_layer(layer):
        assert arch.moe is not None
        c["routed_experts"] += arch.moe.num_experts * expert_params(arch)
        c["router"] += router_params(arch)
        c["shared_experts"] += shared_expert_params(arch)
        if arch.moe.residual_mlp is not None:
            c["dense_mlp"] += mlp_params(arch.hidden_size, arch.moe.residual_mlp)
    else:
        assert arch.mlp is not None
        c["dense_mlp"] += mlp_params(arch.hidden_size, arch.mlp)
    return c


def mtp_params(arch: ArchSpec) -> int:
    """Elements of the multi-token-prediction modules, outside the total.

    Each is one more decoder layer plus ``eh_proj`` (``2h x h``) and three norms (``enorm``, ``hnorm``,
    the head's norm); the embedding and output head are shared with the main model.  DeepSeek-V3:
    11.6e9 (the technical report rounds it to 11.5B).
    """
    if arch.mtp_layers == 0:
        return 0
    h = arch.hidden_size
    one = sum(layer_params(arch, arch.num_layers).values()) + 2 * h * h + 3 * _hidden_norm(arch)
    return arch.mtp_layers * one


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class ParamCounts(Value):
    """Parameter counts of one model, in elements."""

    total: int
    active: int
    embedding: int
    lm_head: int
    breakdown: dict[ParamKind, int]
    active_breakdown: dict[ParamKind, int]
    per_expert: int
    num_moe_layers: int
    mtp: int
    vision: int | None

    @property
    def active_share(self) -> float:
        return self.active / self.total


def count_params(spec: ModelSpec) -> ParamCounts:
    """Total, active and by-kind counts for ``spec``.

    Mixtral 8x7B: total 46,702,792,704; active 12,879,925,248 (2 of 8 experts in each of 32 layers).
    """
    arch = spec.arch
    h, v = arch.hidden_size, arch.vocab_size
    total: Counter[ParamKind] = Counter()
    for layer in range(arch.num_layers):
        total.update(layer_params(arch, layer))
    total["embedding"] += v * h
    total["lm_head"] += 0 if arch.tie_embeddings else v * h + (v if arch.lm_head_bias else 0)
    total["norm"] += _hidden_norm(arch)

    active = Counter(total)
    per_expert = 0
    if arch.moe is not None:
        per_expert = expert_params(arch)
        idle = (arch.moe.num_experts - arch.moe.top_k) * per_expert * arch.num_moe_layers
        active["routed_experts"] -= idle

    breakdown = {k: total[k] for k in PARAM_KINDS}
    active_breakdown = {k: active[k] for k in PARAM_KINDS}
    return ParamCounts(
        total=sum(breakdown.values()),
        active=sum(active_breakdown.values()),
        embedding=breakdown["embedding"],
        lm_head=breakdown["lm_head"],
        breakdown=breakdown,
        active_breakdown=active_breakdown,
        per_expert=per_expert,
        num_moe_layers=arch.num_moe_layers,
        mtp=mtp_params(arch),
        vision=spec.vision_params,
    )
