"""``moeplan calibrate --full-step``: one decode step through a stack of whole decoder layers.

One MoE layer timed alone misses what a real step adds between layers: norms, attention over the KV cache,
the residual adds, and the launches and synchronisation of a few dozen small kernels.  This builds ``layers``
decoder layers of the model's shapes (default 4) with random weights, each

    RMSNorm -> q, k, v projections -> the new token's k and v written into a cache of ``context`` tokens ->
    ``scaled_dot_product_attention`` (grouped-query where kv heads < heads) -> output projection -> residual
    -> RMSNorm -> the synthetic MoE layer of :mod:`moeplan.calibration.run` -> residual

and times one decode step (one new token per sequence through every layer) at batch 1 and 8, repeated until
steady.  MLA models (DeepSeek-V3, Kimi K2) run in the absorbed decode form engines use: the low-rank query,
its no-rope part multiplied into the latent space per head (``W_UK``), attention over one cached latent of
``kv_lora_rank + qk_rope_head_dim`` per token (its first ``kv_lora_rank`` serving as values), the result
brought back per head (``W_UV``) and projected out: 187 M weights a layer for DeepSeek-V3, as in the model.

Per layer it reports the seconds, the bytes a step must read (attention and norm weights, the experts the
batch's tokens were routed to, router and shared experts, the KV cache) and the fixed cost the bytes do not
explain: ``overhead = max(0, seconds per layer - bytes per layer / bandwidth)``, the bandwidth being the
device's measured copy (on the CPU the host's RAM read where measured).  60 us measured for 50 MB at
2,000 GB/s (25 us) leaves 35 us per layer.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moeplan.calibration.device_memory import is_oom, too_big
from moeplan.calibration.run import (
    CalibrationError,
    Layer,
    LayerShape,
    _dtype,
    _sync,
    _torch,
    build_layer,
    moe_forward,
    time_until_steady,
)
from moeplan.errors import InputError
from moeplan.hardware.profiles import StepMeasurement, StepPoint
from moeplan.records import Value

DEFAULT_LAYERS = 4
DEFAULT_CONTEXT = 1024
BATCHES = (1, 8)
ELEM = {"fp32": 4, "bf16": 2, "fp16": 2}


@dataclass(frozen=True, repr=False, eq=False)
class MlaShape(Value):
    """Multi-head latent attention's ranks: query rank (0: a full-rank query), latent, no-rope and rope widths
    of a query head, and the value width of a head."""

    q_rank: int
    latent: int
    nope: int
    rope: int
    v_head: int


@dataclass(frozen=True, repr=False, eq=False)
class AttentionShape(Value):
    """Attention of one layer: query heads, kv heads, and the key and value widths per head as attention sees
    them (for MLA: one kv head of ``latent + rope`` keys and ``latent`` values, the ranks in ``mla``)."""

    heads: int
    kv_heads: int
    head_dim: int
    v_head_dim: int
    mla: MlaShape | None = None

    def __post_init__(self) -> None:
        if min(self.heads, self.kv_heads, self.head_dim, self.v_head_dim) < 1:
            raise InputError("attention heads and widths must be positive")
        if self.heads % self.kv_heads:
            raise InputError(f"{self.heads} attention heads are not a multiple of {self.kv_heads} kv heads")

    def weight_elements(self, hidden: int) -> int:
        """Projection weights of one layer.

        GQA: ``h (H d + K (d + dv)) + H dv h`` (Qwen3-30B-A3B: 2048 x (32 x 128 + 4 x 256) + 32 x 128 x 2048 =
        18.9 M).  MLA: ``h r_q + r_q H (n + p) + h (l + p) + H n l + H l v + H v h`` (DeepSeek-V3: 11.0 + 37.7 +
        4.1 + 8.4 + 8.4 + 117.4 = 187.1 M).
        """
        h, m = hidden, self.mla
        if m is None:
            kv = self.kv_heads * (self.head_dim + self.v_head_dim)
            return h * (self.heads * self.head_dim + kv) + self.heads * self.v_head_dim * h
        q = (h * m.q_rank if m.q_rank else 0) + (m.q_rank or h) * self.heads * (m.nope + m.rope)
        absorbed = self.heads * m.latent * (m.nope + m.v_head)
        return q + h * (m.latent + m.rope) + absorbed + self.heads * m.v_head * h

    def kv_elements_per_token(self) -> int:
        """Cached elements per token and layer: ``K (d + dv)`` (4 kv heads of 128 and 128: 1,024); MLA's one
        latent ``l + p`` (512 + 64 = 576)."""
        if self.mla is not None:
            return self.mla.latent + self.mla.rope
        return self.kv_heads * (self.head_dim + self.v_head_dim)

    def as_dict(self) -> dict[str, int]:
        out = {"heads": self.heads, "kv_heads": self.kv_heads, "head_dim": self.head_dim, "v_head_dim": self.v_head_dim}
        if self.mla is not None:
            m = self.mla
            out |= {"q_rank": m.q_rank, "latent": m.latent, "nope": m.nope, "rope": m.rope, "mla_v_head": m.v_head}
        return out


def attention_from_model(model: str) -> AttentionShape:
    """The attention of a MODEL argument (the spec :func:`moeplan.calibration.run.shape_from_model` reads)."""
    from moeplan.sources.catalog import resolve_model

    a = resolve_model(model).arch.attention
    if a.mla is not None:
        m = a.mla
        mla = MlaShape(m.q_lora_rank or 0, m.kv_lora_rank, m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim)
        return AttentionShape(a.num_heads, 1, m.kv_lora_rank + m.qk_rope_head_dim, m.kv_lora_rank, mla)
    return AttentionShape(a.num_heads, a.num_kv_heads, a.head_dim, a.value_dim)


def attention_for_hidden(hidden: int) -> AttentionShape:
    """A plain multi-head attention for a layer given by its sizes: heads of 128 (64 under 1,024, the hidden size
    itself under 64), as many as fit the hidden size.  4,096: 32 heads of 128."""
    d = 128 if hidden >= 1024 else min(64, hidden)
    heads = max(1, hidden // d)
    return AttentionShape(heads, heads, d, d)


@dataclass
class DecoderLayer:
    """One decoder layer's tensors (torch), built by :func:`build_stack`.  For MLA ``wk`` is the latent's
    projection, ``k_cache`` the latent cache, ``wq_a`` the low-rank query (if any), ``w_uk`` and ``w_uv`` the
    absorbed per-head matrices, and ``wv``, ``v_cache`` are None."""

    norm1: Any
    wq: Any
    wk: Any
    wo: Any
    norm2: Any
    k_cache: Any
    moe: Layer
    wv: Any = None
    v_cache: Any = None
    wq_a: Any = None
    w_uk: Any = None
    w_uv: Any = None


def stack_bytes(shape: LayerShape, attn: AttentionShape, layers: int, context: int, batch: int, dtype: str) -> int:
    """Bytes the stack's weights and KV caches take: the layers x (MoE + attention + norms + cache)."""
    per = shape.weight_elements() + attn.weight_elements(shape.hidden) + 2 * shape.hidden
    per += batch * context * attn.kv_elements_per_token()
    return layers * per * ELEM[dtype]


