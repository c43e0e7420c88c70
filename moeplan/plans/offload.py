"""``moeplan offload``: one CPU+GPU box, resolved to a llama.cpp deployment and evaluated with the routed experts
of some layers in system RAM (the placement, its speed, the trade-off table, the command lines)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, replace

from moeplan.deploy.deployment import EstimateRequest
from moeplan.deploy.evaluate import evaluate_offload
from moeplan.deploy.offload import Host, kt_method
from moeplan.deploy.resolve import resolve
from moeplan.deploy.results import OffloadAdvice, OffloadResult
from moeplan.errors import InputError
from moeplan.formats.schemes import offload_quant, parse_scheme
from moeplan.hardware.hosts import CpuSpec, custom_host, resolve_cpu
from moeplan.model.spec import ModelSpec
from moeplan.records import Value


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class OffloadRequest(Value):
    """What the user asked for; every option of ``moeplan offload``."""

    model: str
    gpu: str | None = None
    gpu_memory_gib: float | None = None
    gpu_bandwidth_gb_s: float | None = None
    gpu_tflops: float | None = None
    num_gpus: int = 1
    ram_gib: float
    cpu: str | None = None
    ram_bandwidth_gb_s: float | None = None
    pcie: str = "gen4"
    context: int = 8192
    batch: int = 1
    quant: str | None = None
    kv_dtype: str = "f16"
    offload: str = "auto"
    prompt: int | None = None
    price_usd_per_hour: float | None = None
    gpu_file: str | None = None
    engine: str = "llama.cpp"
    """llama.cpp (``--n-cpu-moe``), ik_llama.cpp (its fork: MoE offload threshold, ``-rtr``) or KTransformers
    (experts per socket, layer-wise prefill)."""
    backend: str = "auto"
    ubatch: int | None = None
    """Tokens per prefill forward pass (llama.cpp ``-ub``): each streams the RAM experts to the GPU once."""
    host_profile: str | None = None
    """A calibration profile whose host measurement replaces the catalogue's CPU (``auto``: the stored one)."""
    kt_prefill_threshold: int | None = None
    """KTransformers' ``--kt-gpu-prefill-token-threshold`` (None: 400)."""
    rtr: bool | None = None
    """ik_llama.cpp's run-time repack (``-rtr``): True, False, or None where the CPU computes prefill."""


def host_cpu(req: OffloadRequest) -> tuple[CpuSpec, str | None]:
    """The host's CPU and memory, and a note: ``--host-profile`` (a calibration of this machine; ``auto``: the
    stored one), ``--ram-bandwidth`` alone, or a catalogue CPU or memory configuration."""
    if req.host_profile is not None:
        from moeplan.hardware.hosts import measured_host
        from moeplan.hardware.profiles import host_measured_for

        h, note = host_measured_for(None if req.host_profile == "auto" else req.host_profile)
        if h is None:
            raise InputError(note or "no host calibration stored", "run `moeplan calibrate --device cpu` first")
        gemm = h.expert_gflops_prefill
        if req.cpu is not None:  # both given: the measurement wins, and says so
            note = "; ".join(x for x in (note, f"--cpu {req.cpu} not used: the calibrated host replaces it") if x)
        return measured_host(h.cpu, h.sockets, h.threads, h.ram_gb_s, gemm), note
    if req.ram_bandwidth_gb_s is not None and req.cpu is not None:  # a measured bandwidth on a known platform
        cpu = resolve_cpu(req.cpu)
        note = (f"RAM bandwidth {req.ram_bandwidth_gb_s:g} GB/s (--ram-bandwidth) in place of the catalogue's "
                f"{cpu.bandwidth_gb_s:g} for {cpu.name}; its cores and instruction set as catalogued")  # fmt: skip
        return dataclasses.replace(cpu, bandwidth_gb_s=req.ram_bandwidth_gb_s, fabric_read_gb_s=None), note
    if req.ram_bandwidth_gb_s is not None:
        return custom_host(req.ram_bandwidth_gb_s), None
    if req.cpu is None:
        raise InputError(
            "offload needs the host's memory: --cpu ID (see `moeplan cpus`), --ram-bandwidth GB_S, or "
            "--host-profile auto after `moeplan calibrate --device cpu`"
        )
    return resolve_cpu(req.cpu), None


