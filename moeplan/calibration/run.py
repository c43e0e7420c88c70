"""``moeplan calibrate``: a real forward pass of a synthetic MoE layer on this machine, and what it teaches.

One MoE layer of real shapes with random weights: router (linear, softmax, top-k, renormalised), dispatch
(token copies sorted by expert), gated expert MLPs (SwiGLU) run as one grouped GEMM where the installed torch
has ``torch._grouped_mm`` (else a loop over the experts that received tokens), weighted combine, and the
shared experts when the spec has them.  Its output is checked against a naive per-token implementation on a
small case before anything is timed.

Per token count: warm-up, repeats until the timing is steady (the middle half of the runs within +-5% of the
median, at most five times the repeats; a count that never settles is named), device synchronisation (CUDA
events on GPUs), median and spread; FLOPs
``2 x tokens x (k x 3hF + E h) (+ 2 x tokens x 3 h F_shared)`` and bytes (the experts that received tokens,
router, shared experts, activations in and out) give achieved TFLOP/s and GB/s, set beside moeplan's
prediction for the same layer.  A dense GEMM and a memory copy measure what the device itself reaches.

The fitted factors: bandwidth efficiency = copy GB/s / catalogue peak; compute efficiency = the ``eta_max``
that makes :meth:`moeplan.deploy.speed.Efficiency.gemm` reproduce the measured MoE-layer TFLOP/s at the compute-bound
token counts (512 and more; the GEMM figure where none ran).  They are saved as a profile keyed by the
catalogue GPU the device matched (:mod:`moeplan.hardware.profiles`).

torch is imported inside the functions: estimates never need it.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from moeplan.calibration.device_memory import free_bytes, is_oom, too_big
from moeplan.deploy.engines import Efficiency
from moeplan.errors import InputError, MoeplanError
from moeplan.hardware.gpus import GpuSpec, load_gpus
from moeplan.hardware.profiles import CalibrationProfile, Measurement
from moeplan.records import Value

DEFAULT_TOKENS = (1, 8, 64, 512, 4096)
QUICK_TOKENS = (1, 64, 512)
REFERENCE_TOLERANCE = {"fp32": 1e-4, "bf16": 3e-2, "fp16": 1e-2}


class CalibrationError(MoeplanError):
    """torch missing, a device that is not there, a layer that computes the wrong thing."""


@dataclass(frozen=True, repr=False, eq=False)
class LayerShape(Value):
    """One MoE layer: hidden size, expert width, experts, top-k, and the shared experts' total width."""

    hidden: int
    expert_ffn: int
    experts: int
    top_k: int
    shared_ffn: int = 0

    def __post_init__(self) -> None:
        if min(self.hidden, self.expert_ffn, self.experts, self.top_k) < 1 or self.shared_ffn < 0:
            raise InputError("--hidden, --expert-ffn, --experts and --top-k must be positive")
        if self.top_k > self.experts:
            raise InputError(f"--top-k {self.top_k} exceeds the {self.experts} experts")

    def flops(self, tokens: int) -> float:
        """FLOPs of one forward pass of ``tokens`` tokens."""
        h, f = self.hidden, self.expert_ffn
        return 2.0 * tokens * (self.top_k * 3 * h * f + self.experts * h + 3 * h * self.shared_ffn)

    def weight_elements(self) -> int:
        return (
            self.experts * 3 * self.hidden * self.expert_ffn
            + self.experts * self.hidden
            + (3 * self.hidden * self.shared_ffn)
        )

    def bytes_touched(self, tokens: int, experts_used: int, elem: int) -> float:
        """Bytes one pass reads and writes: used experts, router, shared experts, activations."""
        h, f = self.hidden, self.expert_ffn
        weights = experts_used * 3 * h * f + self.experts * h + 3 * h * self.shared_ffn
        acts = tokens * h * 2 + tokens * self.top_k * (h + 3 * f + h)
        return float((weights + acts) * elem)