def build_stack(
    shape: LayerShape, attn: AttentionShape, layers: int, context: int, batch: int, dtype: str, device: str
) -> list[DecoderLayer]:
    """``layers`` decoder layers of random weights (scaled by fan-in) and caches for ``batch`` x ``context``."""
    torch = _torch()
    dt_ = _dtype(torch, dtype)
    gen = torch.Generator(device="cpu").manual_seed(5)
    h, heads = shape.hidden, attn.heads

    def rand(*dims: int, fan_in: int) -> Any:
        return (torch.randn(*dims, generator=gen) / math.sqrt(fan_in)).to(device=device, dtype=dt_)

    out = []
    for i in range(layers):
        norms = (torch.ones(h, device=device, dtype=dt_), torch.ones(h, device=device, dtype=dt_))
        moe = build_layer(shape, dtype, device, seed=10 + i)
        m = attn.mla
        if m is None:
            layer = DecoderLayer(
                norm1=norms[0],
                wq=rand(h, heads * attn.head_dim, fan_in=h),
                wk=rand(h, attn.kv_heads * attn.head_dim, fan_in=h),
                wo=rand(heads * attn.v_head_dim, h, fan_in=heads * attn.v_head_dim),
                norm2=norms[1],
                k_cache=rand(batch, attn.kv_heads, context, attn.head_dim, fan_in=1),
                moe=moe,
                wv=rand(h, attn.kv_heads * attn.v_head_dim, fan_in=h),
                v_cache=rand(batch, attn.kv_heads, context, attn.v_head_dim, fan_in=1),
            )
        else:
            q_in = m.q_rank or h
            layer = DecoderLayer(
                norm1=norms[0],
                wq=rand(q_in, heads * (m.nope + m.rope), fan_in=q_in),
                wk=rand(h, m.latent + m.rope, fan_in=h),
                wo=rand(heads * m.v_head, h, fan_in=heads * m.v_head),
                norm2=norms[1],
                k_cache=rand(batch, 1, context, m.latent + m.rope, fan_in=1),
                moe=moe,
                wq_a=rand(h, m.q_rank, fan_in=h) if m.q_rank else None,
                w_uk=rand(heads, m.nope, m.latent, fan_in=m.nope),
                w_uv=rand(heads, m.latent, m.v_head, fan_in=m.latent),
            )
        out.append(layer)
    return out


