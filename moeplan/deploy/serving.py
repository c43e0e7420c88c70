"""Serving: one deployment under a traffic load, in steady state (continuous batching with chunked prefill).

An engine step (iteration) decodes one token for each of the ``b`` running sequences and carries, in the same
forward pass, up to ``B - b`` prompt tokens of requests being prefilled (``B``: the engine's batched tokens,
vLLM's ``max_num_batched_tokens``).  With ``lambda`` requests per second of ``I`` uncached prompt tokens
(``I = isl x (1 - prefix hit rate)``) and ``O`` output tokens:

    t_iter = t_decode(b) / (1 - u),          u = lambda x I x c_p          (prefill's share of the GPU time)
    TPOT   = t_iter                          (a token per running sequence per iteration; in a closed loop of C
                                             clients the others' prompts only: u (C - 1)/C, one client alone
                                             decodes at t_decode, its own prefill being in its TTFT)
    S_p    = I x (t_decode(b) + (B - b) c_p) / (B - b)                      (one prompt's prefill, decode beside it)
    TTFT   = S_p x (1 + queue ahead) + (N - 1)/2 x t_iter + t_iter
    E2E    = TTFT + (O - 1) x TPOT

``t_decode(b)`` is the decode step of :class:`~moeplan.deploy.speed.SpeedModel` at the mean context
``isl + O/2``: its distinct-expert reads grow with ``b``, so an MoE step slows as the batch spreads over experts.
``c_p`` is prefill's cost per prompt token at a full chunk: its compute, and under TP its activations' bytes on
the all-reduces (the weights are read, and the collectives' latencies paid, for the decode anyway).
Prompts wait for the prefill server: under a concurrency, by Schweitzer's mean-value approximation of a closed
network (a request sees ``(C - 1)/C`` of the mean queue, ``lambda x`` its wait); under a rate, M/G/1 (mean wait
``rho (1 + cv^2) / (2 (1 - rho))`` services, ``rho = lambda S_p``, ``cv^2`` the prompt lengths' squared coefficient
of variation, :attr:`Traffic.prompt_cv2`: 0 for one length, M/D/1).  Where lengths vary (``--isl 512-1536``) the
model runs at their means, and the engines' ``--max-model-len`` allows the longest.  Where the host's floor on an
eager pass sets ``S_p`` (short prompts), the prompts waiting ride the next pass together (:func:`bulk_server_s`).
An engine that polls for new requests only every ``N`` decode steps (SGLang's ``--scheduler-recv-interval N``;
``N = 1`` elsewhere) holds an arriving request until the next poll: ``(N - 1) / 2`` steps more on average, at most
``N - 1`` (InferenceX runs DeepSeek-R1 on 8x B200 with ``N = 30`` from 16 clients: 30 x 13 ms TPOT puts 0.19 s on a
0.2 s TTFT, as measured).

Concurrency ``C`` (closed loop: each client sends its next request when one finishes) gives ``lambda = C /
E2E`` and ``b = C x (O - 1) x TPOT / E2E``; a request rate gives ``lambda`` and ``b = lambda x (O - 1) x TPOT``
(Little's law).  Running sequences are capped by the KV cache at the full context (``MemoryModel.max_batch``)
and by the engine's cap on running requests where one is set (``Deployment.max_running``); beyond it requests
wait, and a load the deployment cannot keep up with is reported unstable, never as a number.  The fixed point is
found by damped iteration.

p90: TPOT of an iteration that carries a full prefill chunk when more than a tenth of iterations do; TTFT with
the p90 of an exponential wait (2.3 x the mean wait).  Worked figure: Qwen3-30B-A3B bf16 on one H100 with vLLM,
1,000 in / 1,000 out at concurrency 32: ~24 sequences decoding, TPOT ~25 ms, TTFT ~0.15 s, ~1,100 output tok/s.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

from moeplan.deploy.deployment import Deployment, Traffic
from moeplan.deploy.memory import MemoryModel
from moeplan.deploy.results import ServingPoint
from moeplan.deploy.speed import SpeedModel
from moeplan.errors import InputError

PREFILL_BUSY = 0.85
"""The share of its time a split's prefill instance may be busy when the planner sizes the prefill side (a bulk
server's wait grows as ``1 / (1 - rho)``: at 85% it is ~3x a pass, at 95% ~10x)."""

