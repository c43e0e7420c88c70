"""A serving benchmark's client, replayed request by request against a disaggregated deployment.

The steady-state model (:class:`~moeplan.deploy.serving.DisaggregatedServingModel`) gives the waits of a load that
has run for ever.  A serving benchmark does not measure that: ``benchmark_serving`` (vLLM's, SGLang's and
InferenceX's copy) with ``--max-concurrency C --request-rate inf`` finishes its warm-up, then releases all ``C``
clients at once, and each sends ``--num-prompts / C`` requests back to back (InferenceX: 10 each), with lengths
drawn uniformly from ``[ratio x L, L]``.  The first burst of ``C`` prompts leaves the prefill instances as a train,
one prompt a pass's share apart; the clients come back a decode later still bunched (the output lengths spread
them by only ``+-10%`` of a decode at ratio 0.8), so their prompts meet a busy prefill instance round after round,
not only in the first.

This module replays that protocol as a discrete-event simulation on the steady-state model's own service figures,
changing none of them: a prefill instance is a bulk server (a pass of ``k`` waiting prompts takes ``S_p + (k - 1)
S_b``), the KV cache's hand-off takes ``KV``, a decode instance holds ``max_running`` sequences and admits the
next from its queue when one finishes, and every running sequence takes TPOT (the steady state's) a token.
Requests go to the prefill and to the decode instances in turn (round robin, Dynamo's default router mode).  A
first token comes one decode step after the hand-off on an idle decode instance, ``1 + (N - 1)/2`` steps on a busy
one (``N`` its scheduler's ``--scheduler-recv-interval``).

Worked figure: DeepSeek-R1 fp8 on B200 with TensorRT-LLM, one 8-GPU prefill instance (attention DP, the experts
under TP: S_p 0.33 s, S_b 0.097 s a prompt) and two 8-GPU decode instances, 8K/1K prompts (ratio 0.8) at 128
clients: the steady state waits 0.93 s for a first token, the replay's median is 1.31 s, and InferenceX measures
1.37 s (S659 in benchmarks/disaggregated_measurements.yaml).  The replay costs about 4 us a request: 164K
requests (16,384 clients) in under a second.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING

from moeplan.errors import InputError
from moeplan.records import Value

if TYPE_CHECKING:
    from moeplan.deploy.serving import DisaggregatedServingModel

PROMPTS_PER_CLIENT = 10
"""Requests each client sends where the run does not say (InferenceX: ``--num-prompts $((CONC * 10))``)."""

ARRIVE, PASS_END, FINISH = 0, 1, 2
"""Event kinds: a client's first request arriving (the later ones arrive as its previous one finishes), a prefill
pass ending, a sequence finishing.  Events at one instant run in the order they were made."""


@dataclass(frozen=True, repr=False, eq=False)
class Protocol(Value):
    """How a benchmark client drives the deployment."""

    clients: int
    """``--max-concurrency``: clients released together after the warm-up."""
    prompts_per_client: int = PROMPTS_PER_CLIENT
    """Requests each client sends in turn."""
    osl_range: tuple[int, int] | None = None
    """Output lengths drawn uniformly from this range (inclusive); None: the model's mean for every request."""
    seed: int = 0
    """Seed of the output-length draws (the replay's only randomness): medians over InferenceX's 328 disaggregated
    runs come within 2x of the measurement for the same 222 under seeds 0-3."""

    def check(self) -> None:
        if self.clients < 1 or self.prompts_per_client < 1:
            raise InputError("a benchmark replay needs at least one client and one request each")
        lo, hi = self.osl_range or (1, 1)
        if not 1 <= lo <= hi:
            raise InputError(f"output lengths {lo}-{hi}: need 1 <= low <= high")


@dataclass(frozen=True, repr=False, eq=False)
class ReplayResult(Value):
    """The first-token times one replay measures, as ``benchmark_serving`` reports them (seconds)."""

    requests: int
    ttft_median_s: float
    ttft_mean_s: float
    ttft_p90_s: float


def replay(model: DisaggregatedServingModel, protocol: Protocol) -> ReplayResult:
    """Replays ``protocol`` against ``model`` (its prefill and decode instances, hand-off and steady-state TPOT).

    One client alone meets idle instances every time: ``TTFT = S_p + KV + TPOT`` for each of its requests."""
    protocol.check()
    point = model.point()
    tpot, osl = point.tpot_s, model.t.osl
    s_p, s_b, kv = model.s_p, model.s_b, model.kv_s
    n_p, n_d, clients = model.n_p, model.n_d, protocol.clients
    slots = max(1, model.decode.max_running)  # sequences one decode instance holds
    poll = model.decode.poll_steps * tpot  # the wait for the scheduler's next poll, on a busy decode instance
    rng = random.Random(protocol.seed).random
    lo, hi = protocol.osl_range or (osl, osl)
    span = hi - lo + 1
    heap: list[tuple[float, int, int, int]] = [(0.0, c, ARRIVE, c) for c in range(clients)]  # (time, order, kind, who)
    order = clients
    sent_at = [0.0] * clients  # when each client's request in flight was sent
    left = [protocol.prompts_per_client] * clients  # requests each client has still to send, this one included
    waiting: list[list[int]] = [[] for _ in range(n_p)]  # clients whose prompts wait for a prefill pass
    busy = [False] * n_p
    batches: dict[int, list[int]] = {}  # a pass's prompts, by the order of its end event
    running = [0] * n_d
    queued: list[deque[int]] = [deque() for _ in range(n_d)]
    ttfts: list[float] = []
    push, pop = heapq.heappush, heapq.heappop
    next_p = next_d = 0
    while heap:
        t, seq, kind, who = pop(heap)
        if kind == ARRIVE:
            i = next_p
            next_p = (next_p + 1) % n_p
            sent_at[who] = t
            waiting[i].append(who)
            if busy[i]:
                continue
            admitted: list[tuple[int, int, bool]] = []
        elif kind == PASS_END:
            i = who
            busy[i] = False
            admitted = []
            for c in batches.pop(seq):
                j = next_d
                next_d = (next_d + 1) % n_d
                if running[j] < slots:
                    admitted.append((j, c, running[j] > 0))
                    running[j] += 1
                else:
                    queued[j].append(c)
        else:  # FINISH: who = j x clients + client
            j, c = divmod(who, clients)
            running[j] -= 1
            if queued[j]:
                admitted = [(j, queued[j].popleft(), running[j] > 0)]
                running[j] += 1
            else:
                admitted = []
            left[c] -= 1
            if left[c]:
                i = next_p
                next_p = (next_p + 1) % n_p
                sent_at[c] = t
                waiting[i].append(c)
                if busy[i]:
                    i = -1
            else:
                i = -1
        for j, c, others in admitted:  # the hand-off, then the decode step that emits the first token
            first = t + kv + tpot + (poll if others else 0.0)
            ttfts.append(first - sent_at[c])
            order += 1
            push(heap, (first + (lo + int(rng() * span) - 1) * tpot, order, FINISH, j * clients + c))
        if i >= 0 and waiting[i] and not busy[i]:  # every prompt waiting rides the next pass
            busy[i] = True
            order += 1
            batches[order] = waiting[i]
            push(heap, (t + s_p + (len(waiting[i]) - 1) * s_b, order, PASS_END, i))
            waiting[i] = []
    ttfts.sort()
    return ReplayResult(
        requests=len(ttfts),
        ttft_median_s=median(ttfts),
        ttft_mean_s=sum(ttfts) / len(ttfts),
        ttft_p90_s=ttfts[min(len(ttfts) - 1, int(0.9 * len(ttfts)))],
    )
