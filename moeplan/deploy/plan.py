"""The one facade the commands call: a request in, a result out; no printing, no exits.

``estimate`` resolves the model, counts its parameters and assembles the result object that every
rendering (rich table, ``--json``) reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from moeplan.deploy.engines import GIB, EngineProfile, engine_profile
from moeplan.deploy.memory import MemoryModel, MemoryRequest, Parallel, default_parallel
from moeplan.errors import InputError
from moeplan.formats.schemes import Scheme, parse_scheme
from moeplan.model.kv import kv_bytes_per_token, kv_dtype
from moeplan.model.params import ParamCounts, count_params
from moeplan.model.spec import ArchSpec, ModelSpec
from moeplan.records import Value, to_dict
from moeplan.sources.catalog import resolve_model

if TYPE_CHECKING:
    from moeplan.hardware.gpus import GpuSpec

DEFAULT_CONTEXT = 8192
GPU_COUNTS = (1, 2, 4, 8, 16, 32, 64)
CONTEXT_SEARCH_LIMIT = 1 << 20
"""The longest context searched (and plotted) for a model that states no maximum, tokens."""


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class EstimateRequest(Value):
    """What the user asked for; every option of ``moeplan estimate``."""

    model: str
    gpu: str | None = None
    gpu_memory_gib: float | None = None
    gpu_bandwidth_gb_s: float | None = None
    gpu_tflops: float | None = None
    num_gpus: int | None = None
    tp: int | None = None
    ep: int | None = None
    pp: int | None = None
    quant: str | None = None
    kv_dtype: str = "auto"
    """KV cache format; ``auto``: the model's dtype (bf16), or f16 under llama.cpp."""
    context: int = DEFAULT_CONTEXT
    batch: int = 1
    engine: str = "auto"
    """A serving engine, or ``auto``: llama.cpp for GGUF formats and Apple/SoC machines, vLLM otherwise."""
    flash_attention: bool = True
    mtp: bool = False
    prompt: int | None = None
    """Prompt tokens for prefill and time to first token; default: the context less 512 output tokens."""
    routing_skew: float = 0.0
    price_usd_per_hour: float | None = None
    energy_usd_per_kwh: float | None = None
    gpu_file: str | None = None
    calibration: str | None = None
    speed_table: bool = True

    def prompt_tokens(self) -> int:
        if self.prompt is not None:
            return self.prompt
        return max(1, self.context - 512) if self.context > 1024 else max(1, self.context // 2)


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
    max_context_limit: str = "memory"
    """What stops ``max_context``: ``memory``, ``model`` (its trained context) or ``search``
    (:data:`CONTEXT_SEARCH_LIMIT`, for a model that states none)."""

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


@dataclass(frozen=True, repr=False, eq=False)
class CostResult(Value):
    """Money: per hour, per million tokens, to buy."""

    usd_per_hour: float | None
    usd_per_million_output_tokens: float | None
    usd_per_million_input_tokens: float | None
    purchase_usd: float | None
    energy_usd_per_hour: float | None
    price_source: str | None


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
            },
            "params": {
                "total": p.total,
                "active": p.active,
                "active_share": p.active_share,
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
            },
            "memory": asdict(self.memory),
            "fit": asdict(self.fit) if self.fit else None,
            "memory_by_context": [{"context": c, "per_gpu_bytes": b} for c, b in self.memory_by_context],
            "checkpoint": to_dict(spec.checkpoint) if spec.checkpoint else None,
            "flops": asdict(self.flops) if self.flops else None,
            "performance": asdict(self.performance) if self.performance else None,
            "cost": asdict(self.cost) if self.cost else None,
            "assumptions": list(self.assumptions),
        }


def _assumptions(spec: ModelSpec, params: ParamCounts) -> tuple[str, ...]:
    out = [f"shapes: {spec.origin if spec.origin != 'catalogue' else 'catalogue spec ' + spec.id}"]
    if spec.sources:
        out.append(f"source: {spec.sources[0]}")
    if spec.origin != "catalogue" and spec.notes:
        out.append(spec.notes)
    if spec.arch.moe is not None:
        moe = spec.arch.moe
        out.append(
            f"active = total - ({moe.num_experts} - {moe.top_k}) idle experts x {params.per_expert:,} params"
            f" x {params.num_moe_layers} MoE layers"
        )
    if params.mtp:
        out.append(f"{params.mtp:,} multi-token-prediction params are outside the total")
    if params.vision:
        out.append(f"{params.vision:,} vision-tower params are outside the total")
    return tuple(out)


