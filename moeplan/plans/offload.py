"""The ``offload`` command's facade: a request in, the chosen placement, its speed, the trade-off table and
the engine command lines out (no printing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moeplan.deploy.offload import CONTEXTS, Host, OffloadModel, Placement, commands
from moeplan.deploy.plan import CONTEXT_SEARCH_LIMIT, EstimateRequest, EstimateResult, estimate, gguf_equivalent
from moeplan.errors import InputError
from moeplan.hardware.hosts import CpuSpec, custom_host, resolve_cpu
from moeplan.records import Value


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class OffloadRequest(Value):
    """What the user asked for; every option of ``moeplan offload``."""

    model: str
    gpu: str | None = None
    gpu_memory_gib: float | None = None
    gpu_bandwidth_gb_s: float | None = None
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


def default_quant(native: str | None) -> str:
    """What people offload with llama.cpp: a GGUF file's own mix, gpt-oss's 4-bit experts, else Q4_K_M."""
    mix = gguf_equivalent(native) if native else "Q4_K_M"
    return mix if mix == "MXFP4_MOE" or (native and native.isupper()) else "Q4_K_M"


def _host_cpu(req: OffloadRequest) -> CpuSpec:
    if req.ram_bandwidth_gb_s is not None:
        return custom_host(req.ram_bandwidth_gb_s)
    if req.cpu is None:
        raise InputError("offload needs the host's memory: --cpu ID (see `moeplan cpus`) or --ram-bandwidth GB_S")
    return resolve_cpu(req.cpu)


@dataclass
class OffloadResult:
    """The chosen placement with its estimate, the placements tried, the trade-off table."""

    estimate: EstimateResult
    host: Host
    quant: str
    chosen: Placement
    tried: list[Placement]
    tradeoff: list[dict[str, Any]]
    commands: dict[str, str]
    requested: str

    @property
    def fits(self) -> bool:
        return self.chosen.fits

    def shortfall(self) -> list[str]:
        """What is short, by how much, when nothing fits."""
        p = self.chosen
        out = []
        if not p.fits_vram:
            out.append(
                f"VRAM short by {(p.vram_bytes_per_gpu - p.vram_capacity_bytes) / 2**30:,.2f} GiB per GPU even with "
                f"{len(p.cpu_moe_layers)} layers' experts in RAM (the non-expert part and the KV cache need it)"
            )
        if not p.fits_ram:
            out.append(f"RAM short by {(p.ram_bytes - p.ram_capacity_bytes) / 2**30:,.2f} GiB for the experts in RAM")
        return out

    def to_json(self) -> dict[str, Any]:
        base = self.estimate.to_json()
        p, g = self.chosen, self.host.num_gpus
        low, mid, high = p.decode_s
        batch = self.estimate.request.batch
        prompt = self.estimate.request.prompt_tokens()
        base["memory"] = {
            **base["memory"],
            "per_gpu_bytes": round(p.vram_bytes_per_gpu),
            "per_gpu_weights_bytes": round(p.gpu_weights_bytes / g),
            "per_gpu_kv_cache_bytes": round(p.kv_bytes / g),
            "usable_bytes_per_gpu": round(p.vram_capacity_bytes),
            "ram_bytes": round(p.ram_bytes),
            "usable_ram_bytes": round(p.ram_capacity_bytes),
        }
        base["fit"] = {
            **(base["fit"] or {}),
            "fits": p.fits,
            "num_gpus": g,
            "headroom_bytes": round(p.vram_capacity_bytes - p.vram_bytes_per_gpu),
            "ram_headroom_bytes": round(p.ram_capacity_bytes - p.ram_bytes),
            "max_context": self.max_context(),
            "shortfall": self.shortfall(),
        }
        base["performance"] = {
            "decode_tokens_per_s": 1 / mid,
            "decode_tokens_per_s_range": [1 / low, 1 / high],
            "throughput_tokens_per_s": batch / mid,
            "prefill_tokens_per_s": prompt / p.prefill_s,
            "time_to_first_token_s": p.prefill_s + mid,
            "prefill_path": p.prefill_path,
            "step_seconds": p.decode_parts_s,
        }
        cost = base.get("cost") or {}
        if cost.get("usd_per_hour"):
            cost["usd_per_million_output_tokens"] = cost["usd_per_hour"] / (batch / mid * 3600) * 1e6
        base["placement"] = {
            "engine": "llama.cpp",
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
            "host": {"cpu": self.host.cpu.id, "ram_gib": self.host.ram_gib,
                     "ram_bandwidth_gb_s": self.host.cpu.bandwidth_gb_s, "pcie": self.host.pcie},
        }  # fmt: skip
        base["tradeoff"] = self.tradeoff
        base["commands"] = self.commands
        return base

    def max_context(self) -> int:
        fitting = [row["context"] for row in self.tradeoff if row["fits"]]
        return max(fitting) if fitting else 0


def plan_offload(req: OffloadRequest) -> OffloadResult:
    """Choose the placement (``auto`` or the requested N) and assemble everything the command shows."""
    from moeplan.formats.schemes import parse_scheme
    from moeplan.model.kv import kv_dtype
    from moeplan.sources.catalog import resolve_model

    if req.ram_gib <= 0:
        raise InputError(f"--ram must be a positive number of GiB, not {req.ram_gib}")
    if req.num_gpus < 1:
        raise InputError(f"--num-gpus must be at least 1, not {req.num_gpus}")
    if req.pcie not in ("gen3", "gen4", "gen5"):
        raise InputError(f"--pcie '{req.pcie}' is not one of gen3, gen4, gen5")
    spec = resolve_model(req.model)
    quant = req.quant or default_quant(spec.native_quant)
    est = estimate(
        EstimateRequest(
            model=req.model, gpu=req.gpu, gpu_memory_gib=req.gpu_memory_gib,
            gpu_bandwidth_gb_s=req.gpu_bandwidth_gb_s, num_gpus=req.num_gpus, quant=quant, kv_dtype=req.kv_dtype,
            context=req.context, batch=req.batch, engine="llama.cpp", prompt=req.prompt,
            price_usd_per_hour=req.price_usd_per_hour, gpu_file=req.gpu_file, speed_table=False,
        )
    )  # fmt: skip
    from moeplan.deploy.plan import request_gpu

    gpu = request_gpu(est.request)
    if gpu is None:
        raise InputError("offload needs a GPU: --gpu ID (or --gpu-memory and --gpu-bandwidth)")
    host = Host(gpu, req.num_gpus, req.ram_gib, _host_cpu(req), req.pcie)
    scheme = parse_scheme(quant, spec.native_quant, spec.weights_dtype)
    model = OffloadModel(spec, scheme, host, kv_dtype(req.kv_dtype))
    prompt = est.request.prompt_tokens()
    if req.offload == "auto":
        chosen, tried = model.best(req.context, req.batch, prompt)
    else:
        try:
            n = int(req.offload)
        except ValueError:
            raise InputError(f"--offload-experts '{req.offload}' must be 'auto' or a layer count") from None
        chosen = model.evaluate(n, req.context, req.batch, prompt)
        tried = [chosen]
    limit = spec.arch.max_context or CONTEXT_SEARCH_LIMIT
    rows = []
    for ctx in sorted({c for c in CONTEXTS if c <= limit} | {req.context}):
        best, _ = model.best(ctx, req.batch, min(prompt, ctx))
        rows.append(
            {
                "context": ctx,
                "experts_on_cpu_layers": best.cpu_layers,
                "fits": best.fits,
                "decode_tokens_per_s": 1 / best.decode_s[1] if best.fits else None,
                "vram_bytes_per_gpu": round(best.vram_bytes_per_gpu),
                "ram_bytes": round(best.ram_bytes),
            }
        )
    cmds = commands(spec, quant, chosen, host, req.context, _llama_kv(req.kv_dtype)) if chosen.fits else {}
    return OffloadResult(est, host, quant, chosen, tried, rows, cmds, req.offload)


def _llama_kv(name: str) -> str:
    n = name.strip().lower()
    return {"fp16": "f16", "bf16": "bf16", "fp32": "f32"}.get(n, n)
