"""What to buy or rent: sweep GPU kinds x counts x formats, keep what fits, rank by cost or speed.

For each GPU in the catalogue and each candidate format, the fewest GPUs (1, 2, 3, 4, 6, 8, 12, 16, 24, 32) that
hold the model at the asked context and batch is found, and the counts up to twice it are scored:
decode speed (the band of :mod:`moeplan.deploy.speed`), dollars per million output tokens at the catalogue's cloud
price, and the purchase price.  GGUF mixes run under llama.cpp (which splits layers over GPUs), the others
under vLLM; Apple and other unified-memory machines only run llama.cpp, and TPUs only the vLLM formats.
Each configuration is resolved and evaluated (its headline) by the same pipeline as ``estimate``.

Every configuration carries the typical quality cost of its format (:mod:`moeplan.formats.quality`); one that
ranks above a configuration whose format costs less quality is marked ``lower-quality``.  ``min_bits`` keeps
only formats whose routed experts have at least that many bits per weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from moeplan.deploy.deployment import Deployment, EstimateRequest, Traffic
from moeplan.deploy.engines import ENGINES, Engine
from moeplan.deploy.evaluate import headline
from moeplan.deploy.resolve import resolve
from moeplan.deploy.results import Candidate
from moeplan.errors import InputError, MoeplanError
from moeplan.formats.quality import config_quality, expert_bits, outranks_better
from moeplan.formats.schemes import Scheme, model_scheme, offload_quant, sixteen_bit, stored_scheme
from moeplan.hardware.gpus import GpuSpec, load_gpus
from moeplan.model.spec import ModelSpec

SortKey = Literal["cost", "purchase", "speed"]
COUNTS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
"""GPU counts tried: every count a server's TP and pipeline stages make up to 8, then halves and wholes of servers."""


def reach(fewest: int) -> int:
    """The largest count tried beyond the fewest that fit: twice it, rounded up to a power of two (3 -> 8, so that
    a model fitting on 3 GPUs is also priced on the 4 and 8 a server holds; 1 -> 2)."""
    return 1 << (2 * fewest - 1).bit_length()


def candidate_formats(spec: ModelSpec, quant: str, min_bits: float | None = None) -> list[str]:
    """The formats to try: ``any`` = the checkpoint's own, fp8, AWQ 4-bit, NVFP4 and two GGUF mixes; with ``--min-bits``
    above 8, the 16-bit weights too (for a checkpoint published in fp8 or MXFP4, its only format that many bits)."""
    if quant != "any":
        return [quant]
    native = spec.native_quant or spec.weights_dtype
    out = [native, "awq-int4", "nvfp4", "Q8_0", "Q4_K_M"]  # nvfp4: tried only on GPUs with fp4 units
    if not native.startswith("fp8"):
        out.insert(1, "fp8")
    if min_bits is not None and min_bits > 8:
        out.insert(1, sixteen_bit(spec))
    return list(dict.fromkeys(out))


def max_count(gpu: GpuSpec) -> int:
    """GPUs of this kind one deployment may use: 8 per box for cards, one unified-memory machine, else 32."""
    if gpu.kind in ("apple", "soc"):
        return 1
    if gpu.kind in ("consumer", "workstation"):
        return 8
    return 32


def serving_engine(scheme: Scheme, gpu: GpuSpec, architecture: str = "") -> Engine | None:
    """The engine ``--engine auto`` picks for ``scheme`` on ``gpu`` (and the model family ``architecture``), if it
    runs the weights as stored there (None: no engine has kernels for them, e.g. GPTQ on a V100 or a GGUF on a TPU)."""
    from moeplan.deploy.engines import auto_engine

    eng = auto_engine(scheme, gpu, architecture)
    return eng if eng.serves(scheme, gpu) else None


RAM_SIZES = (64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536)
DESKTOP_HOST, SERVER_HOST = "ryzen-9-9950x", "epyc-9654"