ITERATIONS = 400
"""Most steps of the fixed point; it stops sooner once TTFT and TPOT move less than 1e-4 of themselves (near
saturation each step closes only ``1 - rho`` of the gap, hundreds of steps at 1,000 clients)."""
DAMPING = 0.5


class Damping:
    """Damped steps of the (TPOT, TTFT) fixed point: each moves :data:`DAMPING` of the way to the new values, a
    step that reverses the last one's direction shrinks the next ones by 0.7 (down to 2%) and one that keeps it
    lengthens them by 1.2 (up to :data:`DAMPING`), so that a fixed point
    the plain damped map circles in a two-cycle (TPOT 0.33 <-> 0.42 s for DeepSeek-V3 on 16 H200 at 640 clients)
    is reached instead of left at whichever half the last iteration landed on."""

    def __init__(self) -> None:
        self.rate, self.last = DAMPING, 0.0

    @staticmethod
    def settled(tpot: float, tpot_new: float, ttft: float, ttft_new: float) -> bool:
        """Whether both moved less than 1e-4 of themselves."""
        return abs(tpot_new - tpot) <= 1e-4 * tpot and abs(ttft_new - ttft) <= 1e-4 * ttft

    def step(self, tpot: float, tpot_new: float, ttft: float, ttft_new: float) -> tuple[float, float]:
        move = ttft_new - ttft
        if move * self.last < 0:
            self.rate = max(0.02, self.rate * 0.7)
        elif move * self.last > 0:  # a steady drift (a queue filling near saturation) takes longer steps again
            self.rate = min(DAMPING, self.rate * 1.2)
        self.last = move
        return tpot + self.rate * (tpot_new - tpot), ttft + self.rate * move


def running(t: Traffic, conc: float | None, cap: int, ttft: float, tpot: float, b: float) -> tuple[float, float, bool]:
    """One damped step of the fixed point: the arrival rate (``C / E2E`` in a closed loop, else the rate), the
    running batch moved halfway to Little's ``lambda x (O - 1) x TPOT`` (capped by the KV cache's ``cap``), and
    whether a rate asks for more running sequences than the cache holds."""
    osl = t.osl
    lam = t.rate if t.rate is not None else (conc or 1) / (ttft + (osl - 1) * tpot)
    want = lam * max(osl - 1, 0) * tpot
    overflow = t.rate is not None and want > cap * 1.0001
    return lam, b + DAMPING * (min(float(cap), max(1.0, want)) - b), overflow


def busy_share(b: float, conc: float | None) -> float:
    """Share of arrivals that find the engine decoding others' requests, so that a scheduler polling every ``N``
    decode steps holds them (an idle engine's loop polls at once): ``min(1, b (C - 1)/C)`` in a closed loop of ``C``
    clients, the others' share of the ``b`` running (one client never waits), ``min(1, b)`` under a rate."""
    others = b * (conc - 1) / conc if conc else b
    return min(1.0, max(0.0, others))


def bulk_server_s(arrivals: float, service: float, share: float, cv2: float = 0.0) -> float:
    """A prompt's wait and prefill on a server that takes every prompt waiting into its next pass (a bulk server):
    a pass of ``k`` prompts takes ``S + (k - 1) s`` (``S`` one prompt alone, ``s`` each further one's share), and
    ``k`` are the prompts that arrived during the last pass, so ``T = max(S, (S - s) / (1 - rho))`` with ``rho =
    arrivals x s`` (at most 0.98); a prompt waits for the running pass to end (``T / 2`` when the server is busy,
    ``arrivals x T`` of the time) and then for its own.  Light load: one prompt, ``S``.  ``cv2``: the prompt
    lengths' squared coefficient of variation, which the queue's M/G/1 floor carries."""
    rho = min(0.98, arrivals * share)
    t = max(service, (service - share) / (1 - rho))
    # the passes carry at least the queue's work, s a prompt: never less than the M/D/1 wait on it (where S = s the
    # passes shrink back to one prompt and only this term grows as the server fills)
    return max(t * (1 + min(1.0, arrivals * t) / 2), service + rho * share * (1 + cv2) / (2 * (1 - rho)))


