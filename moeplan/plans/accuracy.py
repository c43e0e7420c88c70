"""moeplan's estimates against real measurements: one record in, the prediction and its error out.

Records are YAML mappings (see ``benchmarks/measurements.yaml`` for the kinds and fields).  The error of a
figure is ``predicted / measured - 1``; a speed is judged by whether the measurement falls inside the
predicted (low, high) band; a fit statement by whether the verdict agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from moeplan.deploy.engines import engine_profile
from moeplan.deploy.evaluate import compute_dtype
from moeplan.deploy.memory import MemoryModel, MemoryRequest, Parallel, default_parallel
from moeplan.deploy.speed import SPEEDS, PerfInputs, SpeedModel
from moeplan.errors import MoeplanError, SpecError
from moeplan.files import read_yaml
from moeplan.formats.schemes import parse_scheme, quantized_tensors
from moeplan.hardware.gpus import GpuSpec, resolve_gpu
from moeplan.model.kv import kv_bytes_per_token, kv_cache_bytes, kv_dtype
from moeplan.records import Value
from moeplan.sources.catalog import resolve_model

UNITS = {"B": 1.0, "GiB": 2.0**30, "MiB": 2.0**20, "GB": 1e9, "MB": 1e6, "tokens": 1.0, "tokens/s": 1.0}


@dataclass(frozen=True, repr=False, eq=False)
class Check(Value):
    """One record's outcome."""

    id: str
    kind: str
    label: str
    measured: float
    predicted: float
    low: float | None = None
    high: float | None = None
    ok: bool = True
    unit: str = ""
    source: str = ""

    @property
    def error(self) -> float:
        """predicted / measured - 1 (0 for boolean checks that agree, 1 for those that do not)."""
        if self.kind == "fit":
            return 0.0 if self.ok else 1.0
        return self.predicted / self.measured - 1


def load_records(path: Path) -> list[dict[str, Any]]:
    data = read_yaml(path)
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise SpecError(f"{path}: expected a YAML list of measurement records")
    return data


def _bytes(value: float | str, unit: str | None = None) -> float:
    if isinstance(value, str):
        number, _, unit = value.partition(" ")
        value = float(number)
    return float(value) * UNITS[unit or "B"]


def record_gpu(r: dict[str, Any]) -> GpuSpec:
    """The record's GPU: the catalogue entry if its id resolves, else one built from ``gpu_figures``."""
    if r.get("gpu"):
        try:
            return resolve_gpu(str(r["gpu"]))
        except MoeplanError:
            if not r.get("gpu_figures"):
                raise
    f = r["gpu_figures"]
    tflops = {k.removesuffix("_tflops"): v for k, v in f.items() if k.endswith("_tflops")}
    return GpuSpec(
        id=str(r.get("gpu") or "record-gpu"),
        name=str(r.get("gpu_desc") or r.get("gpu") or "GPU of the record"),
        vendor="record",
        kind="custom",
        memory_gib=f["memory_gib"],
        usable_memory_gib=f.get("usable_memory_gib", f["memory_gib"] * 0.99),
        usable_memory_note="from the record",
        bandwidth_gb_s=f["bandwidth_gb_s"],
        tflops=tflops,
        sources=(str(r.get("gpu_source", "record")),),
    )