def hybrid_candidate(spec: ModelSpec, gpu: GpuSpec, context: int, batch: int) -> Candidate | None:
    """One GPU plus the least RAM (desktop DDR5 up to 192 GB, else a 12-channel server) that holds the rest.

    The fastest placement the GPU allows decides how much RAM the experts need; the smallest standard size
    that holds them is bought, with the platform that takes that much.
    """
    from moeplan.deploy.offload import Host, OffloadModel, usable_ram_bytes
    from moeplan.hardware.hosts import ram_usd_per_gb, resolve_cpu

    quant = offload_quant(spec.native_quant)
    try:
        desktop, server = resolve_cpu(DESKTOP_HOST), resolve_cpu(SERVER_HOST)
    except InputError:
        return None
    request = EstimateRequest(model=spec.id, gpu=gpu.id, num_gpus=1, quant=quant, kv_dtype="f16", context=context,
                              batch=batch, engine="llama.cpp", prompt=min(context, 512))  # fmt: skip
    d = resolve(request, spec=spec, gpu=gpu, fewest=False)
    probe = OffloadModel(d, Host(gpu, 1, float(RAM_SIZES[-1]), server))
    first, _ = probe.best(context, batch, d.prompt)
    if not first.fits_vram:
        return None  # the GPU cannot hold even the non-expert part: no amount of RAM helps
    ram = next((r for r in RAM_SIZES if usable_ram_bytes(r) >= first.ram_bytes), None)
    if ram is None:
        return None
    cpu = server if ram > 192 else desktop
    model = OffloadModel(d, Host(gpu, 1, float(ram), cpu))
    best, _ = model.best(context, batch, d.prompt)
    if not best.fits:
        return None
    price = ram_usd_per_gb("DDR5-RDIMM" if ram > 192 else "DDR5-UDIMM")
    ram_cost = ram * 2**30 / 1e9 * price[0] if price else None  # GiB -> GB
    purchase = None
    if gpu.buy_price is not None and ram_cost is not None:
        purchase = gpu.buy_price[0] + ram_cost + (cpu.price_usd.approx if cpu.price_usd else 0.0)
    low, mid, high = best.decode_s
    return Candidate(
        gpu=gpu, num_gpus=1, quant=quant, engine=d.engine.name, tp=1, pp=1, fits=True,
        per_gpu_bytes=best.vram_bytes_per_gpu, usable_bytes=gpu.usable_memory_bytes, tokens_per_s=1 / mid,
        tokens_per_s_range=(1 / low, 1 / high), throughput_tokens_per_s=batch / mid, usd_per_hour=None,
        usd_per_million_output_tokens=None, purchase_usd=purchase, ram_gib=float(ram), host=cpu.name,
        experts_on_cpu_layers=best.cpu_layers,
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
    state_dtype: str = "auto",
    traffic: Traffic | None = None,
    min_bits: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ModelSpec, list[Candidate]]:
    """Every fitting configuration, best first by ``sort``; with ``traffic``, their speeds and cost are those of
    the steady state under that load (:mod:`moeplan.deploy.serving`); ``progress(done, total)`` after each GPU kind."""
    if context < 1 or batch < 1:
        raise InputError("--context and --batch must be at least 1")
    if max_gpus < 1:
        raise InputError(f"--max-gpus must be at least 1, not {max_gpus}")
    if sort not in ("cost", "purchase", "speed"):
        raise InputError(f"--sort '{sort}' is not one of cost, purchase, speed")
    if kv_dtype.strip().lower() != "auto":
        from moeplan.formats.kv_formats import kv_dtype as kv_format

        kv_format(kv_dtype)  # an unknown name is refused here, not skipped candidate by candidate
    if state_dtype.strip().lower() != "auto":
        from moeplan.formats.kv_formats import state_dtype as state_format

        state_format(state_dtype)
    from moeplan.hardware.gpus import resolve_gpu
    from moeplan.sources.catalog import resolve_model

    spec = resolve_model(model)
    if traffic is not None:  # the engines refuse a --max-model-len beyond the trained context, as serve does
        traffic.check_context(spec.name, spec.arch.max_context)
    schemes = [
        (q, stored_scheme(spec.native_quant, model_scheme(spec, q))) for q in candidate_formats(spec, quant, min_bits)
    ]
    if min_bits is not None:
        if not min_bits > 0:
            raise InputError(f"--min-bits must be a positive number, not {min_bits}")
        kept = [(q, s) for q, s in schemes if expert_bits(spec.arch, s) >= min_bits]
        if not kept and quant != "any":
            bits = expert_bits(spec.arch, schemes[0][1])
            raise InputError(
                f"--quant {quant} stores the experts in {bits:.2f} bits per weight, under --min-bits {min_bits:g}",
                "lower --min-bits, or drop --quant to try several formats",
            )
        schemes = kept
    quality = {q: (config_quality(spec, q), expert_bits(spec.arch, s)) for q, s in schemes}
    out: list[Candidate] = []
    fits_one: set[str] = set()  # GPUs one of which holds the model (before the budget and speed filters)
    only = {resolve_gpu(g, gpu_file).id for g in gpus}
    catalogue = [g for g in load_gpus(gpu_file) if not only or g.id in only]
    for i, gpu in enumerate(catalogue):
        if progress:
            progress(i, len(catalogue))
        for label, scheme in schemes:
            if label == "nvfp4" and quant.strip().lower() == "any" and not gpu.dense_tflops("fp4"):
                continue  # tried where fp4 units run it, as serve does (asked for, vLLM runs it weight-only)
            eng = serving_engine(scheme, gpu, spec.architecture)
            if eng is None or spec.architecture in eng.missing_architectures:
                continue
            request = EstimateRequest(model=spec.id, gpu=gpu.id, quant=label, kv_dtype=kv_dtype,
                                      state_dtype=state_dtype, context=context, batch=batch, engine=eng.name,
                                      gpu_file=gpu_file)  # fmt: skip
            found, served, stalled, best = 0, traffic is None, 0, 0.0
            for n in COUNTS:
                # past reach() only under a load none of these serves yet, and while more GPUs serve more of it (two
                # counts in a row without 10% more end it: a llama.cpp box's four slots do not grow with its GPUs)
                if n > min(max_gpus, max_count(gpu)) or (found and n > reach(found) and (served or stalled >= 2)):
                    break
                try:
                    d = resolve(replace(request, num_gpus=n), spec=spec, gpu=gpu, fewest=False)
                except InputError:
                    continue
                h = headline(d)
                if not h.fits:
                    continue
                found = found or n
                if n == 1:
                    fits_one.add(gpu.id)
                if budget_usd is not None and (h.purchase_usd is None or h.purchase_usd > budget_usd):
                    continue
                where = {"gpu": gpu, "num_gpus": n, "quant": label, "engine": eng.name}
                q, bits = quality[label]
                cand = Candidate.of(h, **where, tp=d.layout.tp, pp=d.layout.pp, quality=q, expert_bits=bits)
                if traffic is not None:  # under a load its speed is each user's in the steady state
                    cand = under_load(cand, d, traffic)
                    served, now = served or cand.serves_load, cand.throughput_tokens_per_s or 0.0
                    stalled = 0 if now > 1.1 * best else stalled + 1
                    best = max(best, now)
                if min_tokens_per_s is not None and cand.tokens_per_s < min_tokens_per_s:
                    continue
                out.append(cand)
    offloads = spec.architecture not in ENGINES["llama.cpp"].missing_architectures
    if (
        hybrid and offloads and spec.arch.moe is not None and traffic is None
    ):  # one GPU + RAM, wherever one GPU alone is too small
        for gpu in catalogue:
            if gpu.kind in ("consumer", "workstation") and gpu.id not in fits_one:
                box = hybrid_candidate(spec, gpu, context, batch)
                if box is None:
                    continue
                box_scheme = model_scheme(spec, box.quant)
                box_bits = expert_bits(spec.arch, box_scheme)
                if min_bits is not None and box_bits < min_bits:
                    continue
                box = replace(box, quality=config_quality(spec, box.quant), expert_bits=box_bits)
                if budget_usd is not None and (box.purchase_usd is None or box.purchase_usd > budget_usd):
                    continue
                if min_tokens_per_s is not None and box.tokens_per_s < min_tokens_per_s:
                    continue
                out.append(box)
    inf = float("inf")

    def speed(c: Candidate) -> float:
        """Tokens/s a user, and under a load a configuration that does not serve it by how much of it it serves
        (its output tokens/s): four llama.cpp slots decode fast for the four users they hold, none for the rest."""
        return c.tokens_per_s if c.serves_load else (c.throughput_tokens_per_s or 0.0)

    # under a load, the configurations that serve it (every client at once, keeping up) rank above those that queue
    if sort == "cost":
        out.sort(key=lambda c: (not c.serves_load, c.usd_per_million_output_tokens or inf, -speed(c)))
    elif sort == "purchase":
        out.sort(key=lambda c: (not c.serves_load, c.purchase_usd or inf, -speed(c)))
    else:
        out.sort(key=lambda c: (not c.serves_load, -speed(c)))
    return spec, mark(out)


