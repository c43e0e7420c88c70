"""What to buy or rent: sweep GPU kinds x counts x formats, keep what fits, rank by cost or speed.

For each GPU in the catalogue and each candidate format, the fewest GPUs (1, 2, 4, 8, then 16 and 32 across
nodes) that hold the model at the asked context and batch is found, and that count and twice it are scored:
decode speed (the band of :mod:`moeplan.deploy.speed`), dollars per million output tokens at the catalogue's cloud
price, and the purchase price.  GGUF mixes run under llama.cpp (which splits layers over GPUs), the others
under vLLM; Apple and other unified-memory machines only run llama.cpp, and TPUs only the vLLM formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from moeplan.deploy.engines import engine_profile
from moeplan.deploy.evaluate import compute_dtype, engine_efficiency
from moeplan.deploy.memory import MemoryModel, MemoryRequest, default_parallel
from moeplan.deploy.speed import PerfInputs, SpeedModel
from moeplan.errors import InputError
from moeplan.formats.schemes import Scheme, parse_scheme
from moeplan.hardware.gpus import GpuSpec, load_gpus
from moeplan.model.kv import kv_dtype as kv_name
from moeplan.model.spec import ModelSpec
from moeplan.records import Value
from moeplan.sources.catalog import resolve_model

SortKey = Literal["cost", "purchase", "speed"]
COUNTS = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True, repr=False, eq=False)
class Candidate(Value):
    """One configuration that fits."""

    gpu: GpuSpec
    num_gpus: int
    quant: str
    engine: str
    tp: int
    pp: int
    per_gpu_bytes: float
    usable_bytes: float
    tokens_per_s: float
    tokens_per_s_range: tuple[float, float]
    throughput_tokens_per_s: float
    usd_per_hour: float | None
    usd_per_million_output_tokens: float | None
    purchase_usd: float | None
    ram_gib: float | None = None
    """Hybrid boxes: system RAM holding the experts of ``experts_on_cpu_layers`` layers."""
    host: str | None = None
    experts_on_cpu_layers: int | None = None

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
            },
            "hybrid": None
            if self.ram_gib is None
            else {"ram_gib": self.ram_gib, "host": self.host, "experts_on_cpu_layers": self.experts_on_cpu_layers},
        }


def candidate_formats(spec: ModelSpec, quant: str) -> list[str]:
    """The formats to try: ``any`` = the checkpoint's own, fp8, AWQ 4-bit and two GGUF mixes."""
    if quant != "any":
        return [quant]
    native = spec.native_quant or spec.weights_dtype
    out = [native, "awq-int4", "Q8_0", "Q4_K_M"]
    if not native.startswith("fp8"):
        out.insert(1, "fp8")
    return list(dict.fromkeys(out))


def max_count(gpu: GpuSpec) -> int:
    """GPUs of this kind one deployment may use: 8 per box for cards, one unified-memory machine, else 32."""
    if gpu.kind in ("apple", "soc"):
        return 1
    if gpu.kind in ("consumer", "workstation"):
        return 8
    return 32


def _engine_for(fmt: Scheme, gpu: GpuSpec) -> str | None:
    """The engine that runs ``fmt`` on ``gpu``, or None where no engine can.

    llama.cpp: NVIDIA, AMD, Apple and unified-memory SoCs (not Gaudi or TPU).  vLLM: fp8 weights need fp8
    units (AMD, Gaudi) or an Ampere-or-newer NVIDIA GPU (W8A16 Marlin kernels); GPTQ/AWQ/MXFP4 kernels need
    NVIDIA Turing or newer (not V100) or AMD Instinct MI300 and later; Apple machines run no vLLM.
    """
    gguf = fmt.is_gguf
    nvidia, amd = gpu.vendor == "nvidia", gpu.vendor == "amd"
    if gguf:
        return "llama.cpp" if nvidia or amd or gpu.kind in ("apple", "soc") or gpu.vendor == "apple" else None
    if gpu.kind in ("apple", "soc") or gpu.vendor == "apple":
        return None
    formats = {fmt.base, *fmt.overrides.values()} if fmt.quantized else {fmt.base}
    has = set(gpu.tflops)
    for f in formats:
        if f.startswith("fp8") and not ("fp8" in has or (nvidia and "bf16" in has)):
            return None
        if f.startswith(("gptq", "awq", "mxfp4", "nvfp4")):
            turing_plus = nvidia and not gpu.id.startswith("v100")
            if not (turing_plus or (amd and "fp8" in has)):
                return None
    return "vllm"


RAM_SIZES = (64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536)
DESKTOP_HOST, SERVER_HOST = "ryzen-9-9950x", "epyc-9654"


