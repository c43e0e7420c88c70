"""Results: the typed figures of evaluated deployments (an estimate, an offload plan, a comparison, a
recommendation), and their JSON (the public contract, docs/interface.md).

Every rendering (rich tables, Markdown, CSV, ``--json``) reads these objects; nothing here computes a figure.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from moeplan.deploy.deployment import GPU_COUNTS, EstimateRequest
from moeplan.records import Value, to_dict

if TYPE_CHECKING:
    from moeplan.deploy.offload import Host, Placement
    from moeplan.formats.quality import Quality
    from moeplan.hardware.gpus import GpuSpec
    from moeplan.model.params import ParamCounts
    from moeplan.model.spec import ModelSpec


def _json(result: Any, optional: tuple[str, ...]) -> dict[str, Any]:
    """``result``'s fields as JSON values, leaving out the ``optional`` ones that are None."""
    return {k: v for k, v in asdict(result).items() if not (k in optional and v is None)}


@dataclass(frozen=True, repr=False, eq=False)
class MemoryResult(Value):
    """Memory of the deployment (sums over GPUs) and of its largest GPU."""

    scheme: str
    kv_dtype: str
    engine: str
    weights_bytes: int
    weights_by_kind: dict[str, int]
    kv_bytes_per_token: int
    kv_cache_bytes: int
    activation_bytes: int
    overhead_bytes: int
    total_bytes: int
    per_gpu_bytes: int
    per_gpu_weights_bytes: int
    per_gpu_weights_by_kind: dict[str, int]
    per_gpu_kv_cache_bytes: int
    per_gpu_activation_bytes: int
    per_gpu_overhead_bytes: int
    usable_bytes_per_gpu: int | None
    formats_by_kind: dict[str, list[str]] = field(default_factory=dict)
    """The storage formats each tensor class uses (llama.cpp mixes use several)."""
    state_dtype: str = "fp32"
    conv_state_dtype: str = "fp32"
    state_bytes_per_sequence: int = 0
    """Recurrent state (linear-attention and SSM layers) of one sequence, the whole model; 0 for attention only."""
    state_bytes: int = 0
    """Recurrent state of ``batch`` sequences, the whole deployment."""
    per_gpu_state_bytes: int = 0
    ram_bytes: int | None = None
    """Expert offload: system RAM the placement uses (None: nothing in RAM)."""
    weights_range_bytes: tuple[int, int] | None = None
    """A GGUF label without its file: the weights of the files published under it (low, high); None when the
    figure is exact (a checkpoint format, or the ``.gguf`` read)."""
    usable_ram_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return _json(self, ("ram_bytes", "usable_ram_bytes"))


@dataclass(frozen=True, repr=False, eq=False)
class FitResult(Value):
    """Whether and how the model fits the chosen GPUs."""

    gpu: str
    gpu_name: str
    fits: bool
    num_gpus: int
    min_gpus: int | None
    tp: int
    ep: int
    pp: int
    headroom_bytes: int
    max_context: int
    max_batch: int
    dp_attention: bool = False
    """Attention data-parallel over the TP group (:attr:`moeplan.deploy.deployment.Layout.dp_attention`)."""
    max_context_limit: str = "memory"
    """What stops ``max_context``: ``memory``, ``model`` (its trained context) or ``search``
    (:data:`CONTEXT_SEARCH_LIMIT`, for a model that states none)."""
    ram_headroom_bytes: int | None = None
    """Expert offload: RAM left over."""
    shortfall: tuple[str, ...] | None = None
    """Expert offload: what is short, by how much, when nothing fits."""

    def to_json(self) -> dict[str, Any]:
        return _json(self, ("ram_headroom_bytes", "shortfall"))

    @property
    def placement(self) -> str:
        """The GPUs it runs on: ``4 x h100-sxm``."""
        return f"{self.num_gpus} x {self.gpu}"

    @property
    def fewest(self) -> str:
        """``fewest that fit: 4``, or that none of the counts tried does."""
        if self.min_gpus:
            return f"fewest that fit: {self.min_gpus}"
        return f"does not fit on up to {max(GPU_COUNTS)} of them"


@dataclass(frozen=True, repr=False, eq=False)
class FlopsResult(Value):
    """FLOPs per token (see :mod:`moeplan.model.flops`)."""

    prefill_per_token: float
    decode_per_token: float
    decode_by_kind: dict[str, float]
    prefill_by_kind: dict[str, float]