def request_gpu(request: EstimateRequest) -> GpuSpec | None:
    """The requested accelerator (catalogue entry, with the user's figures), or None without one."""
    from moeplan.hardware.gpus import custom_gpu, resolve_gpu

    custom = (request.gpu_memory_gib, request.gpu_bandwidth_gb_s, request.gpu_tflops)
    if request.gpu is None and all(v is None for v in custom):
        return None
    base = resolve_gpu(request.gpu, request.gpu_file) if request.gpu is not None else None
    return custom_gpu(base, *custom) if any(v is not None for v in custom) else base


def checkpoint_scale(spec: ModelSpec, scheme: Scheme) -> tuple[tuple[tuple[str, float], ...], int] | None:
    """Per tensor class, a real checkpoint's bytes over what ``scheme`` predicts, and the bytes of its tensors
    outside the language model that engines load (a vision tower); None without a checkpoint, or when the
    weights would not be served as stored (``scheme`` is not the checkpoint's own format)."""
    info = spec.checkpoint
    if info is None:
        return None
    native = info.native_format or spec.native_quant or spec.weights_dtype
    if parse_scheme(native, spec.native_quant, spec.weights_dtype).name != scheme.name:
        return None
    from moeplan.formats.schemes import weights_bytes_by_kind

    scale = tuple(
        (kind, info.bytes_by_kind[kind] / want)
        for kind, want in sorted(weights_bytes_by_kind(spec.arch, scheme).items())
        if want and info.bytes_by_kind.get(kind)
    )
    return scale, info.bytes_by_kind.get("vision", 0) + info.bytes_by_kind.get("other", 0)


def _checkpoint_bytes(
    spec: ModelSpec, scheme: Scheme, request: EstimateRequest
) -> tuple[tuple[tuple[str, float], ...], int, tuple[str, ...]]:
    """:func:`checkpoint_scale` for the memory model (MTP bytes too with ``--mtp``), and notes."""
    info = spec.checkpoint
    if info is None:
        return (), 0, ()
    from moeplan.sources.checkpoint import compare_with_spec

    params = count_params(spec)
    notes = [f"checkpoint: {info.source}, {info.tensor_count:,} tensors, {info.total_bytes:,} bytes"]
    notes += compare_with_spec(info, params.breakdown, params.mtp, params.vision)
    stored = checkpoint_scale(spec, scheme)
    if stored is None:
        return (), 0, (*notes, f"weights as {scheme.name} would store them, not the checkpoint's bytes")
    scale, extra = stored
    if request.mtp:
        extra += info.bytes_by_kind.get("mtp", 0)
    notes.append("weights memory: the checkpoint's own bytes per tensor class")
    return scale, extra, tuple(notes)


def gguf_equivalent(native: str) -> str:
    """The llama.cpp file type people make from a checkpoint of format ``native``."""
    key = native.strip().lower()
    if key in ("mxfp4-experts", "mxfp4_moe"):
        return "MXFP4_MOE"
    if key in ("bf16", "fp16", "fp32"):
        return "BF16" if key == "bf16" else "F16"
    if key.startswith(("fp8", "int8")):
        return "Q8_0"
    if key == "nvfp4":
        return "NVFP4"
    return native.upper() if native.isupper() else "Q4_K_M"


def auto_engine(name: str, scheme: Scheme, gpu: GpuSpec | None) -> str:
    """``--engine auto``: llama.cpp runs GGUF files and Apple or unified-memory machines; vLLM the rest."""
    if name.strip().lower() != "auto":
        return name
    if scheme.is_gguf or (gpu is not None and gpu.kind in ("apple", "soc")):
        return "llama.cpp"
    return "vllm"