def hybrid_candidate(spec: ModelSpec, gpu: GpuSpec, context: int, batch: int) -> Candidate | None:
    """One GPU plus the least RAM (desktop DDR5 up to 192 GB, else a 12-channel server) that holds the rest.

    The fastest placement the GPU allows decides how much RAM the experts need; the smallest standard size
    that holds them is bought, with the platform that takes that much.
    """
    from moeplan.deploy.offload import Host, OffloadModel, usable_ram_bytes
    from moeplan.hardware.hosts import ram_usd_per_gb, resolve_cpu
    from moeplan.plans.offload import default_quant

    quant = default_quant(spec.native_quant)
    scheme = parse_scheme(quant, spec.native_quant, spec.weights_dtype)
    try:
        desktop, server = resolve_cpu(DESKTOP_HOST), resolve_cpu(SERVER_HOST)
    except InputError:
        return None
    probe = OffloadModel(spec, scheme, Host(gpu, 1, float(RAM_SIZES[-1]), server), "fp16")
    first, _ = probe.best(context, batch, min(context, 512))
    if not first.fits_vram:
        return None  # the GPU cannot hold even the non-expert part: no amount of RAM helps
    ram = next((r for r in RAM_SIZES if usable_ram_bytes(r) >= first.ram_bytes), None)
    if ram is None:
        return None
    cpu = server if ram > 192 else desktop
    model = OffloadModel(spec, scheme, Host(gpu, 1, float(ram), cpu), "fp16")
    best, _ = model.best(context, batch, min(context, 512))
    if not best.fits:
        return None
    price = ram_usd_per_gb("DDR5-RDIMM" if ram > 192 else "DDR5-UDIMM")
    ram_cost = ram * 2**30 / 1e9 * price[0] if price else None  # GiB -> GB
    purchase = None
    if gpu.purchase_usd is not None and ram_cost is not None:
        purchase = gpu.purchase_usd.approx + ram_cost + (cpu.price_usd.approx if cpu.price_usd else 0.0)
    low, mid, high = best.decode_s
    return Candidate(
        gpu, 1, quant, "llama.cpp", 1, 1, best.vram_bytes_per_gpu, gpu.usable_memory_bytes, 1 / mid,
        (1 / low, 1 / high), batch / mid, None, None, purchase, float(ram), cpu.name, best.cpu_layers,
    )  # fmt: skip


def recommend(
    model: str,
    context: int = 8192,
    batch: int = 1,
    quant: str = "any",
    max_gpus: int = 32,
    budget_usd: float | None = None,
    min_tokens_per_s: float | None = None,
    sort: SortKey = "cost",
    gpu_file: str | None = None,
    kv_dtype: str = "auto",
    hybrid: bool = True,
    gpus: tuple[str, ...] = (),
) -> tuple[ModelSpec, list[Candidate]]:
    """Every fitting configuration, best first by ``sort``."""
    if context < 1 or batch < 1:
        raise InputError("--context and --batch must be at least 1")
    if max_gpus < 1:
        raise InputError(f"--max-gpus must be at least 1, not {max_gpus}")
    if sort not in ("cost", "purchase", "speed"):
        raise InputError(f"--sort '{sort}' is not one of cost, purchase, speed")
    spec = resolve_model(model)
    arch = spec.arch
    schemes = [(q, parse_scheme(q, spec.native_quant, spec.weights_dtype)) for q in candidate_formats(spec, quant)]
    out: list[Candidate] = []
    fits_one: set[str] = set()  # GPUs one of which holds the model (before the budget and speed filters)
    from moeplan.hardware.gpus import resolve_gpu

    only = {resolve_gpu(g, gpu_file).id for g in gpus}
    catalogue = [g for g in load_gpus(gpu_file) if not only or g.id in only]
    for gpu in catalogue:
        usable = gpu.usable_memory_bytes
        for label, scheme in schemes:
            engine_name = _engine_for(scheme, gpu)
            if engine_name is None:
                continue
            engine = engine_profile(engine_name)
            auto = "fp16" if engine_name == "llama.cpp" else "bf16"
            kv = kv_name(auto if kv_dtype.strip().lower() == "auto" else kv_dtype)
            dtype = compute_dtype(scheme, gpu)
            found = 0
            for n in COUNTS:
                if n > min(max_gpus, max_count(gpu)) or (found and n > 2 * found):
                    break
                try:
                    par = default_parallel(arch, n, engine)
                    mm = MemoryModel(arch, MemoryRequest(scheme, engine, usable, par, context, batch, kv))
                except InputError:
                    continue
                g = mm.gpu(context, batch)
                if g.total_bytes > usable:
                    continue
                found = found or n
                if n == 1:
                    fits_one.add(gpu.id)
                sm = SpeedModel(mm, PerfInputs(gpu, engine_efficiency(engine_name, gpu)[0], dtype))
                steps = [sm.decode_step(context, batch, s) for s in ("low", "expected", "high")]
                tps = 1 / steps[1].seconds
                price = gpu.cloud_usd_per_hour.expected if gpu.cloud_usd_per_hour else None
                per_hour = n * price if price is not None else None
                per_m = per_hour / (batch * tps * 3600) * 1e6 if per_hour is not None else None
                purchase = n * gpu.purchase_usd.approx if gpu.purchase_usd else None
                cand = Candidate(
                    gpu, n, label, engine_name, par.tp, par.pp, g.total_bytes, usable, tps,
                    (1 / steps[0].seconds, 1 / steps[2].seconds), batch * tps, per_hour, per_m, purchase,
                )  # fmt: skip
                if budget_usd is not None and (purchase is None or purchase > budget_usd):
                    continue
                if min_tokens_per_s is not None and tps < min_tokens_per_s:
                    continue
                out.append(cand)
    if hybrid and spec.arch.moe is not None:  # one GPU + RAM, wherever one GPU alone is too small
        for gpu in catalogue:
            if gpu.kind in ("consumer", "workstation") and gpu.id not in fits_one:
                box = hybrid_candidate(spec, gpu, context, batch)
                if box is None:
                    continue
                if budget_usd is not None and (box.purchase_usd is None or box.purchase_usd > budget_usd):
                    continue
                if min_tokens_per_s is not None and box.tokens_per_s < min_tokens_per_s:
                    continue
                out.append(box)
    inf = float("inf")
    if sort == "cost":
        out.sort(key=lambda c: (c.usd_per_million_output_tokens or inf, -c.tokens_per_s))
    elif sort == "purchase":
        out.sort(key=lambda c: (c.purchase_usd or inf, -c.tokens_per_s))
    else:
        out.sort(key=lambda c: -c.tokens_per_s)
    return spec, out
