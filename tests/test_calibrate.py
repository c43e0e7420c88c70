"""The calibration path on the CPU: the layer against its reference, timing, the profile, and estimate using it."""

from __future__ import annotations

import builtins
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from moeplan.cli import app
from moeplan.errors import InputError

torch = pytest.importorskip("torch", reason="calibration needs torch (the reference dependency group installs it)")

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
    # without --save it would land in the cache as the H100's profile: refused; and a CPU-measured profile found in
    # the cache under a GPU's name (an older moeplan wrote one) is not applied to that GPU
    r = runner.invoke(app, [*args[:-2], "--json"])
    assert r.exit_code == 1 and "would replace that GPU's calibration in the cache" in r.stderr
    from moeplan.hardware.profiles import profile_path

    cached = profile_path("h100-sxm")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(profile.read_text())
    try:
        again = json.loads(runner.invoke(app, base).stdout)
        assert again["performance"]["calibration"] is None
        assert any("measured on the CPU" in a for a in again["assumptions"])
    finally:
        cached.unlink()


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
    assert r.exit_code in (1, 2), r.output  # 2: refused by the option's own range, before the command runs
    assert "Traceback" not in r.output and ("error" in r.stderr.lower() or "Invalid value" in r.output)


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


# The host, the full decode step, and the profile fields they fill.

from moeplan.calibration import host as host_cal  # noqa: E402
from moeplan.calibration import step as step_cal  # noqa: E402
from moeplan.hardware import profiles  # noqa: E402

OLD_PROFILE = {
    "schema_version": 1, "device": "NVIDIA H100 80GB HBM3", "gpu_id": "h100-sxm", "backend": "cuda",
    "dtype": "bf16", "created": "2025-06-01T00:00:00+00:00", "torch_version": "2.7.0", "bandwidth_gb_s": 2900.0,
    "gemm_tflops": 700.0, "bandwidth_efficiency": 0.87, "compute_efficiency": 0.7, "moe_efficiency": {"512": 0.4},
    "layer": {"hidden": 2048}, "measurements": [],
}  # fmt: skip


def _profile(created: str | None = None, **extra: Any) -> profiles.CalibrationProfile:
    """A profile of ``OLD_PROFILE``'s figures, made now unless ``created`` says when."""
    when = created or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return profiles.CalibrationProfile.model_validate({**OLD_PROFILE, "created": when, **extra})


def test_a_profile_written_before_the_new_fields_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(OLD_PROFILE))
    prof = profiles.load_profile(path)
    assert prof.host is None and prof.collectives is None and prof.step is None and prof.notes == []
    assert prof.moe_efficiency == {512: 0.4}


def test_the_host_is_measured_on_the_cpu(tmp_path: Path) -> None:
    host, notes = host_cal.measure_host(SMALL, quick=True)
    assert host.ram_gb_s > 0 and host.ram_gb_s_per_socket == pytest.approx(host.ram_gb_s / host.sockets, rel=1e-3)
    assert host.sockets >= 1 and host.threads == torch.get_num_threads() and host.cpu
    assert set(host.expert_gflops_decode) == {1, 8} and all(v > 0 for v in host.expert_gflops_decode.values())
    assert host.expert_gflops_prefill > 0 and host.ram_buffer_bytes >= 64 << 20
    assert [(t.kind, t.tokens) for t in host.timings] == [
        ("ram_read", None), ("expert_gemm", 1), ("expert_gemm", 8), ("expert_gemm", 512)
    ]  # fmt: skip
    assert host.timings[1].flops == 2 * 1 * 3 * 64 * 32 * host.expert_shape["experts_cycled"]
    cycled_bytes, llc = host.expert_shape["experts_cycled"] * 3 * 64 * 32 * 4, host.last_level_cache_bytes
    # past twice the cache whatever the shape's expert count, or a note says its figure may be the cache's
    assert not llc or cycled_bytes >= 2 * llc or any("may include cache hits" in n for n in notes)
    assert host.expert_seconds(1) == pytest.approx(2 * 3 * 64 * 32 / (host.expert_gflops_decode[1] * 1e9))
    prof = _profile(host=host, notes=notes)
    back = profiles.load_profile(profiles.save_profile(prof, tmp_path / "p.json"))
    assert back == prof and back.host == host


