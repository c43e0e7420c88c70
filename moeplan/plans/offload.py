"""``moeplan offload``: one CPU+GPU box, resolved to a llama.cpp deployment and evaluated with the routed experts
of some layers in system RAM (the placement, its speed, the trade-off table, the command lines)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from moeplan.deploy.deployment import EstimateRequest
from moeplan.deploy.evaluate import evaluate_offload
from moeplan.deploy.offload import Host
from moeplan.deploy.resolve import resolve
from moeplan.deploy.results import OffloadResult
from moeplan.errors import InputError
from moeplan.formats.schemes import offload_quant
from moeplan.hardware.hosts import CpuSpec, custom_host, resolve_cpu
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
    """llama.cpp (``--n-cpu-moe``) or KTransformers (experts per socket, layer-wise prefill)."""
    backend: str = "auto"
    ubatch: int | None = None
    """Tokens per prefill forward pass (llama.cpp ``-ub``): each streams the RAM experts to the GPU once."""
    host_profile: str | None = None
    """A calibration profile whose host measurement replaces the catalogue's CPU (``auto``: the stored one)."""


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
        return measured_host(h.cpu, h.sockets, h.threads, h.ram_gb_s, gemm), note
    if req.ram_bandwidth_gb_s is not None:
        return custom_host(req.ram_bandwidth_gb_s), None
    if req.cpu is None:
        raise InputError(
            "offload needs the host's memory: --cpu ID (see `moeplan cpus`), --ram-bandwidth GB_S, or "
            "--host-profile auto after `moeplan calibrate --device cpu`"
        )
    return resolve_cpu(req.cpu), None


def plan_offload(req: OffloadRequest) -> OffloadResult:
    """Resolve the box to a llama.cpp deployment and evaluate it with experts in RAM."""
    from moeplan.sources.catalog import resolve_model

    if req.ram_gib <= 0:
        raise InputError(f"--ram must be a positive number of GiB, not {req.ram_gib}")
    if req.num_gpus < 1:
        raise InputError(f"--num-gpus must be at least 1, not {req.num_gpus}")
    if req.pcie not in ("gen3", "gen4", "gen5"):
        raise InputError(f"--pcie '{req.pcie}' is not one of gen3, gen4, gen5")
    engine = req.engine.strip().lower()
    if engine not in ("llama.cpp", "llamacpp", "ollama", "ktransformers", "kt"):
        raise InputError(f"offload runs on llama.cpp or ktransformers, not '{req.engine}'")
    spec = resolve_model(req.model)
    request = EstimateRequest(
        model=req.model, gpu=req.gpu, gpu_memory_gib=req.gpu_memory_gib, gpu_bandwidth_gb_s=req.gpu_bandwidth_gb_s,
        gpu_tflops=req.gpu_tflops, num_gpus=req.num_gpus, quant=req.quant or offload_quant(spec.native_quant),
        kv_dtype=req.kv_dtype,
        context=req.context, batch=req.batch, engine=engine, prompt=req.prompt, backend=req.backend,
        ubatch=req.ubatch, price_usd_per_hour=req.price_usd_per_hour, gpu_file=req.gpu_file, speed_table=False,
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
    host = Host(d.gpu, req.num_gpus, req.ram_gib, cpu, req.pcie)
    result = evaluate_offload(d, host, req.offload)
    return replace(result, assumptions=(*result.assumptions, note)) if note else result
