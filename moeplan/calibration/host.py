"""The host half of ``moeplan calibrate``: RAM bandwidth and one expert's MLP on the CPU, in torch.

What the offload model needs from a box is how fast its RAM streams expert weights and how fast its cores
multiply them.  Three figures, each timed until steady (:func:`moeplan.calibration.run.time_until_steady`):

* **RAM bandwidth**: ``sum()`` over a float32 buffer of at least four times the last-level cache (all the
  L3 slices of all sockets together) and at least 1 GiB (256 MiB with ``--quick``), at most a quarter of the
  available memory.  A sum reads every byte once and writes nothing, as decode reads weights:
  ``ram_gb_s = buffer bytes / seconds`` (1 GiB in 50 ms: 21.5 GB/s).  torch runs it on all its threads, which
  spread over every socket, so the figure is the whole box's; ``ram_gb_s_per_socket = ram_gb_s / sockets``
  is the share of one socket, assuming the sockets are alike and each reads its own memory.
* **Expert GEMM at decode sizes**: ``tokens`` = 1 and 8 rows through one expert's gate and up projections
  (``hidden x 2 expert_ffn``), SwiGLU, and down projection (``expert_ffn x hidden``):
  ``2 x tokens x 3 x hidden x expert_ffn`` FLOPs (Qwen3-30B-A3B, 2048 x 768, one token: 9.4 MFLOP).  The call
  cycles through as many distinct experts as it takes to hold twice the last-level cache (at most the
  model's experts, at most 64), so the weights come from RAM as in an offloaded decode, not from cache.
* **Expert GEMM at prefill size**: 512 rows through one expert (compute-bound: each weight is used 512 times).

The sockets come from ``/sys/devices/system/cpu/cpu*/topology/physical_package_id`` (else the NUMA nodes of
``/sys/devices/system/node``, else 1); the CPU's name from ``/proc/cpuinfo`` (else :func:`platform.processor`).
torch is imported inside the functions: estimates never need it.
"""

from __future__ import annotations

import math
import os
import platform
import re
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from moeplan.calibration.device_memory import available_memory_bytes
from moeplan.calibration.run import (
    LayerShape,
    _dtype,
    _swiglu,
    _torch,
    time_until_steady,
)
from moeplan.hardware.profiles import HostMeasurement, HostTiming

SYS = Path("/sys/devices/system")
DECODE_ROWS = (1, 8)
PREFILL_ROWS = 512
MAX_CYCLED_EXPERTS = 64
GIB = 1 << 30
MIN_SAMPLE_S = 2e-3
"""Shorter kernels are repeated within one timed sample (:func:`batched`)."""


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``model name`` of ``/proc/cpuinfo`` (x86), else ``Model`` / ``Hardware`` (Arm), else the platform's word."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")[:200_000]
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return platform.processor() or platform.machine() or "CPU"


def socket_count(root: Path = SYS) -> int:
    """Distinct ``physical_package_id`` of the CPUs, else NUMA nodes (``node0``, ``node1``, ...), else 1."""
    packages: set[str] = set()
    for f in root.glob("cpu/cpu[0-9]*/topology/physical_package_id"):
        try:
            packages.add(f.read_text().strip())
        except OSError:
            continue
    packages.discard("-1")
    if packages:
        return len(packages)
    nodes = [p for p in root.glob("node/node[0-9]*") if p.name[4:].isdigit()]
    return max(1, len(nodes))


def _size_bytes(text: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)\s*", text)
    if not m:
        return None
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def last_level_cache_bytes(root: Path = SYS) -> int | None:
    """All of the last-level cache: the size of each distinct highest-level data cache, summed.

    Read from ``cpu*/cache/index*/{level,type,size,shared_cpu_list}``: an EPYC with eight 32 MiB L3 slices
    gives 256 MiB; None where ``/sys`` has no cache information.
    """
    caches: dict[tuple[int, str], int] = {}
    for index in root.glob("cpu/cpu[0-9]*/cache/index[0-9]*"):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            level = int((index / "level").read_text())
            size = _size_bytes((index / "size").read_text())
            shared = (index / "shared_cpu_list").read_text().strip()
        except (OSError, ValueError):
            continue
        if size:
            caches[(level, shared)] = size
    if not caches:
        return None
    top = max(level for level, _ in caches)
    return sum(size for (level, _), size in caches.items() if level == top)