def _memory_model(r: dict[str, Any], gpu: GpuSpec | None) -> MemoryModel:
    spec = resolve_model(r["model"])
    engine = engine_profile(r.get("engine", "vllm"))
    scheme = parse_scheme(r.get("quant") or spec.native_quant or spec.weights_dtype, spec.native_quant)
    n = int(r.get("num_gpus", 1))
    par = Parallel(int(r["tp"]), 1, n // int(r["tp"])) if r.get("tp") else default_parallel(spec.arch, n, engine)
    usable = gpu.usable_memory_bytes if gpu else 0.0
    ctx, batch = int(r.get("context") or 1024), int(r.get("batch") or 1)
    req = MemoryRequest(scheme, engine, usable, par, ctx, batch, kv_dtype(r.get("kv_dtype", "bf16")))
    return MemoryModel(spec.arch, req)


_KINDS = {"weights_memory": "weights"}


def check(r: dict[str, Any]) -> Check:
    """Evaluate one record."""
    kind, rid = _KINDS.get(r["kind"], r["kind"]), str(r["id"])
    if kind == "weights" and r.get("engine") == "llama.cpp":
        kind = "gguf_size"  # llama.cpp prints the model's tensor bytes: the whole file, on any number of GPUs
    label = f"{r['model']} {r.get('quant', '')} {r.get('engine', '')}".strip()
    src = str(r.get("source", ""))
    if kind == "weights":
        g = _memory_model(r, None).gpu(1, 1)
        measured = _bytes(r["value"], r["unit"])
        return Check(rid, kind, label, measured, float(g.weights_bytes), unit=r["unit"], source=src)
    if kind == "gguf_size":
        spec = resolve_model(r["model"])
        size = sum(b for _, _, b in quantized_tensors(spec.arch, parse_scheme(r["quant"])))
        return Check(rid, kind, label, _bytes(r["value"], r["unit"]), float(size), unit=r["unit"], source=src)
    if kind == "kv_tokens":
        spec = resolve_model(r["model"])
        per = kv_bytes_per_token(spec.arch, kv_dtype(r.get("kv_dtype", "bf16")), r.get("engine", "vllm"))
        return Check(rid, kind, label, float(r["value"]), _bytes(r["kv_bytes"]) / per, unit="tokens", source=src)
    if kind == "kv_total":
        spec = resolve_model(r["model"])
        engine = r.get("engine", "vllm")
        dtype = kv_dtype(r.get("kv_dtype", "bf16"))
        ctx, batch = int(r["context"]), int(r.get("batch", 1))
        if engine == "llama.cpp":
            predicted = kv_cache_bytes(spec.arch, ctx, batch, dtype, engine, ubatch=int(r.get("ubatch", 512)))
        else:
            predicted = kv_bytes_per_token(spec.arch, dtype, engine) * ctx * batch
        return Check(rid, kind, label, _bytes(r["value"], r["unit"]), predicted, unit=r["unit"], source=src)
    if kind in ("decode_speed", "throughput"):
        gpu = record_gpu(r)
        mm = _memory_model(r, gpu)
        engine = r.get("engine", "vllm")
        sm = SpeedModel(mm, PerfInputs(gpu, SPEEDS[engine], compute_dtype(mm.req.scheme, gpu)))
        ctx, batch = int(r["context"]), int(r.get("batch", 1))
        per = batch if kind == "throughput" else 1  # throughput: all sequences; decode_speed: one sequence
        lo, mid, hi = (per / sm.decode_step(ctx, batch, s).seconds for s in ("low", "expected", "high"))
        measured = float(r["value"])
        ok = lo <= measured <= hi
        label += f" on {gpu.name}" + (f" x{r['num_gpus']}" if int(r.get("num_gpus", 1)) > 1 else "")
        label += f", batch {batch}" if batch > 1 else ""
        return Check(rid, kind, label, measured, mid, lo, hi, ok, "tokens/s", src)
    if kind == "fit":
        gpu = record_gpu(r)
        mm = _memory_model(r, gpu)
        ctx = int(r.get("context", 8192))
        fits = mm.fits(ctx, int(r.get("batch", 1)))
        label += f" on {r.get('num_gpus', 1)} x {gpu.name}"
        return Check(rid, kind, label, float(bool(r["value"])), float(fits), ok=fits == bool(r["value"]), source=src)
    if kind == "offload_speed":
        return _offload_check(r, rid, label, src)
    raise SpecError(f"record {rid}: unknown kind '{kind}'")


def _offload_check(r: dict[str, Any], rid: str, label: str, src: str) -> Check:
    """Decode speed of a CPU+GPU (or CPU-only) run with experts in RAM, against the offload model's band."""
    from moeplan.deploy.offload import Host, OffloadModel
    from moeplan.hardware.hosts import custom_host, resolve_cpu

    host_name = r.get("host")
    if not host_name:
        raise SpecError(f"record {rid}: no host (RAM bandwidth) to score it against")
    if str(host_name).startswith("bw:"):
        cpu = custom_host(float(str(host_name)[3:]), r.get("cores"))
    else:
        cpu = resolve_cpu(str(host_name))
        if r.get("cores"):
            cpu = replace(cpu, cores=int(r["cores"]))
        if r.get("sockets"):
            cpu = replace(cpu, sockets=int(r["sockets"]))
    gpu = record_gpu(r) if (r.get("gpu") or r.get("gpu_figures")) and r.get("num_gpus", 1) else None
    spec = resolve_model(r["model"])
    host = Host(gpu, int(r.get("num_gpus") or 0) if gpu else 0, 4096.0, cpu)
    model = OffloadModel(spec, parse_scheme(r["quant"], spec.native_quant), host, "fp16")
    n = spec.arch.num_layers if r.get("experts_on_cpu") in ("all", None) else int(r["experts_on_cpu"])
    ctx = max(1, int(r.get("context") or 128))
    p = model.evaluate(n, ctx, int(r.get("batch") or 1), 512)
    low, mid, high = (1 / t for t in p.decode_s)
    measured = float(r["value"])
    where = f"{r.get('num_gpus', 1)} x {gpu.name}" if gpu else "CPU only"
    label = f"{r['model']} {r['quant']} {r.get('engine', '')}, {where} + {cpu.name}, experts of {n} layers in RAM"
    return Check(rid, "offload_speed", label, measured, mid, low, high, low <= measured <= high, "tokens/s", src)
