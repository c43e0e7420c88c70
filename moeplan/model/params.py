"""Parameter accounting: ArchSpec -> counts by kind, total and active, as sums over the layer list's tensors.

Counts equal what the reference implementation builds (the ``transformers`` model classes on the meta
device); ``tests/test_reference_counts.py`` checks that for every supported architecture.

Formulas, with h = hidden_size, V = vocab_size, n_h / n_kv heads of width d (values d_v):

* GQA attention per layer: ``h*n_h*d + h*n_kv*d + h*n_kv*d_v + n_h*d_v*h`` (+ biases, + sinks n_h,
  + q/k norms).  Llama 3.1 8B: 4096*(4096+1024+1024) + 4096*4096 = 41,943,040.
* MLA attention per layer: ``h*r_q + r_q*n_h*(d_nope+d_rope) + h*(r_kv+d_rope) + r_kv*n_h*(d_nope+d_v)
  + n_h*d_v*h`` (+ the r_q and r_kv norms).  DeepSeek-V3: 187,105,280.
* Gated MLP: ``3*h*I``; plain: ``2*h*I`` (+ biases 2I+h or I+h).
* Router: ``E*h`` (+E with a bias).  Norms: ``norms_per_layer*h`` per layer plus the final ``h``.
* Active = total - (E - k) * (one expert) * (MoE layers): the experts a token is not sent to.  With ``Z``
  identity experts (LongCat-Flash) a token reaches between ``max(0, k - Z)`` and ``min(k, E)`` real experts,
  ``k x E / (E + Z)`` on average: active is that average and ``active_min``/``active_max`` the range.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from moeplan.model.layers import FeedForward, Layer, Mixer, MoeBlock, layers, make_layer, model_tensors_outside_layers
from moeplan.model.spec import PARAM_KINDS, ArchSpec, ModelSpec, ParamKind
from moeplan.model.tensors import Tensor, mlp_tensors
from moeplan.records import Value


def _by_kind(tensors: Iterable[Tensor]) -> Counter[ParamKind]:
    c: Counter[ParamKind] = Counter()
    for t in tensors:
        c[t.kind] += t.elements
    return c


def layer_params(arch: ArchSpec, layer: int) -> Counter[ParamKind]:
    """Elements of decoder layer ``layer`` by kind (all experts counted): the sum of its tensors."""
    return Counter(_layer_params(make_layer(arch, layer), arch.hidden_size))


def _layer_params(layer: Layer, h: int) -> dict[ParamKind, int]:
    """By kind, cached per kind of layer (a layer's index changes its tensors' names, never their sizes)."""
    return _kind_params(replace(layer, index=0), h)


@functools.lru_cache(maxsize=1024)
def _kind_params(layer: Layer, h: int) -> dict[ParamKind, int]:
    return dict(_by_kind(layer.tensors(h)))


def expert_params(arch: ArchSpec) -> int:
    """Elements of one routed expert (an MLP of ``expert_intermediate_size``, biases if any)."""
    assert arch.moe is not None
    block = MoeBlock(arch.moe)
    return sum(t.elements for t in mlp_tensors("routed_experts", "", arch.hidden_size, block.expert, 0))


def mtp_params(arch: ArchSpec) -> int:
    """Elements of the multi-token-prediction modules, outside the total.

    Each is one more decoder layer plus ``eh_proj`` (``2h x h``) and three norms (``enorm``, ``hnorm``,
    the head's norm); the embedding and output head are shared with the main model.  DeepSeek-V3:
    11.6e9 (the technical report rounds it to 11.5B).
    """
    if arch.mtp_layers == 0:
        return 0
    h = arch.hidden_size
    one = sum(layer_params(arch, arch.num_layers).values()) + 2 * h * h + 3 * h * (2 if arch.norm_bias else 1)
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
    active_min: int
    """Active with the fewest real experts a token can reach (equal to ``active`` without identity experts)."""
    active_max: int
    """Active with the most real experts a token can reach."""

    @property
    def active_share(self) -> float:
        return self.active / self.total


def count_params(spec: ModelSpec) -> ParamCounts:
    """Total, active and by-kind counts for ``spec``.

    Mixtral 8x7B: total 46,702,792,704; active 12,879,925,248 (2 of 8 experts in each of 32 layers).
    """
    arch = spec.arch
    total: Counter[ParamKind] = Counter()
    kinds: Counter[tuple[Mixer, FeedForward]] = Counter((layer.mixer, layer.ffn) for layer in layers(arch))
    first = {(layer.mixer, layer.ffn): layer for layer in layers(arch)}
    for key, n in kinds.items():
        for kind, count in _layer_params(first[key], arch.hidden_size).items():
            total[kind] += n * count
    total.update(_by_kind(t for t in model_tensors_outside_layers(arch)))

    active = Counter(total)
    per_expert = 0
    low = high = 0
    if arch.moe is not None:
        moe = arch.moe
        per_expert = expert_params(arch)
        per_pick = per_expert * arch.num_moe_layers
        active["routed_experts"] -= round((moe.num_experts - moe.expected_picks) * per_pick)
        fewest, most = moe.pick_range
        low = round((fewest - moe.expected_picks) * per_pick)
        high = round((most - moe.expected_picks) * per_pick)

    breakdown = {k: total[k] for k in PARAM_KINDS}
    active_breakdown = {k: active[k] for k in PARAM_KINDS}
    active_sum = sum(active_breakdown.values())
    return ParamCounts(
        total=sum(breakdown.values()),
        active=active_sum,
        active_min=active_sum + low,
        active_max=active_sum + high,
        embedding=breakdown["embedding"],
        lm_head=breakdown["lm_head"],
        breakdown=breakdown,
        active_breakdown=active_breakdown,
        per_expert=per_expert,
        num_moe_layers=arch.num_moe_layers,
        mtp=mtp_params(arch),
        vision=spec.vision_params,
    )