RAM_SIZES_GIB = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144)
"""RAM a desktop or server is sold with (2-12 channels of 8-128 GiB modules, one or two sockets)."""
GGUF_LADDER = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K", "IQ2_XXS", "IQ1_M", "IQ1_S")
"""llama.cpp mixes from most to fewest bits per weight: the formats offload advice steps down through."""


def plan_offload(req: OffloadRequest) -> OffloadResult:
    """The box evaluated (:func:`evaluate_box`); when it falls short, with the changes that would make it fit."""
    result = evaluate_box(req)
    if result.fits:
        return result
    return replace(result, advice=offload_advice(req, result))


def _fits(req: OffloadRequest) -> OffloadResult | None:
    try:
        r = evaluate_box(req)
    except InputError:
        return None
    return r if r.fits else None


def _first_fit(
    options: tuple[object, ...], make: Callable[[object], OffloadRequest]
) -> tuple[object, OffloadResult] | None:
    """The first of ``options`` (ordered so that fitting is monotone: once one fits, all later ones do) that fits,
    by bisection: a handful of evaluations at ~15 ms each."""
    lo, hi, found = 0, len(options) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        r = _fits(make(options[mid]))
        if r is not None:
            found, hi = (options[mid], r), mid - 1
        else:
            lo = mid + 1
    return found


def offload_advice(req: OffloadRequest, result: OffloadResult) -> tuple[OffloadAdvice, ...]:
    """What would make a box that falls short fit: the smallest usual RAM size for this format, and the GGUF mix
    of the most bits per weight that this RAM holds (each checked by evaluating the changed box)."""
    out: list[OffloadAdvice] = []
    quant = result.quant
    if req.offload != "auto":  # the layer count asked for may be what falls short
        placed = _fits(replace(req, offload="auto"))
        if placed is not None:
            n, tps = placed.chosen.cpu_layers, placed.offload_performance.decode_tokens_per_s
            text = f"fits with the experts of {n} layers in RAM (--offload-experts auto) at {quant} (~{tps:.3g} tok/s)"
            return (OffloadAdvice(ram_gib=req.ram_gib, quant=quant, decode_tokens_per_s=tps, text=text),)
    more_ram = tuple(g for g in RAM_SIZES_GIB if g > req.ram_gib)
    ram_fit = _first_fit(more_ram, lambda g: replace(req, ram_gib=float(g)))  # type: ignore[arg-type]
    if ram_fit is not None:
        gib, r = ram_fit
        tps = r.offload_performance.decode_tokens_per_s
        out.append(OffloadAdvice(ram_gib=float(gib), quant=quant, decode_tokens_per_s=tps,  # type: ignore[arg-type]
                                 text=f"fits with {gib} GiB of RAM at {quant} (~{tps:.3g} tok/s)"))  # fmt: skip
    bits = _mix_bits(quant)
    smaller = tuple(q for q in GGUF_LADDER if bits is None or (_mix_bits(q) or 99) < bits)
    mix_fit = _first_fit(smaller, lambda q: replace(req, quant=str(q)))
    if mix_fit is not None:
        q, r = mix_fit
        tps = r.offload_performance.decode_tokens_per_s
        out.append(OffloadAdvice(ram_gib=req.ram_gib, quant=str(q), decode_tokens_per_s=tps,
                                 text=f"fits in {req.ram_gib:g} GiB of RAM at {q} (fewer bits per weight: "
                                 f"lower quality; ~{tps:.3g} tok/s)"))  # fmt: skip
    if not out:
        out.append(OffloadAdvice(ram_gib=req.ram_gib, quant=quant,
                                 text=f"neither {RAM_SIZES_GIB[-1]:,} GiB of RAM nor a mix down to {GGUF_LADDER[-1]} "
                                 "makes it fit: the GPU side (attention, KV cache, buffers) is too large; fewer "
                                 "--context tokens or more GPUs"))  # fmt: skip
    return tuple(out)