@dataclass(frozen=True, repr=False, eq=False)
class BatchRow(Value):
    """Decode speed at one batch size (expected scenario)."""

    batch: int
    tokens_per_s: float
    throughput_tokens_per_s: float
    bound: str
    fits: bool


NO_SPEED_NOTE = "speed and cost not computed"
"""How the assumption starts that says why an estimate on a GPU carries no speed (a custom GPU lacking figures)."""


@dataclass(frozen=True, repr=False, eq=False)
class PerformanceResult(Value):
    """Speed of the deployment: the expected figure and a (low, high) band."""

    decode_tokens_per_s: float
    decode_tokens_per_s_range: tuple[float, float]
    throughput_tokens_per_s: float
    throughput_tokens_per_s_range: tuple[float, float]
    prefill_tokens_per_s: float
    prefill_tokens_per_s_range: tuple[float, float]
    time_to_first_token_s: float
    time_to_first_token_s_range: tuple[float, float]
    prompt_tokens: int
    bound: str
    bytes_read_per_step_per_gpu: float
    step_seconds: dict[str, float]
    distinct_experts_per_layer: float | None
    compute_dtype: str
    efficiency_source: str
    calibration: str | None
    by_batch: list[BatchRow]
    kernel_path: str = ""
    """The GEMM kernels the engine runs for these weights on this GPU (:mod:`moeplan.deploy.kernels`)."""
    backend: str | None = None
    """llama.cpp's GPU backend (None for other engines)."""
    loaded_prefill_tokens_per_s_per_gpu: float | None = None
    """Input tokens/s per GPU of the deployment kept busy prefilling ``prompt``-token prompts in full passes (a
    prefill instance under load: :meth:`~moeplan.deploy.speed.SpeedModel.loaded_prefill_s`); None for engines
    without continuous batching."""
    loaded_prefill_tokens_per_s_per_gpu_range: tuple[float, float] | None = None


@dataclass(frozen=True, repr=False, eq=False)
class CostResult(Value):
    """Money: per hour, per million tokens, to buy."""

    usd_per_hour: float | None
    usd_per_million_output_tokens: float | None
    usd_per_million_input_tokens: float | None
    purchase_usd: float | None
    energy_usd_per_hour: float | None
    price_source: str | None
    purchase_basis: str | None = None
    """What ``purchase_usd`` rests on: "street, YYYY-MM" (a dated street price) or "list, <dates>"."""


@dataclass(frozen=True, repr=False, eq=False)
class ServingPoint(Value):
    """Steady state of one deployment under one load."""

    concurrency: float
    """Requests in the system (running and waiting)."""
    decode_batch: float
    """Sequences decoding in an iteration."""
    max_running: int
    """Sequences that run at once: what the KV cache holds at the full context, or the engine's cap
    (``--max-running``) where lower."""
    tpot_s: float
    tpot_p90_s: float
    ttft_s: float
    ttft_p90_s: float
    e2e_s: float
    request_rate: float
    output_tokens_per_s: float
    output_tokens_per_s_per_gpu: float
    tokens_per_s_per_user: float
    prefill_share: float
    """``u``: the share of GPU time spent on prefill."""
    stable: bool = True
    kv_limited: bool = False
    """More clients than the KV cache holds (an engine cap alone does not set it)."""


UNSERVED = ("ttft_s", "ttft_p90_s", "e2e_s")
"""The waits of a load a deployment cannot keep up with: they grow without end, so the JSON gives ``null``."""


def point_json(p: ServingPoint) -> dict[str, Any]:
    """A serving point as the JSON contract has it: its fields, the waits ``null`` where it is not stable."""
    out = asdict(p)
    if not p.stable:
        out.update(dict.fromkeys(UNSERVED))
    return out