def test_sockets_and_cache_come_from_sys(tmp_path: Path) -> None:
    """Two packages of two cores; an L3 per package shared by its cores, private L2s: 2 sockets, 2 x 32 MiB."""
    for cpu in range(4):
        base = tmp_path / f"cpu/cpu{cpu}"
        (base / "topology").mkdir(parents=True)
        (base / "topology/physical_package_id").write_text(f"{cpu // 2}\n")
        for i, (level, kind, size, shared) in enumerate(
            [(1, "Instruction", "32K", str(cpu)), (2, "Unified", "1024K", str(cpu)),
             (3, "Unified", "32768K", "0-1" if cpu < 2 else "2-3")]
        ):  # fmt: skip
            d = base / f"cache/index{i}"
            d.mkdir(parents=True)
            for name, value in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)):
                (d / name).write_text(f"{value}\n")
    assert host_cal.socket_count(tmp_path) == 2
    assert host_cal.last_level_cache_bytes(tmp_path) == 64 << 20
    nodes = tmp_path / "bare"
    for n in range(4):
        (nodes / f"node/node{n}").mkdir(parents=True)
    assert host_cal.socket_count(nodes) == 4 and host_cal.socket_count(tmp_path / "none") == 1
    assert host_cal.last_level_cache_bytes(tmp_path / "none") is None
    assert host_cal.ram_buffer_bytes(32 << 20, 64 << 30, quick=False) == 1 << 30
    assert host_cal.ram_buffer_bytes(512 << 20, 64 << 30, quick=True) == 2 << 30
    assert host_cal.ram_buffer_bytes(512 << 20, 1 << 30, quick=False) == 256 << 20


def test_the_cpu_name_comes_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9654 96-Core Processor\n")
    assert host_cal.cpu_name(info) == "AMD EPYC 9654 96-Core Processor"
    assert host_cal.cpu_name(tmp_path / "missing")


@pytest.mark.parametrize(
    "attn",
    [step_cal.attention_for_hidden(64), step_cal.AttentionShape(4, 2, 16, 16),
     step_cal.AttentionShape(4, 1, 48 + 16, 48, step_cal.MlaShape(32, 48, 16, 16, 16))],
    ids=["mha", "gqa", "mla"],
)  # fmt: skip
def test_a_full_decode_step_of_tiny_layers(attn: step_cal.AttentionShape) -> None:
    s, _ = step_cal.measure_step(SMALL, attn, 10.0, layers=2, context=32, batches=(8, 1), quick=True)
    assert s.layers == 2 and s.context == 32 and [p.batch for p in s.points] == [1, 8]
    for p in s.points:
        assert p.seconds_per_layer == pytest.approx(p.seconds / 2)
        assert p.overhead_s_per_layer == pytest.approx(max(0.0, p.seconds_per_layer - p.bytes_per_layer / 10e9))
    one, eight = s.points
    kv = 32 * attn.kv_elements_per_token() * 4
    assert eight.bytes_per_layer - one.bytes_per_layer >= 7 * kv  # eight sequences' caches
    assert s.overhead_s_per_layer == one.overhead_s_per_layer and s.attention["heads"] == attn.heads


def test_attention_shapes_of_catalogue_models() -> None:
    qwen = step_cal.attention_from_model("qwen3-30b-a3b")
    assert (qwen.heads, qwen.kv_heads, qwen.head_dim) == (32, 4, 128)
    assert qwen.weight_elements(2048) == 18_874_368 and qwen.kv_elements_per_token() == 1024
    ds = step_cal.attention_from_model("deepseek-v3")
    assert ds.mla is not None and ds.kv_elements_per_token() == 576
    assert ds.weight_elements(7168) == pytest.approx(187.1e6, rel=1e-3)
    assert step_cal.attention_for_hidden(4096) == step_cal.AttentionShape(32, 32, 128, 128)


