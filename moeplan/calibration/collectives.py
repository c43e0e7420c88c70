"""``moeplan calibrate --collectives``: all-reduce and all-to-all across this box's devices, and their fit.

``world_size`` processes are spawned (``multiprocessing``'s spawn start method) and join one
``torch.distributed`` group through a file in a temporary folder: NCCL with one GPU each when the
calibration runs on CUDA, gloo on the CPU otherwise.  Each op is timed at decode sizes (1, 8 and 64 tokens) and
prefill sizes (512 and 4,096 tokens) of ``tokens x hidden x 2`` bytes per rank (bf16 activations; 4,096 hidden,
64 tokens: 512 KiB), each size repeated until steady like the layer timings; a sample is the slowest rank's,
and calls shorter than a millisecond are repeated within one sample.  All ranks see the same samples, so
they agree on when to stop.

The fits, by least squares on relative error over the sizes (:func:`fit_alpha_beta`):

* all-reduce (ring): ``t = alpha + 2 (n - 1) / n x bytes / beta``
* all-to-all: ``t = alpha + (n - 1) / n x bytes / beta``

with ``alpha`` the latency in seconds and ``beta`` the bus bandwidth in bytes/s (8 GPUs, alpha 20 us,
beta 100 GB/s: a 1 MiB all-reduce takes 20e-6 + 1.75 x 1,048,576 / 100e9 = 38.4 us).

A gloo without all-to-all gets it as point-to-point sends and receives (said in the notes); if those fail too,
all-to-all is recorded as not measured, with the reason.  Start-up is bounded (``start_timeout_s``: every rank
must have joined the group by then) and so is the whole run (``timeout_s``); the processes leave the group
(``destroy_process_group``) and are ended on any failure, which comes back as one CalibrationError line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import os
import queue as queue_mod
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moeplan.calibration.run import CalibrationError, _torch, steady, time_call
from moeplan.errors import InputError
from moeplan.hardware.profiles import CollectiveFit, CollectiveOp, CollectivePoint, CollectivesMeasurement

DECODE_TOKENS = (1, 8, 64)
PREFILL_TOKENS = (512, 4096)
DEFAULT_HIDDEN = 4096
ELEMENT_BYTES = 2
MAX_WORLD_SIZE = 64
START_TIMEOUT_S = 120.0
TIMEOUT_S = 900.0
MIN_SAMPLE_S = 1e-3
OPS: tuple[CollectiveOp, ...] = ("all_reduce", "all_to_all")


def bus_factor(op: CollectiveOp, world_size: int) -> float:
    """Share of the buffer each rank moves: ``2 (n - 1) / n`` (ring all-reduce), ``(n - 1) / n`` (all-to-all).

    8 ranks: 1.75 and 0.875; 2 ranks: 1.0 and 0.5.
    """
    share = (world_size - 1) / world_size
    return 2 * share if op == "all_reduce" else share


def fit_alpha_beta(points: list[tuple[float, float]], factor: float) -> tuple[float, float, str]:
    """(alpha seconds, beta bytes/s, method) of ``t = alpha + factor x bytes / beta`` through (bytes, seconds).

    Least squares on relative error (weights ``1 / t^2``: sizes span four decades, and a plain fit would
    let the largest decide alpha).  Noise can make that unphysical; then ``alpha`` is the smallest size's time
    (a latency bound) with ``beta`` refitted, and where the slope is still not positive ``beta`` is the
    largest size's ``factor x bytes / t``.  Two points (1 KiB, 10 us) and (1 MiB, 30 us), factor 1:
    alpha = 9.98 us, beta = 52.4 GB/s.
    """
    if len(points) < 2:
        raise ValueError("a fit needs two sizes")
    xs = [factor * b for b, _ in points]
    ts = [t for _, t in points]
    # minimise sum(((a + s x - t) / t)^2): normal equations in a and the slope s = 1 / beta
    w = [1 / t**2 for t in ts]
    sw = sum(w)
    sx = sum(wi * x for wi, x in zip(w, xs, strict=True))
    sxx = sum(wi * x * x for wi, x in zip(w, xs, strict=True))
    st = sum(wi * t for wi, t in zip(w, ts, strict=True))
    sxt = sum(wi * x * t for wi, x, t in zip(w, xs, ts, strict=True))
    det = sw * sxx - sx * sx
    if det > 0:
        a = (st * sxx - sx * sxt) / det
        s = (sw * sxt - sx * st) / det
        if a > 0 and s > 0:
            return a, 1 / s, "least squares"
    a = ts[min(range(len(xs)), key=lambda i: xs[i])]
    s = sum(wi * x * (t - a) for wi, x, t in zip(w, xs, ts, strict=True)) / sxx if sxx > 0 else 0.0
    if s > 0:
        return a, 1 / s, "latency = smallest size's time, bandwidth fitted"
    big = max(range(len(xs)), key=lambda i: xs[i])
    return a, xs[big] / ts[big], "latency = smallest size's time, bandwidth = largest size's"


def plan_world(device: str, world_size: int | None) -> tuple[str, int, list[str]]:
    """(backend, world size, notices) for calibrating on ``device`` (``cuda``, ``mps`` or ``cpu``).

    CUDA: NCCL over the visible GPUs, one process each (default: all of them; more than there are is an
    InputError).  Elsewhere: gloo on the CPU (default: 2 processes).
    """
    torch = _torch()
    if world_size is not None and not 2 <= world_size <= MAX_WORLD_SIZE:
        raise InputError(f"--world-size {world_size}: a collective needs 2 to {MAX_WORLD_SIZE} processes")
    dist = getattr(torch, "distributed", None)
    if dist is None or not dist.is_available():
        raise CalibrationError(
            "--collectives: this torch was built without torch.distributed", "install a torch build that has it"
        )
    notices: list[str] = []
    if device == "cuda":
        gpus = int(torch.cuda.device_count())
        n = world_size or gpus
        if gpus < 2 and world_size is None:
            raise InputError(
                f"--collectives on CUDA needs two or more GPUs; {gpus} is visible",
                "use --device cpu --collectives to measure gloo on the CPU",
            )
        if n > gpus:
            raise InputError(
                f"--world-size {n} exceeds the {gpus} visible CUDA devices (NCCL runs one process per GPU)",
                "lower --world-size, or use --device cpu for gloo on the CPU",
            )
        if not dist.is_nccl_available():
            raise CalibrationError("--collectives: this torch has no NCCL backend", "install a CUDA build of torch")
        return "nccl", n, notices
    if not dist.is_gloo_available():
        raise CalibrationError("--collectives: this torch has no gloo backend for the CPU")
    n = world_size or 2
    from moeplan.calibration.host import cpu_count

    cores = cpu_count()
    if n > cores:
        notices.append(f"collectives: {n} processes share {cores} cores, so the figures are an oversubscribed CPU's")
    return "gloo", n, notices


def _all_to_all_p2p(dist: Any, out: Any, x: Any, rank: int, world: int) -> None:
    """All-to-all as point-to-point: chunk ``j`` of ``x`` goes to rank ``j``, chunk ``i`` of ``out`` comes from
    rank ``i``; the sends and receives go out as one batch (NCCL needs that to not deadlock)."""
    send, recv = x.chunk(world), out.chunk(world)
    recv[rank].copy_(send[rank])
    ops = []
    for peer in range(world):
        if peer != rank:
            ops.append(dist.P2POp(dist.isend, send[peer], peer))
            ops.append(dist.P2POp(dist.irecv, recv[peer], peer))
    for r in dist.batch_isend_irecv(ops):
        r.wait()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _all_to_all_call(
    torch: Any, dist: Any, x: Any, y: Any, rank: int, world: int, tensor_device: str, p2p: bool
) -> tuple[Callable[[], Any] | None, bool, str | None]:
    """(the all-to-all to time or None, whether it is point-to-point, a note): ``all_to_all_single`` if it runs
    on every rank, else point-to-point if that does, else nothing.  Every rank reaches the same answer."""
    calls = [] if p2p else [functools.partial(dist.all_to_all_single, y, x)]
    calls.append(functools.partial(_all_to_all_p2p, dist, y, x, rank, world))
    why = ""
    for call in calls:
        try:
            call()
            ok = 1.0
        except (RuntimeError, NotImplementedError, ValueError) as e:
            ok, why = 0.0, _first_line(e)
        if _agree(torch, dist, ok, tensor_device, "min") == 1:
            if call.func is _all_to_all_p2p and not p2p:
                return call, True, f"no all_to_all here ({why or 'on another rank'}); timed as point-to-point"
            return call, call.func is _all_to_all_p2p, None
    return None, p2p, f"not measured: neither all_to_all_single nor point-to-point ran ({why or 'on another rank'})"


def _agree(torch: Any, dist: Any, value: float, device: str, op: str) -> float:
    """``value`` reduced over the ranks (``max`` or ``min``), the same on every rank."""
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.MIN)
    return float(t.item())


def _time_collective(
    torch: Any, dist: Any, fn: Callable[[], Any], device: str, tensor_device: str, quick: bool
) -> tuple[list[float], bool]:
    """Seconds per call, each sample the slowest rank's, repeated until :func:`steady` (the ranks agree)."""
    warmup, repeats = (1, 4) if quick else (3, 10)
    max_repeats = repeats * (2 if quick else 5)
    for _ in range(warmup):
        fn()
    dist.barrier()
    t0 = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    once = _agree(torch, dist, time.perf_counter() - t0, tensor_device, "max")
    calls = max(1, min(200, math.ceil(MIN_SAMPLE_S / max(once, 1e-9))))

    def sample() -> None:
        for _ in range(calls):
            fn()

    samples: list[float] = []
    while True:
        dist.barrier()
        mine = time_call(sample, device, 0, repeats)
        t = torch.tensor(mine, dtype=torch.float64, device=tensor_device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        samples += [s / calls for s in t.tolist()]
        if steady(samples) or len(samples) >= max_repeats:
            return samples, steady(samples)


def _worker(
    rank: int,
    world: int,
    backend: str,
    init_file: str,
    hidden: int,
    tokens: tuple[int, ...],
    quick: bool,
    start_timeout_s: float,
    force_p2p: bool,
    out: Any,
) -> None:
    """One rank: join the group, time every op and size, send rank 0's results (or this rank's error) to ``out``."""
    dist: Any = None
    try:
        import torch
        import torch.distributed as dist

        from moeplan.calibration.host import cpu_count, cpu_name

        device = "cuda" if backend == "nccl" else "cpu"
        kwargs: dict[str, Any] = {}
        if device == "cuda":
            torch.cuda.set_device(rank)
            kwargs["device_id"] = torch.device("cuda", rank)
            name = str(torch.cuda.get_device_name(rank))
        else:
            torch.set_num_threads(max(1, cpu_count() // world))
            name = cpu_name()
        tensor_device = f"cuda:{rank}" if device == "cuda" else "cpu"
        dist.init_process_group(
            backend,
            init_method=Path(init_file).as_uri(),
            rank=rank,
            world_size=world,
            timeout=dt.timedelta(seconds=max(start_timeout_s, 30.0)),
            **kwargs,
        )
        out.put(("ready", rank, None))
        dtype = torch.bfloat16
        points: list[dict[str, Any]] = []
        notes: list[str] = []
        if force_p2p:
            notes.append(f"all_to_all on {backend}: timed as point-to-point sends and receives, as asked")
        p2p = force_p2p
        skip_a2a = False
        for n_tokens in tokens:
            numel = math.ceil(n_tokens * hidden / world) * world
            x = torch.zeros(numel, dtype=dtype, device=tensor_device)
            y = torch.empty_like(x)
            for op in OPS:
                if op == "all_to_all" and skip_a2a:
                    continue
                if op == "all_reduce":
                    fn: Callable[[], Any] = functools.partial(dist.all_reduce, x)
                else:
                    call, p2p, note = _all_to_all_call(torch, dist, x, y, rank, world, tensor_device, p2p)
                    notes += [f"all_to_all on {backend}: {note}"] if note else []
                    if call is None:
                        skip_a2a = True
                        continue
                    fn = call
                samples, settled = _time_collective(torch, dist, fn, device, tensor_device, quick)
                q1, _, q3 = statistics.quantiles(samples, n=4)
                points.append(
                    {
                        "op": op,
                        "tokens": n_tokens,
                        "bytes": numel * ELEMENT_BYTES,
                        "seconds": statistics.median(samples),
                        "seconds_spread": (q3 - q1) / 2,
                        "runs": len(samples),
                        "steady": settled,
                    }
                )
                if rank == 0:
                    out.put(("tick", rank, f"{op} {n_tokens} tokens"))
        payload = {"points": points, "notes": notes, "device": name, "emulated": p2p and not skip_a2a}
        out.put(("result", rank, payload) if rank == 0 else ("done", rank, None))
    except BaseException as e:  # reported to the parent as one line, whatever it was
        out.put(("error", rank, f"{type(e).__name__}: {_first_line(e)}"))
    finally:
        if dist is not None and dist.is_initialized():
            with contextlib.suppress(Exception):  # leaving is best effort: the parent ends the process anyway
                dist.destroy_process_group()


def _spawn_and_collect(
    backend: str,
    world: int,
    hidden: int,
    tokens: tuple[int, ...],
    quick: bool,
    start_timeout_s: float,
    timeout_s: float,
    force_p2p: bool,
    tick: Callable[[str], None],
) -> dict[str, Any]:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs: list[Any] = []
    finished = False
    with tempfile.TemporaryDirectory(prefix="moeplan-collectives-") as tmp:
        init_file = os.path.join(tmp, "rendezvous")
        try:
            for rank in range(world):
                p = ctx.Process(
                    target=_worker,
                    args=(rank, world, backend, init_file, hidden, tokens, quick, start_timeout_s, force_p2p, out),
                    daemon=True,
                    name=f"moeplan-collectives-{rank}",
                )
                p.start()
                procs.append(p)
            started = time.monotonic()
            ready: set[int] = set()
            done: set[int] = set()
            result: dict[str, Any] | None = None
            while len(done) < world:
                limit = start_timeout_s if len(ready) < world else timeout_s
                left = started + limit - time.monotonic()
                if left <= 0:
                    if len(ready) < world:
                        raise CalibrationError(
                            f"--collectives: only {len(ready)} of {world} {backend} processes joined within "
                            f"{start_timeout_s:.0f} s",
                            "check that the devices are free and torch.distributed works here",
                        )
                    raise CalibrationError(f"--collectives: the measurement did not finish within {timeout_s:.0f} s")
                try:
                    kind, rank, payload = out.get(timeout=min(left, 0.5))
                except queue_mod.Empty:
                    dead = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode not in (None, 0)]
                    if dead:
                        i, code = dead[0]
                        raise CalibrationError(
                            f"--collectives: process {i} of {world} exited with code {code} before reporting"
                        ) from None
                    continue
                if kind == "error":
                    raise CalibrationError(f"--collectives ({backend}, rank {rank}): {payload}")
                if kind == "ready":
                    ready.add(rank)
                elif kind == "tick":
                    tick(str(payload))
                else:
                    done.add(rank)
                    if kind == "result":
                        result = payload
            finished = True
        finally:
            for p in procs:
                p.join(timeout=10 if finished else 0.5)
            for p in procs:
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join(timeout=5)
            out.close()
            out.join_thread()
    assert result is not None
    return result


def measure_collectives(
    device: str,
    world_size: int | None = None,
    hidden: int = DEFAULT_HIDDEN,
    quick: bool = False,
    tokens: tuple[int, ...] = DECODE_TOKENS + PREFILL_TOKENS,
    start_timeout_s: float = START_TIMEOUT_S,
    timeout_s: float = TIMEOUT_S,
    force_p2p: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[CollectivesMeasurement, list[str]]:
    """Time all-reduce and all-to-all over ``world_size`` processes and fit each; the notes say what is missing.

    ``device`` is the calibration's (``cuda``: NCCL, one GPU per process; else gloo on the CPU).
    ``force_p2p`` times all-to-all as point-to-point even where the backend has it (to test that path).
    """
    if hidden < 1 or not tokens or min(tokens) < 1:
        raise InputError("--collectives needs a positive hidden size and token counts")
    backend, world, notes = plan_world(device, world_size)
    result = _spawn_and_collect(
        backend, world, hidden, tokens, quick, start_timeout_s, timeout_s, force_p2p, progress or (lambda _m: None)
    )
    notes += list(result["notes"])
    points = [CollectivePoint.model_validate(p) for p in result["points"]]
    fits: dict[str, CollectiveFit | None] = {}
    for op in OPS:
        mine = [(float(p.bytes), p.seconds) for p in points if p.op == op]
        if len(mine) < 2:
            fits[op] = None
            if op == "all_to_all" and not any("all_to_all" in n for n in notes):
                notes.append("all_to_all: not measured")
            continue
        factor = bus_factor(op, world)
        alpha, beta, method = fit_alpha_beta(mine, factor)
        if method != "least squares":
            notes.append(f"{op}: the timings were too noisy for a least-squares fit; {method}")
        fits[op] = CollectiveFit(alpha_s=alpha, bus_gb_s=beta / 1e9, factor=factor, method=method)
    for op in OPS:
        loose = [p for p in points if p.op == op and not p.steady]
        if loose:
            worst = max(p.seconds_spread / p.seconds for p in loose)
            sizes = ", ".join(f"{p.bytes:,}" for p in loose)
            notes.append(
                f"{op}: timings at {sizes} bytes still vary (up to +-{worst:.0%}) after "
                f"{max(p.runs for p in loose)} runs (a busy machine?); their figures are medians"
            )
    measurement = CollectivesMeasurement(
        backend=backend,
        world_size=world,
        device=str(result["device"]),
        dtype="bf16",
        hidden=hidden,
        all_reduce=fits["all_reduce"],
        all_to_all=fits["all_to_all"],
        all_to_all_emulated=bool(result["emulated"]),
        points=points,
    )
    return measurement, notes