@dataclass(frozen=True, repr=False, eq=False)
class EstimateResult(Value):
    """One deployment's figures; ``to_json`` gives the public JSON contract."""

    spec: ModelSpec
    params: ParamCounts
    request: EstimateRequest
    memory: MemoryResult
    fit: FitResult | None = None
    flops: FlopsResult | None = None
    memory_by_context: list[tuple[int, int]] = field(default_factory=list)
    """(context, bytes on the largest GPU) at the request's batch, for contexts up to the model's maximum."""
    performance: PerformanceResult | None = None
    cost: CostResult | None = None
    assumptions: tuple[str, ...] = ()
    serving: ServingPoint | None = None
    """The steady state under the request's traffic, when one was given."""
    mtp_drafts: int = 0
    """Draft tokens a decode step verifies (0 without ``--mtp``; the deployment's ``draft_tokens``)."""
    mtp_accept: float | None = None
    """Acceptance of each draft (None without ``--mtp``)."""

    def performance_json(self) -> dict[str, Any] | None:
        return asdict(self.performance) if self.performance else None

    def to_json(self) -> dict[str, Any]:
        spec, p = self.spec, self.params
        breakdown: dict[str, int] = {k: v for k, v in p.breakdown.items()}
        if p.mtp:
            breakdown["mtp"] = p.mtp
        if p.vision:
            breakdown["vision"] = p.vision
        arch = spec.arch
        return {
            "model": {
                "id": spec.id,
                "name": spec.name,
                "architecture": spec.architecture,
                "hf_id": spec.hf_id,
                "origin": spec.origin,
                "moe": arch.moe is not None,
                "num_experts": arch.moe.num_experts if arch.moe else 0,
                "top_k": arch.moe.top_k if arch.moe else 0,
                "zero_experts": arch.moe.zero_experts if arch.moe else 0,
            },
            "params": {
                "total": p.total,
                "active": p.active,
                "active_share": p.active_share,
                "active_range": [p.active_min, p.active_max],
                "embedding": p.embedding,
                "lm_head": p.lm_head,
                "breakdown": breakdown,
                "active_breakdown": dict(p.active_breakdown),
                "outside_total": [k for k in ("mtp", "vision") if k in breakdown],
            },
            "request": {
                "context": self.request.context,
                "batch": self.request.batch,
                "engine": self.memory.engine,
                "quant": self.memory.scheme,
                "kv_dtype": self.memory.kv_dtype,
                "dp_attention": self.request.dp_attention,
                "batch_overlap": self.request.batch_overlap,
                "mtp_drafts": self.mtp_drafts,
                "mtp_accept": self.mtp_accept,
                "max_running": self.request.max_running,
                "kt_prefill_threshold": self.request.kt_prefill_threshold,
                "rtr": self.request.cpu_repack,
                "traffic": to_dict(self.request.traffic) if self.request.traffic is not None else None,
            },
            "memory": self.memory.to_json(),
            "fit": self.fit.to_json() if self.fit else None,
            "memory_by_context": [{"context": c, "per_gpu_bytes": b} for c, b in self.memory_by_context],
            "checkpoint": to_dict(spec.checkpoint) if spec.checkpoint else None,
            "flops": asdict(self.flops) if self.flops else None,
            "performance": self.performance_json(),
            "cost": asdict(self.cost) if self.cost else None,
            **(
                {"serving": {**point_json(self.serving), "usd_per_million_output_tokens": self.serving_usd_per_million}}
                if self.serving is not None
                else {"serving": None}  # a load on a deployment that does not fit (or has no speed): nothing served
                if self.request.traffic is not None
                else {}
            ),
            "assumptions": list(self.assumptions),
        }

    @property
    def serving_usd_per_million(self) -> float | None:
        """$ per million output tokens under the traffic: the deployment's hourly price over the output tokens the
        steady state produces in an hour (``cost`` is that of the request's own batch); None when unstable."""
        sv, cost = self.serving, self.cost
        if sv is None or cost is None or cost.usd_per_hour is None or not sv.stable or sv.output_tokens_per_s <= 0:
            return None
        return cost.usd_per_hour / (sv.output_tokens_per_s * 3600) * 1e6


@dataclass(frozen=True, repr=False, eq=False)
class OffloadPerformance(Value):
    """Speed of a placement with experts in RAM: the band, prefill and how the step splits."""

    decode_tokens_per_s: float
    decode_tokens_per_s_range: tuple[float, float]
    throughput_tokens_per_s: float
    throughput_tokens_per_s_range: tuple[float, float]
    prefill_tokens_per_s: float
    prefill_tokens_per_s_range: tuple[float, float]
    time_to_first_token_s: float
    time_to_first_token_s_range: tuple[float, float]
    prompt_tokens: int
    prefill_path: str
    kernel_path: str
    """The GPU's GEMM path (the estimate's), for the layers and experts in VRAM."""
    compute_dtype: str
    backend: str | None
    step_seconds: dict[str, float]