def under_load(c: Candidate, d: Deployment, traffic: Traffic) -> Candidate:
    """``c`` with the speeds and cost of its steady state under ``traffic`` (no cost when it cannot keep up)."""
    from moeplan.deploy.serving import ServingModel

    model = ServingModel(d, traffic)
    low, p, high = (model.in_scenario(s).point() for s in ("low", "expected", "high"))
    usd = c.usd_per_hour * 1e6 / (p.output_tokens_per_s * 3600) if c.usd_per_hour and p.stable else None
    band = (low.tokens_per_s_per_user, high.tokens_per_s_per_user)
    return replace(c, serving=p, tokens_per_s=p.tokens_per_s_per_user, tokens_per_s_range=band,
                   throughput_tokens_per_s=p.output_tokens_per_s, usd_per_million_output_tokens=usd)  # fmt: skip


def mark(candidates: list[Candidate]) -> list[Candidate]:
    """``candidates`` with the cheapest per output token and the fastest per sequence marked, and each one
    ranked above a format of better quality marked ``lower-quality``."""
    worse = outranks_better([c.quality for c in candidates])
    with_cost = [c for c in candidates if c.usd_per_million_output_tokens is not None and c.serves_load]
    inf = float("inf")

    def settled(c: Candidate) -> tuple[float, float, int, str, str, str]:  # ties: cheaper, fewer GPUs, then by name
        return (c.usd_per_million_output_tokens or inf, c.usd_per_hour or inf, c.num_gpus, c.gpu.id, c.quant, c.engine)

    cheapest = min(with_cost, key=settled) if with_cost else None
    # under a load, the fastest per sequence is one that runs every client at once: a queue of clients waiting for a
    # slot (the KV cache's room or the engine's cap: max_running) or growing without bound is not fast, and where
    # none serves the load none is marked
    pool = [c for c in candidates if c.serves_load]
    fastest = min(pool, key=lambda c: (-c.tokens_per_s, settled(c))) if pool else None  # not by the table's order
    out = []
    for c, lower in zip(candidates, worse, strict=True):
        marks = tuple(m for m, pick in (("cheapest", cheapest), ("fastest", fastest)) if c is pick)
        marks += ("lower-quality",) if lower else ()
        out.append(replace(c, marks=marks) if marks else c)
    return out


