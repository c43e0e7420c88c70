"""moeplan's estimates against real measurements: one record in, the prediction and its error out.

Each record is resolved and evaluated by the same pipeline as ``moeplan estimate`` (and ``offload``), so the
harness scores what users run.

Records are YAML mappings (see ``benchmarks/measurements.yaml`` for the kinds and fields).  The error of a
figure is ``predicted / measured - 1``; a speed is judged by whether the measurement falls inside the
predicted (low, high) band; a fit statement by whether the verdict agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from moeplan.deploy.deployment import Deployment, EstimateRequest, Traffic
from moeplan.deploy.engines import engine
from moeplan.deploy.evaluate import (
    evaluate,
    fits,
    headline,
    offload_decode_seconds,
    offload_prefill_seconds,
    value_span,
)
from moeplan.deploy.memory import MemoryModel
from moeplan.deploy.resolve import resolve
from moeplan.deploy.speed import SpeedModel
from moeplan.errors import MoeplanError, SpecError
from moeplan.files import read_yaml
from moeplan.hardware.gpus import GpuSpec, resolve_gpu
from moeplan.records import Value

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
    stage: str = ""
    """The stage the record scores (see :data:`STAGES`)."""

    @property
    def within_1_5x(self) -> bool:
        """Inside the band, or the expected value within 1.5x of the measurement either way (2x for serving
        TTFT, :data:`TOLERANCE`)."""
        f = TOLERANCE.get(self.kind, 1.5)
        return self.ok or (self.measured > 0 and 1 / f <= self.predicted / self.measured <= f)

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


ENGINE_OF_RECORD = {"tensorrt-llm+dynamo": "tensorrt-llm"}
"""Engines moeplan scores as another: Dynamo runs TensorRT-LLM workers."""
STAGES = {
    "decode_speed": "decode", "throughput": "decode", "prefill_speed": "prefill", "ttft": "time to first token",
    "offload_speed": "offload decode", "offload_prefill": "offload prefill",
    "serving_throughput": "serving throughput per GPU", "serving_ttft": "serving TTFT",
    "prefill_load": "prefill instance under load",
}  # fmt: skip
TOLERANCE = {"serving_ttft": 2.0}
"""The factor within which an expected value counts as close (1.5 unless named here)."""


def stage_of(r: dict[str, Any]) -> str:
    """The stage a speed record scores: decode on one GPU or several, prefill, TTFT, offload decode or prefill."""
    stage = STAGES.get(str(r["kind"]), "")
    if stage == "decode" and int(r.get("num_gpus") or 1) > 1:
        return "decode, several GPUs"
    return "decode, one GPU" if stage == "decode" else stage


def record_quant(r: dict[str, Any], gpu: GpuSpec | None) -> str | None:
    """The record's weight format as moeplan names it: serving benchmarks (InferenceX) label both NVFP4 and
    MXFP4 checkpoints ``fp4`` -- NVFP4 on NVIDIA GPUs (DeepSeek-R1-0528-FP4), MXFP4 on AMD ones (Kimi-K2.5-MXFP4,
    AMD's own checkpoints) -- while moeplan's ``fp4`` is bitsandbytes' FP4."""
    quant = r.get("quant")
    if quant is not None and str(quant).lower() == "fp4" and r.get("kind") == "serving":
        return "mxfp4" if gpu is not None and gpu.vendor == "amd" else "nvfp4"
    return None if quant is None else str(quant)


def deployment(r: dict[str, Any], gpu: GpuSpec | None, **changes: Any) -> Deployment:
    """The record's deployment, resolved as ``estimate`` resolves a request (the engine's published factors,
    never a calibration profile on this machine)."""
    eng = str(r.get("engine", "vllm"))
    eng = ENGINE_OF_RECORD.get(eng, eng)
    request = EstimateRequest(
        model=str(r["model"]),
        engine=eng,
        quant=record_quant(r, gpu),
        num_gpus=int(r.get("num_gpus") or 1),
        tp=int(r["tp"]) if r.get("tp") else None,
        ep=int(r["ep"]) if r.get("ep") else (1 if r.get("dp_attention") else None),
        dp_attention=bool(r.get("dp_attention")),
        batch_overlap=bool(r.get("two_batch_overlap")),
        mtp=bool(r.get("speculative_tokens")),
        mtp_drafts=int(r["speculative_tokens"]) if r.get("speculative_tokens") else None,
        kv_dtype=str(r.get("kv_dtype", "auto")),
        context=int(r.get("context") or 1024),
        batch=int(r.get("batch") or 1),
        ubatch=int(r["ubatch"]) if r.get("ubatch") else None,
        recv_interval=int(r.get("scheduler_recv_interval") or 1),
        kt_prefill_threshold=int(r["kt_prefill_threshold"]) if r.get("kt_prefill_threshold") else None,
        cpu_repack=bool(r.get("rtr")) if eng == "ik_llama.cpp" else None,
        backend=str(r.get("backend") or "auto").lower()
        if eng in ("llama.cpp", "ik_llama.cpp") and r.get("backend") != "CPU"
        else "auto",
        use_calibration=False,
    )
    return resolve(replace(request, **changes), gpu=gpu, fewest=False)


_KINDS = {"weights_memory": "weights"}


def check(r: dict[str, Any]) -> Check:
    """Evaluate one record (speed records carry their stage)."""
    c = _check(r)
    return replace(c, stage=stage_of(r)) if r["kind"] in STAGES else c


def _check(r: dict[str, Any]) -> Check:
    kind, rid = _KINDS.get(r["kind"], r["kind"]), str(r["id"])
    if kind == "weights" and r.get("engine") == "llama.cpp":
        kind = "gguf_size"  # llama.cpp prints the model's tensor bytes: the whole file, on any number of GPUs
    label = f"{r['model']} {r.get('quant', '')} {r.get('engine', '')}".strip()
    src = str(r.get("source", ""))
    if kind == "weights":
        predicted = float(evaluate(deployment(r, None)).memory.per_gpu_weights_bytes)
        return Check(rid, kind, label, _bytes(r["value"], r["unit"]), predicted, unit=r["unit"], source=src)
    if kind == "gguf_size":
        size = evaluate(deployment(r, None, engine="llama.cpp", num_gpus=1, tp=None)).memory.weights_bytes
        return Check(rid, kind, label, _bytes(r["value"], r["unit"]), float(size), unit=r["unit"], source=src)
    if kind == "kv_tokens":  # the token count the engine's log states (`log`: how it computes it)
        from moeplan.deploy.kv_cache import logged_kv_tokens

        d = deployment(r, None)
        log, ctx = str(r.get("log", "per_token")), int(r.get("context") or 0)
        tokens = logged_kv_tokens(d.spec.arch, d.kv_dtype, d.engine, _bytes(r["kv_bytes"]), log, ctx, d.batched_tokens)
        return Check(rid, kind, label, float(r["value"]), tokens, unit="tokens", source=src)
    if kind == "kv_total":
        predicted = float(evaluate(deployment(r, None)).memory.kv_cache_bytes)
        return Check(rid, kind, label, _bytes(r["value"], r["unit"]), predicted, unit=r["unit"], source=src)
    if kind in ("decode_speed", "throughput"):
        gpu = record_gpu(r)
        h = headline(deployment(r, gpu))
        batch = int(r.get("batch", 1))
        per = batch if kind == "throughput" else 1  # throughput: all sequences; decode_speed: one sequence
        lo, mid, hi = per * h.tokens_per_s_range[0], per * h.tokens_per_s, per * h.tokens_per_s_range[1]
        measured = float(r["value"])
        ok = lo <= measured <= hi
        label += f" on {gpu.name}" + (f" x{r['num_gpus']}" if int(r.get("num_gpus", 1)) > 1 else "")
        label += f", batch {batch}" if batch > 1 else ""
        return Check(rid, kind, label, measured, mid, lo, hi, ok, "tokens/s", src)
    if kind == "prefill_speed" and r.get("backend") == "CPU":
        return _offload_check(r, rid, label, src, prefill=True)
    if kind in ("prefill_speed", "ttft"):
        return _prefill_check(r, rid, label, src)
    if kind == "prefill_load":
        return prefill_load_check(r, rid, label, src)
    if kind == "offload_prefill":
        return _offload_check(r, rid, label, src, prefill=True)
    if kind == "fit":
        gpu = record_gpu(r)
        ok = fits(deployment(r, gpu, context=int(r.get("context", 8192))))
        label += f" on {r.get('num_gpus', 1)} x {gpu.name}"
        return Check(rid, kind, label, float(bool(r["value"])), float(ok), ok=ok == bool(r["value"]), source=src)
    if kind == "offload_speed":
        return _offload_check(r, rid, label, src)
    raise SpecError(f"record {rid}: unknown kind '{kind}'")


def _offload_check(r: dict[str, Any], rid: str, label: str, src: str, prefill: bool = False) -> Check:
    """Decode (or, with ``prefill``, prompt processing) speed of a CPU+GPU (or CPU-only) run with experts in RAM,
    against the offload model's band."""
    from moeplan.deploy.offload import Host
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
    figures = r.get("cpu_figures") or {}  # the stated CPU model's spec, for a host given as a memory configuration
    if figures:
        cores = int(r.get("cores") or figures["cores"])
        per_cycle, isa = float(figures["fp32_per_cycle"]), tuple(figures.get("isa", ()))
        ghz = float(figures["ghz"])
        cpu = replace(cpu, cores=cores, all_core_ghz=ghz, fp32_gflops_per_core_cycle=per_cycle, isa=isa)
    gpu = record_gpu(r) if (r.get("gpu") or r.get("gpu_figures")) and r.get("num_gpus", 1) else None
    if prefill and gpu is not None and not gpu.tflops:
        raise SpecError(f"record {rid}: a prefill needs the GPU's tensor peaks (gpu_figures ..._tflops)")
    ctx = max(1, int(r.get("context") or 128))
    engine = r["engine"] if r.get("engine") in ("ktransformers", "ik_llama.cpp") else "llama.cpp"
    prompt = int(r.get("prompt") or min(512, ctx))
    ctx = max(ctx, prompt)
    d = deployment(r, gpu, engine=engine, kv_dtype="auto", context=ctx, prompt=prompt, tp=None,
                   num_gpus=int(r.get("num_gpus") or 1) if gpu else None)  # fmt: skip
    host = Host(gpu, int(r.get("num_gpus") or 0) if gpu else 0, 4096.0, cpu, str(r.get("pcie") or "gen4"))
    n = d.spec.arch.num_layers if r.get("experts_on_cpu") in ("all", None) else int(r["experts_on_cpu"])
    if prefill:
        low, mid, high = (prompt / t for t in offload_prefill_seconds(d, host, n))
    else:
        low, mid, high = (1 / t for t in offload_decode_seconds(d, host, n))
    measured = float(r["value"])
    where = f"{r.get('num_gpus', 1)} x {gpu.name}" if gpu else "CPU only"
    label = f"{r['model']} {r['quant']} {r.get('engine', '')}, {where} + {cpu.name}, experts of {n} layers in RAM"
    if prefill:
        label += f", {prompt:,}-token prompt" + (f", ubatch {r['ubatch']}" if r.get("ubatch") else "")
    kind = "offload_prefill" if prefill else "offload_speed"
    return Check(rid, kind, label, measured, mid, low, high, low <= measured <= high, "tokens/s", src)


def _prefill_check(r: dict[str, Any], rid: str, label: str, src: str) -> Check:
    """Prompt processing of ``prompt`` tokens (llama-bench ``pp512``, an engine's prefill or time to first
    token), against the predicted prefill band."""
    gpu = record_gpu(r)
    prompt = int(r["prompt"])
    d = deployment(r, gpu, context=max(prompt, int(r.get("context") or 0)), prompt=prompt)
    perf = evaluate(d).performance
    if perf is None:
        raise SpecError(f"record {rid}: no prefill prediction for it")
    low, high = perf.prefill_tokens_per_s_range
    mid = perf.prefill_tokens_per_s
    if r["kind"] == "ttft":  # seconds: the band's slow end is the long time
        mid, (low, high) = perf.time_to_first_token_s, perf.time_to_first_token_s_range
    measured = float(r["value"])
    backend = f" {r['backend']}" if r.get("backend") else ""
    label += f"{backend} on {gpu.name}" + (f" x{r['num_gpus']}" if int(r.get("num_gpus", 1)) > 1 else "")
    label += f", {prompt:,}-token prompt" + (f", ubatch {r['ubatch']}" if r.get("ubatch") else "")
    ok = low <= measured <= high
    unit = "s" if r["kind"] == "ttft" else "tokens/s"
    return Check(rid, str(r["kind"]), label, measured, mid, low, high, ok, unit, src)


def prefill_load_check(r: dict[str, Any], rid: str, label: str, src: str) -> Check:
    """A prefill instance kept busy (``num_gpus`` GPUs, its TP/EP/DP attention, ``prompt``-token prompts, passes
    of ``pass_tokens`` as the engine's flag takes them): input tokens/s per GPU, ``I / (GPUs x`` the prompt's
    share of a full pass ``)`` (:meth:`~moeplan.deploy.speed.SpeedModel.loaded_prefill_s`), each end of the band
    from its scenario."""
    gpu = record_gpu(r)
    prompt = int(r["prompt"])
    d = deployment(r, gpu, context=prompt, prompt=prompt, batch=1,
                   ubatch=int(r["pass_tokens"]) if r.get("pass_tokens") else None)  # fmt: skip
    sm = SpeedModel(MemoryModel(d))
    n = d.layout.num_gpus
    low, mid, high = (prompt / sm.loaded_prefill_s(prompt, d.pass_tokens, s) / n for s in SCENARIO_NAMES)
    lo, hi = value_span(low, mid, high)
    measured = float(r["value"])
    layout = f"TP{d.layout.tp}" + (f" EP{d.layout.ep}" if d.layout.ep > 1 else "")
    layout += " DP attention" if d.layout.dp_attention else ""
    label += f" on {n} x {gpu.name} ({layout}), {prompt:,}-token prompts, {d.pass_tokens:,} tokens a pass"
    return Check(rid, "prefill_load", label, measured, mid, lo, hi, lo <= measured <= hi, "tokens/s per GPU", src)


def beyond_roofline(r: dict[str, Any]) -> str | None:
    """Why a prefill or TTFT record cannot be what it says, or None: a prompt processed faster than the stated
    GPUs' dense peak at the compute dtype allows (``prompt x FLOPs per token / (GPUs x peak)``, attention
    included) was run on more GPUs than stated, or with cached prefixes -- a misstated layout, not a speed."""
    if r.get("kind") not in ("prefill_speed", "ttft") or r.get("backend") == "CPU" or not r.get("gpu"):
        return None
    from moeplan.deploy.kernels import tensor_peak

    gpu = record_gpu(r)
    prompt = int(r["prompt"])
    d = deployment(r, gpu, context=max(prompt, int(r.get("context") or 0)), prompt=prompt)
    result = evaluate(d)
    if result.flops is None or result.performance is None:
        return None
    peak = tensor_peak(gpu, result.performance.compute_dtype)[0] * int(r.get("num_gpus") or 1)
    fastest_s = prompt * result.flops.prefill_per_token / peak
    measured_s = float(r["value"]) if r["kind"] == "ttft" else prompt / float(r["value"])
    if measured_s < fastest_s:
        where = f"{r.get('num_gpus') or 1} x {gpu.id}'s {result.performance.compute_dtype} peak"
        return (
            f"{prompt:,} tokens in {measured_s * 1e3:.0f} ms is faster than {where} allows ({fastest_s * 1e3:.0f} ms)"
        )
    return None


def serving_skip(r: dict[str, Any]) -> str | None:
    """Why a serving record cannot be scored, or None."""
    if r.get("speculative") is True and not r.get("speculative_tokens"):
        return "speculative decoding with a draft model or a draft count not stated"
    if not r.get("num_gpus"):
        return "GPU count and layout not stated"
    if not r.get("concurrency"):
        return "a request-rate burst, not a steady load"
    if r.get("disaggregated") and not r.get("decode_workers"):
        return "disaggregated prefill/decode without its instances stated"
    if "tbo" in str(r.get("quote", "")).lower():
        return "two-batch overlap (TBO), which moeplan does not model"
    if "not part of the official" in str(r.get("notes", "")):
        return "an experimental sweep its publisher keeps out of its official results"
    return None


def serving_arrivals(r: dict[str, Any]) -> str:
    """How a load generator's clients arrive: ``waves`` for fixed lengths (``--random-range-ratio 1``, or a ratio
    not stated: the generators' fixed ISL/OSL with ``--ignore-eos``), ``poisson`` where lengths vary (a ratio
    below 1): each client's cycle then differs from the others' by up to ``(1 - ratio) x O`` decode steps, the
    waves drift apart over the run and prompts arrive spread out as in a steady closed loop.  Speculative decoding
    (a stated draft count) drifts them too, at fixed lengths: each step emits one token plus the drafts accepted,
    a random number, so the steps a request takes vary from client to client (SGLang's Qwen3.5 runs at 16 clients
    of 8K prompts, benchmarks/serving_measurements.yaml S1001-S1022: median TTFT 0.11-0.45 s, a single request's
    barely more, where a wave of 16 prompts would queue them for ~1 s; a rule set after those rows were read)."""
    ratio = r.get("range_ratio")
    if r.get("speculative") and r.get("speculative_tokens"):
        return "poisson"
    return "waves" if ratio is None or float(ratio) >= 1.0 else "poisson"


def mean_length(r: dict[str, Any], key: str) -> int:
    """A load generator's mean prompt (``key`` isl) or output (osl) length: the random dataset of vLLM's and
    SGLang's benchmark_serving draws each length uniformly from ``[ratio x L, L]`` (``--random-range-ratio``), so
    the mean is ``L x (1 + ratio) / 2`` -- InferenceX's 1,024/1,024 at ratio 0.8 sends 922/922 on average, and its
    throughput counts those tokens; fixed lengths (ratio 1 or not stated) are ``L``."""
    ratio = r.get("range_ratio")
    n = int(r[key])
    return round(n * (1 + float(ratio)) / 2) if ratio is not None and float(ratio) < 1 else n


def lengths(r: dict[str, Any]) -> str:
    """A record's prompt/output lengths as its source states them, with the mean scored where they vary."""
    text = f"{int(r['isl']):,}/{int(r['osl']):,}"
    if mean_length(r, "isl") != int(r["isl"]) or mean_length(r, "osl") != int(r["osl"]):
        text += f" (mean {mean_length(r, 'isl'):,}/{mean_length(r, 'osl'):,})"
    return text


def prompts_per_client(r: dict[str, Any]) -> float | None:
    """Requests each client of a load generator sends in the run: ``num_prompts / concurrency``, else the record's
    ``prompts_per_client`` (from its client script: InferenceX's ``--num-prompts $((CONC * 10))``)."""
    conc = r.get("concurrency")
    if not conc:
        return None
    if r.get("num_prompts"):
        return max(1.0, float(r["num_prompts"]) / float(conc))
    return float(r["prompts_per_client"]) if r.get("prompts_per_client") else None


def instance_cap(r: dict[str, Any], prefix: str, ranks: int) -> int | None:
    """The requests one ``prefix`` (prefill or decode) instance runs at once, from the launch config's
    ``{prefix}_max_batch_size`` (TensorRT-LLM's, per rank under attention DP) or ``{prefix}_max_running_requests``
    (SGLang's, for the instance), as the engine counts it: None where the record states none."""
    cap = r.get(f"{prefix}_max_batch_size") or r.get(f"{prefix}_max_running_requests")
    if not cap:
        return None
    eng = str(r.get("engine", "vllm"))
    per_rank = engine(ENGINE_OF_RECORD.get(eng, eng)).max_running_per_rank
    return int(cap) * (ranks if per_rank else 1)


SCENARIO_NAMES = ("low", "expected", "high")
"""The band's ends and its middle, in the order the checks read them."""


def span(a: float, expected: float, b: float) -> tuple[float, float, float]:
    """A serving figure's band over the three scenarios, lowest to highest, and its expected value: under a closed
    loop the ends need not order as the scenarios do (slower decode steps send prompts to the prefill less often,
    so the pessimistic scenario can wait less for its first token)."""
    lo, hi = value_span(a, expected, b)
    return lo, expected, hi


def split_checks(r: dict[str, Any], gpu: GpuSpec | None, traffic: Traffic) -> list[Check]:
    """A disaggregated run (``prefill_workers`` instances of ``prefill_tp`` GPUs hand their prompts to
    ``decode_workers`` instances of ``decode_tp``, each with its own EP and DP attention) against
    :class:`~moeplan.deploy.serving.DisaggregatedServingModel`: input + output tokens/s over all its GPUs, and the
    median TTFT (the split has no model of the run's first burst, which a mean carries)."""
    from moeplan.deploy.serving import DisaggregatedServingModel

    isl, osl = traffic.isl, traffic.osl

    def side(prefix: str) -> Deployment:
        tp = int(r[f"{prefix}_tp"])
        ep = int(r.get(f"{prefix}_ep") or 1)
        dpa = bool(r.get(f"{prefix}_dp_attention"))
        return deployment(r, gpu, context=isl + osl, prompt=isl, batch=1, num_gpus=tp, tp=tp, ep=ep,
                          dp_attention=dpa, max_running=instance_cap(r, prefix, tp if dpa else 1),
                          eplb=bool(r.get(f"{prefix}_redundant_experts")),
                          recv_interval=int(r.get(f"{prefix}_scheduler_recv_interval") or 1))  # fmt: skip

    dp, dd = side("prefill"), side("decode")
    n_p, n_d = int(r["prefill_workers"]), int(r["decode_workers"])
    low, mid, high = (DisaggregatedServingModel(dp, dd, n_p, traffic, n_d, s).point() for s in SCENARIO_NAMES)
    rid, src = str(r["id"]), str(r.get("source", ""))
    gpus = n_p * dp.layout.num_gpus + n_d * dd.layout.num_gpus
    label = (f"{r['model']} {r.get('quant') or ''} {r.get('engine', '')} on {gpus} x {gpu.name if gpu else ''}, "
             f"{n_p}x{dp.layout.num_gpus}P:{n_d}x{dd.layout.num_gpus}D, {lengths(r)} at concurrency "
             f"{traffic.concurrency}")  # fmt: skip
    out = []
    if r.get("total_tps_per_gpu"):
        scale = (isl + osl) / osl
        lo, m, hi = span(*(p.output_tokens_per_s_per_gpu * scale for p in (low, mid, high)))
        measured = float(r["total_tps_per_gpu"])
        out.append(Check(rid, "serving_throughput", label + " (input + output tok/s)", measured, m, lo, hi,
                         lo <= measured <= hi, "tokens/s", src,
                         stage="disaggregated " + STAGES["serving_throughput"]))  # fmt: skip
    if r.get("ttft_median_ms"):
        measured = float(r["ttft_median_ms"]) / 1e3
        lo, m, hi = span(low.ttft_s, mid.ttft_s, high.ttft_s)
        out.append(Check(rid, "serving_ttft", label + " (median TTFT)", measured, m, lo, hi, lo <= measured <= hi,
                         "s", src, stage="disaggregated " + STAGES["serving_ttft"]))  # fmt: skip
    return out


def serving_checks(r: dict[str, Any]) -> list[Check]:
    """A serving run (fixed input/output lengths at a concurrency) against the serving model: output (or total)
    tokens/s per GPU and TTFT, each with the band of the low and high scenarios."""
    from moeplan.deploy.deployment import Traffic
    from moeplan.deploy.serving import ServingModel

    gpu = record_gpu(r)
    isl, osl, conc = mean_length(r, "isl"), mean_length(r, "osl"), int(r["concurrency"])
    traffic = Traffic(isl, osl, concurrency=conc, arrivals=serving_arrivals(r))
    if r.get("disaggregated"):
        return split_checks(r, gpu, traffic)
    d = deployment(r, gpu, context=isl + osl, prompt=isl, batch=1)
    model = ServingModel(d, traffic)
    low, mid, high = (model.in_scenario(s).point() for s in SCENARIO_NAMES)
    rid, src = str(r["id"]), str(r.get("source", ""))
    label = f"{r['model']} {r.get('quant') or ''} {r.get('engine', '')} on {r['num_gpus']} x {gpu.name}, "
    label += f"{lengths(r)} at concurrency {conc}"
    out = []
    n = int(r["num_gpus"])
    per_gpu: float | None = r.get("output_tps_per_gpu") or (
        r["output_tps_total"] / n if r.get("output_tps_total") else None
    )
    total: float | None = r.get("total_tps_per_gpu") or (r["total_tps_total"] / n if r.get("total_tps_total") else None)
    value = per_gpu or total
    if value:
        scale = 1.0 if per_gpu else (isl + osl) / osl  # input and output tokens together
        measured = float(value)
        lo, m, hi = span(*(p.output_tokens_per_s_per_gpu * scale for p in (low, mid, high)))
        what = label + ("" if per_gpu else " (input + output tok/s)")
        out.append(Check(rid, "serving_throughput", what, measured, m, lo, hi, lo <= measured <= hi, "tokens/s",
                         src, stage=STAGES["serving_throughput"]))  # fmt: skip
    ttft_ms = r.get("ttft_mean_ms") or r.get("ttft_median_ms")
    if ttft_ms:
        measured = float(ttft_ms) / 1e3
        lo, m, hi = span(high.ttft_s, mid.ttft_s, low.ttft_s)
        waves = prompts_per_client(r)
        if r.get("ttft_mean_ms") and traffic.arrivals == "poisson" and waves:
            # the run starts with every client sending at once: its first wave waits for a burst of prefills
            burst = replace(traffic, arrivals="waves")
            first = [ServingModel(d, burst, s).point().ttft_s for s in reversed(SCENARIO_NAMES)]
            lo, m, hi = span(*((f + (waves - 1) * t) / waves for f, t in zip(first, (lo, m, hi), strict=True)))
        out.append(Check(rid, "serving_ttft", label, measured, m, lo, hi, lo <= measured <= hi, "s", src,
                         stage=STAGES["serving_ttft"]))  # fmt: skip
    return out
