"""Evaluate a resolved :class:`Deployment`: the only code that calls the memory, speed and cost models.

:func:`evaluate` gives the full :class:`EstimateResult` (memory by part, fit, longest context and largest batch,
FLOPs, the speed band and the speed-vs-batch table, cost, the assumptions); :func:`headline` the few figures a
sweep ranks by (fit, memory per GPU, the decode band, cost), at a fraction of the cost; :func:`fits` only the
verdict.  ``estimate``, ``compare``, ``recommend``, ``offload`` and the accuracy harness all come through here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from moeplan.deploy.cost import cost_result, per_million, purchase_usd, usd_per_hour
from moeplan.deploy.deployment import CONTEXT_SEARCH_LIMIT, Deployment
from moeplan.deploy.kv_cache import kv_bytes_per_token, state_bytes_per_sequence
from moeplan.deploy.memory import MemoryModel, largest
from moeplan.deploy.results import (
    NO_SPEED_NOTE,
    BatchRow,
    EstimateResult,
    FitResult,
    FlopsResult,
    Headline,
    MemoryResult,
    OffloadPerformance,
    OffloadResult,
    PerformanceResult,
    TradeoffRow,
)

if TYPE_CHECKING:
    from moeplan.deploy.offload import Host, OffloadModel, Placement
from moeplan.deploy.speed import SpeedModel, distinct_experts
from moeplan.errors import InputError
from moeplan.formats.gguf_labels import Spread
from moeplan.formats.schemes import quantized_tensors
from moeplan.model.flops import flops_per_token
from moeplan.model.params import ParamCounts, count_params
from moeplan.model.spec import ModelSpec

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
"""Batch sizes of the speed-vs-batch table (up to 256, or the deployment's batch)."""


def fits(d: Deployment) -> bool:
    """Whether ``d`` holds its context and batch on its GPUs."""
    return MemoryModel(d).fits(d.context, d.batch)


def headline(d: Deployment, memory: MemoryModel | None = None) -> Headline:
    """Fit, memory of the largest GPU, decode band and cost of ``d`` (which needs a GPU)."""
    mm = memory or MemoryModel(d)
    g = mm.gpu(d.context, d.batch)
    sm = SpeedModel(mm)
    low, mid, high = (sm.decode_step(d.context, d.batch, s).per_token_s for s in ("low", "expected", "high"))
    n = d.layout.num_gpus
    per_hour = usd_per_hour(d, n)
    return Headline(
        fits=mm.fits(d.context, d.batch),
        per_gpu_bytes=g.total_bytes,
        usable_bytes=d.usable_bytes,
        tokens_per_s=1 / mid,
        tokens_per_s_range=(1 / low, 1 / high),
        throughput_tokens_per_s=d.batch / mid,
        usd_per_hour=per_hour,
        usd_per_million_output_tokens=per_million(per_hour, d.batch / mid),
        purchase_usd=purchase_usd(d.gpu, n),
    )


def _formats_by_kind(d: Deployment) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    for t, fmt, _ in quantized_tensors(d.spec.arch, d.scheme):
        out.setdefault(t.kind, set()).add(fmt)
    return {k: sorted(v) for k, v in out.items()}


def memory_result(d: Deployment, mm: MemoryModel) -> MemoryResult:
    """Memory of the whole deployment and of its largest GPU at ``d``'s context and batch."""
    g = mm.gpu(d.context, d.batch)
    n = d.layout.num_gpus
    kv_deploy = mm.deployment_kv_bytes(d.context, d.batch)
    state_deploy = mm.deployment_state_bytes(d.batch)
    weights = sum(mm.weights_by_kind.values())
    return MemoryResult(
        scheme=d.scheme.name,
        kv_dtype=d.kv_dtype,
        engine=d.engine.name,
        weights_bytes=weights,
        weights_by_kind={str(k): v for k, v in mm.weights_by_kind.items()},
        formats_by_kind=_formats_by_kind(d),
        kv_bytes_per_token=round(kv_bytes_per_token(d.spec.arch, d.kv_dtype, d.engine, d.mtp_layers)),
        kv_cache_bytes=round(kv_deploy),
        activation_bytes=round(g.activation_bytes * n),
        overhead_bytes=round(g.overhead_bytes * n),
        total_bytes=round(weights + kv_deploy + state_deploy + (g.activation_bytes + g.overhead_bytes) * n),
        per_gpu_bytes=round(g.total_bytes),
        per_gpu_weights_bytes=g.weights_bytes,
        per_gpu_weights_by_kind={str(k): v for k, v in g.weights_by_kind.items()},
        per_gpu_kv_cache_bytes=round(g.kv_bytes),
        per_gpu_activation_bytes=round(g.activation_bytes),
        per_gpu_overhead_bytes=round(g.overhead_bytes),
        usable_bytes_per_gpu=round(d.usable_bytes) if d.gpu else None,
        state_dtype=d.state_dtype,
        conv_state_dtype=d.conv_state_dtype,
        state_bytes_per_sequence=round(state_bytes_per_sequence(d.spec.arch, d.state_dtype, d.conv_state_dtype)),
        state_bytes=round(state_deploy),
        per_gpu_state_bytes=round(g.state_bytes),
        weights_range_bytes=_label_range(d, weights),
    )


def label_spread_for(d: Deployment) -> Spread | None:
    """The spread of published files for ``d``'s GGUF label, or None when the weights are exact (a checkpoint
    format, a float file, or the ``.gguf`` itself read)."""
    if d.scheme.gguf is None or d.spec.origin.endswith(".gguf"):
        return None
    from moeplan.formats.gguf_labels import label_spread, publisher_label

    pub = publisher_label(d.scheme.name)
    spread = label_spread(d.scheme.gguf, pub[2] if pub else False)
    return spread if spread.basis != "none" else None


def _label_range(d: Deployment, weights: int) -> tuple[int, int] | None:
    """The published files' weights.  A label is planned at its middle file, so the default rules' size is
    ``weights / (1 + median)`` and the range that times ``1 + low`` .. ``1 + high``."""
    spread = label_spread_for(d)
    if spread is None:
        return None
    default = weights / (1 + spread.median) if d.weights_scale else weights
    return round(default * (1 + spread.low)), round(default * (1 + spread.high))


def fit_result(d: Deployment, mm: MemoryModel) -> FitResult | None:
    """Whether and how ``d`` fits its GPUs, its longest context and largest batch; None without a GPU."""
    if d.gpu is None:
        return None
    arch, par = d.spec.arch, d.layout
    limit = arch.max_context or CONTEXT_SEARCH_LIMIT
    max_context = mm.max_context(d.batch, limit)
    room = mm.headroom(d.context, d.batch)
    return FitResult(
        gpu=d.gpu.id,
        gpu_name=d.gpu.name,
        fits=room >= 0,
        num_gpus=par.num_gpus,
        min_gpus=d.min_gpus,
        tp=par.tp,
        ep=par.ep,
        pp=par.pp,
        headroom_bytes=round(room),
        max_context=max_context,
        max_batch=mm.max_batch(d.context),
        dp_attention=par.dp_attention,
        max_context_limit="memory" if max_context < limit else "model" if arch.max_context else "search",
    )


def flops_result(d: Deployment) -> FlopsResult:
    arch = d.spec.arch
    decode = flops_per_token(arch, d.context, "decode")
    prefill = flops_per_token(arch, d.prompt, "prefill")
    return FlopsResult(
        prefill_per_token=prefill.total,
        decode_per_token=decode.total,
        decode_by_kind=decode.by_kind,
        prefill_by_kind=prefill.by_kind,
    )


def value_span(*values: float) -> tuple[float, float]:
    """A band's ends, lowest and highest, over the scenarios and the expected value: skewed routing, the optimistic
    scenario's, loads one expert-parallel rank more in prefill, so its time to first token can exceed the expected
    one (DeepSeek-R1 at TP8/EP8 on 8x H200, 8,192 tokens: 0.2623 s against 0.2619)."""
    return min(values), max(values)


def performance_result(d: Deployment, mm: MemoryModel) -> tuple[PerformanceResult, tuple[str, ...]]:
    """Speed band at ``d``'s context and batch, the speed-vs-batch table, and the notes they rest on."""
    sm = SpeedModel(mm)
    eff, moe = d.efficiency, d.spec.arch.moe
    band = sm.band(d.context, d.batch, d.prompt)
    low, exp, high = band.low, band.expected, band.high
    rows = []
    for b in sorted({*BATCHES, d.batch}):
        if b > max(d.batch, 256):
            break
        step = sm.decode_step(d.context, b)
        fit = d.usable_bytes <= 0 or mm.fits(d.context, b)
        rows.append(BatchRow(batch=b, tokens_per_s=1 / step.per_token_s, throughput_tokens_per_s=b / step.per_token_s,
                             bound=step.bound, fits=fit))  # fmt: skip
    spread = label_spread_for(d)
    if spread is not None:  # heavier files read more bytes per step: the band spans the published files
        base = 1 + spread.median if d.weights_scale else 1.0
        slower, faster = max(1.0, (1 + spread.high) / base), min(1.0, (1 + spread.low) / base)
        low = replace(
            low, tokens_per_s=low.tokens_per_s / slower, throughput_tokens_per_s=low.throughput_tokens_per_s / slower
        )
        high = replace(high, tokens_per_s=high.tokens_per_s / faster,
                       throughput_tokens_per_s=high.throughput_tokens_per_s / faster)  # fmt: skip
    s = exp.decode
    distinct = distinct_experts(moe.num_experts, moe.expected_picks, d.batch, d.routing_skew) if moe else None
    loaded: tuple[float, ...] | None = None
    if d.engine.runs == "checkpoint" and d.batched_tokens:  # continuous batching: full passes of many prompts
        n = d.layout.num_gpus
        loaded = tuple(
            d.prompt / sm.loaded_prefill_s(d.prompt, d.pass_tokens, sc) / n for sc in ("low", "expected", "high")
        )
    result = PerformanceResult(
        decode_tokens_per_s=exp.tokens_per_s,
        decode_tokens_per_s_range=value_span(low.tokens_per_s, exp.tokens_per_s, high.tokens_per_s),
        throughput_tokens_per_s=exp.throughput_tokens_per_s,
        throughput_tokens_per_s_range=value_span(
            low.throughput_tokens_per_s, exp.throughput_tokens_per_s, high.throughput_tokens_per_s
        ),
        prefill_tokens_per_s=exp.prefill_tokens_per_s,
        prefill_tokens_per_s_range=value_span(
            low.prefill_tokens_per_s, exp.prefill_tokens_per_s, high.prefill_tokens_per_s
        ),
        loaded_prefill_tokens_per_s_per_gpu=loaded[1] if loaded else None,
        loaded_prefill_tokens_per_s_per_gpu_range=value_span(*loaded) if loaded else None,
        time_to_first_token_s=exp.time_to_first_token_s,
        time_to_first_token_s_range=value_span(
            high.time_to_first_token_s, exp.time_to_first_token_s, low.time_to_first_token_s
        ),
        prompt_tokens=d.prompt,
        bound=s.bound,
        bytes_read_per_step_per_gpu=s.bytes_read,
        step_seconds={
            "total": s.seconds,
            "memory": s.memory_s,
            "compute": s.compute_s,
            "fixed": s.fixed_s,
            "communication": s.comm_s,
            "communication_exposed": s.comm_s - s.hidden_s,
        },
        distinct_experts_per_layer=distinct,
        compute_dtype=d.compute_dtype,
        kernel_path=d.kernel_path,
        backend=d.backend,
        efficiency_source=eff.source,
        calibration=eff.calibrated,
        by_batch=rows,
    )
    notes = [
        f"speed: roofline per decode step, {d.engine.name} efficiency {eff.bw[1]:.0%} of bandwidth "
        f"(band {eff.bw[0]:.0%}-{eff.bw[2]:.0%}), {eff.kernel_s * 1e6:.0f} us per kernel"
        + (f" + {eff.moe_layer_s * 1e6:.0f} us per MoE layer" if moe and eff.moe_layer_s else "")
        + ("; the band's optimistic end assumes skewed routing" if moe else ""),
        f"kernels: {d.kernel_path}"
        + (f" (llama.cpp {d.backend} backend)" if d.backend else "")
        + f", GEMMs at the {d.compute_dtype} peak",
        f"prompt: {d.prompt:,} tokens for prefill and time to first token",
    ]
    if moe:
        notes.append(
            f"routing: {'uniform' if d.routing_skew == 0 else f'Zipf skew {d.routing_skew:g}'}; "
            f"{distinct:.1f} of {moe.num_experts} experts read per layer at batch {d.batch}"
        )
    par = d.layout
    if par.num_gpus > 1 and d.gpu is not None:
        from moeplan.deploy.comm import link_for, nvlink_domain

        domain = nvlink_domain(d.gpu)
        nodes = max(d.num_nodes, -(-par.num_gpus // domain))
        inside = d.link.name if d.link is not None else link_for(d.gpu, False).name
        across = f"; {link_for(d.gpu, True).name} between the {nodes} nodes" if nodes > 1 else ""
        tp_where = "across nodes" if par.tp > domain else "inside a node" if domain == 8 else "inside the NVLink rack"
        if par.dp_attention and par.tp > domain and par.ep > 1:  # wide EP: the MoE layers dispatch and combine
            dense = "no gather in the dense layers" if d.engine.dense_dp is not None else "a gather in the dense layers"
            exchange = (f"each MoE layer's tokens dispatched to their experts' ranks and combined back (a prefill pass "
                        f"once to each node, NVLink fanning out), {dense}")  # fmt: skip
        else:
            exchange = "a gather and a scatter of the step's tokens per layer"
        notes.append(
            (f"communication: DP attention over {par.tp} ranks ({tp_where}), {exchange}, EP {par.ep}"
             if par.dp_attention else
             f"communication: TP {par.tp} ({tp_where})" + (f", EP {par.ep} inside it" if par.ep > 1 else ""))
            + (f", {par.pp} pipeline stages" if par.pp > 1 else "") + f"; {inside} inside a node{across}"
            + ("; two micro-batches overlap it with compute (--batch-overlap)" if d.batch_overlap else "")
        )  # fmt: skip
    if spread is not None:
        notes.append(
            f"weights: {d.scheme.name} is a label, not a file: published files under it lie {spread.low:+.1%} to "
            f"{spread.high:+.1%} from llama.cpp's default rules ({spread.files} files, by {spread.basis}); planned at "
            f"the middle one ({spread.median:+.1%}); the decode band spans them (give the .gguf for exact figures)"
        )
    notes.append(d.calibration_note)
    return result, tuple(notes)


def model_notes(spec: ModelSpec, params: ParamCounts) -> tuple[str, ...]:
    """Where the shapes come from and how active parameters are counted."""
    out = [f"shapes: {spec.origin if spec.origin != 'catalogue' else 'catalogue spec ' + spec.id}"]
    if spec.sources:
        out.append(f"source: {spec.sources[0]}")
    if spec.origin != "catalogue" and spec.notes:
        out.append(spec.notes)
    if spec.arch.moe is not None:
        moe = spec.arch.moe
        if moe.zero_experts:
            out.append(
                f"active = total - ({moe.num_experts} - {moe.expected_picks:g}) idle experts x "
                f"{params.per_expert:,} params x {params.num_moe_layers} MoE layers: top-{moe.top_k} of "
                f"{moe.num_experts} experts and {moe.zero_experts} identity experts reaches {moe.expected_picks:g} "
                f"real experts on average (uniform routing), {params.active_min:,} to {params.active_max:,} per token"
            )
        else:
            out.append(
                f"active = total - ({moe.num_experts} - {moe.top_k}) idle experts x {params.per_expert:,} params"
                f" x {params.num_moe_layers} MoE layers"
            )
    if params.mtp:
        out.append(f"{params.mtp:,} multi-token-prediction params are outside the total")
    if params.vision:
        out.append(f"{params.vision:,} vision-tower params are outside the total")
    return tuple(out)


def memory_notes(d: Deployment, fit: FitResult | None) -> tuple[str, ...]:
    eng = d.engine
    out = [
        f"weights: {d.scheme.name} (--quant; the checkpoint's own format by default)",
        f"KV cache: {d.kv_dtype}, {d.context:,} tokens x {d.batch} sequences",
    ]
    state = state_bytes_per_sequence(d.spec.arch, d.state_dtype, d.conv_state_dtype)
    if state:
        out.append(
            f"recurrent state: {d.state_dtype}, convolution state {d.conv_state_dtype} ({d.engine.name}'s rule; "
            f"--state-dtype to change), {state / 2**20:,.1f} MiB per sequence whatever the context"
        )
    out += [
        f"engine profile: {eng.name} ({eng.source})",
    ]
    if eng.reserve_fraction:
        out.append(f"{eng.name} leaves {eng.reserve_fraction:.0%} of GPU memory unused (counted as overhead)")
    if fit is not None:
        out.append(f"layout: TP {fit.tp} x PP {fit.pp}" + (f", EP {fit.ep}" if fit.ep > 1 else "")
                   + (", attention data-parallel" if fit.dp_attention else ""))  # fmt: skip
    return tuple(out)


def memory_by_context(d: Deployment, mm: MemoryModel) -> list[tuple[int, int]]:
    """(context, bytes on the largest GPU) at ``d``'s batch, doubling from 1,024 up to the model's maximum."""
    arch = d.spec.arch
    return [
        (c, round(mm.gpu(c, d.batch).total_bytes))
        for c in sorted({*(1 << i for i in range(10, CONTEXT_SEARCH_LIMIT.bit_length())), d.context})
        if c <= (arch.max_context or CONTEXT_SEARCH_LIMIT) or c == d.context
    ]


def evaluate(d: Deployment) -> EstimateResult:
    """Every figure of ``d``: parameters, memory, fit, FLOPs, speed and cost, with the assumptions."""
    mm = MemoryModel(d)
    params = count_params(d.spec)
    fit = fit_result(d, mm)
    performance = cost = None
    speed_notes: tuple[str, ...] = ()
    timed = d.gpu is not None and d.gpu.speed_known
    if d.gpu is not None and not d.gpu.speed_known:
        speed_notes = (f"{NO_SPEED_NOTE}: a custom GPU needs --gpu-bandwidth (GB/s) and --gpu-tflops too",)
    if timed:
        performance, speed_notes = performance_result(d, mm)
        cost = cost_result(d, performance.throughput_tokens_per_s, performance.prefill_tokens_per_s)
    serving = None
    if timed and d.request.traffic is not None and fit is not None and fit.fits:  # unfit: it serves nothing
        from moeplan.deploy.serving import ServingModel

        serving = ServingModel(d, d.request.traffic).point()
    return EstimateResult(
        spec=d.spec,
        params=params,
        request=d.request,
        memory=memory_result(d, mm),
        fit=fit,
        flops=flops_result(d),
        memory_by_context=memory_by_context(d, mm),
        performance=performance,
        cost=cost,
        assumptions=model_notes(d.spec, params) + d.notes + memory_notes(d, fit) + speed_notes,
        serving=serving,
        mtp_drafts=d.draft_tokens,
        mtp_accept=d.accept_rate if d.draft_tokens else None,
    )


def evaluate_offload(d: Deployment, host: Host, offload: str) -> OffloadResult:
    """``d`` (llama.cpp on ``host``'s GPUs) with routed experts in RAM: the placement ``offload`` asks for
    (``auto``: the fastest that fits, else the closest to fitting), its memory, fit, speed and cost, the best
    placement at each context of ``CONTEXTS``, and the command lines."""
    # only offload needs the host model
    from moeplan.deploy.offload import CONTEXTS, OffloadModel
    from moeplan.deploy.offload_commands import commands

    model = OffloadModel(d, host)
    context, batch, prompt = d.context, d.batch, d.prompt
    if offload == "auto":
        chosen, tried = model.best(context, batch, prompt)
    else:
        try:
            n = int(offload)
        except ValueError:
            raise InputError(f"--offload-experts '{offload}' must be 'auto' or a layer count") from None
        if d.engine.experts_in_ram == "all" and n < d.spec.arch.num_layers:  # KTransformers
            raise InputError(f"{d.engine.name} keeps every routed expert in RAM in moeplan's plans "
                             "(--kt-num-gpu-experts 0): it places no layer's experts on the GPU",
                             "drop --offload-experts, or plan llama.cpp (--engine llama.cpp)")  # fmt: skip
        chosen = model.evaluate(n, context, batch, prompt)
        tried = [chosen]
    limit = d.spec.arch.max_context or CONTEXT_SEARCH_LIMIT
    rows = []
    for ctx in sorted({c for c in CONTEXTS if c <= limit} | {context}):
        best, _ = model.best(ctx, batch, min(prompt, ctx))
        tps = 1 / best.decode_s[1] if best.fits else None
        rows.append(TradeoffRow(ctx, best.cpu_layers, best.fits, tps, round(best.vram_bytes_per_gpu),
                                round(best.ram_bytes)))  # fmt: skip
    base = evaluate(d)
    g, p = host.num_gpus, chosen
    low, mid, high = p.decode_s
    gpu_kinds = dict(model.other_by_kind)
    gpu_kinds["routed_experts"] = sum(model.expert_bytes) - p.cpu_expert_bytes
    memory = replace(
        base.memory,
        per_gpu_bytes=round(p.vram_bytes_per_gpu),
        per_gpu_weights_bytes=round(p.gpu_weights_bytes / g),
        per_gpu_weights_by_kind={k: round(v / g) for k, v in gpu_kinds.items() if v},
        per_gpu_kv_cache_bytes=round(p.kv_bytes / g),
        usable_bytes_per_gpu=round(p.vram_capacity_bytes),
        ram_bytes=round(p.ram_bytes),
        usable_ram_bytes=round(p.ram_capacity_bytes),
    )
    fitting = [row.context for row in rows if row.fits]
    assert base.fit is not None
    fit = replace(
        base.fit,
        fits=p.fits,
        num_gpus=g,
        headroom_bytes=round(p.vram_capacity_bytes - p.vram_bytes_per_gpu),
        ram_headroom_bytes=round(p.ram_capacity_bytes - p.ram_bytes),
        max_context=max(fitting) if fitting else 0,  # the longest of tradeoff's contexts some placement holds
        max_context_limit="memory"
        if not fitting or max(fitting) < limit
        else "model"
        if d.spec.arch.max_context
        else "search",
        max_batch=placement_max_batch(model, p.cpu_layers, context),
        shortfall=tuple(shortfall(p, g, d.spec.arch.num_moe_layers)),
    )
    pre_slow, pre_fast = (model.prefill_seconds(p, prompt, s)[0] for s in (0, 2))
    perf = OffloadPerformance(
        decode_tokens_per_s=1 / mid,
        decode_tokens_per_s_range=(1 / low, 1 / high),
        throughput_tokens_per_s=batch / mid,
        throughput_tokens_per_s_range=(batch / low, batch / high),
        prefill_tokens_per_s=prompt / p.prefill_s,
        prefill_tokens_per_s_range=(prompt / pre_slow, prompt / pre_fast),
        time_to_first_token_s=p.prefill_s + mid,
        time_to_first_token_s_range=(pre_fast + high, pre_slow + low),
        prompt_tokens=prompt,
        prefill_path=str(p.prefill_path),
        kernel_path=d.kernel_path,
        compute_dtype=d.compute_dtype,
        backend=d.backend,
        step_seconds=p.decode_parts_s,
    )
    cost = cost_result(d, perf.throughput_tokens_per_s, perf.prefill_tokens_per_s)
    hint = model.prefill_hint(p, prompt, context, batch)
    assumptions = base.assumptions + ((hint,) if hint else ())
    if d.engine.run_time_repack:  # ik_llama.cpp: what sets it apart from llama.cpp here, and what does not
        assumptions += ("ik_llama.cpp is planned as llama.cpp but for -rtr's repacked CPU kernels and its threshold "
                        "for streaming RAM experts to the GPU; its faster CPU attention at long contexts (1.5x at 24K "
                        "tokens in benchmarks/offload_measurements.yaml O05) is not modelled",)  # fmt: skip
    kv = {"fp16": "f16", "bf16": "bf16", "fp32": "f32"}.get(d.kv_dtype, d.kv_dtype)
    cmds = commands(d, d.scheme.name, p, host, context, kv) if p.fits else {}
    return OffloadResult(
        spec=base.spec, params=base.params, request=base.request, memory=memory, fit=fit, flops=base.flops,
        memory_by_context=[(row.context, row.vram_bytes_per_gpu) for row in rows], performance=None, cost=cost,
        assumptions=assumptions, host=host, quant=d.scheme.name, chosen=p, tried=tuple(tried), tradeoff=tuple(rows),
        commands=cmds, requested=offload, offload_performance=perf, prefill_hint=hint,
    )  # fmt: skip


def placement_max_batch(model: OffloadModel, cpu_layers: int, context: int, limit: int = 1 << 16) -> int:
    """The most sequences of ``context`` tokens the placement with ``cpu_layers`` layers' experts in RAM holds (its
    VRAM and RAM both; 0 where not even one fits): :func:`~moeplan.deploy.memory.largest` over ``1..limit``, its
    bracket doubling up from 2."""
    return largest(lambda b: model.placement(cpu_layers, context, b).fits, limit, guess=2)


def shortfall(p: Placement, num_gpus: int = 1, moe_layers: int = 0) -> list[str]:
    """What is short, by how much, when a placement does not fit, and what fills the GPU: its weights (with the
    experts of the MoE layers not in RAM) and its KV cache, per GPU."""
    out = []
    if not p.fits_vram:
        rest = moe_layers - len(p.cpu_moe_layers)
        held = f"the experts of {rest} MoE layers among them" if rest > 0 else "no expert among them"
        out.append(
            f"VRAM short by {(p.vram_bytes_per_gpu - p.vram_capacity_bytes) / 2**30:,.2f} GiB per GPU with "
            f"{len(p.cpu_moe_layers)} layers' experts in RAM: {p.gpu_weights_bytes / num_gpus / 2**30:,.2f} GiB of "
            f"weights ({held}) and {p.kv_bytes / num_gpus / 2**30:,.2f} GiB of KV cache a GPU"
        )
    if not p.fits_ram:
        out.append(f"RAM short by {(p.ram_bytes - p.ram_capacity_bytes) / 2**30:,.2f} GiB for the experts in RAM")
    return out


def offload_decode_seconds(d: Deployment, host: Host, cpu_layers: int) -> tuple[float, float, float]:
    """Seconds per decode step (low, expected, high) of ``d`` on ``host`` with the experts of layers
    ``0..cpu_layers-1`` in RAM (all of them on a host without a GPU)."""
    from moeplan.deploy.offload import OffloadModel

    p = OffloadModel(d, host).evaluate(cpu_layers, d.context, d.batch, d.prompt)
    return p.decode_s


def offload_prefill_seconds(d: Deployment, host: Host, cpu_layers: int) -> tuple[float, float, float]:
    """Seconds to prefill ``d.prompt`` tokens (slow, expected, fast) of ``d`` on ``host`` with the experts of
    layers ``0..cpu_layers-1`` in RAM."""
    from moeplan.deploy.offload import OffloadModel

    model = OffloadModel(d, host)
    p = model.placement(cpu_layers, d.context, d.batch)
    slow, mid, fast = (model.prefill_seconds(p, d.prompt, s)[0] for s in (0, 1, 2))
    return slow, mid, fast
