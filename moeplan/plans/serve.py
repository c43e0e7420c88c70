"""``moeplan serve``: from a traffic load and latency targets to the cheapest deployments that meet them.

For each GPU kind (every vendor the serving engines run on), format (the checkpoint's own, fp8, NVFP4 where the
GPU has fp4 units, AWQ 4-bit), GPU count (the fewest that hold the model at ``isl + osl`` tokens, and two
doublings) and layout (tensor parallel; for MoE models also expert parallel inside it; across nodes TP 8 x
pipeline stages and wide EP), the steady state of :mod:`moeplan.deploy.serving` at the load gives TTFT, TPOT and
end-to-end latency (mean and p90) and output tokens per second per GPU and per user.  Configurations that meet
the targets are ranked by dollars per million output tokens at the catalogue's GPU-hour price; each comes with
its launch command.  A sweep of concurrency (1 to 1,024 requests) per configuration gives the Pareto front of
throughput per GPU against tokens per second per user.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

from moeplan.deploy.deployment import Deployment, EstimateRequest, Traffic
from moeplan.deploy.engines import ENGINES, engine, serving_engines_with
from moeplan.deploy.resolve import check_mtp_layers, resolve
from moeplan.deploy.results import ServingPoint
from moeplan.deploy.serving import ServingModel
from moeplan.errors import InputError, MoeplanError
from moeplan.formats.quality import Quality, config_quality, expert_bits, outranks_better
from moeplan.formats.schemes import model_scheme, sixteen_bit
from moeplan.hardware.gpus import GpuSpec, load_gpus
from moeplan.model.spec import ModelSpec
from moeplan.plans.serve_commands import (
    ROUTER_NAME,
    SPLIT_ENGINES,
    commented,
    host_share,
    launch,
    router_command,
    wide_settings,
)
from moeplan.records import Value

COUNTS = (1, 2, 4, 8, 16, 32, 64)
SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
REPLICAS = (2, 4, 8, 16, 32)
"""Copies the search tries behind a load balancer of each deployment of the fewest GPUs, twice and four times as
many."""
PREFILL_SATURATED = 0.98
"""A prefill share at which the prefill side has no time left: its queue, not its passes, sets the TTFT (the
serving models cap the share there)."""


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class ServeRequest(Value):
    """Every option of ``moeplan serve``."""

    model: str
    traffic: Traffic
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    gpus: tuple[str, ...] = ()
    quants: tuple[str, ...] = ()
    engines: tuple[str, ...] = ("vllm",)
    max_gpus: int = 16
    gpu_file: str | None = None
    mtp: bool = False
    """Decode speculatively with the model's MTP layers (acceptance ``mtp_accept``, default 0.85)."""
    mtp_accept: float | None = None
    mtp_drafts: int | None = None
    """Draft tokens per step with ``mtp`` (None: one per MTP layer)."""
    min_bits: float | None = None
    """Only formats whose routed experts keep at least this many bits per weight."""
    recv_interval: int = 1
    """Decode steps between the scheduler's polls for new requests, on the engines that have the setting (SGLang's
    ``--scheduler-recv-interval``); the others poll every step."""
    max_running: int | None = None
    """Requests each instance runs at once (the engines' ``--max-num-seqs``, ``--max-running-requests``,
    ``max_batch_size``); None: as many as the KV cache holds."""
    sort: str = "cost"
    """How the configurations meeting the targets rank: ``cost`` ($ per million output tokens) or ``energy``
    (joules per output token at the GPUs' TDP)."""


