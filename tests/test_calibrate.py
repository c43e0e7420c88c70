"""The calibration path on the CPU: the layer against its reference, timing, the profile, and estimate using it."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from moeplan.cli import app
from moeplan.errors import InputError

torch = pytest.importorskip("torch", reason="calibration needs torch (the test extra installs it)")

from moeplan.calibration import run as cal  # noqa: E402

SMALL = cal.LayerShape(hidden=64, expert_ffn=32, experts=8, top_k=2, shared_ffn=16)


@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_layer_matches_the_naive_reference(grouped: bool, dtype: str) -> None:
    if grouped and not cal._grouped_ok(torch, "cpu", cal._dtype(torch, dtype)):
        pytest.skip("this torch has no grouped GEMM on the CPU")
    assert cal.check_against_reference(dtype, "cpu", grouped) <= cal.REFERENCE_TOLERANCE[dtype]


def test_dispatch_counts_the_experts_used() -> None:
    layer = cal.build_layer(SMALL)
    x = torch.randn(1, 64)
    _, used = cal.moe_forward(x, layer)
    assert used == 2
    _, used = cal.moe_forward(torch.randn(500, 64), layer)
    assert used == 8


def test_a_wrong_layer_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = cal.moe_forward

    def broken(x: Any, layer: Any, grouped: Any = None) -> Any:
        out, used = real(x, layer, grouped)
        return out * 1.01, used

    monkeypatch.setattr(cal, "moe_forward", broken)
    with pytest.raises(cal.CalibrationError, match="reference"):
        cal.check_against_reference("fp32", "cpu")


@pytest.mark.parametrize(
    ("name", "gid"),
    [("NVIDIA H100 80GB HBM3", "h100-sxm"), ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA A100-SXM4-40GB",
     "a100-40gb-sxm"), ("NVIDIA L40S", "l40s"), ("NVIDIA H200", "h200-sxm"), ("NVIDIA GeForce RTX 4090",
     "rtx-4090"), ("NVIDIA GH200 480GB", None)],
)  # fmt: skip
def test_device_names_match_the_catalogue(name: str, gid: str | None) -> None:
    g = cal.match_gpu(name)
    assert (g.id if g else None) == gid


def test_run_measures_every_count_and_fits_factors() -> None:
    run = cal.run_calibration(SMALL, (1, 16, 512), "cpu", "fp32", quick=True, gpu_id="h100")
    assert [m.tokens for m in run.measurements] == [1, 16, 512]
    assert all(m.seconds > 0 and m.achieved_tflops > 0 for m in run.measurements)
    assert run.weights_bytes_measured == run.weights_bytes_predicted == SMALL.weight_elements() * 4
    prof = run.profile
    assert prof is not None and prof.gpu_id == "h100-sxm" and prof.backend == "cpu"
    assert prof.bandwidth_efficiency is not None and 0 < prof.bandwidth_efficiency <= 1
    assert prof.compute_efficiency is not None and 0 < prof.compute_efficiency <= 1
    assert set(prof.moe_efficiency) == {1, 16, 512}
    assert any("keying the profile" in n for n in run.notices)


def test_out_of_memory_at_one_count_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    real = cal.moe_forward

    def oom_at_64(x: Any, layer: Any, grouped: Any = None) -> Any:
        if x.shape[0] == 64:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(x, layer, grouped)

    monkeypatch.setattr(cal, "moe_forward", oom_at_64)
    run = cal.run_calibration(SMALL, (1, 64, 128), "cpu", "fp32", quick=True)
    assert [m.tokens for m in run.measurements] == [1, 128]
    assert run.skipped == ["64 tokens: out of memory, skipped"]


def test_cli_profile_is_written_and_changes_estimates(tmp_path: Path) -> None:
    runner = CliRunner()
    profile = tmp_path / "h100.json"
    args = ["calibrate", "--device", "cpu", "--hidden", "64", "--expert-ffn", "32", "--experts", "8", "--top-k",
            "2", "--tokens", "1,512", "--quick", "--gpu", "h100", "--save", str(profile)]  # fmt: skip
    r = runner.invoke(app, args, env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output
    assert "matches the reference" in r.stdout and "profile saved to" in r.stdout
    data = json.loads(profile.read_text())
    assert data["gpu_id"] == "h100-sxm" and len(data["measurements"]) == 2
    base = ["estimate", "mixtral-8x7b", "--gpu", "h100", "--num-gpus", "2", "--json"]
    plain = json.loads(runner.invoke(app, base).stdout)["performance"]
    tuned = json.loads(runner.invoke(app, [*base, "--calibration", str(profile)]).stdout)["performance"]
    assert tuned["calibration"] is not None and plain["calibration"] is None
    # A CPU's copy bandwidth is a sliver of an H100's: the calibrated estimate is much slower.
    assert tuned["decode_tokens_per_s"] < plain["decode_tokens_per_s"] / 2
    r = runner.invoke(app, [*args[:-2], "--json"])  # saved to the cache this time
    assert r.exit_code == 0 and json.loads(r.stdout)["gpu_id"] == "h100-sxm"


def test_without_torch_the_command_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_torch(name: str, *a: Any, **k: Any) -> Any:
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    r = CliRunner().invoke(app, ["calibrate", "--device", "cpu", "--quick"])
    assert r.exit_code == 1
    assert "pip install 'moeplan[calibrate]'" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args",
    [["--device", "tpu"], ["--device", "cuda"], ["--dtype", "fp8"], ["--tokens", "0"], ["--hidden", "64"],
     ["--model", "llama-3.1-8b"], ["--hidden", "8", "--expert-ffn", "8", "--experts", "2", "--top-k", "3"]],
)  # fmt: skip
def test_bad_calibrate_options(args: list[str]) -> None:
    if args == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = CliRunner().invoke(app, ["calibrate", "--quick", *args])
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("error:") and "Traceback" not in r.stderr


def test_layer_shape_rejects_nonsense() -> None:
    with pytest.raises(InputError):
        cal.LayerShape(0, 8, 8, 2)


def test_a_timing_is_repeated_until_it_settles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Noisy runs (a busy CPU) bring more runs, up to a limit; a timing that never settles says so."""
    assert cal.steady([1.0, 1.01, 1.02, 0.99]) and not cal.steady([1.0, 2.0, 1.0, 3.0]) and not cal.steady([1.0])
    noisy = iter([1.0, 3.0, 1.0, 2.5, 1.0, 1.0, 1.01, 1.0, 0.99, 1.0, 1.0, 1.0])
    monkeypatch.setattr(cal, "time_call", lambda fn, dev, w, r: [next(noisy) for _ in range(r)])
    samples, settled = cal.time_until_steady(lambda: None, "cpu", 0, 4, 40)
    assert settled and len(samples) == 12
    wild = iter([1.0, 5.0] * 50)
    monkeypatch.setattr(cal, "time_call", lambda fn, dev, w, r: [next(wild) for _ in range(r)])
    samples, settled = cal.time_until_steady(lambda: None, "cpu", 0, 3, 9)
    assert not settled and len(samples) == 9