def ram_buffer_bytes(llc: int | None, available: int | None, quick: bool) -> int:
    """``max(4 x llc, 1 GiB)`` (256 MiB when quick), at most a quarter of ``available``, at least 64 MiB.

    32 MiB of L3: 1 GiB (quick: 256 MiB); 512 MiB of L3: 2 GiB either way.
    """
    want = max(4 * (llc or 0), GIB // 4 if quick else GIB)
    if available:
        want = min(want, available // 4)
    return max(want, 64 << 20) // 4096 * 4096


def _timing(
    kind: Literal["ram_read", "expert_gemm"],
    samples: list[float],
    settled: bool,
    nbytes: float,
    flops: float,
    tokens: int | None,
) -> HostTiming:
    q = statistics.quantiles(samples, n=4) if len(samples) >= 2 else [samples[0]] * 3
    return HostTiming(
        kind=kind,
        tokens=tokens,
        bytes=nbytes,
        flops=flops,
        seconds=statistics.median(samples),
        seconds_spread=(q[2] - q[0]) / 2,
        runs=len(samples),
        steady=settled,
    )


def batched(fn: Callable[[], Any], min_seconds: float, most: int = 1000) -> tuple[Callable[[], Any], int]:
    """``fn`` repeated ``k`` times per call, ``k`` enough for one call to last ``min_seconds`` (at most ``most``).

    A 50 us kernel timed alone is at the mercy of the scheduler; 40 of them in a row (2 ms) are not.
    One untimed call sizes ``k``; divide each timing by ``k`` for one ``fn``.
    """
    import time

    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-9)
    k = max(1, min(most, math.ceil(min_seconds / once)))
    if k == 1:
        return fn, 1

    def repeated() -> Any:
        out = None
        for _ in range(k):
            out = fn()
        return out

    return repeated, k


def measure_host(
    shape: LayerShape,
    dtype: str = "fp32",
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[HostMeasurement, list[str]]:
    """Time the RAM read and one expert's MLP at 1, 8 and 512 tokens on the CPU; the notes say what to doubt."""
    torch = _torch()
    tick = progress or (lambda _msg: None)
    notes: list[str] = []
    warmup, repeats = (1, 3) if quick else (2, 8)
    max_repeats = repeats * (2 if quick else 5)
    sockets = socket_count()
    llc = last_level_cache_bytes()
    nbytes = ram_buffer_bytes(llc, available_memory_bytes(), quick)
    if llc and nbytes < 2 * llc:
        notes.append(
            f"host: the RAM buffer ({nbytes / 2**20:,.0f} MiB) is under twice the last-level cache "
            f"({llc / 2**20:,.0f} MiB) for lack of free memory: the RAM figure may include cache hits"
        )
    timings: list[HostTiming] = []
    buf = torch.ones(nbytes // 4, dtype=torch.float32)
    samples, settled = time_until_steady(buf.sum, "cpu", warmup, repeats, max_repeats)
    del buf
    timings.append(_timing("ram_read", samples, settled, nbytes, nbytes / 4, None))
    ram = nbytes / statistics.median(samples) / 1e9
    tick("host RAM")

    h, f = shape.hidden, shape.expert_ffn
    dt_ = _dtype(torch, dtype)
    elem = torch.empty((), dtype=dt_).element_size()
    expert_bytes = 3 * h * f * elem
    # distinct weights past twice the last-level cache, however few experts the shape has (16 experts of 1.5 MiB
    # sit in a 32 MiB L3): copies of one expert's shape, read in turn, so that each comes from RAM
    want = math.ceil(2 * llc / expert_bytes) if llc else MAX_CYCLED_EXPERTS
    cycled = max(1, min(want, MAX_CYCLED_EXPERTS, nbytes // expert_bytes))  # no more than the RAM buffer held
    if llc and cycled * expert_bytes < 2 * llc:
        notes.append(
            f"host: the expert GEMM cycles {cycled * expert_bytes / 2**20:,.0f} MiB of weights, under twice the "
            f"last-level cache ({llc / 2**20:,.0f} MiB): its decode figures may include cache hits"
        )
    gen = torch.Generator().manual_seed(4)
    gate_up = [(torch.randn(h, 2 * f, generator=gen) / math.sqrt(h)).to(dt_) for _ in range(cycled)]
    down = [(torch.randn(f, h, generator=gen) / math.sqrt(f)).to(dt_) for _ in range(cycled)]

    def experts(x: Any, count: int) -> Callable[[], Any]:
        def call() -> Any:
            out = None
            for e in range(count):
                out = _swiglu(torch, x @ gate_up[e]) @ down[e]
            return out

        return call

    decode: dict[int, float] = {}
    prefill = 0.0
    for tokens in (*DECODE_ROWS, PREFILL_ROWS):
        count = cycled if tokens < PREFILL_ROWS else 1
        x = torch.randn(tokens, h, generator=gen).to(dt_)
        call, calls = batched(experts(x, count), MIN_SAMPLE_S)
        samples, settled = time_until_steady(call, "cpu", warmup, repeats, max_repeats)
        samples = [t / calls for t in samples]
        flops = 2.0 * tokens * 3 * h * f * count
        timings.append(_timing("expert_gemm", samples, settled, float(expert_bytes * count), flops, tokens))
        rate = flops / statistics.median(samples) / 1e9
        if tokens < PREFILL_ROWS:
            decode[tokens] = rate
        else:
            prefill = rate
        tick(f"host expert GEMM, {tokens} tokens")
    for t in timings:
        if not t.steady:
            what = "RAM read" if t.kind == "ram_read" else f"expert GEMM at {t.tokens} tokens"
            notes.append(
                f"host {what}: timings still vary +-{t.seconds_spread / t.seconds:.0%} after {t.runs} runs "
                "(a busy machine?); its figure is the median"
            )
    host = HostMeasurement(
        cpu=cpu_name(),
        sockets=sockets,
        threads=max(1, int(torch.get_num_threads())),
        dtype=dtype,
        ram_gb_s=round(ram, 3),
        ram_gb_s_per_socket=round(ram / sockets, 3),
        ram_buffer_bytes=nbytes,
        last_level_cache_bytes=llc,
        expert_shape={"hidden": h, "expert_ffn": f, "experts_cycled": cycled},
        expert_gflops_decode=decode,
        expert_gflops_prefill=prefill,
        timings=timings,
    )
    return host, notes


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