def default_quant(spec: ModelSpec, engine: str) -> str | None:
    """The weights offloaded without ``--quant``: llama.cpp's usual GGUF mix (:func:`offload_quant`); under
    KTransformers a quantized checkpoint kt-kernel reads as stored and shares with the GPU (fp8 blocks as ``FP8``,
    Kimi-K2's int4 as ``RAWINT4``: None keeps it), else the same GGUF mix through its LLAMAFILE backend."""
    native = spec.native_quant
    stored = parse_scheme(native, native, spec.weights_dtype) if native else None
    if engine == "ktransformers" and stored is not None and kt_method(stored) in ("FP8", "RAWINT4"):
        return None
    return offload_quant(native)


def _mix_bits(quant: str) -> float | None:
    """Bits per weight of a GGUF mix's expert type, for ordering (None when ``quant`` is not a known mix)."""
    from moeplan.formats.ggml import GGML_TYPES
    from moeplan.formats.gguf_mix import FTYPES, ftype_name

    if quant.upper() == "MXFP4_MOE":
        return GGML_TYPES["MXFP4"].bits_per_weight if "MXFP4" in GGML_TYPES else 4.25
    name = ftype_name(quant)
    base = GGML_TYPES.get(FTYPES[name]) if name is not None else None
    return base.bits_per_weight if base is not None else None


def evaluate_box(req: OffloadRequest) -> OffloadResult:
    """Resolve the box to a llama.cpp deployment and evaluate it with experts in RAM."""
    from moeplan.sources.catalog import resolve_model

    if req.ram_gib <= 0:
        raise InputError(f"--ram must be a positive number of GiB, not {req.ram_gib}")
    if req.num_gpus < 1:
        raise InputError(f"--num-gpus must be at least 1, not {req.num_gpus}")
    if req.pcie not in ("gen3", "gen4", "gen5"):
        raise InputError(f"--pcie '{req.pcie}' is not one of gen3, gen4, gen5")
    from moeplan.deploy.engines import engine as engine_named

    named = engine_named(req.engine)
    if not (named.llama_cpp_kernels or named.offload_prefill == "layerwise"):
        raise InputError(f"offload runs on llama.cpp, ik_llama.cpp or ktransformers, not '{req.engine}'")
    engine = named.name
    spec = resolve_model(req.model)
    request = EstimateRequest(
        model=req.model, gpu=req.gpu, gpu_memory_gib=req.gpu_memory_gib, gpu_bandwidth_gb_s=req.gpu_bandwidth_gb_s,
        gpu_tflops=req.gpu_tflops, num_gpus=req.num_gpus, quant=req.quant or default_quant(spec, engine),
        kv_dtype=req.kv_dtype,
        context=req.context, batch=req.batch, engine=engine, prompt=req.prompt, backend=req.backend,
        ubatch=req.ubatch, price_usd_per_hour=req.price_usd_per_hour, gpu_file=req.gpu_file, speed_table=False,
        kt_prefill_threshold=req.kt_prefill_threshold, cpu_repack=req.rtr,
    )  # fmt: skip
    d = resolve(request, spec=spec)
    if d.gpu is None:
        raise InputError("offload needs a GPU: --gpu ID (or --gpu-memory, --gpu-bandwidth and --gpu-tflops)")
    if not d.gpu.speed_known:
        raise InputError(
            "offload plans by speed: a custom GPU needs --gpu-bandwidth (GB/s) and --gpu-tflops beside --gpu-memory",
            "or name a catalogue GPU of the same class with --gpu",
        )
    if d.gpu.unified_memory:
        raise InputError(f"{d.gpu.name} shares one memory between CPU and GPU: there is nothing to offload",
                         f"plan it with `moeplan estimate {req.model} --gpu {d.gpu.id}`")  # fmt: skip
    cpu, note = host_cpu(req)
    if cpu.kind == "apple":  # Apple silicon takes no PCIe GPU (no eGPU on M-series Macs)
        raise InputError(f"{cpu.name} takes no discrete GPU ({d.gpu.name}): Apple silicon Macs have no slot for one",
                         f"give an x86 or Arm server --cpu (see `moeplan cpus`), or plan the Mac alone with "
                         f"`moeplan estimate {req.model} --gpu {cpu.id}`")  # fmt: skip
    host = Host(d.gpu, req.num_gpus, req.ram_gib, cpu, req.pcie)
    result = evaluate_offload(d, host, req.offload)
    return replace(result, assumptions=(*result.assumptions, note)) if note else result