@dataclass(frozen=True, repr=False, eq=False)
class ServeCandidate(Value):
    """One configuration at the load, its cost and whether it meets the targets."""

    gpu: GpuSpec
    num_gpus: int
    tp: int
    ep: int
    pp: int
    quant: str
    engine: str
    point: ServingPoint
    meets: bool
    misses: tuple[str, ...]
    """The targets it misses (or why it cannot serve the load)."""
    usd_per_hour: float | None
    usd_per_million_output_tokens: float | None
    """All GPU time charged to the output tokens (the blended price)."""
    joules_per_output_token: float | None
    command: str
    sweep: tuple[ServingPoint, ...] = ()
    usd_per_million_input_tokens: float | None = None
    """The split price: GPU time spent prefilling (``prefill_share``) charged to input tokens, the rest to output
    (``usd_per_million_output_tokens`` keeps the blended figure)."""

    eplb: bool = False
    dp_attention: bool = False
    batch_overlap: bool = False
    """Two micro-batches a step (the engine's two-batch overlap), set where data-parallel attention spans hosts."""
    disaggregated: str | None = None
    """``2x4P:8D``: two prefill instances of 4 GPUs and a decode instance of 8 (None: aggregated)."""
    prefill_gpu: GpuSpec | None = None
    """The prefill instances' GPU kind where it is not the decode instances' (``gpu``): a split across kinds."""
    prefill_gpus: int = 0
    """The prefill instances' GPUs, all of them (``n_p x p``), in a split (0: aggregated)."""
    prefill_dp: int = 0
    """A split's prefill instances under data-parallel attention: the ranks of each, its experts over them (0: TP)."""
    prefill_overlap: bool = False
    """A split's prefill instances run two-batch overlap (their data-parallel attention spans hosts)."""
    replicas: int = 1
    """Copies of the deployment behind a load balancer, each serving its share of the load (``num_gpus`` counts
    all of them)."""
    quality: Quality | None = None
    """The format's typical quality cost (:func:`~moeplan.formats.quality.config_quality`)."""
    lower_quality: bool = False
    """Ranked above a configuration meeting the targets whose format costs less quality (``*`` in the table)."""

    @property
    def label(self) -> str:
        ep = f"EP{self.ep}" + ("+EPLB" if self.eplb else "") if self.ep > 1 else ""
        if self.dp_attention:  # attention data-parallel over the ranks, the experts over them: DP8+EP8
            layout = f"DP{self.tp}" + (f"+{ep}" if ep else "") + ("+TBO" if self.batch_overlap else "")
        else:
            layout = f"TP{self.tp}" + (f" {ep}" if ep else "") + (f" PP{self.pp}" if self.pp > 1 else "")
        sides = f"decode {layout}"
        if self.prefill_dp:  # each prefill instance DP+EP over its GPUs
            tbo = "+TBO" if self.prefill_overlap else ""
            sides = f"prefill DP{self.prefill_dp}+EP{self.prefill_dp}{tbo}, {sides}"
        if self.disaggregated and self.prefill_gpu is not None:  # 1x4P h100-sxm + 8D h200-sxm: each side's kind
            split = self.disaggregated.replace("P:", f"P {self.prefill_gpu.id} + ") + f" {self.gpu.id}"
            return f"{split} ({sides}) {self.quant} {self.engine}"
        if self.disaggregated:
            layout = f"{self.disaggregated} ({sides})"
        elif self.replicas > 1:  # 16x h100-sxm 16 x TP1: sixteen one-GPU copies
            layout = f"{self.replicas} x {layout}"
        return f"{self.num_gpus}x {self.gpu.id} {layout} {self.quant} {self.engine}"


@dataclass(frozen=True, repr=False, eq=False)
class ServeResult(Value):
    """Every configuration tried, best first, and the Pareto front of the concurrency sweeps."""

    spec: ModelSpec
    request: ServeRequest
    candidates: tuple[ServeCandidate, ...]
    pareto: tuple[tuple[str, ServingPoint], ...]
    """(configuration label, point) on the front of throughput per GPU vs tokens/s per user, by user speed."""


SERVE_ENGINES = ("vllm", "sglang", "tensorrt-llm", "atom")
"""Engines with continuous batching and chunked prefill, whose serving the model describes (ATOM on AMD Instinct)."""
SERVE_SORTS = ("cost", "energy")
"""``serve --sort``: $ per million output tokens, or joules per output token at the GPUs' TDP."""


def candidate_formats(
    spec: ModelSpec, gpu: GpuSpec, quants: tuple[str, ...], min_bits: float | None = None
) -> list[str]:
    """The checkpoint's own format, fp8, 4-bit floats on GPUs with fp4 units (NVFP4 on NVIDIA, MXFP4 on AMD
    Instinct, whose fp4 units take the OCP format: AMD's Quark MXFP4 checkpoints), AWQ 4-bit (or the formats asked
    for); with ``--min-bits`` above 8 the 16-bit weights too (DeepSeek's own checkpoint is fp8)."""
    if quants:
        return list(quants)
    native = spec.native_quant or spec.weights_dtype
    # a checkpoint already in an fp8 variant (DeepSeek's 128x128 blocks) is not searched again as per-channel fp8:
    # the same bytes within its scales and, on NVIDIA, the same kernels
    out = [native, *(() if native.startswith("fp8") else ("fp8",)), "awq-int4"]
    if min_bits is not None and min_bits > 8:
        out.insert(1, sixteen_bit(spec))
    if gpu.dense_tflops("fp4"):
        out.insert(2, "mxfp4" if gpu.vendor == "amd" else "nvfp4")
    return list(dict.fromkeys(out))


