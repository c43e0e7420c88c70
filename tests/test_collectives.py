"""``calibrate --collectives``: the alpha-beta fit, two gloo processes end to end, the CLI, and the failures."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moeplan.cli import app
from moeplan.errors import InputError
from moeplan.hardware.profiles import CalibrationProfile, load_profile, save_profile

torch = pytest.importorskip("torch", reason="calibration needs torch (the reference dependency group installs it)")

from moeplan.calibration import collectives as coll  # noqa: E402
from moeplan.calibration.run import CalibrationError  # noqa: E402

TINY = ["--hidden", "64", "--expert-ffn", "32", "--experts", "8", "--top-k", "2", "--tokens", "1,64"]


def test_bus_factors_are_the_ring_shares() -> None:
    assert coll.bus_factor("all_reduce", 8) == 1.75 and coll.bus_factor("all_to_all", 8) == 0.875
    assert coll.bus_factor("all_reduce", 2) == 1.0 and coll.bus_factor("all_to_all", 2) == 0.5


def test_fit_recovers_latency_and_bandwidth() -> None:
    """Points on t = 20 us + 1.75 x bytes / 100 GB/s give those two figures back (the docstring's example)."""
    alpha, beta, factor = 20e-6, 100e9, 1.75
    points = [(float(b), alpha + factor * b / beta) for b in (2048, 16384, 131072, 1 << 20, 8 << 20)]
    a, b, method = coll.fit_alpha_beta(points, factor)
    assert method == "least squares"
    assert a == pytest.approx(alpha, rel=1e-6) and b == pytest.approx(beta, rel=1e-6)
    fit = coll.CollectiveFit(alpha_s=a, bus_gb_s=b / 1e9, factor=factor)
    assert fit.seconds(1 << 20) == pytest.approx(38.35e-6, rel=1e-3)
    a, b, _ = coll.fit_alpha_beta([(1024.0, 10e-6), (float(1 << 20), 30e-6)], 1.0)
    assert a == pytest.approx(9.98e-6, rel=1e-3) and b / 1e9 == pytest.approx(52.4, rel=1e-3)


def test_noisy_points_still_give_a_positive_fit() -> None:
    """Noise (a busy CPU) can make least squares unphysical: a negative latency, or times that fall with size."""
    a, b, method = coll.fit_alpha_beta([(1e5, 1e-4), (1e6, 2e-3), (2e6, 8e-3)], 1.0)
    assert (a, method) == (1e-4, "latency = smallest size's time, bandwidth fitted") and b > 0
    a, b, method = coll.fit_alpha_beta([(512.0, 4e-3), (1e6, 1e-3)], 1.0)
    assert (a, b) == (4e-3, pytest.approx(1e9)) and "largest" in method


def test_two_gloo_processes_end_to_end(tmp_path: Path) -> None:
    """World size 2 on the CPU; all-to-all through the point-to-point path (the CLI test runs the native one)."""
    m, notes = coll.measure_collectives("cpu", 2, hidden=256, quick=True, tokens=(1, 64, 4096), force_p2p=True)
    assert m.backend == "gloo" and m.world_size == 2 and m.hidden == 256
    for op in ("all_reduce", "all_to_all"):
        fit = getattr(m, op)
        assert fit is not None and fit.alpha_s > 0 and fit.bus_gb_s > 0
        pts = [p for p in m.points if p.op == op]
        assert [p.tokens for p in pts] == [1, 64, 4096]
        assert [p.bytes for p in pts] == [512, 64 * 256 * 2, 4096 * 256 * 2]
        assert all(p.seconds > 0 and p.runs >= 4 for p in pts)
    assert m.all_to_all_emulated
    assert any("point-to-point" in n for n in notes)
    assert m.seconds("all_reduce", 1 << 20) == pytest.approx(m.all_reduce.seconds(1 << 20))  # type: ignore[union-attr]
    profile = CalibrationProfile(
        device="cpu", gpu_id=None, backend="cpu", dtype="fp32", created="2025-01-01T00:00:00+00:00",
        torch_version="x", bandwidth_gb_s=1.0, gemm_tflops=1.0, collectives=m, notes=notes,
    )  # fmt: skip
    back = load_profile(save_profile(profile, tmp_path / "p.json"))
    assert back == profile and back.collectives == m


def test_cli_collectives_on_two_cpu_processes(tmp_path: Path) -> None:
    target = tmp_path / "cpu.json"
    args = ["calibrate", "--device", "cpu", "--quick", *TINY, "--collectives", "--world-size", "2"]
    r = CliRunner().invoke(app, [*args, "--save", str(target)], env={"COLUMNS": "160", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    assert "collectives: gloo, 2 processes" in r.stdout and "all_reduce: latency" in r.stdout
    assert "all_to_all: latency" in r.stdout
    data = json.loads(target.read_text())
    c = data["collectives"]
    assert c["backend"] == "gloo" and c["world_size"] == 2 and c["hidden"] == 64
    assert c["all_reduce"]["alpha_s"] > 0 and c["all_to_all"]["bus_gb_s"] > 0 and not c["all_to_all_emulated"]
    assert {p["op"] for p in c["points"]} == {"all_reduce", "all_to_all"}
    assert [p["tokens"] for p in c["points"] if p["op"] == "all_reduce"] == [1, 8, 64, 512, 4096]
    assert data["host"]["ram_gb_s"] > 0  # a CPU calibration always measures its host
    assert not multiprocessing.active_children()


def test_a_world_that_does_not_start_fails_in_time() -> None:
    """Processes that cannot join within the start timeout are ended, with one line; nothing is left running."""
    t0 = time.monotonic()
    with pytest.raises(CalibrationError, match="joined within"):
        coll.measure_collectives("cpu", 2, hidden=64, quick=True, tokens=(1, 8), start_timeout_s=0.01)
    assert time.monotonic() - t0 < 20
    assert not multiprocessing.active_children()


def test_world_sizes_that_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="2 to 64"):
        coll.plan_world("cpu", 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)
    with pytest.raises(InputError, match="exceeds the 2 visible CUDA devices"):
        coll.plan_world("cuda", 4)
    assert coll.plan_world("cuda", None)[:2] == ("nccl", 2)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(InputError, match="two or more GPUs"):
        coll.plan_world("cuda", None)
    monkeypatch.setattr(torch.distributed, "is_available", lambda: False)
    with pytest.raises(CalibrationError, match=r"without torch\.distributed"):
        coll.plan_world("cpu", 2)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--world-size", "2"], 1),
        (["--collectives", "--world-size", "1"], 2),
        (["--collectives", "--world-size", "100"], 2),
    ],
)
def test_bad_collectives_options_fail_before_any_timing(args: list[str], code: int) -> None:
    """--world-size without --collectives is refused (exit 1); outside 2-64 it is out of the option's range (exit 2,
    as every range)."""
    r = CliRunner().invoke(app, ["calibrate", "--device", "cpu", "--quick", *TINY, *args])
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert r.stderr.startswith("error:") if code == 1 else "--world-size" in r.stderr