def _attention(torch: Any, hn: Any, layer: DecoderLayer, attn: AttentionShape) -> Any:
    """The attention block's output [batch, hidden] for the normed new tokens ``hn``, their k and v cached."""
    f = torch.nn.functional
    b, heads, m = hn.shape[0], attn.heads, attn.mla
    if m is None:
        q = (hn @ layer.wq).view(b, heads, 1, attn.head_dim)
        keys, values = layer.k_cache[:b], layer.v_cache[:b]
        keys[:, :, -1:].copy_((hn @ layer.wk).view(b, attn.kv_heads, 1, attn.head_dim))
        values[:, :, -1:].copy_((hn @ layer.wv).view(b, attn.kv_heads, 1, attn.v_head_dim))
        o = f.scaled_dot_product_attention(q, keys, values, enable_gqa=heads != attn.kv_heads)
        return o.reshape(b, heads * attn.v_head_dim) @ layer.wo
    q = ((hn @ layer.wq_a) if layer.wq_a is not None else hn) @ layer.wq
    q = q.view(b, heads, m.nope + m.rope).transpose(0, 1)  # [heads, b, nope + rope]
    q_latent = torch.bmm(q[..., : m.nope], layer.w_uk)  # [heads, b, latent]
    q = torch.cat([q_latent, q[..., m.nope :]], dim=-1).transpose(0, 1).unsqueeze(2)
    latent = layer.k_cache[:b]
    latent[:, :, -1:].copy_((hn @ layer.wk).view(b, 1, 1, m.latent + m.rope))
    o = f.scaled_dot_product_attention(q, latent, latent[..., : m.latent], enable_gqa=True)  # [b, heads, 1, l]
    o = torch.bmm(o.view(b, heads, m.latent).transpose(0, 1), layer.w_uv)  # [heads, b, v_head]
    return o.transpose(0, 1).reshape(b, heads * m.v_head) @ layer.wo


def decode_step(
    x: Any, stack: list[DecoderLayer], attn: AttentionShape, grouped: bool, count: bool = False
) -> tuple[Any, int]:
    """One new token per sequence (``x`` [batch, hidden]) through every layer; returns (x, experts used summed
    over the layers, or 0 without ``count``)."""
    torch = _torch()
    rms_norm = torch.nn.functional.rms_norm
    h = x.shape[1]
    used = 0
    for layer in stack:
        x = x + _attention(torch, rms_norm(x, (h,), weight=layer.norm1), layer, attn)
        y, n = moe_forward(rms_norm(x, (h,), weight=layer.norm2), layer.moe, grouped, count_used=count)
        x = x + y
        used += n
    return x, used