@dataclass
class Layer:
    """The layer's tensors (torch), built by :func:`build_layer`."""

    shape: LayerShape
    router: Any
    w_gate_up: Any
    w_down: Any
    shared_gate_up: Any = None
    shared_down: Any = None


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise CalibrationError(
            "calibrate needs torch, which is not installed", "pip install 'moeplan[calibrate]'"
        ) from None
    return torch


def pick_device(requested: str) -> tuple[str, str | None]:
    """(device, notice): ``auto`` takes CUDA, then MPS, then the CPU (with a notice)."""
    torch = _torch()
    if requested not in ("auto", "cuda", "mps", "cpu"):
        raise InputError(f"--device '{requested}' is not one of auto, cuda, mps, cpu")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if requested == "cuda" and not cuda:
        raise CalibrationError("--device cuda: no CUDA device is visible", "use --device cpu, or check the driver")
    if requested == "mps" and not mps:
        raise CalibrationError("--device mps: Metal is not available here")
    if requested == "auto":
        if cuda:
            return "cuda", None
        if mps:
            return "mps", None
        return "cpu", "no CUDA or Metal device found: calibrating the CPU instead"
    return requested, None


def device_name(device: str) -> str:
    torch = _torch()
    if device == "cuda":
        return str(torch.cuda.get_device_name(0))
    if device == "mps":
        return f"Apple GPU ({platform.machine()})"
    return platform.processor() or platform.machine() or "CPU"


def match_gpu(name: str, gpus: tuple[GpuSpec, ...] | None = None) -> GpuSpec | None:
    """The catalogue entry a device name such as ``NVIDIA H100 80GB HBM3`` stands for, if one does.

    Every model word of the id (``h100``, ``4060``, ``ti``) must be a word of the name; the form factor
    (``pcie``, ``nvl``: required; ``sxm``: the default) and the memory size (``80gb``) break ties.
    """
    text = name.lower().replace("-", " ").replace("_", " ")
    words = set(text.split())
    best: tuple[int, GpuSpec] | None = None
    for g in gpus or load_gpus():
        parts = [p for p in g.id.split("-") if p not in ("nvidia", "amd", "apple", "rtx", "geforce")]
        core = [p for p in parts if p not in ("sxm", "pcie", "nvl") and not p.endswith("gb")]
        if not core or not all(p in words for p in core):
            continue
        score = 10 * len(core)
        for p in parts:
            if p.endswith("gb"):
                named = [w for w in words if w.endswith("gb") and w[:-2].isdigit()]
                if named and p not in named:
                    score = -1
                    break
                score += 5 if p in named else 0
            elif p in ("pcie", "nvl"):
                score += 3 if p in words else -100
            elif p == "sxm":
                score += 3 if any(w.startswith("sxm") or w.startswith("hbm") for w in words) else 0
        if score > 0 and (best is None or score > best[0]):
            best = (score, g)
    return best[1] if best else None


def _dtype(torch: Any, name: str) -> Any:
    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if name not in table:
        raise InputError(f"--dtype '{name}' is not one of bf16, fp16, fp32")
    return table[name]


def build_layer(shape: LayerShape, dtype: str = "fp32", device: str = "cpu", seed: int = 0) -> Layer:
    """Random weights of ``shape`` (scaled as an initialised layer would be)."""
    torch = _torch()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    dt_ = _dtype(torch, dtype)
    h, f, e = shape.hidden, shape.expert_ffn, shape.experts

    def rand(*dims: int, fan_in: int) -> Any:
        return (torch.randn(*dims, generator=gen) / math.sqrt(fan_in)).to(device=device, dtype=dt_)

    layer = Layer(shape, rand(e, h, fan_in=h), rand(e, h, 2 * f, fan_in=h), rand(e, f, h, fan_in=f))
    if shape.shared_ffn:
        layer.shared_gate_up = rand(h, 2 * shape.shared_ffn, fan_in=h)
        layer.shared_down = rand(shape.shared_ffn, h, fan_in=shape.shared_ffn)
    return layer