class _FakeDist:
    """Enough of torch.distributed for one rank to choose its all-to-all (its all_reduce keeps the value)."""

    class ReduceOp:
        MAX, MIN = "max", "min"

    def __init__(self, native: bool, p2p: bool) -> None:
        self.native, self.p2p = native, p2p

    def all_reduce(self, t: object, op: object = None) -> None:
        pass

    def all_to_all_single(self, y: object, x: object) -> None:
        if not self.native:
            raise RuntimeError("ProcessGroupGloo does not support alltoall_base\nC++ trace")

    def isend(self, *a: object) -> None: ...

    def irecv(self, *a: object) -> None: ...

    def P2POp(self, *a: object) -> object:  # torch's name
        return a

    def batch_isend_irecv(self, ops: object) -> list[object]:
        if not self.p2p:
            raise RuntimeError("no point-to-point either")
        return []


@pytest.mark.parametrize(
    ("native", "p2p", "chosen", "note"),
    [(True, True, "all_to_all_single", None),
     (False, True, "_all_to_all_p2p", "no all_to_all here (ProcessGroupGloo does not support alltoall_base)"),
     (False, False, None, "not measured: neither all_to_all_single nor point-to-point ran (no point-to-point")],
)  # fmt: skip
def test_all_to_all_falls_back_and_says_so(native: bool, p2p: bool, chosen: str | None, note: str | None) -> None:
    x = torch.zeros(8)
    call, emulated, said = coll._all_to_all_call(
        torch, _FakeDist(native, p2p), x, torch.empty_like(x), 0, 2, "cpu", False
    )
    assert (call.func.__name__ if call else None) == chosen  # type: ignore[attr-defined]
    assert emulated == (chosen == "_all_to_all_p2p")
    assert (said is None) if note is None else (said is not None and said.startswith(note))