def _validate(request: EstimateRequest) -> None:
    if request.context < 1:
        raise InputError(f"--context must be at least 1 token, not {request.context}")
    if request.batch < 1:
        raise InputError(f"--batch must be at least 1, not {request.batch}")
    if request.prompt is not None and not 1 <= request.prompt <= request.context:
        raise InputError(f"--prompt must be between 1 and the context ({request.context:,}), not {request.prompt}")
    if not 0 <= request.routing_skew <= 4:
        raise InputError(f"--routing-skew must be between 0 (uniform) and 4, not {request.routing_skew}")
    for name in ("price_usd_per_hour", "energy_usd_per_kwh"):
        value = getattr(request, name)
        if value is not None and not value >= 0:
            raise InputError(f"--{name.split('_usd')[0].replace('_', '-')} must be zero or more, not {value}")
    for name in ("num_gpus", "tp", "ep", "pp"):
        value = getattr(request, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, not {value}")


def _parallel(arch: ArchSpec, request: EstimateRequest, engine: EngineProfile, num_gpus: int) -> Parallel:
    if request.tp is None and request.pp is None:
        par = default_parallel(arch, num_gpus, engine)
        return Parallel(par.tp, request.ep or 1, par.pp)
    tp = request.tp or max(1, num_gpus // (request.pp or 1))
    pp = request.pp or max(1, num_gpus // tp)
    if tp * pp != num_gpus:
        raise InputError(f"--tp {tp} x --pp {pp} = {tp * pp} GPUs, but --num-gpus is {num_gpus}")
    return Parallel(tp, request.ep or 1, pp)


def estimate(request: EstimateRequest) -> EstimateResult:
    """Resolve the model and compute parameters, memory and fit."""
    spec = resolve_model(request.model)
    arch = spec.arch
    _validate(request)
    params = count_params(spec)
    native = spec.native_quant or spec.weights_dtype
    scheme = parse_scheme(request.quant or native, spec.native_quant, spec.weights_dtype)
    mtp_layers = arch.mtp_layers if request.mtp else 0
    gpu_spec = request_gpu(request)
    engine = engine_profile(auto_engine(request.engine, scheme, gpu_spec))
    gguf_note: tuple[str, ...] = ()
    if engine.name == "llama.cpp" and request.quant is None and scheme.gguf is None:
        mix = gguf_equivalent(native)
        scheme = parse_scheme(mix, spec.native_quant, spec.weights_dtype)
        gguf_note = (f"llama.cpp runs GGUF files: {native} weights are planned as the {mix} mix (--quant to choose)",)
    if arch.max_context and request.context > arch.max_context:
        gguf_note += (
            f"warning: {request.context:,} tokens exceed the model's trained context of {arch.max_context:,} "
            "(max_position_embeddings); figures assume it runs anyway (RoPE scaling)",
        )
    requested_kv = request.kv_dtype.strip().lower()
    kv_name = kv_dtype(("fp16" if engine.name == "llama.cpp" else "bf16") if requested_kv == "auto" else requested_kv)
    gpu = (gpu_spec.id, gpu_spec.name, gpu_spec.usable_memory_gib * GIB) if gpu_spec else None
    usable = gpu[2] if gpu else 0.0

    scale, extra, file_notes = _checkpoint_bytes(spec, scheme, request)

    def model_for(num_gpus: int) -> MemoryModel:
        par = _parallel(arch, request, engine, num_gpus)
        mreq = MemoryRequest(
            scheme,
            engine,
            usable,
            par,
            request.context,
            request.batch,
            kv_name,
            request.flash_attention,
            mtp_layers,
            scale,
            extra,
        )
        return MemoryModel(arch, mreq)

    explicit = request.num_gpus or ((request.tp or 1) * (request.pp or 1) if (request.tp or request.pp) else None)
    min_gpus: int | None = None
    if gpu is not None:
        for n in GPU_COUNTS:
            try:
                candidate = model_for(n)
            except InputError:
                continue
            if candidate.fits(request.context, request.batch):
                min_gpus = n
                break
    num_gpus = explicit or min_gpus or 1
    mm = model_for(num_gpus)
    g = mm.gpu(request.context, request.batch)
    n = mm.req.parallel.num_gpus
    kv_deploy = mm.deployment_kv_bytes(request.context, request.batch)
    memory = MemoryResult(
        scheme=scheme.name,
        kv_dtype=kv_name,
        engine=engine.name,
        weights_bytes=sum(mm.weights_by_kind.values()),
        weights_by_kind={str(k): v for k, v in mm.weights_by_kind.items()},
        formats_by_kind=_formats_by_kind(arch, scheme),
        kv_bytes_per_token=round(kv_bytes_per_token(arch, kv_name, engine.name, mtp_layers)),
        kv_cache_bytes=round(kv_deploy),
        activation_bytes=round(g.activation_bytes * n),
        overhead_bytes=round(g.overhead_bytes * n),
        total_bytes=round(sum(mm.weights_by_kind.values()) + kv_deploy + (g.activation_bytes + g.overhead_bytes) * n),
        per_gpu_bytes=round(g.total_bytes),
        per_gpu_weights_bytes=g.weights_bytes,
        per_gpu_weights_by_kind={str(k): v for k, v in g.weights_by_kind.items()},
        per_gpu_kv_cache_bytes=round(g.kv_bytes),
        per_gpu_activation_bytes=round(g.activation_bytes),
        per_gpu_overhead_bytes=round(g.overhead_bytes),
        usable_bytes_per_gpu=round(usable) if gpu else None,
    )
    by_context = [
        (c, round(mm.gpu(c, request.batch).total_bytes))
        for c in sorted({*(1 << i for i in range(10, CONTEXT_SEARCH_LIMIT.bit_length())), request.context})
        if c <= (arch.max_context or CONTEXT_SEARCH_LIMIT) or c == request.context
    ]
    fit = None
    if gpu is not None:
        limit = arch.max_context or CONTEXT_SEARCH_LIMIT
        par = mm.req.parallel
        max_context = mm.max_context(request.batch, limit)
        fit = FitResult(
            gpu=gpu[0],
            gpu_name=gpu[1],
            fits=g.total_bytes <= usable,
            num_gpus=n,
            min_gpus=min_gpus,
            tp=par.tp,
            ep=par.ep,
            pp=par.pp,
            headroom_bytes=round(usable - g.total_bytes),
            max_context=max_context,
            max_batch=mm.max_batch(request.context),
            max_context_limit="memory" if max_context < limit else "model" if arch.max_context else "search",
        )
    flops = _flops(arch, request)
    performance = cost = None
    speed_notes: tuple[str, ...] = ()
    if gpu_spec is not None:
        from moeplan.deploy.evaluate import cost_result, performance_result

        performance, speed_notes = performance_result(mm, gpu_spec, request, scheme, engine.name)
        cost = cost_result(gpu_spec, n, performance, request)
    return EstimateResult(
        spec=spec,
        params=params,
        request=request,
        memory=memory,
        fit=fit,
        flops=flops,
        memory_by_context=by_context,
        performance=performance,
        cost=cost,
        assumptions=_assumptions(spec, params)
        + gguf_note
        + file_notes
        + _memory_assumptions(request, engine, scheme.name, kv_name, fit)
        + speed_notes,
    )


def _formats_by_kind(arch: ArchSpec, scheme: Scheme) -> dict[str, list[str]]:
    from moeplan.formats.schemes import quantized_tensors

    out: dict[str, set[str]] = {}
    for t, fmt, _ in quantized_tensors(arch, scheme):
        out.setdefault(t.kind, set()).add(fmt)
    return {k: sorted(v) for k, v in out.items()}


def _flops(arch: ArchSpec, request: EstimateRequest) -> FlopsResult:
    from moeplan.model.flops import flops_per_token

    decode = flops_per_token(arch, request.context, "decode")
    prefill = flops_per_token(arch, request.prompt_tokens(), "prefill")
    return FlopsResult(
        prefill_per_token=prefill.total,
        decode_per_token=decode.total,
        decode_by_kind=decode.by_kind,
        prefill_by_kind=prefill.by_kind,
    )


def _memory_assumptions(
    request: EstimateRequest, engine: EngineProfile, scheme: str, kv_name: str, fit: FitResult | None
) -> tuple[str, ...]:
    out = [
        f"weights: {scheme} (--quant; the checkpoint's own format by default)",
        f"KV cache: {kv_name}, {request.context:,} tokens x {request.batch} sequences",
        f"engine profile: {engine.name} ({engine.source})",
    ]
    if engine.reserve_fraction:
        out.append(f"{engine.name} leaves {engine.reserve_fraction:.0%} of GPU memory unused (counted as overhead)")
    if fit is not None:
        out.append(f"layout: TP {fit.tp} x PP {fit.pp}" + (f", EP {fit.ep}" if fit.ep > 1 else ""))
    return tuple(out)