def _route(torch: Any, x: Any, layer: Layer) -> tuple[Any, Any]:
    logits = (x @ layer.router.t()).float()
    probs = torch.softmax(logits, dim=-1)
    weights, idx = torch.topk(probs, layer.shape.top_k, dim=-1)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights.to(x.dtype), idx


def _swiglu(torch: Any, gate_up: Any) -> Any:
    gate, up = gate_up.chunk(2, dim=-1)
    return torch.nn.functional.silu(gate) * up


def _grouped_ok(torch: Any, device: str, dtype: Any) -> bool:
    if not hasattr(torch, "_grouped_mm"):
        return False
    try:
        a = torch.ones(4, 16, device=device, dtype=dtype)
        b = torch.ones(2, 16, 16, device=device, dtype=dtype)
        torch._grouped_mm(a, b, offs=torch.tensor([2, 4], device=device, dtype=torch.int32))
    except Exception:  # any failure means: use the loop
        return False
    return True


def moe_forward(x: Any, layer: Layer, grouped: bool | None = None, count_used: bool = True) -> tuple[Any, int]:
    """The layer's output for tokens ``x`` [T, h], and the number of experts that received tokens.

    ``count_used=False`` returns 0 for the count, sparing a GPU the device-to-host sync it costs (the full
    decode step runs layers back to back, as an engine does).
    """
    torch = _torch()
    s = layer.shape
    weights, idx = _route(torch, x, layer)
    flat = idx.reshape(-1)
    order = torch.argsort(flat, stable=True)
    token_of = order // s.top_k
    counts = torch.bincount(flat, minlength=s.experts)
    xs = x.index_select(0, token_of)
    if grouped is None:
        grouped = _grouped_ok(torch, x.device.type, x.dtype)
    if grouped:
        offs = torch.cumsum(counts, 0).to(torch.int32)
        hidden = _swiglu(torch, torch._grouped_mm(xs, layer.w_gate_up, offs=offs))
        ys = torch._grouped_mm(hidden, layer.w_down, offs=offs)
    else:
        ys = torch.empty_like(xs)
        start = 0
        for e, n in enumerate(counts.tolist()):
            if n:
                part = xs[start : start + n]
                ys[start : start + n] = _swiglu(torch, part @ layer.w_gate_up[e]) @ layer.w_down[e]
                start += n
    ys = ys * weights.reshape(-1)[order].unsqueeze(-1)
    out = torch.zeros_like(x).index_add_(0, token_of, ys)
    if layer.shared_gate_up is not None:
        out = out + _swiglu(torch, x @ layer.shared_gate_up) @ layer.shared_down
    return out, int((counts > 0).sum().item()) if count_used else 0


def naive_forward(x: Any, layer: Layer) -> Any:
    """Token by token, expert by expert, in float64: the reference the fast path must equal."""
    torch = _torch()
    weights, idx = _route(torch, x, layer)
    x64 = x.double()
    out = torch.zeros_like(x64)
    for t in range(x.shape[0]):
        for j in range(layer.shape.top_k):
            e = int(idx[t, j])
            h = _swiglu(torch, x64[t] @ layer.w_gate_up[e].double()) @ layer.w_down[e].double()
            out[t] += float(weights[t, j]) * h
    if layer.shared_gate_up is not None:
        out += _swiglu(torch, x64 @ layer.shared_gate_up.double()) @ layer.shared_down.double()
    return out


def check_against_reference(dtype: str, device: str, grouped: bool | None = None) -> float:
    """Relative error of :func:`moe_forward` against :func:`naive_forward` on a small case; raises if wrong."""
    torch = _torch()
    shape = LayerShape(hidden=64, expert_ffn=48, experts=8, top_k=2, shared_ffn=32)
    layer = build_layer(shape, dtype, device, seed=1)
    x = (torch.randn(37, 64, generator=torch.Generator().manual_seed(2))).to(device=device, dtype=_dtype(torch, dtype))
    fast, _ = moe_forward(x, layer, grouped)
    ref = naive_forward(x, layer)
    err = float((fast.double() - ref).norm() / ref.norm())
    if not err <= REFERENCE_TOLERANCE[dtype]:
        raise CalibrationError(f"the MoE layer disagrees with the reference implementation (error {err:.2e})")
    return err