def test_a_full_step_too_big_for_memory_is_refused() -> None:
    with pytest.raises(cal.CalibrationError, match="GiB"):
        step_cal.measure_step(SMALL, step_cal.attention_for_hidden(64), 10.0, layers=4, available_bytes=1 << 20)


def test_the_host_profile_is_found_and_refused_when_stale(tmp_path: Path) -> None:
    host, _ = host_cal.measure_host(cal.LayerShape(16, 8, 2, 1), quick=True)
    assert profiles.host_measured_for(None) == (None, None)
    profiles.save_profile(_profile(host=host), profiles.profile_path(profiles.HOST_PROFILE_ID))
    found, note = profiles.host_measured_for(None)
    assert found == host and note is not None and "host calibrated" in note
    assert profiles.load_host_profile(None) == host
    stale = profiles.save_profile(_profile("2020-01-01T00:00:00+00:00", host=host), tmp_path / "stale.json")
    with pytest.raises(InputError, match="days old"):
        profiles.load_host_profile(str(stale))
    profiles.save_profile(_profile("2020-01-01T00:00:00+00:00", host=host), profiles.profile_path("cpu"))
    found, note = profiles.host_measured_for(None)
    assert found is None and note is not None and "not applied" in note
    with pytest.raises(InputError, match="no host measurement"):
        profiles.load_host_profile(str(profiles.save_profile(_profile(), tmp_path / "gpu.json")))


def test_cli_cpu_calibration_measures_the_host_and_a_full_step() -> None:
    args = ["calibrate", "--device", "cpu", "--quick", "--hidden", "64", "--expert-ffn", "32", "--experts", "8",
            "--top-k", "2", "--tokens", "1,64", "--no-host", "--full-step", "--layers", "2",
            "--context", "64"]  # fmt: skip
    r = CliRunner().invoke(app, args, env={"COLUMNS": "160", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    assert "host: " in r.stdout and "RAM read" in r.stdout and "host expert GEMM (64 x 32, fp32)" in r.stdout
    assert "full step (2 layers, 64-token cache, vs host RAM read" in r.stdout
    assert "cpu.json" in r.stdout and "measured anyway" in r.stderr
    data = json.loads(profiles.profile_path(profiles.HOST_PROFILE_ID).read_text())
    assert data["host"]["ram_gb_s"] > 0 and data["step"]["layers"] == 2 and data["collectives"] is None
    assert any("measured anyway" in n for n in data["notes"])
    assert profiles.load_host_profile(None) is not None  # the CPU profile is usable: offload finds its host
    r = CliRunner().invoke(app, [*args[:-6], "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["profile"]["host"]["expert_gflops_prefill"] > 0


@pytest.mark.parametrize(
    "args",
    [["--layers", "2"], ["--context", "1k"], ["--full-step", "--layers", "0"], ["--full-step", "--context", "0"]],
)
def test_bad_full_step_options(args: list[str]) -> None:
    r = CliRunner().invoke(app, ["calibrate", "--device", "cpu", "--quick", "--hidden", "64", "--expert-ffn", "32",
                                 "--experts", "8", "--top-k", "2", *args])  # fmt: skip
    assert r.exit_code in (1, 2), r.output  # 2: an option's own range refused it (one line through main())
    assert "Traceback" not in r.stderr and (r.exit_code == 2 or r.stderr.startswith("error:"))


def test_a_layer_larger_than_free_memory_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """DeepSeek-V3's layer takes 42 GiB in fp32: on a machine with less free, one line and exit 1, not the CPU
    allocator's traceback; the allocator's own "can't allocate memory" counts as out of memory too."""
    monkeypatch.setattr(cal, "free_bytes", lambda device: 8 << 30)
    res = CliRunner().invoke(app, ["calibrate", "--model", "deepseek-v3", "--quick"])
    assert res.exit_code == 1 and "GiB free" in res.output and "Traceback" not in res.output
    from moeplan.calibration.device_memory import is_oom

    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 30064771072"))
