"""The benchmark client's replay (moeplan.deploy.replay) against the steady-state disaggregated model."""

from __future__ import annotations

from dataclasses import replace

import pytest

from moeplan.deploy.deployment import EstimateRequest, Traffic
from moeplan.deploy.replay import Protocol, replay
from moeplan.deploy.resolve import resolve
from moeplan.deploy.serving import DisaggregatedServingModel
from moeplan.errors import InputError
from moeplan.plans import accuracy

BASE = EstimateRequest(model="deepseek-v3", gpu="b200", context=9216, prompt=8192, use_calibration=False)
PREFILL = resolve(replace(BASE, num_gpus=8, tp=8), fewest=False)
DECODE = resolve(replace(BASE, num_gpus=8, tp=8, ep=8), fewest=False)


def split(clients: int, n_decode: int = 1) -> DisaggregatedServingModel:
    """DeepSeek-V3 on B200: one 8-GPU prefill instance, ``n_decode`` 8-GPU decode instances, 8K/1K prompts."""
    return DisaggregatedServingModel(PREFILL, DECODE, 1, Traffic(8192, 1024, concurrency=clients), n_decode)


def test_one_client_meets_idle_instances_every_time() -> None:
    model = split(1)
    out = replay(model, Protocol(clients=1, prompts_per_client=5, osl_range=(800, 1024)))
    alone = model.s_p + model.kv_s + model.point().tpot_s
    assert out.requests == 5
    assert out.ttft_median_s == pytest.approx(alone) and out.ttft_p90_s == pytest.approx(alone)
    assert model.point().ttft_s == pytest.approx(alone, rel=0.01)  # the steady state agrees where nothing queues


def test_clients_released_together_queue_at_the_prefill_beyond_the_steady_state() -> None:
    """The first burst leaves the prefill instance as a train and the clients come back bunched: at a load the
    steady state barely queues at (a quarter of the prefill busy), ten rounds wait on average several times its
    mean, and a tenth of the prompts wait behind most of a burst."""
    model = split(32, n_decode=2)
    steady = model.point()
    assert steady.prefill_share < 0.3
    out = replay(model, Protocol(clients=32, osl_range=(819, 1024)))
    assert out.requests == 320
    assert out.ttft_mean_s > 2 * steady.ttft_s and out.ttft_p90_s > 5 * steady.ttft_s
    assert model.s_p <= out.ttft_median_s <= out.ttft_p90_s < 32 * model.s_p  # below one queue of the whole burst


def test_more_clients_never_shorten_the_median_first_token() -> None:
    medians = [replay(split(c, n_decode=2), Protocol(clients=c, osl_range=(819, 1024))).ttft_median_s
               for c in (1, 4, 16, 64, 256)]  # fmt: skip
    assert medians == sorted(medians)


def test_clients_beyond_the_decode_slots_wait_for_a_sequence_to_finish() -> None:
    """Five clients on one decode instance of four slots: each round one request waits for another's decode."""
    capped = resolve(replace(BASE, num_gpus=8, tp=8, ep=8, max_running=4), fewest=False)
    model = DisaggregatedServingModel(PREFILL, capped, 1, Traffic(8192, 1024, concurrency=5))
    out = replay(model, Protocol(clients=5, prompts_per_client=4))
    assert out.requests == 20
    assert out.ttft_p90_s > 500 * model.point().tpot_s  # the waiting ones sat out much of a decode
    assert out.ttft_median_s < out.ttft_p90_s


def test_a_replay_is_reproducible_and_its_seed_only_moves_the_lengths() -> None:
    model = split(16)
    a, b = (replay(model, Protocol(clients=16, osl_range=(819, 1024))) for _ in range(2))
    assert a.ttft_median_s == b.ttft_median_s
    fixed = [replay(model, Protocol(clients=16, seed=s)).ttft_median_s for s in (0, 1)]
    assert fixed[0] == fixed[1]  # one length for every request: nothing random is left


def test_a_bad_protocol_is_refused() -> None:
    model = split(4)
    for bad in (Protocol(clients=0), Protocol(clients=4, prompts_per_client=0), Protocol(clients=4, osl_range=(9, 8))):
        with pytest.raises(InputError):
            replay(model, bad)


def test_the_harness_replays_each_record_s_own_client() -> None:
    """InferenceX's client: its concurrency, ten prompts each, output lengths in [0.8 L, L]."""
    record = {"concurrency": 64, "osl": 1024, "range_ratio": 0.8, "prompts_per_client": 10, "num_prompts": None}
    p = accuracy.benchmark_protocol(record)
    assert (p.clients, p.prompts_per_client, p.osl_range) == (64, 10, (819, 1024))
    fixed = accuracy.benchmark_protocol({**record, "range_ratio": None, "num_prompts": 128})
    assert (fixed.prompts_per_client, fixed.osl_range) == (2, None)