@dataclass(frozen=True, repr=False, eq=False)
class TradeoffRow(Value):
    """The best placement at one context."""

    context: int
    experts_on_cpu_layers: int
    fits: bool
    decode_tokens_per_s: float | None
    vram_bytes_per_gpu: int
    ram_bytes: int


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class OffloadAdvice(Value):
    """One change that makes an offload box fit: more RAM, or a smaller GGUF mix (or both)."""

    ram_gib: float
    quant: str
    text: str
    decode_tokens_per_s: float | None = None


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class OffloadResult(EstimateResult):
    """An estimate whose memory, fit, speed and cost are those of the chosen expert placement."""

    host: Host
    quant: str
    chosen: Placement
    tried: tuple[Placement, ...]
    tradeoff: tuple[TradeoffRow, ...]
    commands: dict[str, str]
    requested: str
    """``auto`` or the layer count asked for."""
    offload_performance: OffloadPerformance
    advice: tuple[OffloadAdvice, ...] = ()
    """When the box falls short: the RAM that would hold this format, and the best GGUF mix this RAM holds."""
    prefill_hint: str | None = None
    """What the user's prefill setting would change (:meth:`~moeplan.deploy.offload.OffloadModel.prefill_hint`);
    also among the assumptions."""

    @property
    def fits(self) -> bool:
        return self.chosen.fits

    def performance_json(self) -> dict[str, Any] | None:
        return asdict(self.offload_performance)

    def to_json(self) -> dict[str, Any]:
        p, host = self.chosen, self.host
        return {
            **super().to_json(),
            "placement": {
                "engine": self.memory.engine,
                "quant": self.quant,
                "requested": self.requested,
                "experts_on_cpu_layers": p.cpu_layers,
                "cpu_moe_layers": p.cpu_moe_layers,
                "gpu_weights_bytes": round(p.gpu_weights_bytes),
                "cpu_expert_bytes": round(p.cpu_expert_bytes),
                "vram_bytes_per_gpu": round(p.vram_bytes_per_gpu),
                "vram_capacity_bytes": round(p.vram_capacity_bytes),
                "ram_bytes": round(p.ram_bytes),
                "ram_capacity_bytes": round(p.ram_capacity_bytes),
                "fits": p.fits,
                "host": {
                    "cpu": host.cpu.id,
                    "ram_gib": host.ram_gib,
                    "ram_bandwidth_gb_s": host.cpu.bandwidth_gb_s,
                    "pcie": host.pcie,
                },
            },
            "tradeoff": [asdict(row) for row in self.tradeoff],
            "commands": self.commands,
            "advice": [asdict(a) for a in self.advice],
        }


