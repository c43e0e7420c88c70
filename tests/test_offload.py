"""Expert offload: placement, memory on both sides, speed properties, impossible boxes, and the commands."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from moeplan.cli import app
from moeplan.deploy.deployment import EstimateRequest
from moeplan.deploy.engines import ENGINES
from moeplan.deploy.offload import Host, OffloadModel, usable_ram_bytes
from moeplan.deploy.offload_commands import layer_regex
from moeplan.deploy.resolve import resolve
from moeplan.errors import InputError
from moeplan.hardware.gpus import resolve_gpu
from moeplan.hardware.hosts import custom_host, memory_config
from moeplan.plans.offload import OffloadRequest, plan_offload
from moeplan.sources.catalog import load_catalog, resolve_model

runner = CliRunner()
# expert offload runs on llama.cpp: the MoE models it implements
_MISSING = ENGINES["llama.cpp"].missing_architectures
MOE = [
    s for s in load_catalog() if s.arch.moe is not None and s.arch.num_layers <= 64 and s.architecture not in _MISSING
]


def _model(model: str, quant: str, gpu: str = "4090", ram: float = 256, bw: float = 89.6) -> OffloadModel:
    spec, card = resolve_model(model), resolve_gpu(gpu)
    request = EstimateRequest(model=model, quant=quant, engine="llama.cpp", kv_dtype="f16", gpu=card.id, num_gpus=1)
    return OffloadModel(resolve(request, spec=spec, gpu=card, fewest=False), Host(card, 1, ram, custom_host(bw)))


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(MOE), st.integers(0, 63), st.integers(1, 63))
def test_moving_experts_to_ram_never_raises_vram_or_speed(spec: object, a: int, b: int) -> None:
    from moeplan.model.spec import ModelSpec

    assert isinstance(spec, ModelSpec)
    m = _model(spec.id, "Q4_K_M")
    n = spec.arch.num_layers
    lo, hi = sorted((a % (n + 1), b % (n + 1)))
    few, many = m.evaluate(lo, 4096, 1, 512), m.evaluate(hi, 4096, 1, 512)
    assert many.vram_bytes_per_gpu <= few.vram_bytes_per_gpu
    assert many.ram_bytes >= few.ram_bytes
    assert many.decode_s[1] >= few.decode_s[1] * (1 - 1e-12)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(MOE), st.floats(20, 500), st.floats(20, 500))
def test_more_ram_bandwidth_never_lowers_speed(spec: object, a: float, b: float) -> None:
    from moeplan.model.spec import ModelSpec

    assert isinstance(spec, ModelSpec)
    lo, hi = sorted((a, b))
    slow = _model(spec.id, "Q4_K_M", bw=lo)
    fast = _model(spec.id, "Q4_K_M", bw=hi)
    n = spec.arch.num_layers // 2
    assert fast.evaluate(n, 4096, 1, 512).decode_s[1] <= slow.evaluate(n, 4096, 1, 512).decode_s[1] * (1 + 1e-12)


def test_auto_picks_the_fastest_placement_that_fits() -> None:
    r = plan_offload(OffloadRequest(model="gpt-oss-120b", gpu="4090", ram_gib=64, cpu="ddr5-6000x2"))
    assert r.fits
    fitting = [p for p in r.tried if p.fits]
    assert r.chosen.decode_s[1] == min(p.decode_s[1] for p in fitting)
    assert 0 < r.chosen.cpu_layers < 36  # some experts in RAM, not all
    assert r.chosen.vram_bytes_per_gpu <= r.chosen.vram_capacity_bytes
    cmd = r.commands["llama.cpp"]
    assert f"--n-cpu-moe {r.chosen.cpu_layers}" in cmd and "-ngl 99" in cmd and "-fa on" in cmd


def test_tradeoff_longer_context_costs_speed() -> None:
    r = plan_offload(OffloadRequest(model="gpt-oss-120b", gpu="4090", ram_gib=128, cpu="ddr5-6000x2"))
    rows = [row for row in r.tradeoff if row.fits]
    speeds = [row.decode_tokens_per_s for row in rows]
    assert speeds == sorted(speeds, reverse=True) and speeds[0] > speeds[-1]  # type: ignore[type-var]
    layers = [row.experts_on_cpu_layers for row in rows]
    assert layers == sorted(layers)


def test_impossible_boxes_say_what_is_short() -> None:
    ram = plan_offload(OffloadRequest(model="deepseek-r1", gpu="4090", ram_gib=64, cpu="ddr5-6000x2"))
    assert not ram.fits and ram.fit is not None and (ram.fit.shortfall or ("",))[0].startswith("RAM short by")
    vram = plan_offload(
        OffloadRequest(
            model="qwen3-235b-a22b",
            gpu_memory_gib=4,
            gpu_bandwidth_gb_s=200,
            gpu_tflops=20,
            ram_gib=256,
            cpu="ddr5-5600x8",
        )
    )
    assert not vram.fits and vram.fit is not None and (vram.fit.shortfall or ("",))[0].startswith("VRAM short by")
    r = runner.invoke(app, ["offload", "deepseek-r1", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-6000x2", "--json"])
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["fit"]["fits"] is False and data["placement"]["fits"] is False and data["commands"] == {}


def test_estimate_with_offload_and_the_json_contract() -> None:
    args = ["estimate", "qwen3-30b-a3b", "--gpu", "3060", "--offload-experts", "auto", "--ram", "32", "--cpu",
            "ddr4-3200x2", "--json"]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert {"model", "params", "memory", "fit", "performance", "placement", "commands", "tradeoff"} <= set(data)
    assert data["memory"]["per_gpu_bytes"] <= data["memory"]["usable_bytes_per_gpu"]
    assert data["placement"]["experts_on_cpu_layers"] > 0
    fixed = ["estimate", "qwen3-30b-a3b", "--gpu", "3060", "--offload-experts", "10", "--ram", "32", "--cpu",
             "ddr4-3200x2", "--json"]  # fmt: skip
    r = runner.invoke(app, fixed)
    assert json.loads(r.stdout)["placement"]["experts_on_cpu_layers"] == 10


@pytest.mark.parametrize(
    "args",
    [
        ["offload", "gpt-oss-120b", "--gpu", "4090"],
        ["offload", "gpt-oss-120b", "--gpu", "4090", "--ram", "64"],
        ["offload", "gpt-oss-120b", "--gpu", "4090", "--ram", "-1", "--cpu", "ddr5-5600x2"],
        ["offload", "gpt-oss-120b", "--gpu", "4090", "--ram", "64", "--cpu", "pentium"],
        ["offload", "gpt-oss-120b", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-5600x2", "--pcie", "gen9"],
        ["offload", "gpt-oss-120b", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-5600x2", "--offload-experts", "x"],
        ["offload", "gpt-oss-120b", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-5600x2", "--offload-experts", "99"],
        ["offload", "llama-3.1-8b", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-5600x2"],
    ],
)
def test_bad_offload_requests_are_one_line(args: list[str]) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code in (1, 2), r.output  # 2: an option's own range refused it (one line through main())
    assert "Traceback" not in r.stderr and (r.exit_code == 2 or len(r.stderr.strip().splitlines()) == 1)


def test_hosts_and_helpers() -> None:
    host = memory_config("ddr5-5600x2")
    assert host is not None and host.bandwidth_gb_s == pytest.approx(89.6)
    assert memory_config("ddr5-4800x12") is not None
    assert usable_ram_bytes(64) == pytest.approx((64 - 5.12) * 2**30)
    assert layer_regex([0, 1, 2]) == "blk\\.(0|1|2)\\.ffn_.*_exps\\.=CPU"
    with pytest.raises(InputError):
        memory_config("ddr5-5600x99")


def test_gguf_checkpoint_bytes_drive_the_placement(tmp_path: object) -> None:
    pytest.importorskip("gguf")
    from pathlib import Path

    from gguf_fixtures import write_gguf
    from test_inputs import _tiny_moe

    assert isinstance(tmp_path, Path)
    path = write_gguf(tmp_path / "t.gguf", "qwen3moe", _tiny_moe(), "Q4_K_M")[0]
    r = plan_offload(OffloadRequest(model=str(path), gpu_memory_gib=2, gpu_bandwidth_gb_s=100, gpu_tflops=10, ram_gib=8,
                                    cpu="ddr5-5600x2", context=1024))  # fmt: skip
    assert r.quant == "Q4_K_M" and r.commands["llama.cpp"].startswith(f"llama-server -m {path}")


def test_cpu_catalogue_is_sourced_and_consistent() -> None:
    from moeplan.hardware.hosts import load_cpus, resolve_cpu

    cpus = load_cpus()
    assert len(cpus) >= 20
    ids = [c.id for c in cpus] + [a for c in cpus for a in c.aliases]
    assert len(ids) == len(set(ids))
    for c in cpus:
        assert c.sources, c.id
        if c.memory_channels and c.memory_mt_s and c.memory_type.upper().startswith("DDR"):
            assert c.bandwidth_gb_s == pytest.approx(c.memory_channels * 8 * c.memory_mt_s / 1000, rel=0.01), c.id
    assert resolve_cpu("9950x").id == "ryzen-9-9950x"
    with pytest.raises(InputError):
        resolve_cpu("pentium-4")


def test_recommend_offers_gpu_plus_ram_boxes_when_gpus_alone_do_not_fit() -> None:
    from moeplan.plans.recommend import recommend

    _, cands = recommend("qwen3-235b-a22b", sort="purchase")
    boxes = [c for c in cands if c.ram_gib]
    assert boxes, "no GPU + RAM option offered"
    for c in boxes:
        assert c.gpu.kind in ("consumer", "workstation") and c.num_gpus == 1 and c.engine == "llama.cpp"
        assert c.per_gpu_bytes <= c.usable_bytes and c.experts_on_cpu_layers
        assert c.to_json()["hybrid"]["ram_gib"] == c.ram_gib
        # only where one of that GPU cannot hold the model
        assert not any(o.gpu.id == c.gpu.id and o.num_gpus == 1 and not o.ram_gib for o in cands)
    assert any(c.purchase_usd for c in boxes)
    _, small = recommend("qwen3-30b-a3b", sort="purchase")
    assert not [c for c in small if c.ram_gib and c.gpu.id == "rtx-4090"]  # fits the 4090 alone


def test_a_box_that_falls_short_says_what_would_fit() -> None:
    """The RAM advice is the smallest usual size that fits (the one below does not); the format advice is the
    mix of most bits this RAM holds (the next mix up does not fit); each is checked by evaluating it."""
    from dataclasses import replace as swap

    from moeplan.plans.offload import GGUF_LADDER, RAM_SIZES_GIB, evaluate_box

    req = OffloadRequest(model="qwen3-235b-a22b", gpu="rtx-4090", ram_gib=64, cpu="ddr5-5600x2")
    r = plan_offload(req)
    assert not r.fits and len(r.advice) == 2
    ram, mix = r.advice
    assert ram.quant == "Q4_K_M" and evaluate_box(swap(req, ram_gib=ram.ram_gib)).fits
    below = RAM_SIZES_GIB[RAM_SIZES_GIB.index(int(ram.ram_gib)) - 1]
    assert not evaluate_box(swap(req, ram_gib=float(below))).fits
    assert mix.ram_gib == 64 and evaluate_box(swap(req, quant=mix.quant)).fits
    up = GGUF_LADDER[GGUF_LADDER.index(mix.quant) - 1]
    assert up == "Q4_K_M" or not evaluate_box(swap(req, quant=up)).fits
    data = r.to_json()["advice"]
    assert [a["quant"] for a in data] == ["Q4_K_M", mix.quant] and data[0]["ram_gib"] == ram.ram_gib
    assert plan_offload(swap(req, ram_gib=256)).advice == ()  # a box that fits needs no advice


def _prefill(*extra: str) -> tuple[dict[str, object], str]:
    """``offload deepseek-v3`` on a 4090 + EPYC 9654 at Q4_K_M: its performance block and the first command."""
    args = ["offload", "deepseek-v3", "--gpu", "4090", "--ram", "512", "--cpu", "epyc-9654", "--quant", "Q4_K_M",
            "--prompt", "8192", "--json", *extra]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    return out["performance"], next(iter(out["commands"].values()))


def test_ik_llama_cpp_streams_moe_weights_only_from_32_tokens_an_expert_and_repacks_for_the_cpu() -> None:
    """ik_llama.cpp offloads MoE matmuls from 32 x E/k tokens (1,024 for DeepSeek-V3's 256 experts at top-8; its PR
    #520), and -rtr repacks the RAM experts for its CPU kernels, 1.49x faster, never streamed."""
    from moeplan.deploy.offload import CPU_REPACK_GAIN

    plain, cmd = _prefill("--engine", "ik_llama.cpp", "--no-rtr")
    assert plain["prefill_path"] == "computed on the CPU" and "-rtr" not in cmd  # 512 < 1,024: no offload
    repacked, cmd = _prefill("--engine", "ik")
    assert repacked["prefill_path"] == "computed on the CPU, repacked (-rtr)"
    assert cmd.endswith(" -rtr") and "--no-op-offload" not in cmd
    # today's ik_llama.cpp: -fa takes a value, fused MoE is the default, --n-cpu-moe counts MoE layers from the last
    assert " -fa on " in cmd and "-fmoe" not in cmd and "--n-cpu-moe 57 " in cmd  # DeepSeek-V3: 57 of 58 MoE layers
    gain = float(repacked["prefill_tokens_per_s"]) / float(plain["prefill_tokens_per_s"])  # type: ignore[arg-type]
    assert 1.2 < gain <= CPU_REPACK_GAIN
    streamed, cmd = _prefill("--engine", "ik", "--no-rtr", "--ubatch", "4096")
    assert streamed["prefill_path"] == "streamed to the GPU over PCIe" and "-rtr" not in cmd
    forced, cmd = _prefill("--engine", "ik", "--rtr", "--ubatch", "4096")  # repacked weights never stream
    assert forced["prefill_path"].endswith("repacked (-rtr)") and cmd.endswith(" -rtr")  # type: ignore[union-attr]
    # llama.cpp itself streams from 32 tokens, whatever the experts
    assert _model("deepseek-v3", "Q4_K_M").offload_min_tokens() == 32
    # the ubatch (-ub) decides, not the mean pass: 7,680 tokens at -ub 1024 stream (eight passes of 960 had not)
    at, _ = _prefill("--engine", "ik", "--no-rtr", "--ubatch", "1024", "--prompt", "7680")
    under, _ = _prefill("--engine", "ik", "--no-rtr", "--ubatch", "1000", "--prompt", "7680")
    assert at["prefill_path"] == "streamed to the GPU over PCIe" and under["prefill_path"] == "computed on the CPU"


def test_a_costly_rtr_choice_says_what_the_other_would_take() -> None:
    r = runner.invoke(app, ["offload", "qwen3-30b-a3b", "--gpu", "3060", "--ram", "32", "--cpu", "ddr4-3200x2",
                            "--engine", "ik", "--rtr"])  # fmt: skip
    assert r.exit_code == 0 and "with --rtr this 7,680-token prompt prefills in" in " ".join(r.output.split())


def test_rtr_is_ik_llama_cpp_alone() -> None:
    r = runner.invoke(app, ["offload", "qwen3-30b-a3b", "--gpu", "rx-7900-xtx", "--ram", "64", "--cpu", "ddr5-5600x2",
                            "--engine", "ik"])  # fmt: skip
    assert r.exit_code == 1 and "--engine llama.cpp" in r.output and r.output.count("\n") == 1, r.output
    for engine in ("llama.cpp", "ktransformers"):
        r = runner.invoke(app, ["offload", "deepseek-v3", "--gpu", "4090", "--ram", "512", "--cpu", "epyc-9654",
                                "--engine", engine, "--rtr"])  # fmt: skip
        assert r.exit_code == 1 and "ik_llama.cpp" in r.output and r.output.count("\n") == 1, r.output


def test_rtr_repacks_only_the_types_ik_llama_cpp_interleaves() -> None:
    """-rtr has no interleaved rows for IQ1_S (ik_llama.cpp's repack map): its experts stay as stored, may stream,
    and the command carries no -rtr; bf16 repacks only on CPUs with AVX512-BF16."""
    from moeplan.deploy.offload import ik_repacks
    from moeplan.formats.schemes import parse_scheme
    from moeplan.hardware.hosts import resolve_cpu

    zen4, desktop = resolve_cpu("epyc-9654"), resolve_cpu("ddr4-3200x2")
    ds, oss = resolve_model("deepseek-v3").arch, resolve_model("gpt-oss-120b").arch
    assert ik_repacks(ds, parse_scheme("Q4_K_M"), zen4) and ik_repacks(ds, parse_scheme("IQ3_M"), zen4)
    assert not ik_repacks(ds, parse_scheme("IQ1_S"), zen4) and not ik_repacks(ds, parse_scheme("IQ1_M"), zen4)
    assert ik_repacks(ds, parse_scheme("bf16"), zen4) and not ik_repacks(ds, parse_scheme("bf16"), desktop)
    assert ik_repacks(oss, parse_scheme("IQ1_S"), zen4)  # gpt-oss's 2,880-wide rows fall back to IQ4_NL
    r = runner.invoke(app, ["offload", "deepseek-v3", "--gpu", "4090", "--ram", "256", "--cpu", "epyc-9654",
                            "--quant", "IQ1_S", "--engine", "ik", "--json"])  # fmt: skip
    out = json.loads(r.output)
    assert "-rtr" not in next(iter(out["commands"].values()))
    assert not out["performance"]["prefill_path"].endswith("(-rtr)")
    assert any("stay as stored" in a for a in out["assumptions"])


def test_several_sequences_get_llama_server_slots_and_their_whole_cache() -> None:
    r = runner.invoke(app, ["offload", "qwen3-30b-a3b", "--gpu", "3060", "--ram", "32", "--cpu", "ddr4-3200x2",
                            "--batch", "4", "--context", "8k", "--json"])  # fmt: skip
    cmd = json.loads(r.output)["commands"]["llama.cpp"]
    assert " -c 32768 " in cmd and " -np 4" in cmd  # -c is all slots' cache: 4 x 8,192


def test_prefill_routes_print_the_texts_the_outputs_carry() -> None:
    """The prefill route is a value the commands branch on (-rtr, --no-op-offload, the threshold hint); its text is
    what the JSON and the tables print."""
    from moeplan.deploy.offload import PrefillRoute

    assert str(PrefillRoute("cpu")) == "computed on the CPU"
    assert str(PrefillRoute("cpu", repacked=True)) == "computed on the CPU, repacked (-rtr)"
    assert str(PrefillRoute("pcie")) == "streamed to the GPU over PCIe"
    assert str(PrefillRoute("layerwise")) == "streamed to the GPU layer by layer, once per prefill pass"
    tail = PrefillRoute("layerwise", chunk=16384, cpu_tail=7232)
    assert str(tail) == ("streamed to the GPU layer by layer in its 16,384-token passes, computed on the CPU in the "
                         "last 7,232 tokens")  # fmt: skip
    assert str(PrefillRoute("gpu")) == "gpu"


def test_llama_cpp_refuses_an_fp8_kv_cache() -> None:
    """llama.cpp's -ctk/-ctv take f32, f16, bf16 and its block types, no fp8: refused with its 8-bit type named,
    instead of a launch command that does not run."""
    for argv in (["estimate", "qwen3-30b-a3b", "--gpu", "4090", "--engine", "llama.cpp", "--kv-dtype", "fp8"],
                 ["offload", "qwen3-30b-a3b", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-6000x2", "--quant",
                  "Q8_0", "--kv-dtype", "fp8"]):  # fmt: skip
        res = runner.invoke(app, argv)
        assert res.exit_code != 0 and "no fp8 KV cache" in res.output and "q8_0" in res.output


def test_a_measured_ram_bandwidth_replaces_the_catalogued_one_and_says_so() -> None:
    """--cpu with --ram-bandwidth: the platform's cores and ISA, the measured bandwidth, and a note naming both."""
    code = runner.invoke(app, ["offload", "qwen3-30b-a3b", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-6000x2",
                               "--ram-bandwidth", "50", "--json"])  # fmt: skip
    assert code.exit_code == 0, code.output
    out = json.loads(code.output)
    assert any("50 GB/s (--ram-bandwidth) in place of the catalogue's 96" in a for a in out["assumptions"])


def test_offload_json_performance_carries_the_bands_and_kernel_fields() -> None:
    """offload --json's performance has the estimate's bands and kernel fields (docs/interface.md), each band
    around its expected figure."""
    res = runner.invoke(app, ["offload", "qwen3-30b-a3b", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-6000x2",
                              "--json"])  # fmt: skip
    perf = json.loads(res.output)["performance"]
    for name in ("decode_tokens_per_s", "throughput_tokens_per_s", "prefill_tokens_per_s", "time_to_first_token_s"):
        lo, hi = perf[f"{name}_range"]
        assert lo <= perf[name] <= hi, name
    assert perf["prompt_tokens"] > 0 and perf["kernel_path"].startswith("llama.cpp") and perf["backend"] == "cuda"


def test_an_apple_silicon_host_with_a_discrete_gpu_is_refused() -> None:
    """An RTX 4090 beside an M3 Ultra's 819 GB/s of unified memory is no box anyone can build: one line, exit 1, and
    the way to plan the Mac alone."""
    from typer.testing import CliRunner

    from moeplan.cli import app

    res = CliRunner().invoke(app, ["offload", "mixtral-8x7b", "--gpu", "rtx-4090", "--ram", "64", "--cpu",
                                   "apple-m3-ultra"])  # fmt: skip
    assert res.exit_code == 1 and "takes no discrete GPU" in res.output and "--gpu apple-m3-ultra" in res.output


def test_vllm_and_sglang_offload_lines_size_the_checkpoint_they_load() -> None:
    """Their --cpu-offload-gb is per GPU, for the checkpoint named (Mixtral-8x7B's bf16, 87 GiB), not the GGUF mix
    the placement sized (18 GB of experts in RAM): ~77 GiB on a 12 GB RTX 3060; over two GPUs both lines split the
    model (SGLang's --tp as vLLM's --tensor-parallel-size)."""
    r = runner.invoke(app, ["offload", "mixtral-8x7b", "--gpu", "rtx-3060", "--ram", "64", "--cpu", "ryzen-9-9950x",
                            "--json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    lines = json.loads(r.stdout)["commands"]
    gib = int(lines["vllm"].split("--cpu-offload-gb ")[1].split()[0])
    assert 70 <= gib <= 82 and f"--cpu-offload-gb {gib}" in lines["sglang"]
    r = runner.invoke(app, ["offload", "deepseek-v3", "--gpu", "h100", "--ram", "512", "--cpu", "epyc-9654",
                            "--num-gpus", "2", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    lines = json.loads(r.stdout)["commands"]
    assert "--tensor-parallel-size 2" in lines["vllm"] and " --tp 2 " in lines["sglang"]


def test_offload_json_fit_and_memory_by_context_are_the_placements() -> None:
    """offload --json's fit and memory_by_context describe the placement, as its memory does: the largest batch is
    at least the batch that fits, each context's bytes are VRAM per GPU (within the card), and a vLLM/SGLang line
    whose offloaded checkpoint outgrows the box's RAM says so."""
    r = runner.invoke(app, ["offload", "gpt-oss-120b", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-6000x2",
                            "--json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["fit"]["fits"] and d["fit"]["max_batch"] >= 1
    usable = d["memory"]["usable_bytes_per_gpu"]
    by_context = {row["context"]: row["per_gpu_bytes"] for row in d["memory_by_context"]}
    assert by_context[d["request"]["context"]] == d["memory"]["per_gpu_bytes"]
    fitting = {row["context"] for row in d["tradeoff"] if row["fits"]}
    assert fitting and all(by_context[c] <= usable for c in fitting)
    r = runner.invoke(app, ["offload", "mixtral-8x7b", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-6000x2",
                            "--json"])  # fmt: skip
    line = json.loads(r.stdout)["commands"]["vllm"]
    assert "more than this box's" in line and "GiB usable" in line
    r = runner.invoke(app, ["offload", "mixtral-8x7b", "--gpu", "4090", "--ram", "256", "--cpu", "ddr5-6000x2",
                            "--json"])  # fmt: skip
    assert "more than this box's" not in json.loads(r.stdout)["commands"]["vllm"]


def test_launch_lines_load_the_file_or_format_planned(tmp_path: object) -> None:
    """A local .gguf: llama.cpp reads the file, KTransformers' LLAMAFILE weights are its folder, and no vLLM/SGLang
    line is printed (they load a Hugging Face checkpoint, not the GGUF). KTransformers in a format the repository
    is not stored in loads a local checkpoint of it, named and explained, not the repository."""
    pytest.importorskip("gguf")
    from pathlib import Path

    from gguf_fixtures import write_gguf
    from test_inputs import _tiny_moe

    assert isinstance(tmp_path, Path)
    path = write_gguf(tmp_path / "t.gguf", "qwen3moe", _tiny_moe(), "Q4_K_M")[0]
    r = runner.invoke(app, ["offload", str(path), "--gpu", "3060", "--ram", "32", "--cpu", "9950x",
                            "--offload-experts", "2", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    lines = json.loads(r.stdout)["commands"]
    assert lines["llama.cpp"].startswith(f"llama-server -m {path}") and "vllm" not in lines and "sglang" not in lines
    r = runner.invoke(app, ["offload", str(path), "--gpu", "3060", "--ram", "32", "--cpu", "9950x", "--engine",
                            "ktransformers", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert f"--kt-weight-path {path.parent}/ " in json.loads(r.stdout)["commands"]["ktransformers"]
    r = runner.invoke(app, ["offload", "qwen3-30b-a3b", "--gpu", "4090", "--cpu", "9950x", "--engine", "ktransformers",
                            "--quant", "fp8", "--ram", "64", "--json"])  # fmt: skip
    kt = json.loads(r.stdout)["commands"]["ktransformers"]
    assert "--model-path ./qwen3-30b-a3b-fp8 " in kt and "--kt-weight-path ./qwen3-30b-a3b-fp8 " in kt
    assert "Qwen/Qwen3-30B-A3B " not in kt.split("  # ")[0]


def test_ik_llama_cpp_places_the_last_moe_layers_its_n_cpu_moe_counts() -> None:
    """ik_llama.cpp's --n-cpu-moe N puts the last N MoE layers' experts in RAM: the placement's layers, its -ot line
    and the JSON name those layers, not the first N."""
    r = runner.invoke(app, ["offload", "gpt-oss-120b", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-6000x2",
                            "--engine", "ik_llama.cpp", "--json"])  # fmt: skip
    d = json.loads(r.stdout)
    layers, n = d["placement"]["cpu_moe_layers"], int(d["commands"]["ik_llama.cpp"].split("--n-cpu-moe ")[1].split()[0])
    assert layers == list(range(36 - n, 36))
    assert "blk\\.(" + "|".join(str(i) for i in layers) + ")\\." in d["commands"]["ik_llama.cpp (-ot)"]


def test_a_fabric_bound_cpu_reads_at_its_measured_rate_and_the_header_says_at_what() -> None:
    """An EPYC 9124 has the 9654's twelve channels but two CCDs: its cores read ~265 GB/s (llama.cpp discussion
    #11530), taken as 85% of a 312 GB/s peak, so DeepSeek-V3 decodes slower than on a 9654; the header gives the
    DIMMs' figure and the one the plan reads at (one socket's on two sockets under llama.cpp)."""
    from moeplan.hardware.hosts import resolve_cpu

    assert resolve_cpu("epyc-9124").dimm_equivalent_gb_s == pytest.approx(265 / 0.85)
    assert resolve_cpu("epyc-9654").dimm_equivalent_gb_s == resolve_cpu("epyc-9654").bandwidth_gb_s

    def tps(cpu: str) -> float:
        r = runner.invoke(app, ["offload", "deepseek-v3", "--gpu", "4090", "--ram", "512", "--cpu", cpu, "--quant",
                                "Q4_K_M", "--json"])  # fmt: skip
        return float(json.loads(r.stdout)["performance"]["decode_tokens_per_s"])

    assert tps("epyc-9124") < 0.85 * tps("epyc-9654")
    out = " ".join(runner.invoke(app, ["offload", "deepseek-v3", "--gpu", "4090", "--ram", "1024", "--cpu",
                                       "2x-epyc-9654", "--quant", "Q4_K_M"]).stdout.split())  # fmt: skip
    assert "922 GB/s; counted as 461 under llama.cpp" in out


def test_a_default_ubatch_that_prefills_slowly_names_the_wider_one() -> None:
    """Left at llama.cpp's 512, gpt-oss-120b on an RTX 4090 under ik_llama.cpp computes its RAM experts on the CPU
    for a 7,680-token prompt (minutes); --ubatch 2048 streams them to the GPU: the hint gives both first tokens and
    the decode speed the wider buffer leaves. A --ubatch the user gave draws no hint."""
    base = ["offload", "gpt-oss-120b", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-6000x2", "--engine", "ik",
            "--json"]  # fmt: skip
    out = json.loads(runner.invoke(app, base).stdout)
    hint = next(a for a in out["assumptions"] if a.startswith("with --ubatch 2,048"))
    fast = float(hint.split("prefills in ")[1].split(" s")[0])
    assert fast < 0.1 * out["performance"]["time_to_first_token_s"]
    wide = json.loads(runner.invoke(app, [*base, "--ubatch", "2048"]).stdout)
    assert wide["performance"]["time_to_first_token_s"] < 1.5 * fast
    assert not any(a.startswith("with --ubatch") for a in wide["assumptions"])