class ServingModel:
    """Steady-state serving of one deployment (a resolved :class:`Deployment` on a GPU), at one end of the speed
    band (``scenario``: low, expected, high)."""

    def __init__(self, d: Deployment, traffic: Traffic, scenario: str = "expected") -> None:
        if d.gpu is None:
            raise InputError("serving needs a GPU: --gpu ID")
        traffic.check()
        self.d, self.t, self.scenario = d, traffic, scenario
        self.mm = MemoryModel(d)
        self.sm = SpeedModel(self.mm)
        self.context = traffic.mean_context
        self.kv_running = self.mm.max_batch(traffic.isl + traffic.osl)
        """Sequences the KV cache holds at the full context."""
        cap = d.running_cap
        self.max_running = min(self.kv_running, cap) if cap else self.kv_running
        """Sequences that run at once: the KV cache's room, or the engine's cap (``--max-running``) below it."""
        self.prompt = max(1, round(traffic.isl * (1 - traffic.prefix_hit)))
        self.chunk = d.pass_tokens
        self.c_p, self.floor = self._prefill_costs(scenario)
        """Seconds a prompt token adds to a step, and the host's floor under a prefill pass."""
        self.poll_steps = (max(1, d.recv_interval) - 1) / 2
        """Mean decode steps a request waits for the scheduler's next poll."""
        self.fill_stages = d.layout.pp - 1 if d.engine.pipelines_stages else 0
        """Pipeline stages a prompt's chunks cross after the first, where ``c_p`` is one stage's."""
        self._steps: dict[int, float] = {}

    def at(self, traffic: Traffic) -> ServingModel:
        """This model under another load of the same lengths (the models and the step cache are shared)."""
        traffic.check()
        lengths = (traffic.isl, traffic.osl, traffic.prefix_hit, traffic.isl_range, traffic.osl_range)
        if lengths != (self.t.isl, self.t.osl, self.t.prefix_hit, self.t.isl_range, self.t.osl_range):
            return ServingModel(self.d, traffic, self.scenario)
        other = copy.copy(self)
        other.t = traffic
        return other

    def in_scenario(self, scenario: str) -> ServingModel:
        """This deployment under the same load at another end of the speed band: the memory model and the KV
        cache's room are shared (they do not depend on the band), the speeds and the step cache are the
        scenario's own."""
        if scenario == self.scenario:
            return self
        other = copy.copy(self)
        other.scenario, other._steps = scenario, {}
        other.c_p, other.floor = self._prefill_costs(scenario)
        return other

    def _prefill_costs(self, scenario: str) -> tuple[float, float]:
        chunk = min(self.chunk, max(self.prompt, 1))
        return self.sm.prefill_token_seconds(chunk, self.t.isl, scenario), self.sm.prefill_dispatch_s(scenario)

    def decode_s(self, batch: float) -> float:
        """Decode step at ``batch`` running sequences (interpolated between integers, cached).  Under data-parallel
        attention beyond one sequence a rank, between multiples of the ranks: a running batch drifts over the ranks
        in a steady state, so its busiest rank's share grows smoothly, not by a whole sequence at 16k + 1 (which
        would let 258 clients on 16 ranks serve less than 256)."""
        ranks = self.d.layout.attention_ranks
        step = ranks if ranks > 1 and batch > ranks else 1
        lo = max(1, step * math.floor(batch / step))
        hi = lo + step
        for b in (lo, hi):
            if b not in self._steps:
                self._steps[b] = self.sm.decode_step(self.context, b, self.scenario).per_token_s
        w = min(1.0, max(0.0, (batch - lo) / step))
        return self._steps[lo] * (1 - w) + self._steps[hi] * w

    def _prefill_s(self, b: float, floor: float) -> float:
        """One prompt's ``I`` tokens riding ``B - b`` per iteration beside the decode, and never less than ``floor``."""
        room = max(1.0, self.chunk - b)
        return max(self.prompt * (self.decode_s(b) + room * self.c_p) / room, floor)

    def prefill_service_s(self, b: float) -> float:
        """Seconds the GPU needs for one prompt while ``b`` sequences decode: its ``I`` tokens ride ``B - b`` per
        iteration, each iteration also carrying the decode step: ``I x (t_decode(b) + (B - b) c_p) / (B - b)``,
        and never less than one eager prefill pass of the host (:meth:`SpeedModel.prefill_dispatch_s`).  Where the
        engine keeps a micro-batch on every pipeline stage, ``c_p`` is one stage's (the stages overlap, which sets
        the throughput), but a request has one micro-batch in flight, so each of its chunks crosses all ``pp``
        stages before the next starts: ``+ (pp - 1) x I x c_p``.  Llama-3.1-70B at TP1 x PP4 on H100, a
        4,096-token prompt: ~0.27 s a stage, so ~1.1 s to its first token at one client, as one prompt alone takes
        (:meth:`SpeedModel.prefill_seconds`), not the 0.35 s of one stage."""
        return self._prefill_s(b, self.floor) + self.fill_stages * self.prompt * self.c_p

    def prefill_share_s(self, b: float) -> float:
        """A queued prompt's share of the prefill server: :meth:`prefill_service_s`, but the eager pass's host floor
        is shared by the prompts one pass carries (``B - b`` tokens of them): ``floor x min(1, I / (B - b))``.  The
        queue ahead of a prompt drains at this rate; the prompt's own latency still pays a whole pass.  Qwen3-30B-A3B
        at TP 8, 128-token prompts: 64 of them ride one 8,192-token pass, so the floor limits throughput at 64 prompts
        a pass, not one."""
        return self._prefill_s(b, self.floor * min(1.0, self.prompt / max(1.0, self.chunk - b)))

    def waves(self) -> ServingPoint:
        """A closed loop of fixed-length requests: each wave prefills ``C`` prompts back to back (in chunks of
        ``B`` tokens, a decode step's fixed cost each), then decodes them together.

            burst = C x I x c_p + ceil(C x I / B) x t_decode(1),   TTFT = t_decode(C) + burst x (C + 1) / 2C
            TPOT = t_decode(C),   throughput = C x O / (burst + (O - 1) x TPOT)

        ATOM's Qwen3-235B-A22B fp8 on 8x MI355X, 1,000/1,000 at 128 clients: measured mean TTFT 1.33 s, TPOT
        16.5 ms -- a wave's prefill burst, not a queue of independent arrivals."""
        t = self.t
        assert t.concurrency is not None
        cap = max(1, self.max_running)
        conc = min(t.concurrency, cap)
        tokens = conc * self.prompt
        # the burst runs in full chunks of B tokens (several prompts each): their GEMMs are as large as B allows
        c_p = self.sm.prefill_token_seconds(min(self.chunk, tokens), self.t.isl, self.scenario)
        passes = math.ceil(tokens / self.chunk)
        burst = max(tokens * c_p + passes * self.decode_s(1), passes * self.floor)
        tpot = self.decode_s(conc)
        # the last prompt's chunks cross the other pipeline stages in turn (prefill_service_s)
        ttft = tpot + burst * (conc + 1) / (2 * conc) + self.fill_stages * self.prompt * c_p
        period = burst + (t.osl - 1) * tpot
        lam = conc / period
        if t.concurrency > conc:  # the rest wait a wave for a free KV slot
            ttft += (t.concurrency - conc) / lam
        e2e = ttft + (t.osl - 1) * tpot
        out = lam * t.osl
        return ServingPoint(
            concurrency=t.concurrency, decode_batch=float(conc), max_running=self.max_running, tpot_s=tpot,
            tpot_p90_s=tpot, ttft_s=ttft, ttft_p90_s=tpot + burst * 0.9, e2e_s=e2e, request_rate=lam,
            output_tokens_per_s=out, output_tokens_per_s_per_gpu=out / self.d.layout.num_gpus,
            tokens_per_s_per_user=1 / tpot, prefill_share=burst / period, stable=True,
            kv_limited=t.concurrency > self.kv_running,
        )  # fmt: skip

    def point(self) -> ServingPoint:
        """The steady state of the load (unstable when the deployment cannot keep up)."""
        if self.t.arrivals == "waves":
            return self.waves()
        t, osl = self.t, self.t.osl
        cap = max(1, self.max_running)
        # Beyond the KV cache's room the extra clients only wait for a slot: solve for the admitted ones.
        conc = min(t.concurrency, cap) if t.concurrency is not None else None
        b = float(min(cap, conc or 1))
        tpot = self.decode_s(b)
        ttft = self.prefill_service_s(b) + tpot
        lam, u, stable = 0.0, 0.0, True
        damp = Damping()
        for _ in range(ITERATIONS):
            lam, b, overflow = running(t, conc, cap, ttft, tpot, b)
            stable = not overflow  # the converged iterate decides, not a transient one
            u = lam * self.prompt * self.c_p
            if u >= 0.98:  # prefill takes all the GPU time: a rate grows its queue, a closed loop only waits
                stable, u = stable and conc is not None, 0.98
            seen = u * (conc - 1) / conc if conc else u  # the others' prompts: one's own prefill is in its TTFT
            tpot_new = self.decode_s(b) / (1 - seen)
            service = self.prefill_service_s(b)
            share = self.prefill_share_s(b)
            rho = lam * share
            poll = self.poll_steps * tpot_new * busy_share(b, conc)  # held until the scheduler next takes requests
            if conc is not None:  # closed loop: Schweitzer's mean-value queue seen at arrival
                ahead = (conc - 1) / conc * min(lam * max(ttft - tpot - poll, 0.0), conc - 1.0)
                queued = service * (1 + ahead)
            else:  # open loop: M/G/1 wait on the prefill server (M/D/1 for prompts of one length)
                if rho >= 0.98:
                    stable, rho = False, 0.98
                queued = service * (1 + rho * (1 + t.prompt_cv2) / (2 * (1 - rho)))
            if share < service:  # the host floor binds: waiting prompts ride the next pass together
                queued = min(queued, bulk_server_s(lam, service, share, t.prompt_cv2))
            ttft_new = queued + poll + tpot_new
            if damp.settled(tpot, tpot_new, ttft, ttft_new):
                break
            tpot, ttft = damp.step(tpot, tpot_new, ttft, ttft_new)
        e2e = ttft + (osl - 1) * tpot
        slot = 0.0  # a client's wait for a free slot (the KV cache's room or the engine's cap)
        if conc is not None:
            lam = conc / e2e
            if t.concurrency is not None and t.concurrency > conc:  # Little's law over the clients waiting
                slot = (t.concurrency - conc) / lam
                ttft += slot
                e2e = ttft + (osl - 1) * tpot
        elif not stable:  # a rate beyond what it passes: it runs full, as a closed loop holding every slot does
            full = self.at(replace(t, rate=None, concurrency=cap)).point()
            lam, b, tpot, u = min(lam, full.request_rate), full.decode_batch, full.tpot_s, full.prefill_share
            e2e = ttft + (osl - 1) * tpot
        out = lam * osl
        busy = min(1.0, lam * self.chunk_iterations(b) * tpot)  # share of iterations carrying a prefill chunk
        # such an iteration carries the prompt tokens that arrive per iteration over the iterations that take any
        # (conservation: mean = decode + busy x its prompt time, so the p90 never exceeds mean / busy < 10 x mean),
        # at most a full chunk: 1,024-token prompts ride 1,024-token chunks, not the scheduler's 8,192
        carried = min(max(0.0, self.chunk - b), lam * self.prompt * tpot / busy) if busy > 0 else 0.0
        tpot_p90 = max(tpot, self.decode_s(b) + carried * self.c_p) if busy > 0.1 else tpot
        poll = self.poll_steps * tpot * busy_share(b, conc)
        wait = max(0.0, ttft - slot - self.prefill_service_s(b) - tpot - poll)
        # the prefill queue's wait is exponential (p90 2.3x its mean), the poll's uniform (1.8x); a slot's wait is
        # the same for every client of a closed loop (each waits behind the same C - N others): its p90 is its mean
        ttft_p90 = ttft + 1.3 * wait + 0.8 * poll
        gpus = self.d.layout.num_gpus
        return ServingPoint(
            concurrency=t.concurrency if t.concurrency is not None else lam * e2e,
            decode_batch=b,
            max_running=self.max_running,
            tpot_s=tpot,
            tpot_p90_s=tpot_p90,
            ttft_s=ttft,
            ttft_p90_s=ttft_p90,
            e2e_s=e2e,
            request_rate=lam,
            output_tokens_per_s=out,
            output_tokens_per_s_per_gpu=out / gpus,
            tokens_per_s_per_user=1 / tpot,
            prefill_share=u,
            stable=stable,
            kv_limited=(t.concurrency if t.concurrency is not None else lam * e2e) > self.kv_running,
        )

    def chunk_iterations(self, b: float) -> int:
        """Iterations one prompt's prefill spans: ``ceil(I / (B - b))``."""
        return math.ceil(self.prompt / max(1.0, self.chunk - b))


