"""FLOPs per token, prefill and decode, split by kind.

One multiply-add is 2 FLOPs; the attention terms are sums over the layer list (:mod:`moeplan.model.layers`).
For one token:

* **matmuls**: 2 x (the weight matrices the token passes through): attention projections, the top-k routed
  experts, shared experts, dense MLPs, the router and the output head.  The embedding is a lookup (0 FLOPs);
  norms, activations and softmax are a few FLOPs per element and left out (<0.1%).
* **attention scores**: for each layer, QK^T and AV against the ``L`` cached tokens it attends to:
  ``2 x n_heads x (d_qk + d_v) x L``.  ``L`` is the context for full layers, ``min(context, window)`` for
  sliding layers and the position inside the chunk (at most the chunk) for chunked layers.
* **MLA** (DeepSeek): decode runs the *absorbed* form, scoring against the compressed latent:
  ``2 x n_heads x (2 x kv_lora_rank + qk_rope_head_dim) x L`` (the up-projections fold into the query and
  output, costing what ``attn_kv_b`` costs once); prefill runs the *unabsorbed* form,
  ``2 x n_heads x (qk_nope + qk_rope + v_head) x L``, after expanding each token's latent once.

Decode at context ``c`` attends to ``c`` tokens; prefill of a ``P``-token prompt averages over positions
``1..P`` (``(P + 1) / 2`` for full causal layers).  Worked number: Llama-3.1-8B decode at 8,192 tokens is
2 x 7.50 G matmul + 2 x 32 x 32 x 256 x 8,192 = 15.0 + 4.3 GFLOPs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from moeplan.model.layers import Mode, mixer_counts, model_tensors
from moeplan.model.spec import ArchSpec
from moeplan.records import Value


@dataclass(frozen=True, repr=False, eq=False)
class Flops(Value):
    """FLOPs for one token, by kind."""

    by_kind: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.by_kind.values())

    @property
    def matmul(self) -> float:
        """Everything but the attention scores (the part weights-proportional kernels do)."""
        return self.total - self.by_kind.get("attention_scores", 0.0)


@functools.lru_cache(maxsize=256)
def _matmul_per_token(arch: ArchSpec) -> dict[str, float]:
    """2 x weights each token passes through, by kind (top-k of the routed experts)."""
    out: dict[str, float] = {}
    moe = arch.moe
    for t in model_tensors(arch):
        if not t.is_matrix or t.kind == "embedding":
            continue
        elements: float = t.elements
        if t.kind == "routed_experts" and moe is not None:
            elements = elements * moe.expected_picks / moe.num_experts
        out[t.kind] = out.get(t.kind, 0.0) + 2.0 * elements
    return out


def flops_per_token(arch: ArchSpec, context: int, mode: Mode = "decode") -> Flops:
    """FLOPs of one token: decode at ``context`` cached tokens, or the mean over a ``context``-token prompt."""
    if context < 1:
        raise ValueError("context must be at least 1")
    by_kind = dict(_matmul_per_token(arch))
    by_kind["attention_scores"] = sum(n * mixer.score_flops(context, mode) for mixer, n in mixer_counts(arch))
    return Flops(by_kind)


def prompt_flops(arch: ArchSpec, prompt: int) -> float:
    """FLOPs to prefill a whole ``prompt``-token sequence."""
    return flops_per_token(arch, prompt, "prefill").total * prompt