def layouts(spec: ModelSpec, n: int) -> list[tuple[int, int, int, bool, bool]]:
    """(tp, ep, pp, eplb, dp_attention) for ``n`` GPUs: TP (with EP inside it for MoE, and EPLB from 8 ranks), and
    for MoE attention data-parallel with the experts over all ranks; beyond a node TP 8 x PP, or wide EP with
    EPLB, under TP or data-parallel attention."""
    moe = spec.arch.moe is not None
    if n <= 8:
        out = [(n, 1, 1, False, False)] + ([(n, n, 1, False, False)] if moe and n > 1 else [])
        out += [(n, n, 1, False, True)] if moe and n > 1 else []
        return out + ([(n, n, 1, True, False)] if moe and n >= 8 else [])
    return [(8, 1, n // 8, False, False)] + ([(n, n, 1, True, False), (n, n, 1, True, True)] if moe else [])


def _targets(req: ServeRequest, p: ServingPoint) -> tuple[str, ...]:
    misses = []
    if not p.stable:
        misses.append("cannot keep up with the load")
    if req.ttft_s is not None and p.ttft_s > req.ttft_s:
        misses.append(f"TTFT {p.ttft_s:.2f} s > {req.ttft_s:g} s")
    if req.tpot_s is not None and p.tpot_s > req.tpot_s:
        misses.append(f"TPOT {p.tpot_s * 1e3:.0f} ms > {req.tpot_s * 1e3:g} ms")
    if req.e2e_s is not None and p.e2e_s > req.e2e_s:
        misses.append(f"E2E {p.e2e_s:.1f} s > {req.e2e_s:g} s")
    return tuple(misses)


def evaluate_config(
    d: Deployment, req: ServeRequest, sweep: bool = True, model: ServingModel | None = None
) -> ServeCandidate:
    """One configuration at the load (and its concurrency sweep)."""
    assert d.gpu is not None
    model = model or ServingModel(d, req.traffic)
    point = model.point()
    n = d.layout.num_gpus
    misses = _targets(req, point)
    price = d.price.usd_per_hour
    usd = price * n / (point.output_tokens_per_s * 3600) * 1e6 if price and point.stable else None
    joules = d.gpu.tdp_w * n / point.output_tokens_per_s if d.gpu.tdp_w else None
    points: tuple[ServingPoint, ...] = ()
    if sweep:
        cap = max(1, point.max_running)
        loads = [c for c in SWEEP if c <= 2 * cap] or [1]
        t = req.traffic
        points = tuple(model.at(replace(t, concurrency=c, rate=None, arrivals="poisson")).point() for c in loads)
    input_usd = None
    if price and point.stable and point.request_rate > 0:
        prompt_tokens = point.request_rate * req.traffic.isl  # all of them, cached ones too: as prices quote them
        input_usd = price * n * point.prefill_share / (prompt_tokens * 3600) * 1e6 if prompt_tokens else None
    return ServeCandidate(
        usd_per_million_input_tokens=input_usd,
        gpu=d.gpu, num_gpus=n, tp=d.layout.tp, ep=d.layout.ep, pp=d.layout.pp, quant=d.scheme.name,
        engine=d.engine.name, eplb=d.layout.eplb, point=point, meets=not misses, misses=misses,
        usd_per_hour=price * n if price else None, usd_per_million_output_tokens=usd, joules_per_output_token=joules,
        command=launch(d, n), sweep=points, dp_attention=d.layout.dp_attention, batch_overlap=d.batch_overlap,
    )  # fmt: skip


def replicated(d: Deployment, req: ServeRequest, copies: int) -> ServeCandidate | None:
    """``copies`` of deployment ``d`` behind a load balancer, each serving ``1/copies`` of the load (a closed loop's
    clients split evenly, a rate divided): the point of one copy with its rate, output and clients times the copies;
    TTFT, TPOT, per-GPU output and cost per token are one copy's.  Qwen3-30B-A3B at 50 requests/s on B200: sixteen
    one-GPU copies at 3.1 requests/s each, where one 16-GPU instance spreads its attention over hosts."""
    t = req.traffic
    if t.concurrency is not None and t.concurrency % copies:  # the clients split evenly, or not at all
        return None
    local = (replace(t, concurrency=t.concurrency // copies) if t.concurrency is not None
             else replace(t, rate=(t.rate or 0.0) / copies))  # fmt: skip
    one = evaluate_config(d, replace(req, traffic=local), sweep=False)
    p = one.point
    point = replace(p, concurrency=p.concurrency * copies, request_rate=p.request_rate * copies,
                    output_tokens_per_s=p.output_tokens_per_s * copies, decode_batch=p.decode_batch * copies,
                    max_running=p.max_running * copies)  # fmt: skip  # the counts summed, the latencies one copy's
    misses = _targets(req, point)
    n = d.layout.num_gpus
    return replace(one, num_gpus=n * copies, replicas=copies, point=point, meets=not misses, misses=misses,
                   usd_per_hour=one.usd_per_hour * copies if one.usd_per_hour else None,
                   command=commented(one.command, f"one of {copies} copies behind a load balancer (vLLM's and "
                                     "SGLang's routers, or any HTTP one)"))  # fmt: skip


def disaggregated(
    base: EstimateRequest,
    spec: ModelSpec,
    gpu: GpuSpec,
    p: int,
    req: ServeRequest,
    prefill: tuple[GpuSpec, int] | None = None,
) -> list[ServeCandidate]:
    """Prefill on ``n_p`` instances of ``p`` GPUs (TP, or with a data-parallel-attention decode instance also
    data-parallel attention with EP, as LMSYS's and InferenceX's wide-EP prefill runs), decode on one of ``d`` (EP,
    under TP or data-parallel attention) of 1, 2 or 4 times ``p`` GPUs; one or two prefill instances, and as many
    as keep up with what that decode instance serves at the load
    (:meth:`~moeplan.deploy.serving.DisaggregatedServingModel.prefill_instances_needed`), two fewer to one more:
    8,192-token prompts at 1,024 clients take 3-5 prefill instances of 4 B200s for an 8-GPU decode instance (3 at a
    5 s TTFT, 4 at 2 s), where one or two leave a TTFT of 30-80 s.  ``prefill``: the prefill instances' GPU kind
    and size where they are not ``gpu`` (the decode instances' kind, ``p`` then its fewest GPUs): each side priced at
    its own kind's GPU-hour, the KV cache over InfiniBand between their hosts."""
    from moeplan.deploy.serving import DisaggregatedServingModel

    out = []
    dp_ok = engine(base.engine).runs_dp_attention
    pgpu, pn = prefill or (gpu, p)
    modes = ((False, False), (True, False), (True, True)) if dp_ok else ((False, False),)
    splits = []
    for d, (dpa, pdpa) in itertools.product((p, 2 * p, 4 * p), modes):
        if pn + d > req.max_gpus or (dpa and d < 2) or (pdpa and pn < 2):
            continue
        try:
            asked_p = replace(base, gpu=pgpu.id, num_gpus=pn, tp=pn, ep=pn if pdpa else None, dp_attention=pdpa,
                              **wide_settings(base.engine, pgpu, pn, pdpa))  # fmt: skip
            asked_d = replace(base, num_gpus=d, tp=d, ep=d if d > 1 else None, dp_attention=dpa,
                              **wide_settings(base.engine, gpu, d, dpa))  # fmt: skip
            dp = resolve(asked_p, spec=spec, gpu=pgpu, fewest=False)
            dd = resolve(asked_d, spec=spec, gpu=gpu, fewest=False)
        except MoeplanError:
            continue
        one = DisaggregatedServingModel(dp, dd, 1, req.traffic)
        if one.decode.max_running < 1:
            continue
        # one and two prefill instances, and as many as keep up with the decode side, with its neighbours (two fewer
        # may still meet a looser TTFT for less; one more shortens the queue)
        need = one.prefill_instances_needed()
        counts = {1, 2, *range(max(1, need - 2), need + 2)}
        splits += [one.with_prefill(n_p) for n_p in sorted(counts) if n_p * pn + d <= req.max_gpus]
        clients = req.traffic.concurrency or 0
        rate = req.traffic.rate is not None  # a rate beyond the pair's: unstable (a closed loop only waits)
        if clients > one.decode.max_running or (rate and not one.with_prefill(need).point().stable):
            # more load than one decode instance holds: copies of the sized pair, the router spreading the requests
            for copies in (2, 4, 8):
                if (need * pn + d) * copies <= req.max_gpus:
                    splits.append(DisaggregatedServingModel(dp, dd, need * copies, req.traffic, n_decode=copies))
    for split in splits:
        dp, dd, n_p, d, pdpa = split.dp, split.dd, split.n_p, split.dd.layout.num_gpus, split.dp.layout.dp_attention
        n_d, total = split.n_d, split.gpus
        point = split.point()
        t = req.traffic
        loads = [c for c in SWEEP if c <= 2 * max(1, point.max_running)] or [1]
        sweep = tuple(split.at(replace(t, concurrency=c, rate=None)).point() for c in loads)
        misses = _targets(req, point)
        p_price, d_price = dp.price.usd_per_hour, dd.price.usd_per_hour
        prefill_hourly = p_price * n_p * pn if p_price else None
        hourly = prefill_hourly + d_price * d * n_d if prefill_hourly and d_price else None
        usd = hourly / (point.output_tokens_per_s * 3600) * 1e6 if hourly and point.stable else None
        prompt_tokens = point.request_rate * t.isl  # all of them, cached ones too
        input_usd = (prefill_hourly / (prompt_tokens * 3600) * 1e6  # the prefill instances' cost
                     if prefill_hourly and point.stable and prompt_tokens > 0 else None)  # fmt: skip
        watts = pgpu.tdp_w * n_p * pn + gpu.tdp_w * d * n_d if pgpu.tdp_w and gpu.tdp_w else None
        joules = watts / point.output_tokens_per_s if watts else None
        where = f" on {pgpu.id}" if prefill else ""
        prefill_line = commented(launch(dp, pn, "prefill"),
                                  f"prefill: {n_p} instance{'s' if n_p > 1 else ''} of this{where}")  # fmt: skip
        router = ROUTER_NAME[dd.engine.name]
        instances = f": {n_d} instances of this" if n_d > 1 else ""
        label = f"{n_p}x{pn}P:{d}D" if n_d == 1 else f"{n_p}x{pn}P:{n_d}x{d}D"  # 16x4P:4x8D: four decode instances
        decode = commented(launch(dd, d, "decode"), f"decode{instances}{' on ' + gpu.id if prefill else ''}; {router} "
                            "routes each request and its KV cache")  # fmt: skip
        shares = (host_share(pgpu, pn), host_share(gpu, d))
        command = f"{prefill_line}\n{decode}\n{router_command(dd.engine.name, n_p, n_d, shares)}"
        out.append(ServeCandidate(
            gpu=gpu, num_gpus=total, tp=dd.layout.tp, ep=dd.layout.ep, pp=1, quant=dd.scheme.name,
            engine=dd.engine.name, point=point, meets=not misses, misses=misses,
            usd_per_hour=hourly, usd_per_million_output_tokens=usd,
            joules_per_output_token=joules, command=command, sweep=sweep, disaggregated=label,
            usd_per_million_input_tokens=input_usd,
            dp_attention=dd.layout.dp_attention, batch_overlap=dd.batch_overlap, prefill_gpu=pgpu if prefill else None,
            prefill_gpus=n_p * pn, prefill_dp=pn if pdpa else 0, prefill_overlap=dp.batch_overlap,
        ))  # fmt: skip
    return out


def _hourly(gpu: GpuSpec) -> float | None:
    from moeplan.deploy.cost import price_for

    return price_for(gpu, None, None).usd_per_hour


def mixed_pairs(kinds: list[GpuSpec], named: bool) -> list[tuple[GpuSpec, GpuSpec]]:
    """(prefill kind, decode kind) pairs a split across kinds is tried on: every ordered pair of one vendor's kinds
    the user named (``--gpu``); over the whole catalogue, each datacenter decode kind (those sold in RDMA-connected
    servers, which disaggregated serving runs on) with the :func:`complementary` datacenter kind of its vendor that
    buys compute cheapest (dense bf16 TFLOP/s per catalogue GPU-hour; kinds without a price are not weighed) -- one
    partner a kind, so the search stays within seconds."""
    if named:
        return [(p, d) for p, d in itertools.permutations(kinds, 2) if p.vendor == d.vendor]

    def compute_buy(g: GpuSpec) -> float:
        return g.tflops.get("bf16", 0.0) / (_hourly(g) or 1.0)

    out = []
    servers = [g for g in kinds if g.kind == "datacenter"]
    for d in servers:
        partners = [p for p in servers if p is not d and complementary(p, d)]
        if partners:
            out.append((max(partners, key=compute_buy), d))
    return out


def complementary(prefill: GpuSpec, decode: GpuSpec) -> bool:
    """Whether prompts on ``prefill`` and decode steps on ``decode`` can beat either kind alone: prompt tokens are
    compute-bound and decode steps memory-bound, so the prefill kind must buy dense bf16 TFLOP/s cheaper and the
    decode kind memory bandwidth cheaper, per catalogue GPU-hour (False where either has no price, or the vendors
    differ: no engine hands a KV cache between them).  H100 SXM (989 TFLOP/s, 3.35 TB/s, $2.50) to prefill for H200
    (989, 4.8, $3.50): 396 TFLOP/s a dollar against 283, 1.34 TB/s a dollar against 1.37 -- a pair worth pricing."""
    fp, fd = prefill.tflops.get("bf16"), decode.tflops.get("bf16")
    pp, pd = _hourly(prefill), _hourly(decode)
    if not (fp and fd and pp and pd) or prefill.vendor != decode.vendor:
        return False
    return fp / pp > fd / pd and decode.bandwidth_gb_s / pd > prefill.bandwidth_gb_s / pp


def check_request(req: ServeRequest) -> None:
    req.traffic.check()
    for name, v in (("--ttft", req.ttft_s), ("--tpot", req.tpot_s), ("--e2e", req.e2e_s)):
        if v is not None and not v > 0:
            raise InputError(f"{name} must be a positive latency, not {v}")
    if req.max_gpus < 1:
        raise InputError(f"--max-gpus must be at least 1, not {req.max_gpus}")
    if req.min_bits is not None and not req.min_bits > 0:
        raise InputError(f"--min-bits must be a positive number, not {req.min_bits}")
    if req.mtp_accept is not None and not 0 <= req.mtp_accept < 1:
        raise InputError(f"--mtp-accept must be at least 0 and below 1, not {req.mtp_accept}")
    if (req.mtp_drafts is not None or req.mtp_accept is not None) and not req.mtp:
        raise InputError("--mtp-drafts and --mtp-accept set the MTP layers' drafts: give --mtp too")
    for name in req.engines:
        eng = engine(name)
        if eng.name not in SERVE_ENGINES:
            raise InputError(f"serve plans the serving engines ({', '.join(SERVE_ENGINES)}), not {eng.name}",
                             "estimate and offload take the others")  # fmt: skip
    if req.sort not in SERVE_SORTS:
        raise InputError(f"--sort '{req.sort}' is not one of {', '.join(SERVE_SORTS)}")
    if req.recv_interval < 1:
        raise InputError(f"--recv-interval must be at least 1, not {req.recv_interval}")
    if req.recv_interval > 1 and not any(engine(name).recv_interval_flag for name in req.engines):
        raise InputError("--recv-interval sets how often the scheduler polls for requests; none of the engines "
                         "searched has that setting",
                         f"add --engine {serving_engines_with('recv_interval_flag')}")  # fmt: skip
    if req.max_running is not None:
        if req.max_running < 1:
            raise InputError(f"--max-running must be at least 1, not {req.max_running}")
        lacking = [name for name in req.engines if not engine(name).max_running_flag]
        if lacking:
            raise InputError(f"--max-running caps the requests an engine runs at once; {', '.join(lacking)} has no "
                             "such setting",
                             f"engines with one: {serving_engines_with('max_running_flag')}")  # fmt: skip


def _base(spec: ModelSpec, gpu: GpuSpec, label: str, eng: str, req: ServeRequest) -> EstimateRequest:
    """The request every configuration of ``spec`` on ``gpu`` in format ``label`` under ``eng`` starts from."""
    return EstimateRequest(model=spec.id, gpu=gpu.id, quant=label, engine=eng,
                           context=req.traffic.longest, prompt=req.traffic.isl, gpu_file=req.gpu_file,
                           mtp=req.mtp, mtp_accept=req.mtp_accept, mtp_drafts=req.mtp_drafts,
                           recv_interval=req.recv_interval if engine(eng).recv_interval_flag else 1,
                           max_running=req.max_running)  # fmt: skip


def _is_gguf(label: str, spec: ModelSpec) -> bool:
    try:
        return model_scheme(spec, label).is_gguf
    except MoeplanError:
        return False


def plan_serve(req: ServeRequest, progress: Callable[[int, int], None] | None = None) -> ServeResult:
    """Every configuration that can serve the model, at the load, best first; and the Pareto front."""
    from moeplan.hardware.gpus import resolve_gpu
    from moeplan.sources.catalog import resolve_model

    check_request(req)
    spec = resolve_model(req.model)
    check_mtp_layers(spec, req.mtp)  # before the search, as resolve would refuse each configuration
    only = {resolve_gpu(g, req.gpu_file).id for g in req.gpus}
    catalogue = [g for g in load_gpus(req.gpu_file) if (g.id in only if only else not g.unified_memory)]
    engines = [engine(e) for e in req.engines]
    context = req.traffic.longest
    req.traffic.check_context(spec.name, spec.arch.max_context)
    for q in req.quants:  # an unknown format is refused by name, not as a search that found nothing
        model_scheme(spec, q)
    if req.quants and all(_is_gguf(q, spec) for q in req.quants):
        raise InputError(
            f"serve plans vLLM, SGLang and TensorRT-LLM, which serve checkpoints, not GGUF mixes like {req.quants[0]}",
            "give a checkpoint format (bf16, fp8, awq-int4, nvfp4), or plan llama.cpp with `moeplan estimate`",
        )
    if req.quants and req.min_bits is not None:
        bits = {q: expert_bits(spec.arch, model_scheme(spec, q)) for q in req.quants}
        if all(b < req.min_bits for b in bits.values()):
            said = ", ".join(f"{q} {b:.2f}" for q, b in bits.items())
            raise InputError(f"--quant stores the experts in fewer bits per weight than --min-bits {req.min_bits:g} "
                             f"({said})", "lower --min-bits, or drop --quant to search the formats")  # fmt: skip
    if not any(eng.can_run(g) for g in catalogue for eng in engines):
        names = ", ".join(e.name for e in engines)
        gpus = ", ".join(g.id for g in catalogue[:4]) + (" ..." if len(catalogue) > 4 else "")
        raise InputError(f"{names} run{'s' if len(engines) == 1 else ''} on none of the GPUs asked for ({gpus})",
                         "ATOM runs on AMD Instinct, TensorRT-LLM on NVIDIA; no serving engine runs on Apple GPUs "
                         "(plan those with `moeplan estimate --engine llama.cpp` or mlx)")  # fmt: skip
    out: list[ServeCandidate] = []
    kept, unserved = 0, []  # formats searched that keep --min-bits; those no engine asked for runs on a GPU
    fewest: dict[tuple[str, str, str], int] = {}  # (GPU, engine, format): the fewest GPUs of that kind that serve
    for i, gpu in enumerate(catalogue):
        if progress:
            progress(i, len(catalogue))
        for eng in engines:
            if not eng.can_run(gpu) or spec.architecture in eng.missing_architectures:
                continue
            for label in candidate_formats(spec, gpu, req.quants, req.min_bits):
                try:
                    scheme = model_scheme(spec, label)
                except MoeplanError:
                    continue
                if scheme.is_gguf or not eng.serves(scheme, gpu):
                    unserved.append(f"{gpu.name} has no {eng.name} kernels for {scheme.name} weights")
                    continue
                if req.min_bits is not None and expert_bits(spec.arch, scheme) < req.min_bits:
                    continue
                kept += 1
                base = _base(spec, gpu, label, eng.name, req)
                found, met = 0, False
                for n in COUNTS:
                    # two doublings past the fewest GPUs that hold the model, and on up to --max-gpus while none
                    # of these meets the targets (a tight TPOT or a high rate needs more GPUs than the model does)
                    if n > req.max_gpus or (found and n > 4 * found and met):
                        break
                    if found and n == found * 2 and spec.arch.moe is not None:
                        out += disaggregated(base, spec, gpu, found, req) if eng.name in SPLIT_ENGINES else []
                    for tp, ep, pp, eplb, dpa in layouts(spec, n):
                        if dpa and not eng.runs_dp_attention:
                            continue
                        try:
                            asked = replace(base, num_gpus=n, tp=tp, ep=ep, pp=pp, eplb=eplb, dp_attention=dpa,
                                            **wide_settings(eng.name, gpu, n, dpa))  # fmt: skip
                            d = resolve(asked, spec=spec, gpu=gpu, fewest=False)
                        except MoeplanError:
                            continue
                        model = ServingModel(d, req.traffic) if d.gpu is not None else None
                        if model is None or model.max_running < 1:
                            continue
                        found = found or n
                        out.append(evaluate_config(d, req, model=model))
                        met = met or out[-1].meets
                        if n in (found, 2 * found, 4 * found):  # copies of the smaller deployments, within --max-gpus
                            copies = [r for r in REPLICAS if n * r <= req.max_gpus]
                            out += [c for r in copies if (c := replicated(d, req, r)) is not None]
                if found:
                    fewest[(gpu.id, eng.name, label)] = found
    if spec.arch.moe is not None:  # prefill on one kind, decode on another
        for pgpu, dgpu in mixed_pairs([g for g in catalogue if any(k[0] == g.id for k in fewest)], bool(only)):
            for (gid, name, label), d_n in fewest.items():
                p_n = fewest.get((pgpu.id, name, label))
                if gid != dgpu.id or p_n is None or name not in SPLIT_ENGINES:
                    continue
                out += disaggregated(_base(spec, dgpu, label, name, req), spec, dgpu, d_n, req, prefill=(pgpu, p_n))
    if progress:
        progress(len(catalogue), len(catalogue))
    if not out and not kept and (req.min_bits is not None or unserved):  # say why nothing was tried
        more = f" (and {len(unserved) - 1} more such)" if len(unserved) > 1 else ""
        raise InputError(*((f"no format searched stores {spec.name}'s experts in --min-bits {req.min_bits:g} bits per "
                            "weight or more (bf16: 16)", "lower --min-bits") if req.min_bits is not None else
                           (unserved[0] + more, "choose another --quant, --gpu or --engine")))  # fmt: skip
    if not out:
        raise InputError(
            f"no configuration of {spec.name} serves {context:,}-token requests within --max-gpus {req.max_gpus} "
            f"on the GPUs, formats and engines asked for (GPU counts tried: "
            f"{', '.join(str(n) for n in COUNTS if n <= req.max_gpus)})",
            "raise --max-gpus, or allow more --gpu, --quant or --engine choices",
        )
    inf = float("inf")
    # priced first, by $ per million tokens; then priced kinds that cannot keep up (no $ figure), and after them
    # unpriced GPUs (no catalogue price, no --gpu-file), each by output per GPU, which orders the cost per token of
    # one GPU kind at any price
    out.sort(key=lambda c: (not c.meets, c.usd_per_million_output_tokens is None, c.usd_per_hour is None,
                            c.usd_per_million_output_tokens or inf, len(c.misses),  # equal cost: fewer misses first
                            -c.point.output_tokens_per_s_per_gpu if c.usd_per_million_output_tokens is None
                            else -c.point.tokens_per_s_per_user,
                            c.point.ttft_s))  # fmt: skip  # equal cost and speed: the shorter wait first
    if req.sort == "energy":  # the least energy a token first (stable: at equal energy, the cost order above)
        out.sort(key=lambda c: (not c.meets, not c.point.stable, c.joules_per_output_token is None,
                                c.joules_per_output_token or inf))  # fmt: skip
    # each format's quality; those meeting the targets ranked above a format that loses less quality are marked
    quality = {q: config_quality(spec, q) for q in {c.quant for c in out}}
    out = [replace(c, quality=quality[c.quant]) for c in out]
    pool = [i for i, c in enumerate(out) if c.meets] or list(range(len(out)))
    for i, worse in zip(pool, outranks_better([out[i].quality for i in pool]), strict=True):
        out[i] = replace(out[i], lower_quality=True) if worse else out[i]
    return ServeResult(spec, req, tuple(out), pareto(out, req.ttft_s))


def best_throughput_per_gpu(result: ServeResult, ttft_s: float | None, tpot_s: float | None) -> float:
    """The most output tokens/s per GPU any configuration reaches at any swept concurrency while meeting the
    targets (0 when none does): the planner's answer to "how much can a GPU serve at this interactivity"."""
    best = 0.0
    for c in result.candidates:
        for p in c.sweep:
            if p.stable and (ttft_s is None or p.ttft_s <= ttft_s) and (tpot_s is None or p.tpot_s <= tpot_s):
                best = max(best, p.output_tokens_per_s_per_gpu)
    return best


def pareto(candidates: list[ServeCandidate], ttft_s: float | None = None) -> tuple[tuple[str, ServingPoint], ...]:
    """The points of all sweeps no other point beats on both tokens/s per user and throughput per GPU, among those
    whose prefill keeps up (a saturated prefill's clients decode fast once admitted after a queue of any length:
    a closed loop is stable there, but its users wait) and, with ``--ttft``, that meet it."""
    pts = [(c.label, p) for c in candidates for p in c.sweep
           if p.stable and p.prefill_share < PREFILL_SATURATED and (ttft_s is None or p.ttft_s <= ttft_s)]  # fmt: skip
    pts.sort(key=lambda lp: (-lp[1].tokens_per_s_per_user, -lp[1].output_tokens_per_s_per_gpu))
    front: list[tuple[str, ServingPoint]] = []
    best = -1.0
    for label, p in pts:
        if p.output_tokens_per_s_per_gpu > best:
            front.append((label, p))
            best = p.output_tokens_per_s_per_gpu
    return tuple(front)


__all__ = ["ENGINES", "ServeCandidate", "ServeRequest", "ServeResult", "plan_serve"]