def _sync(torch: Any, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def time_call(fn: Callable[[], Any], device: str, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls after ``warmup`` (CUDA events on CUDA)."""
    torch = _torch()
    for _ in range(warmup):
        fn()
    _sync(torch, device)
    out = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            out.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            _sync(torch, device)
            out.append(time.perf_counter() - t0)
    return out


STEADY = 0.05
"""A timing is steady when the middle half of its runs lies within +-5% of their median."""


def steady(samples: list[float], target: float = STEADY) -> bool:
    """Whether ``(q3 - q1) / 2 <= target x median``: the middle half of the runs within ``+-target``.

    ``[1.00, 1.01, 1.02, 0.99]`` is steady; ``[1, 2, 1, 3]`` (a busy CPU) is not.
    """
    if len(samples) < 2:
        return False
    q1, _, q3 = statistics.quantiles(samples, n=4)
    return (q3 - q1) / 2 <= target * statistics.median(samples)


def time_until_steady(
    fn: Callable[[], Any], device: str, warmup: int, repeats: int, max_repeats: int
) -> tuple[list[float], bool]:
    """:func:`time_call`, then ``repeats`` more runs at a time until the timing is :func:`steady` or
    ``max_repeats`` runs are in; returns the runs and whether they settled."""
    samples = time_call(fn, device, warmup, repeats)
    while not steady(samples) and len(samples) < max_repeats:
        samples += time_call(fn, device, 0, repeats)
    return samples, steady(samples)


def gemm_tflops(device: str, dtype: str, n: int, warmup: int, repeats: int) -> float:
    torch = _torch()
    a = torch.randn(n, n, device=device, dtype=_dtype(torch, dtype))
    b = torch.randn(n, n, device=device, dtype=_dtype(torch, dtype))
    secs = statistics.median(time_call(lambda: a @ b, device, warmup, repeats))
    return 2 * n**3 / secs / 1e12


def copy_gb_s(device: str, nbytes: int, warmup: int, repeats: int) -> float:
    """Read + write bandwidth of a device-to-device copy of ``nbytes``."""
    torch = _torch()
    src = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    secs = statistics.median(time_call(lambda: dst.copy_(src), device, warmup, repeats))
    return 2 * nbytes / secs / 1e9


@dataclass
class CalibrationRun:
    """Everything ``calibrate`` measured and concluded."""

    device: str
    device_name: str
    gpu: GpuSpec | None
    dtype: str
    shape: LayerShape
    dispatch: str
    reference_error: float
    gemm_tflops: float
    copy_gb_s: float
    measurements: list[Measurement] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    weights_bytes_measured: int | None = None
    weights_bytes_predicted: int = 0
    profile: CalibrationProfile | None = None


def predicted_seconds(shape: LayerShape, tokens: int, gpu: GpuSpec | None, dtype: str, eff: Efficiency) -> float | None:
    """moeplan's time for the layer: roofline of its bytes and FLOPs (no engine's fixed costs)."""
    if gpu is None:
        return None
    from moeplan.deploy.speed import distinct_experts, peak_flops

    elem = {"fp32": 4, "bf16": 2, "fp16": 2}[dtype]
    used = distinct_experts(shape.experts, shape.top_k, tokens)
    mem = shape.bytes_touched(tokens, round(used), elem) / (gpu.bandwidth_gb_s * 1e9 * eff.bw[1])
    m = tokens * shape.top_k / max(used, 1e-9)
    peak = peak_flops(gpu, "fp32" if dtype == "fp32" else dtype)
    eta = eff.expert_gemm(m, 2 * shape.expert_ffn, shape.hidden, used)
    vec = gpu.dense_tflops("fp32")
    comp = min(shape.flops(tokens) / (peak * eta), shape.flops(tokens) / (0.7 * (vec or peak / 8e12) * 1e12))
    return max(mem, comp)


def shape_from_model(model: str) -> LayerShape:
    """The MoE layer of a catalogue model (or any MODEL argument)."""
    from moeplan.sources.catalog import resolve_model

    spec = resolve_model(model)
    moe = spec.arch.moe
    if moe is None:
        raise InputError(f"{spec.id} is a dense model: calibrate measures an MoE layer", "pick an MoE model")
    return LayerShape(
        spec.arch.hidden_size, moe.expert_intermediate_size, moe.num_experts, moe.top_k,
        moe.shared_intermediate_size or 0,
    )  # fmt: skip


def parse_token_list(text: str) -> tuple[int, ...]:
    """``"1,8,64,512,4096"`` -> (1, 8, 64, 512, 4096); ``4k`` style sizes allowed."""
    from moeplan.units import parse_tokens

    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise InputError("--tokens needs at least one count, e.g. 1,8,64,512,4096")
    return tuple(sorted({parse_tokens(p, "--tokens") for p in parts}))


def run_calibration(
    shape: LayerShape,
    tokens: tuple[int, ...],
    device: str = "auto",
    dtype: str | None = None,
    quick: bool = False,
    gpu_id: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> CalibrationRun:
    """Measure the layer at each token count, the GEMM and copy microbenchmarks; fit and build the profile."""
    from moeplan.deploy.engines import ENGINES
    from moeplan.deploy.speed import peak_flops
    from moeplan.hardware.gpus import resolve_gpu

    torch = _torch()
    dev, notice = pick_device(device)
    if dtype is None:
        dtype = "fp32" if dev == "cpu" else "bf16"
    _dtype(torch, dtype)
    if any(t < 1 for t in tokens) or not tokens:
        raise InputError("--tokens must be positive counts, e.g. 1,8,64,512,4096")
    name = device_name(dev)
    gpu = resolve_gpu(gpu_id) if gpu_id else (match_gpu(name) if dev != "cpu" else None)
    notices = [notice] if notice else []
    if gpu_id and dev == "cpu":
        notices.append(f"measuring the CPU but keying the profile to {gpu.id if gpu else gpu_id} as asked")
    warmup, repeats = (1, 3) if quick else (3, 10)
    max_repeats = repeats * (2 if quick else 5)  # more runs while the timings have not settled
    grouped = _grouped_ok(torch, dev, _dtype(torch, dtype))
    err = check_against_reference(dtype, dev, grouped)
    tick = progress or (lambda _msg: None)
    tick("reference check passed")
    big = dev != "cpu" and not quick
    gemm = gemm_tflops(dev, dtype, 8192 if big else 512, warmup, repeats)
    tick("GEMM")
    copy = copy_gb_s(dev, (1 << 30) if big else (32 << 20), warmup, repeats)
    tick("memory copy")
    run = CalibrationRun(
        dev, name, gpu, dtype, shape, "grouped_mm" if grouped else "loop", err, gemm, copy, notices=notices
    )
    elem = {"fp32": 4, "bf16": 2, "fp16": 2}[dtype]
    run.weights_bytes_predicted = shape.weight_elements() * elem
    free = free_bytes(dev)
    if too_big(run.weights_bytes_predicted, free):
        assert free is not None
        raise CalibrationError(
            f"the layer's weights take {run.weights_bytes_predicted / 2**30:,.1f} GiB in {dtype}, "
            f"{'this machine' if dev == 'cpu' else name} has "
            f"{free / 2**30:,.1f} GiB free",
            "calibrate a smaller shape (--model qwen3-30b-a3b, or --hidden/--expert-ffn/--experts/--top-k), or a "
            "16-bit --dtype on a GPU",
        )
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    try:
        layer = build_layer(shape, dtype, dev)
    except Exception as e:
        if is_oom(e):
            raise CalibrationError(f"the layer's weights do not fit on {name}", "use smaller shapes") from None
        raise
    if dev == "cuda":
        run.weights_bytes_measured = int(torch.cuda.memory_allocated() - base)
    else:
        run.weights_bytes_measured = sum(
            int(t.numel() * t.element_size())
            for t in (layer.router, layer.w_gate_up, layer.w_down, layer.shared_gate_up, layer.shared_down)
            if t is not None
        )
    eff = ENGINES["vllm"].speed
    gen = torch.Generator().manual_seed(3)
    for n in tokens:
        try:
            x = torch.randn(n, shape.hidden, generator=gen).to(device=dev, dtype=_dtype(torch, dtype))
            _, used = moe_forward(x, layer, grouped)
            if dev == "cuda":
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
            secs, settled = time_until_steady(
                functools.partial(moe_forward, x, layer, grouped), dev, warmup, repeats, max_repeats
            )
            if not settled:
                q1, _, q3 = statistics.quantiles(secs, n=4)
                run.notices.append(
                    f"{n} tokens: timings still vary +-{(q3 - q1) / 2 / statistics.median(secs):.0%} after "
                    f"{len(secs)} runs (a busy machine?); its figure is the median, treat it with care"
                )
            peak = int(torch.cuda.max_memory_allocated() - before) if dev == "cuda" else None
        except Exception as e:
            if is_oom(e):
                run.skipped.append(f"{n} tokens: out of memory, skipped")
                if dev == "cuda":
                    torch.cuda.empty_cache()
                continue
            raise
        med = statistics.median(secs)
        spread = (max(secs) - min(secs)) / 2
        flops = shape.flops(n)
        nbytes = shape.bytes_touched(n, used, elem)
        pred_act = n * shape.hidden * elem * 2 + n * shape.top_k * (2 * shape.hidden + 3 * shape.expert_ffn) * elem
        run.measurements.append(
            Measurement(
                tokens=n,
                seconds=med,
                seconds_spread=spread,
                flops=flops,
                bytes=nbytes,
                achieved_tflops=flops / med / 1e12,
                achieved_gb_s=nbytes / med / 1e9,
                predicted_seconds=predicted_seconds(shape, n, gpu, dtype, replace(eff, expert_grid=grouped)),
                peak_memory_bytes=peak,
                predicted_memory_bytes=pred_act if peak is not None else None,
            )
        )
        tick(f"{n} tokens")
    run.profile = _profile(run, peak_flops(gpu, dtype) if gpu else None)
    return run


def _profile(run: CalibrationRun, peak: float | None) -> CalibrationProfile:
    gpu = run.gpu
    bw_eff = min(1.0, run.copy_gb_s / gpu.bandwidth_gb_s) if gpu else None
    comp_eff = min(1.0, run.gemm_tflops * 1e12 / peak) if peak else None
    moe_eff: dict[int, float] = {}
    fitted: list[float] = []
    if peak:
        probe = Efficiency((1, 1, 1), 1.0, 0, 0, expert_grid=run.dispatch == "grouped_mm")  # one grid, or a loop
        s = run.shape
        from moeplan.deploy.speed import distinct_experts

        for m in run.measurements:
            share = m.achieved_tflops * 1e12 / peak
            moe_eff[m.tokens] = round(share, 4)
            if m.tokens >= 512:
                used = distinct_experts(s.experts, s.top_k, m.tokens)
                shape_factor = probe.expert_gemm(m.tokens * s.top_k / used, 2 * s.expert_ffn, s.hidden, used)
                fitted.append(share / shape_factor)
    compute = min(1.0, statistics.median(fitted)) if fitted else comp_eff
    return CalibrationProfile(
        device=run.device_name,
        gpu_id=gpu.id if gpu else None,
        backend=run.device,
        dtype=run.dtype,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        torch_version=str(_torch().__version__),
        bandwidth_gb_s=run.copy_gb_s,
        gemm_tflops=run.gemm_tflops,
        bandwidth_efficiency=round(bw_eff, 4) if bw_eff else None,
        compute_efficiency=round(compute, 4) if compute else None,
        moe_efficiency=moe_eff,
        layer={
            "hidden": run.shape.hidden,
            "expert_ffn": run.shape.expert_ffn,
            "experts": run.shape.experts,
            "top_k": run.shape.top_k,
            "shared_ffn": run.shape.shared_ffn,
        },
        measurements=run.measurements,
    )