def nothing_fits(model: str, context: int, batch: int, quant: str, max_gpus: int, budget: float | None,
                 floor: float | None, gpus: list[str]) -> str:  # fmt: skip
    """What to change when nothing fits: the limits the user set (``--budget``, ``--min-tokens-per-s``), and for
    each GPU kind asked for (three at most) the fewest that hold the model at this context and batch in any format
    searched (``--quant``'s, or every one ``any`` tries), the estimate's own search: Kimi-K2 on at most 4 H100s
    reads "raise --max-gpus (fewest that hold it: 8 h100-sxm in awq-int4)", where its own fp8 needs 16."""
    from moeplan.deploy.deployment import EstimateRequest
    from moeplan.deploy.resolve import resolve
    from moeplan.sources.catalog import resolve_model

    counts = []
    try:
        formats = candidate_formats(resolve_model(model), quant)
    except MoeplanError:  # resolved once already; a model file that moved since falls back to what was asked
        formats = [quant]
    for gid in gpus[:3]:
        held = []
        for i, fmt in enumerate(formats):
            try:
                d = resolve(EstimateRequest(model=model, gpu=gid, context=context, batch=batch, quant=fmt))
            except InputError:
                continue
            if d.min_gpus:
                held.append((d.min_gpus, i, f"{d.gpu.id if d.gpu else gid} in {d.scheme.name}"))  # ties: search order
        n, _, what = min(held, default=(0, 0, ""))
        if n > max_gpus:
            counts.append(f"{n} {what}")
    fewest = f" (fewest that hold it: {', '.join(counts)})" if counts else ""
    remedies = [f"raise --max-gpus{fewest}"] + ["raise --budget"] * (budget is not None)
    remedies += ["lower --min-tokens-per-s"] * (floor is not None)
    remedies += ["try --quant any"] if quant.strip().lower() != "any" else []
    return ", ".join(remedies) + ", or a shorter --context"