def measure_step(
    shape: LayerShape,
    attn: AttentionShape,
    bandwidth_gb_s: float,
    bandwidth_source: str = "copy",
    layers: int = DEFAULT_LAYERS,
    context: int = DEFAULT_CONTEXT,
    batches: tuple[int, ...] = BATCHES,
    dtype: str = "fp32",
    device: str = "cpu",
    quick: bool = False,
    available_bytes: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[StepMeasurement, list[str]]:
    """Time one decode step of the stack at each batch; bytes and the fixed cost per layer beside each."""
    from moeplan.calibration.run import _grouped_ok

    if layers < 1 or context < 1 or not batches or min(batches) < 1:
        raise InputError("--layers, --context and the batches of --full-step must be positive")
    batches = tuple(sorted(set(batches)))
    if bandwidth_gb_s <= 0:
        raise InputError("the full step needs a positive measured bandwidth")
    torch = _torch()
    tick = progress or (lambda _msg: None)
    need = stack_bytes(shape, attn, layers, context, max(batches), dtype)
    if too_big(need, available_bytes):
        assert available_bytes is not None
        raise CalibrationError(
            f"--full-step: {layers} layers with a {context:,}-token cache need {need / 2**30:,.1f} GiB, "
            f"{available_bytes / 2**30:,.1f} GiB is free",
            "use fewer --layers, a shorter --context or a smaller model",
        )
    try:
        stack = build_stack(shape, attn, layers, context, max(batches), dtype, device)
    except Exception as e:
        if is_oom(e):
            raise CalibrationError(
                f"--full-step: {layers} layers do not fit on the device", "use fewer --layers or a shorter --context"
            ) from None
        raise
    grouped = _grouped_ok(torch, device, _dtype(torch, dtype))
    warmup, repeats = (1, 3) if quick else (3, 10)
    max_repeats = repeats * (2 if quick else 5)
    elem = ELEM[dtype]
    gen = torch.Generator().manual_seed(6)
    points: list[StepPoint] = []
    notes: list[str] = []
    for batch in batches:
        x = torch.randn(batch, shape.hidden, generator=gen).to(device=device, dtype=_dtype(torch, dtype))
        _, used = decode_step(x, stack, attn, grouped, count=True)
        _sync(torch, device)
        samples, settled = time_until_steady(
            functools.partial(decode_step, x, stack, attn, grouped), device, warmup, repeats, max_repeats
        )
        med = statistics.median(samples)
        q1, _, q3 = statistics.quantiles(samples, n=4)
        per_layer = med / layers
        moe_bytes = shape.bytes_touched(batch, round(used / layers), elem)
        attn_bytes = (attn.weight_elements(shape.hidden) + 2 * shape.hidden) * elem
        kv_bytes = batch * context * attn.kv_elements_per_token() * elem
        nbytes = moe_bytes + attn_bytes + kv_bytes
        overhead = max(0.0, per_layer - nbytes / (bandwidth_gb_s * 1e9))
        points.append(
            StepPoint(
                batch=batch,
                seconds=med,
                seconds_spread=(q3 - q1) / 2,
                seconds_per_layer=per_layer,
                bytes_per_layer=nbytes,
                overhead_s_per_layer=overhead,
                runs=len(samples),
                steady=settled,
            )
        )
        if not settled:
            notes.append(
                f"full step at batch {batch}: timings still vary +-{(q3 - q1) / 2 / med:.0%} after {len(samples)} "
                "runs (a busy machine?); its figure is the median"
            )
        tick(f"full step, batch {batch}")
    del stack
    if device == "cuda":
        torch.cuda.empty_cache()
    step = StepMeasurement(
        layers=layers,
        context=context,
        attention=attn.as_dict(),
        bandwidth_gb_s=bandwidth_gb_s,
        bandwidth_source=bandwidth_source,
        points=points,
        overhead_s_per_layer=points[0].overhead_s_per_layer,
    )
    return step, notes