class DisaggregatedServingModel:
    """Prefill and decode on separate GPUs: ``n_p`` prefill instances (each ``dp``) hand the KV cache of every prompt
    to ``n_d`` decode instances (each ``dd``; the router spreads the requests evenly over them).

        S_p   = prefill of one I-token prompt on a prefill instance (its latency: no decode beside it)
        S_b   = max(I x c_p, floor x I / B) at a full pass of B tokens (each scheduler's batched tokens, all ranks
                together, at most the prompts the instance runs at once): a prompt's share of the instance when queued
                prompts are batched together, its compute and its share of the pass's host floor
        T     = a batch's time: every prompt waiting joins the next batch (:meth:`batch_s`)
        KV    = the prompt's cache on one decode rank / min(link, engine's transfer rate)   (comm.kv_handoff_s: the
                whole latent under MLA, its share of the heads under GQA; 3.9 / 7 / 15 GB/s at the band's ends and
                middle, as SGLang's PD moves DeepSeek-V3's cache)
        TTFT  = T (1 + busy / 2) + KV + (1 + (N - 1)/2) t_decode(b),  T = max(S_p, (S_p - S_b) / (1 - rho)),
                rho = lambda S_b / n_p,  N the decode instance's --scheduler-recv-interval (SGLang; 1 elsewhere): its
                prefill waits until the decode side has taken the request and set its cache aside
                closed loop: at least S_p + A x S_b / n_p, A = (C - 1)/C x lambda x (time in prefill) the prompts
                ahead (Schweitzer's mean-value queue, as the aggregated model's)
        TPOT  = t_decode(b)   (no prefill in the step)
        out/s = lambda x O over n_p x |dp| + n_d x |dd| GPUs

    Each decode instance sees ``1/n_d`` of the load and ``n_p/n_d`` of the prefill capacity.  InferenceX's
    DeepSeek-R1 fp8 on H200 with Dynamo and TensorRT-LLM: 3 prefill instances of 8 and one decode instance of 8,
    both with data-parallel attention, 8K/1K at 512 clients (benchmarks/disaggregated_measurements.yaml).  Worth
    it where prefill would slow the decode steps (long prompts) and the prefill GPUs keep busy; the planner keeps
    a disaggregated configuration only where it beats the aggregated ones on cost at the targets.

    A closed loop whose prefill instances cannot keep up holds its clients in their queue: with 256 clients of
    8,192-token prompts on one 8-GPU prefill instance that takes S_b = 0.35 s a prompt (2.8 prompts/s), Little's
    law leaves 256 / 2.8 - 1,023 x TPOT of TTFT, tens of seconds (InferenceX's SGLang DeepSeek-R1 fp8 on H200:
    28.8 s measured); the bulk server alone, whose passes shrink back to one prompt, had said 0.7 s."""

    def __init__(
        self,
        dp: Deployment,
        dd: Deployment,
        n_prefill: int,
        traffic: Traffic,
        n_decode: int = 1,
        scenario: str = "expected",
    ) -> None:
        if dp.gpu is None or dd.gpu is None:
            raise InputError("serving needs a GPU: --gpu ID")
        if n_prefill < 1 or n_decode < 1:
            raise InputError("a disaggregated deployment needs at least one prefill and one decode instance")
        traffic.check()
        self.t, self.n_p, self.n_d, self.dd = traffic, n_prefill, n_decode, dd
        self.decode = ServingModel(dd, self._local(traffic), scenario)
        prompt = self.decode.prompt
        pm = SpeedModel(MemoryModel(dp))
        self.s_p = pm.prefill_seconds(prompt, scenario)
        cap = dp.running_cap  # a pass carries at most the requests the instance runs at once
        tokens = min(dp.pass_tokens, cap * prompt) if cap else dp.pass_tokens
        self.s_b = min(self.s_p, pm.loaded_prefill_s(prompt, tokens, scenario, traffic.isl))
        self.dp, self.scenario = dp, scenario
        # each decode rank receives its own share of the prompt's cache (the whole latent under MLA, its heads under
        # GQA), the ranks in parallel; the busiest pipeline stage's share sets the hand-off
        mm = self.decode.mm
        self._kv_rank_bytes = max(mm.kv_gpu_bytes(s, prompt, 1) for s in range(dd.layout.pp))
        self.gpus, self.kv_s = self._sized(n_prefill)

    def _sized(self, n_prefill: int) -> tuple[int, float]:
        """GPUs in all, and the KV cache's hand-off, with ``n_prefill`` prefill instances (more GPUs than one NVLink
        domain holds, or two kinds, put the two sides on different hosts)."""
        from moeplan.deploy.comm import kv_handoff_s, link_for, nvlink_domain
        from moeplan.deploy.speed import SCENARIOS

        dp, dd = self.dp, self.dd
        assert dp.gpu is not None and dd.gpu is not None
        gpus = n_prefill * dp.layout.num_gpus + self.n_d * dd.layout.num_gpus
        link = link_for(dd.gpu, gpus > nvlink_domain(dd.gpu) or dp.gpu.id != dd.gpu.id)  # two kinds: two hosts
        return gpus, kv_handoff_s(self._kv_rank_bytes, link, SCENARIOS[self.scenario].index)

    def with_prefill(self, n_prefill: int) -> DisaggregatedServingModel:
        """This split with ``n_prefill`` prefill instances (the instances' speeds and the decode side shared)."""
        if n_prefill < 1:
            raise InputError("a disaggregated deployment needs at least one prefill and one decode instance")
        other = copy.copy(self)
        other.n_p = n_prefill
        other.gpus, other.kv_s = self._sized(n_prefill)
        return other

    def prefill_instances_needed(self) -> int:
        """Prefill instances that keep up with the decode side at this load: ``ceil(lambda_d x S_b / u)``, for
        ``lambda_d`` the request rate the decode instances pass when no prompt queues and ``u`` =
        :data:`PREFILL_BUSY` the share of its time a prefill instance may be busy before its queue, not its
        passes, sets the TTFT.  DeepSeek-V3 nvfp4 on B200, 8,192/1,024 at 1,024 clients: an 8-GPU DP decode
        instance passes 24.9 requests/s; at S_b = 0.116 s a prompt on a 4-GPU DP instance, 24.9 x 0.116 / 0.85 =
        3.4: 4 prefill instances."""
        unlimited = copy.copy(self)
        unlimited.n_p = 1 << 20  # prompts never queue: the decode side alone sets the rate
        rate = unlimited.point().request_rate
        return max(1, math.ceil(rate * self.s_b / PREFILL_BUSY - 1e-9))

    def batch_s(self, arrivals: float) -> float:
        """A prompt's wait and prefill on a prefill instance that takes every waiting prompt into its next batch:
        :func:`bulk_server_s` with ``S_p`` alone and ``S_b`` a further prompt's share."""
        return bulk_server_s(arrivals, self.s_p, self.s_b, self.t.prompt_cv2)

    def _local(self, traffic: Traffic) -> Traffic:
        """The load one of the ``n_d`` decode instances sees."""
        if self.n_d == 1:
            return traffic
        if traffic.concurrency is not None:
            return replace(traffic, concurrency=max(1, round(traffic.concurrency / self.n_d)))
        return replace(traffic, rate=(traffic.rate or 0.0) / self.n_d)

    def at(self, traffic: Traffic) -> DisaggregatedServingModel:
        """This split under another load of the same lengths."""
        other = copy.copy(self)
        other.t, other.decode = traffic, self.decode.at(self._local(traffic))
        return other

    def point(self) -> ServingPoint:
        t, osl = self._local(self.t), self.t.osl
        n_p = self.n_p / self.n_d  # the prefill instances' capacity one decode instance draws on
        cap = max(1, self.decode.max_running)
        # one decode instance's share of the clients, unrounded: 5 clients on 4 instances of one slot each leave one
        # waiting for a slot, which a whole client per instance would hide
        local = self.t.concurrency / self.n_d if self.t.concurrency is not None else None
        conc = min(local, cap) if local is not None else None
        b = float(min(cap, max(1.0, conc or 1)))
        tpot = self.decode.decode_s(b)
        # the decode instance's poll (SGLang's recv interval: the prefill waits for the decode side to take the
        # request and set its cache aside), then the step that admits it
        poll_steps = self.decode.poll_steps
        steps = 1 + poll_steps * busy_share(b, conc)
        ttft = self.s_p + self.kv_s + steps * tpot
        # a client of a closed loop finds the others' prompts (the arrival theorem): one client never waits
        seen = (self.t.concurrency - 1) / self.t.concurrency if self.t.concurrency else 1.0
        lam, stable = 0.0, True
        damp = Damping()
        for _ in range(ITERATIONS):
            lam, b, overflow = running(t, conc, cap, ttft, tpot, b)
            stable = not overflow  # the converged iterate decides, not a transient one
            tpot_new = self.decode.decode_s(b)
            if lam * self.s_b / n_p >= 0.98:  # prefill saturated: a rate's queue grows, a closed loop waits
                stable = stable and conc is not None
            steps = 1 + poll_steps * busy_share(b, conc)
            queued = self.batch_s(lam / n_p * seen)
            if conc is not None:  # closed loop: the prompts ahead (Schweitzer's mean-value queue) drain at S_b each
                in_prefill = max(ttft - self.kv_s - steps * tpot, 0.0)
                others = max(0.0, conc - 1.0)  # under one client an instance: nobody ahead
                ahead = others / conc * min(lam * in_prefill, others)
                queued = max(queued, self.s_p + ahead * self.s_b / n_p)
            ttft_new = queued + self.kv_s + steps * tpot_new
            if damp.settled(tpot, tpot_new, ttft, ttft_new):
                break
            tpot, ttft = damp.step(tpot, tpot_new, ttft, ttft_new)
        e2e = ttft + (osl - 1) * tpot
        slot = 0.0
        if conc is not None:
            lam = conc / e2e
            if local is not None and local > conc:
                slot = (local - conc) / lam  # the same for every client: no tail beyond its mean
                ttft += slot
                e2e = ttft + (osl - 1) * tpot
        elif not stable:  # a rate beyond what it passes: it runs full, as a closed loop holding every slot does
            full = self.at(replace(self.t, rate=None, concurrency=cap * self.n_d)).point()
            lam, b, tpot = min(lam, full.request_rate / self.n_d), full.decode_batch, full.tpot_s
            e2e = ttft + (osl - 1) * tpot
        lam *= self.n_d  # all decode instances together
        out = lam * osl
        wait = max(0.0, ttft - slot - self.s_p - self.kv_s - steps * tpot)
        return ServingPoint(
            concurrency=self.t.concurrency if self.t.concurrency is not None else lam * e2e, decode_batch=b,
            max_running=self.decode.max_running, tpot_s=tpot, tpot_p90_s=tpot, ttft_s=ttft,
            ttft_p90_s=ttft + 1.3 * wait, e2e_s=e2e, request_rate=lam, output_tokens_per_s=out,
            output_tokens_per_s_per_gpu=out / self.gpus, tokens_per_s_per_user=1 / tpot,
            prefill_share=min(1.0, lam * self.s_b / self.n_p), stable=stable,
            kv_limited=(self.t.concurrency if self.t.concurrency is not None else lam * e2e)
            > self.decode.kv_running * self.n_d,
        )  # fmt: skip