Mark = str
"""``cheapest`` (lowest $ per million output tokens), ``fastest`` (highest decode tokens/s per sequence), or
``lower-quality`` (a format with a larger typical quality cost ranked above one with a smaller cost)."""


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Headline(Value):
    """What a sweep ranks a deployment by: fit, memory of the largest GPU, the decode band, cost."""

    fits: bool
    per_gpu_bytes: float
    usable_bytes: float
    tokens_per_s: float
    """Decode tokens/s per sequence, expected."""
    tokens_per_s_range: tuple[float, float]
    throughput_tokens_per_s: float
    usd_per_hour: float | None
    usd_per_million_output_tokens: float | None
    purchase_usd: float | None


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Candidate(Headline):
    """One configuration of ``recommend`` that fits: its hardware and format, its headline, the plan's marks."""

    gpu: GpuSpec
    num_gpus: int
    quant: str
    engine: str
    tp: int
    pp: int
    ram_gib: float | None = None
    """Hybrid boxes: system RAM holding the experts of ``experts_on_cpu_layers`` layers."""
    host: str | None = None
    experts_on_cpu_layers: int | None = None
    marks: tuple[Mark, ...] = ()
    serving: ServingPoint | None = None
    """With a traffic load: the steady state, whose speeds and cost the candidate then carries."""
    quality: Quality | None = None
    """The typical quality cost of the format (:mod:`moeplan.formats.quality`), None where no figure is stored."""
    expert_bits: float | None = None
    """Bits per weight of the routed experts (a dense model: its MLP and attention), scales included."""

    @classmethod
    def of(cls, headline: Headline, **where: Any) -> Candidate:
        """The candidate with ``headline``'s figures and the hardware, format and layout in ``where``."""
        return cls(**{f.name: getattr(headline, f.name) for f in fields(Headline)}, **where)

    @property
    def serves_load(self) -> bool:
        """Whether it serves its traffic load (always without one): it keeps up with the load, every client running
        at once (no queue for a slot of the KV cache's room or the engine's cap)."""
        p = self.serving
        return p is None or (p.stable and p.concurrency <= p.max_running)

    @property
    def purchase_basis(self) -> str | None:
        """What the purchase price rests on, as ``estimate`` gives it ("street, 2026-05"; GPU + RAM boxes add
        "+ RAM, CPU")."""
        price = self.gpu.buy_price if self.purchase_usd is not None else None
        if price is None:
            return None
        return price[1] + (" + RAM, CPU" if self.ram_gib else "")

    def to_json(self) -> dict[str, object]:
        return {
            "gpu": self.gpu.id,
            "gpu_name": self.gpu.name,
            "num_gpus": self.num_gpus,
            "quant": self.quant,
            "engine": self.engine,
            "fit": {
                "fits": True,
                "num_gpus": self.num_gpus,
                "tp": self.tp,
                "pp": self.pp,
                "per_gpu_bytes": round(self.per_gpu_bytes),
                "usable_bytes_per_gpu": round(self.usable_bytes),
            },
            "performance": {
                "decode_tokens_per_s": self.tokens_per_s,
                "decode_tokens_per_s_range": list(self.tokens_per_s_range),
                "throughput_tokens_per_s": self.throughput_tokens_per_s,
            },
            "cost": {
                "usd_per_hour": self.usd_per_hour,
                "usd_per_million_output_tokens": self.usd_per_million_output_tokens,
                "purchase_usd": self.purchase_usd,
                "purchase_basis": self.purchase_basis,
            },
            "quality": None
            if self.quality is None
            else {
                "label": self.quality.label,
                "note": self.quality.note,
                "source": self.quality.source,
                "expert_bits_per_weight": self.expert_bits,
                "ranked_above_better_quality": "lower-quality" in self.marks,
            },
            "hybrid": None
            if self.ram_gib is None
            else {"ram_gib": self.ram_gib, "host": self.host, "experts_on_cpu_layers": self.experts_on_cpu_layers},
            "marks": list(self.marks),
            **({"serving": point_json(self.serving)} if self.serving is not None else {}),
        }


Better = Literal["min", "max"] | None


@dataclass(frozen=True, repr=False, eq=False)
class Row(Value):
    """One figure across the columns; ``better`` says which way wins (None: no winner)."""

    label: str
    values: list[float | None]
    unit: str
    better: Better
    eligible: list[bool] | None = None
    """Columns that may win (a deployment that does not fit wins no speed or cost row)."""

    @property
    def winners(self) -> set[int]:
        """The best eligible columns; none for a tie of all, or when fewer than two columns have a value.

        A column that may win beats those that may not: the one deployment that fits wins its speed row.  Figures
        within :data:`TIE` of the best tie with it (1.0031 and 1.0029 bytes a parameter both read 1.003: a difference
        the table cannot show).
        """
        ok = self.eligible or [True] * len(self.values)
        present = sum(v is not None for v in self.values)
        known = [(v, i) for i, v in enumerate(self.values) if v is not None and ok[i]]
        if self.better is None or present < 2 or not known:
            return set()
        best = min(v for v, _ in known) if self.better == "min" else max(v for v, _ in known)
        tied = {i for v, i in known if math.isclose(v, best, rel_tol=TIE)}
        return set() if len(tied) == present else tied


TIE = 0.001
"""Relative difference under which two compared figures tie."""


@dataclass(frozen=True, repr=False, eq=False)
class Comparison(Value):
    """The columns' estimates and the rows compared across them, each row's winners decided."""

    results: list[EstimateResult]
    rows: list[Row]

    def wins(self, column: int) -> list[str]:
        """The rows column ``column`` wins."""
        return [row.label for row in self.rows if column in row.winners]

    def to_json(self) -> list[dict[str, Any]]:
        """One estimate object per column, with ``wins``: the rows it is best in."""
        return [{**r.to_json(), "wins": self.wins(i)} for i, r in enumerate(self.results)]
