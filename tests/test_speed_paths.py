"""Kernel paths, llama.cpp backends, communication, the new engines, offload prefill and GGUF label ranges
(issue 16), and calibrations feeding the estimates they were measured for."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from moeplan.cli import app
from moeplan.deploy.comm import link_for, step_comm_s
from moeplan.deploy.deployment import EstimateRequest
from moeplan.deploy.engines import ENGINES, engine
from moeplan.deploy.evaluate import evaluate, offload_prefill_seconds
from moeplan.deploy.kernels import BACKENDS, backend_for, kernel_path, tensor_peak
from moeplan.deploy.offload import Host
from moeplan.deploy.resolve import resolve
from moeplan.deploy.results import PerformanceResult
from moeplan.errors import InputError
from moeplan.formats.schemes import parse_scheme
from moeplan.hardware.gpus import resolve_gpu
from moeplan.hardware.hosts import resolve_cpu
from moeplan.hardware.profiles import (
    CalibrationProfile,
    CollectiveFit,
    CollectivesMeasurement,
    HostMeasurement,
    StepMeasurement,
    save_profile,
)

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "120", "NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


# -- kernel paths ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quant", "gpu", "name", "peak"),
    [
        ("fp8", "h100", "native fp8", "fp8"),
        ("fp8", "a100", "fp8 weight-only (Marlin W8A16)", "bf16"),
        ("mxfp4", "b200", "native mxfp4", "fp4"),
        ("mxfp4", "h100", "weight-only MXFP4 (Triton matmul_ogs)", "bf16"),
        ("mxfp4", "a100", "weight-only (Marlin W4A16/W8A16)", "bf16"),
        ("fp8-block128", "mi300x", "fp8 128x128 blocks on AMD Instinct (AITER block-scale MoE)", "fp8"),
        ("awq-int4", "h100", "weight-only (Marlin W4A16/W8A16)", "bf16"),
        ("awq-int4", "t4", "weight-only W4A16 (AWQ/GPTQ kernels before Ampere, at Marlin's figures)", "bf16"),
        ("bf16", "h100", "bf16", "bf16"),
    ],
)
def test_checkpoint_engines_take_the_path_the_gpu_has_units_for(quant: str, gpu: str, name: str, peak: str) -> None:
    path = kernel_path(ENGINES["vllm"], parse_scheme(quant), resolve_gpu(gpu), None)
    assert (path.name, path.peak_dtype) == (name, peak)


def test_mxfp4_needs_ampere_on_nvidia_and_the_refusal_names_a_gguf_that_runs() -> None:
    """vLLM's MXFP4 asks compute capability 8.0 (vllm-project/vllm#22288): gpt-oss on a T4 or V100 is refused with
    llama.cpp's MXFP4_MOE as the way to run it, which then fits; Ampere, Hopper and the DGX Spark (fp4 units, no bf16
    listed) run it."""
    from moeplan.errors import InputError

    for gpu in ("t4", "v100"):
        with pytest.raises(InputError, match="no vllm kernels for mxfp4") as refused:
            resolve(EstimateRequest(model="gpt-oss-20b", gpu=gpu, use_calibration=False))
        assert "--engine llama.cpp --quant MXFP4_MOE" in str(refused.value.remedy)
    gguf = resolve(EstimateRequest(model="gpt-oss-20b", gpu="t4", engine="llama.cpp", quant="MXFP4_MOE"))
    assert gguf.engine.name == "llama.cpp"
    for gpu in ("a100", "h100", "dgx-spark"):
        assert resolve_gpu(gpu).has_kernels("mxfp4")
    # one test of "Ampere on" for every need: the DGX Spark lists fp4 units only, and runs NVFP4 and fp8 (Marlin)
    spark = resolve_gpu("dgx-spark")
    assert spark.nvidia_ampere_on and spark.has_kernels("nvfp4") and spark.has_kernels("fp8")
    awq = kernel_path(ENGINES["vllm"], parse_scheme("awq-int4"), spark, None)
    assert "before Ampere" not in awq.name and not resolve_gpu("t4").nvidia_ampere_on


def test_weight_only_kernels_cost_more_fixed_time_and_bandwidth_than_native() -> None:
    native = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="h100", quant="fp8", use_calibration=False))
    marlin = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="a100", quant="fp8", use_calibration=False))
    assert marlin.efficiency.moe_layer_s > native.efficiency.moe_layer_s
    assert marlin.efficiency.bw[1] < native.efficiency.bw[1]


def test_attention_scores_run_at_the_bf16_peak_whatever_the_weights_format() -> None:
    """fp4 or fp8 weights speed the projections and experts, not flash attention's bf16 scores: the scores of a
    long prompt cost the same seconds in bf16, fp8 and NVFP4 on a B200, and Marlin int4 reaches the bf16 share."""
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.speed import SpeedModel

    def scores_s(quant: str, gpu: str = "b200") -> float:
        d = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu=gpu, quant=quant, use_calibration=False))
        return SpeedModel(MemoryModel(d))._compute_s({"attention_scores": 1e15}, 8192, d.efficiency, 1.0, 0.0)

    bf16 = scores_s("bf16")
    assert bf16 == pytest.approx(1e15 / (tensor_peak(resolve_gpu("b200"), "bf16")[0] * 0.45))
    assert scores_s("fp8") == pytest.approx(bf16) and scores_s("nvfp4") == pytest.approx(bf16)
    awq = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="h100", quant="awq-int4", use_calibration=False))
    bf = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="h100", quant="bf16", use_calibration=False))
    assert awq.efficiency.compute_max == bf.efficiency.compute_max


def test_fp4_experts_on_nvidia_blackwell_run_a_fused_moe_with_its_fixed_cost() -> None:
    """FlashInfer's fused fp4 MoE on Blackwell: TensorRT-LLM's per-MoE-layer cost, not Triton fused_moe's; AMD's
    AITER MoE (MI355X) keeps the engine's."""
    sglang = ENGINES["sglang"]
    b200 = resolve(EstimateRequest(model="gpt-oss-120b", gpu="b200", quant="mxfp4", engine="sglang",
                                   use_calibration=False))  # fmt: skip
    mi355x = resolve(EstimateRequest(model="gpt-oss-120b", gpu="mi355x", quant="mxfp4", engine="sglang",
                                     use_calibration=False))  # fmt: skip
    h100 = resolve(EstimateRequest(model="gpt-oss-120b", gpu="h100", quant="mxfp4", engine="sglang",
                                   use_calibration=False))  # fmt: skip
    assert b200.efficiency.moe_layer_s == ENGINES["tensorrt-llm"].speed.moe_layer_s < sglang.speed.moe_layer_s
    assert mi355x.efficiency.moe_layer_s == sglang.speed.moe_layer_s
    assert h100.efficiency.moe_layer_s == sglang.speed.moe_layer_s  # no fp4 units: Triton matmul_ogs
    assert b200.efficiency.kernel_s == sglang.speed.kernel_s  # the engine's launches stay its own


def test_sglang_on_sm100_runs_deepseek_and_qwen3_experts_through_the_fused_moe() -> None:
    """SGLang picks FlashInfer's TensorRT-LLM-gen MoE on B200-class GPUs for DeepSeek-V3 (fp8) and Qwen3-MoE
    (fp8, bf16): no Triton alignment pass a layer; MiniMax-M2 keeps Triton's, and so does an H200."""

    def moe_s(model: str, gpu: str, quant: str | None = None) -> float:
        req = EstimateRequest(model=model, gpu=gpu, num_gpus=8, engine="sglang", quant=quant, use_calibration=False)
        return resolve(req).efficiency.moe_layer_s

    fused, triton = ENGINES["tensorrt-llm"].speed.moe_layer_s, ENGINES["sglang"].speed.moe_layer_s
    assert moe_s("deepseek-v3", "b200") == fused and moe_s("qwen3-235b-a22b", "b200") == fused
    assert moe_s("minimax-m2", "b200") == triton and moe_s("deepseek-v3", "h200") == triton


def test_a_fused_moe_runs_its_experts_as_one_grid_and_fp8_kernels_as_narrow_gemms() -> None:
    """bf16 (and weight-only, and fp4) fused MoE kernels launch the step's experts as one grid: the width penalty is
    that of all their outputs, so Qwen3-Next's 512 narrow experts prefill faster than expert by expert; the fp8
    paths reach what one expert's GEMM would."""
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.speed import SpeedModel

    def prefill(quant: str, grid: bool | None = None) -> float:
        d = resolve(EstimateRequest(model="qwen3-next-80b-a3b", gpu="h100", num_gpus=4, quant=quant, prompt=8192,
                                    context=9000, use_calibration=False))  # fmt: skip
        if grid is not None:
            from dataclasses import replace

            d = replace(d, efficiency=replace(d.efficiency, expert_grid=grid))
        return SpeedModel(MemoryModel(d)).prefill_seconds(8192)

    assert resolve(EstimateRequest(model="qwen3-next-80b-a3b", gpu="h100", use_calibration=False,
                                   num_gpus=4)).efficiency.expert_grid  # fmt: skip
    assert prefill("bf16") < 0.8 * prefill("bf16", grid=False)
    fp8 = resolve(EstimateRequest(model="qwen3-next-80b-a3b", gpu="h100", quant="fp8", use_calibration=False,
                                  num_gpus=4))  # fmt: skip
    assert not fp8.efficiency.expert_grid and prefill("fp8") == prefill("fp8", grid=False)
    eff = fp8.efficiency
    assert eff.expert_gemm(256, 512, 2048, 128) == eff.gemm(256, 512, 2048)
    grid = type(eff)(eff.bw, 0.75, 0, 0)
    assert grid.expert_gemm(256, 512, 2048, 128) == grid.gemm(256, 512 * 128, 2048) > grid.gemm(256, 512, 2048)
    assert grid.expert_gemm(256, 512, 2048, 0.5) == grid.gemm(256, 512, 2048)  # never narrower than one expert


def test_llama_cpp_backends_by_vendor_and_refusals() -> None:
    assert backend_for(resolve_gpu("rtx-4090"), None) is BACKENDS["cuda"]
    assert backend_for(resolve_gpu("rx-7900-xtx"), "auto") is BACKENDS["rocm"]
    assert backend_for(resolve_gpu("apple-m2-ultra"), None) is BACKENDS["metal"]
    with pytest.raises(InputError, match="does not run on"):
        backend_for(resolve_gpu("rtx-4090"), "metal")
    with pytest.raises(InputError, match="unknown backend"):
        backend_for(resolve_gpu("rtx-4090"), "opencl2")
    cuda = kernel_path(ENGINES["llama.cpp"], parse_scheme("Q4_K_M"), resolve_gpu("rtx-3090"), BACKENDS["cuda"])
    assert cuda.peak_dtype == "int8"  # MMQ: int8 tensor cores on q8_1 activations
    f16 = kernel_path(ENGINES["llama.cpp"], parse_scheme("F16"), resolve_gpu("rtx-3090"), BACKENDS["cuda"])
    assert f16.peak_dtype == "fp16"


def test_backend_changes_prefill_and_is_refused_where_it_means_nothing() -> None:
    def prefill(backend: str) -> float:
        req = EstimateRequest(model="qwen3-30b-a3b", gpu="rtx-3090", quant="Q4_K_M", engine="llama.cpp",
                              backend=backend, prompt=2048, use_calibration=False)  # fmt: skip
        perf = evaluate(resolve(req)).performance
        assert perf is not None
        return perf.prefill_tokens_per_s

    assert prefill("cuda") != prefill("vulkan")
    code, _, err = run("estimate", "qwen3-30b-a3b", "--gpu", "h100", "--backend", "cuda")
    assert code != 0 and "--backend" in err and "Traceback" not in err


def test_an_unpublished_tensor_peak_is_derived_and_said() -> None:
    peak, note = tensor_peak(resolve_gpu("dgx-spark"), "int8")
    assert peak == pytest.approx(250e12) and note is not None and "derived" in note
    assert tensor_peak(resolve_gpu("h100"), "fp8") == (pytest.approx(1978.9e12), None)


# -- communication ---------------------------------------------------------------------------------------------


def test_expert_parallel_inside_a_node_combines_with_the_all_reduce_across_nodes_with_all_to_all() -> None:
    """EP inside the TP group of a node: the tokens are on every rank already, each rank runs its own experts and
    one all-reduce combines them (vLLM runs all-to-all kernels only with data parallelism): the same collectives as
    TP alone.  A wide EP group across nodes dispatches and combines with all-to-all instead of that all-reduce."""
    gpu = resolve_gpu("h100")
    kw = {"pp": 1, "tokens": 1.0, "hidden": 7168, "top_k": 8.0, "layers": 61}
    link = link_for(gpu, False)
    ar = link.all_reduce_s(8, 7168 * 2)
    tp_only = step_comm_s(gpu, tp=8, ep=1, num_nodes=1, moe_layers=58, **kw)  # type: ignore[arg-type]
    assert tp_only == pytest.approx(61 * 2 * ar)
    assert step_comm_s(gpu, tp=8, ep=8, num_nodes=1, moe_layers=58, **kw) == pytest.approx(tp_only)  # type: ignore[arg-type]
    ib = link_for(gpu, True)
    wide = step_comm_s(gpu, tp=16, ep=16, num_nodes=2, moe_layers=58, **kw)  # type: ignore[arg-type]
    ar16 = ib.all_reduce_s(16, 7168 * 2)
    assert wide == pytest.approx(61 * ar16 + 3 * ar16 + 58 * 2 * ib.all_to_all_s(16, 7168 * 2 * 8))


def test_collectives_across_nodes_cost_more_than_inside_one() -> None:
    gpu = resolve_gpu("h100")
    kw = {"ep": 1, "pp": 1, "num_nodes": 2, "tokens": 1.0, "hidden": 7168, "top_k": 8.0, "layers": 61}
    inside = step_comm_s(gpu, tp=8, moe_layers=58, **kw)  # type: ignore[arg-type]
    across = step_comm_s(gpu, tp=16, moe_layers=58, **kw)  # type: ignore[arg-type]
    assert across > 3 * inside
    # an NVL72 rack joins 72 GPUs over NVLink: 32 of them stay on NVLink, 32 B200 servers' GPUs cross nodes
    rack, servers = resolve_gpu("gb200"), resolve_gpu("b200")
    kw = {**kw, "num_nodes": 1}
    in_rack = step_comm_s(rack, tp=32, ep=32, moe_layers=58, **{k: v for k, v in kw.items() if k != "ep"})  # type: ignore[arg-type]
    nvlink = link_for(rack, False).scaled(1.0)
    assert in_rack == pytest.approx(61 * 2 * nvlink.all_reduce_s(32, 7168 * 2))
    assert in_rack < step_comm_s(servers, tp=32, ep=32, moe_layers=58, **{k: v for k, v in kw.items() if k != "ep"})  # type: ignore[arg-type]


def test_data_parallel_attention_across_nodes_dispatches_each_token_to_its_experts_ranks() -> None:
    """Inside a node DP attention gathers the step's tokens to every rank and scatters them back; across nodes the
    MoE layers dispatch each token to the ranks of its experts (fp8) and combine it back (bf16), the dense layers
    keep the gather -- and the serve command asks the engine for that all-to-all."""
    from moeplan.deploy.comm import expert_all_to_all_s
    from moeplan.plans.serve_commands import a2a_flag, launch

    gpu = resolve_gpu("h100")
    kw = {"pp": 1, "num_nodes": 4, "hidden": 7168, "top_k": 8.0, "layers": 61, "moe_layers": 58}
    tokens = 32 * 128.0
    nv, ib = link_for(gpu, False), link_for(gpu, True)
    inside = step_comm_s(gpu, tp=8, ep=8, tokens=1024.0, dp_attention=True, **kw)  # type: ignore[arg-type]
    assert inside == pytest.approx(61 * 2 * nv.all_gather_s(8, 1024 * 7168 * 2))
    across = step_comm_s(gpu, tp=32, ep=32, tokens=tokens, dp_attention=True, **kw)  # type: ignore[arg-type]
    per_layer = expert_all_to_all_s(gpu, 32, 8, tokens, 7168, 8.0)
    assert across == pytest.approx(3 * 2 * ib.all_gather_s(32, tokens * 7168 * 2) + 58 * per_layer)
    # by hand: 128 tokens a rank reach 32 (1 - (31/32)^8) = 7.18 ranks, three quarters of them on other nodes
    distinct = 32 * (1 - (31 / 32) ** 8)
    by_hand = sum(ib.alpha(32, ib.a2a_alpha_s) + 0.75 * 128 * distinct * 7168 * b / ib.bus_bytes_s for b in (1, 2))
    assert per_layer == pytest.approx(by_hand)
    assert per_layer < 2 * ib.all_gather_s(32, tokens * 7168 * 2) / 3  # far less than gathering every token
    for name, flag in (("sglang", "--moe-a2a-backend deepep"), ("vllm", "--all2all-backend deepep_high_throughput")):
        wide = resolve(EstimateRequest(model="deepseek-v3", gpu="h100", engine=name, num_gpus=32, tp=32, ep=32,
                                       dp_attention=True, use_calibration=False), fewest=False)  # fmt: skip
        assert flag in launch(wide, 32) and a2a_flag(wide, "decode").strip().startswith(flag.split()[0])
        one_node = resolve(EstimateRequest(model="deepseek-v3", gpu="h200", engine=name, num_gpus=8, tp=8, ep=8,
                                           dp_attention=True, use_calibration=False), fewest=False)  # fmt: skip
        assert a2a_flag(one_node) == "" and "deepep" not in launch(one_node, 8)


# -- engines ---------------------------------------------------------------------------------------------------


def test_tensorrt_llm_decode_steps_keep_each_kernels_minimum() -> None:
    """TensorRT-LLM's DeepSeek-R1 at batch 1 and TP8 takes 5.5-7.7 ms a step on B200, B300, GB200 and GB300 in
    InferenceX's runs (benchmarks/disaggregated_measurements.yaml) and 9.0 ms in its own min-latency blog (M22);
    programmatic dependent launch hides launches, so its per-kernel cost is the CUDA-graph engines', and the
    predicted steps fall inside the measured range, not below it."""
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.speed import SpeedModel

    assert ENGINES["tensorrt-llm"].speed.kernel_s == ENGINES["vllm"].speed.kernel_s
    for quant, lo, hi in (("fp8", 6.5e-3, 7.7e-3), ("nvfp4", 5.5e-3, 7.0e-3)):
        d = resolve(EstimateRequest(model="deepseek-v3", gpu="b200", num_gpus=8, quant=quant, engine="tensorrt-llm",
                                    context=2048, use_calibration=False))  # fmt: skip
        step = SpeedModel(MemoryModel(d)).decode_step(2048, 1).per_token_s
        assert lo <= step <= hi, (quant, step)


def test_new_engines_resolve_and_refuse_what_they_do_not_run() -> None:
    assert engine("trtllm").name == "tensorrt-llm" and engine("mlx-lm").name == "mlx"
    d = resolve(EstimateRequest(model="deepseek-v3", gpu="b200", num_gpus=8, engine="tensorrt-llm"))
    assert d.engine.name == "tensorrt-llm" and d.kernel_path == "native fp8"
    assert not ENGINES["tensorrt-llm"].runs_on(resolve_gpu("mi300x"))
    assert not ENGINES["mlx"].runs_on(resolve_gpu("rtx-4090"))
    mlx = resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="apple-m4-max", engine="mlx", quant="mlx-4bit"))
    assert mlx.scheme.name == "mlx-4bit" and mlx.compute_dtype == "fp16"


# -- offload ---------------------------------------------------------------------------------------------------


def _offload_deployment(ubatch: int, engine_name: str = "llama.cpp") -> tuple[object, Host]:
    req = EstimateRequest(model="gpt-oss-120b", gpu="rtx-3090", quant="MXFP4_MOE", engine=engine_name,
                          context=16384, prompt=8192, ubatch=ubatch, use_calibration=False)  # fmt: skip
    d = resolve(req, fewest=False)
    return d, Host(d.gpu, 1, 128.0, resolve_cpu("ddr4-3200x2"))


def test_ktransformers_prefills_layer_by_layer_only_above_its_threshold() -> None:
    """--kt-gpu-prefill-token-threshold N: prefill passes of at least N tokens stream the experts to the GPU layer by
    layer, smaller ones run hybrid (experts on the CPU; 400 by default, as its launch examples); only KTransformers
    has it."""
    from moeplan.deploy.offload import LAYERWISE_MIN_TOKENS, OffloadModel

    def path(prompt: int, threshold: int | None) -> str:
        req = EstimateRequest(model="qwen3-30b-a3b", gpu="rtx-4090", engine="ktransformers", quant="bf16",
                              context=16384, prompt=prompt, kt_prefill_threshold=threshold,
                              use_calibration=False)  # fmt: skip
        d = resolve(req, fewest=False)
        model = OffloadModel(d, Host(d.gpu, 1, 128.0, resolve_cpu("ddr5-5600x2")))
        p = model.placement(d.spec.arch.num_layers, d.context, 1)
        return str(model.prefill_seconds(p, prompt)[1])

    assert "layer by layer" in path(LAYERWISE_MIN_TOKENS, None)  # a pass of num_tokens >= threshold
    assert "CPU" in path(LAYERWISE_MIN_TOKENS - 1, None)
    assert "CPU" in path(2047, 2048) and "layer by layer" in path(2048, 2048)
    with pytest.raises(InputError, match="layer-wise prefill"):
        resolve(EstimateRequest(model="qwen3-30b-a3b", gpu="rtx-4090", quant="Q4_K_M", engine="llama.cpp",
                                kt_prefill_threshold=2048))  # fmt: skip
    code, out, err = run("offload", "qwen3-30b-a3b", "--gpu", "4090", "--ram", "128", "--cpu", "9950x", "--engine",
                         "ktransformers", "--quant", "bf16", "--prompt", "2048", "--kt-prefill-threshold", "4096",
                         "--json")  # fmt: skip
    assert code == 0 and '"prefill_path": "computed on the CPU"' in out, err
    code, out, err = run("offload", "deepseek-v3", "--gpu", "rtx-4090", "--ram", "768", "--cpu", "epyc-9654",
                         "--engine", "ktransformers", "--prompt", "2k")  # fmt: skip
    assert code == 0 and "with --kt-prefill-threshold 2049 this 2,048-token prompt would run" in " ".join(out.split())
    code, _, err = run("offload", "qwen3-30b-a3b", "--gpu", "4090", "--ram", "64", "--cpu", "9950x",
                       "--kt-prefill-threshold", "4096")  # fmt: skip
    assert code == 1 and "layer-wise prefill" in err and err.count("\n") == 1


def test_ktransformers_streams_the_experts_again_for_each_prefill_pass() -> None:
    """The GPU holds one layer's experts at a time, so a prompt of two chunked-prefill passes streams them twice."""
    from moeplan.deploy.offload import OffloadModel

    def seconds(prompt: int) -> float:
        req = EstimateRequest(model="deepseek-v3", gpu="rtx-4090", engine="ktransformers", context=16384,
                              prompt=prompt, ubatch=4096, use_calibration=False)  # fmt: skip
        d = resolve(req, fewest=False)
        model = OffloadModel(d, Host(d.gpu, 1, 768.0, resolve_cpu("epyc-9654"), "gen4"))
        p = model.placement(d.spec.arch.num_layers, d.context, 1)
        return model.prefill_seconds(p, prompt)[0]

    one, two = seconds(4096), seconds(8192)
    assert one > 20  # ~650 GB of fp8 experts over PCIe 4.0 at half of 32 GB/s: the stream sets each pass
    assert two == pytest.approx(2 * one, rel=0.02)


def test_ktransformers_judges_each_prefill_pass_by_its_own_tokens() -> None:
    """Full passes of the chunk and a smaller last one: under a threshold of one chunk the full passes stream and the
    rest runs hybrid; the advice names a threshold above the largest pass, and it holds when rerun."""
    base = ("offload", "deepseek-v3", "--gpu", "rtx-4090", "--ram", "768", "--cpu", "epyc-9654", "--engine",
            "ktransformers", "--context", "64k")  # fmt: skip
    code, out, err = run(*base, "--prompt", "40000", "--kt-prefill-threshold", "16384", "--json")
    assert code == 0, err
    assert "in its 16,384-token passes, computed on the CPU in the last 7,232 tokens" in out
    code, out, err = run(*base, "--prompt", "17000", "--pcie", "gen3", "--ubatch", "4096")
    assert code == 0 and "--kt-prefill-threshold 4097 this 17,000-token prompt" in " ".join(out.split()), err
    code, out, err = run(*base, "--prompt", "17000", "--pcie", "gen3", "--ubatch", "4096",
                         "--kt-prefill-threshold", "4097", "--json")  # fmt: skip
    assert code == 0 and '"prefill_path": "computed on the CPU"' in out, err


def test_ktransformers_streams_only_the_weights_it_shares_with_the_gpu() -> None:
    """kt-kernel's layer-wise prefill exists for its native methods (FP8, BF16, RAWINT4): GGUF files (LLAMAFILE) keep
    their experts on the CPU, and the threshold is refused for them with one line; the launch line names the method,
    the weights it reads and the threshold assumed."""
    from moeplan.deploy.offload import kt_method
    from moeplan.formats.schemes import parse_scheme as scheme

    assert [kt_method(scheme(q)) for q in ("fp8-block128", "bf16", "Q4_K_M", "int8", "awq-int4")] == [
        "FP8", "BF16", "LLAMAFILE", "AMXINT8", "AMXINT4"]  # fmt: skip
    assert kt_method(scheme("experts=int4-g32")) == "RAWINT4"
    base = ("offload", "deepseek-v3", "--gpu", "rtx-4090", "--ram", "768", "--cpu", "epyc-9654", "--engine",
            "ktransformers", "--prompt", "8k", "--json")  # fmt: skip
    code, out, err = run(*base)
    assert code == 0 and "streamed to the GPU layer by layer" in out, err
    assert "--kt-method FP8" in out and "--kt-gpu-prefill-token-threshold 400" in out
    code, out, err = run(*base, "--quant", "Q4_K_M")
    assert code == 0 and '"prefill_path": "computed on the CPU"' in out and "--kt-method LLAMAFILE" in out, err
    code, out, err = run(*base, "--quant", "Q4_K_M", "--kt-prefill-threshold", "1000")
    assert code == 1 and "LLAMAFILE" in err and err.count("\n") == 1
    # under the threshold where streaming would be faster, the plan says which threshold streams, and it holds
    fast = ("offload", "deepseek-v3", "--gpu", "4090", "--ram", "1024", "--cpu", "epyc-9654", "--engine",
            "ktransformers", "--pcie", "gen5")  # fmt: skip
    code, out, err = run(*fast, "--kt-prefill-threshold", "20000")
    assert code == 0 and "with --kt-prefill-threshold 7680 this 7,680-token prompt streams" in " ".join(out.split())
    code, out, err = run(*fast, "--kt-prefill-threshold", "7680", "--json")
    assert code == 0 and "streamed to the GPU layer by layer" in out, err
    code, out, err = run(*base[:-1], "--detail")  # KTransformers has no --n-cpu-moe: it counts MoE layers
    assert code == 0 and "experts of 58 MoE layers in RAM" in out and "--n-cpu-moe" not in out, err


@settings(max_examples=30, deadline=None)
@given(st.integers(16, 8192), st.integers(16, 8192), st.integers(0, 36))
def test_a_larger_ubatch_never_slows_offload_prefill(a: int, b: int, cpu_layers: int) -> None:
    small, large = sorted((a, b))
    d_small, host = _offload_deployment(small)
    d_large, _ = _offload_deployment(large)
    slow = offload_prefill_seconds(d_small, host, cpu_layers)[1]  # type: ignore[arg-type]
    fast = offload_prefill_seconds(d_large, host, cpu_layers)[1]  # type: ignore[arg-type]
    assert fast <= slow * (1 + 1e-9)


def test_llama_cpp_streams_only_the_experts_a_ubatch_routes_to() -> None:
    """llama.cpp's scheduler copies the used experts alone (PR #15346): DeepSeek-V3's 256 experts at top-8 take
    1 - (1 - 8/256)^32 = 64% of a layer at a 32-token ubatch and all of it at 512; KTransformers' layer-wise prefill
    streams whole layers."""
    from moeplan.deploy.offload import OffloadModel

    def model(engine: str, ub: int) -> OffloadModel:
        req = EstimateRequest(model="deepseek-v3", gpu="rtx-4090", quant="Q4_K_M", engine=engine, context=8192,
                              prompt=4096, ubatch=ub, use_calibration=False)  # fmt: skip
        d = resolve(req, fewest=False)
        return OffloadModel(d, Host(d.gpu, 1, 512.0, resolve_cpu("epyc-9654")))

    small = model("llama.cpp", 32)
    p = small.placement(small.arch.num_layers, 8192, 1)
    share = small._pass_s(p, 4096, 32, 1).stream_s / small._pass_s(p, 4096, 512, 1).stream_s
    assert share == pytest.approx(1 - (1 - 8 / 256) ** 32, rel=1e-6)
    kt = model("ktransformers", 32)
    assert kt._streamed_share(10.0) == 1.0


def test_ubatch_sweep_follows_the_measured_shape() -> None:
    """A public RTX 3090 run: 380 tok/s at -ub 512, 2,091 at 8,192 (benchmarks/offload_measurements.yaml Q02/Q05)."""
    rates = []
    for ub in (512, 8192):
        d, host = _offload_deployment(ub)
        rates.append(8192 / offload_prefill_seconds(d, host, 26)[1])  # type: ignore[arg-type]
    assert 3 < rates[1] / rates[0] < 9


def test_offload_cli_options_and_refusals() -> None:
    base = ("offload", "gpt-oss-120b", "--gpu", "3090", "--ram", "128", "--cpu", "ddr4-3200x2", "--json")
    code, out, _ = run(*base, "--ubatch", "4096", "--prompt", "4096")
    assert code == 0 and '"prefill_path": "streamed to the GPU over PCIe"' in out and "--no-op-offload" not in out
    code, out, _ = run("offload", "deepseek-v3", "--gpu", "rtx-4090", "--ram", "512", "--cpu", "epyc-9654", "--quant",
                       "Q4_K_M", "--json")  # fmt: skip
    assert '"prefill_path": "computed on the CPU"' in out and "--no-op-offload" in out  # else llama.cpp streams
    code, out, _ = run(*base, "--engine", "ktransformers")
    assert code == 0 and "sglang.launch_server" in out and "--kt-method LLAMAFILE" in out
    code, _, err = run(*base, "--engine", "vllm")
    assert code != 0 and "llama.cpp or ktransformers" in err and "Traceback" not in err
    code, _, err = run(*base, "--ubatch", "0")
    assert code != 0 and "Traceback" not in err


# -- GGUF labels -----------------------------------------------------------------------------------------------


def test_a_label_without_its_file_is_a_range_and_a_file_is_exact() -> None:
    d = resolve(EstimateRequest(model="deepseek-v3", gpu="h100", num_gpus=2, quant="UD-IQ1_S", engine="llama.cpp"))
    m = evaluate(d).memory
    assert m.weights_range_bytes is not None
    lo, hi = m.weights_range_bytes
    assert lo < m.weights_bytes < hi and hi > 1.5 * lo  # unsloth's DeepSeek IQ1_S files: 131 GB (R1) to 204 GB (V3)
    default = resolve(EstimateRequest(model="deepseek-v3", quant="IQ1_S", engine="llama.cpp"))
    assert m.weights_bytes > 1.2 * evaluate(default).memory.weights_bytes  # planned at the middle published file
    exact = resolve(EstimateRequest(model="qwen3-30b-a3b", quant="bf16"))
    assert evaluate(exact).memory.weights_range_bytes is None
    oss = evaluate(resolve(EstimateRequest(model="gpt-oss-20b", quant="Q4_K_M", engine="llama.cpp"))).memory
    assert "MXFP4" in oss.formats_by_kind["routed_experts"]  # publishers keep gpt-oss's experts in MXFP4
    assert 11.0e9 < oss.weights_bytes < 12.2e9  # unsloth's Q4_K_M file: 11.6 GB


def test_engines_refuse_what_they_do_not_run() -> None:
    for args, words in (
        (("--engine", "mlx", "--gpu", "h100"), "does not run on"),
        (("--engine", "tensorrt-llm", "--gpu", "mi300x"), "does not run on"),
        (("--engine", "vllm", "--gpu", "apple-m4-max"), "does not run on"),
        (("--engine", "llama.cpp", "--gpu", "tpu-v5e"), "does not run on"),
        (("--engine", "vllm", "--gpu", "h100", "--quant", "Q4_K_M"), "GGUF"),
        (("--engine", "vllm", "--gpu", "v100", "--quant", "gptq-int4"), "no vllm kernels"),
    ):
        code, _, err = run("estimate", "qwen3-30b-a3b", *args)
        assert code == 1 and words in err and "Traceback" not in err, (args, err)


# -- calibrations feed the estimates --------------------------------------------------------------------------


def _profile(tmp_path: Path, **extra: object) -> Path:
    profile = CalibrationProfile(
        device="NVIDIA H100 80GB HBM3", gpu_id="h100-sxm", backend="cuda", dtype="bf16",
        created=dt.datetime.now(dt.timezone.utc).isoformat(), torch_version="2.13.0", bandwidth_gb_s=2600.0,
        gemm_tflops=700.0, bandwidth_efficiency=0.78, compute_efficiency=0.7, **extra,  # type: ignore[arg-type]
    )  # fmt: skip
    return save_profile(profile, tmp_path / "h100.json")


def test_measured_collectives_and_full_step_replace_the_defaults(tmp_path: Path) -> None:
    slow_link = CollectivesMeasurement(
        backend="nccl", world_size=8, device="H100", hidden=7168,
        all_reduce=CollectiveFit(alpha_s=100e-6, bus_gb_s=100.0, factor=1.75),
        all_to_all=CollectiveFit(alpha_s=150e-6, bus_gb_s=100.0, factor=0.875),
    )  # fmt: skip
    step = StepMeasurement(layers=4, context=1024, bandwidth_gb_s=2600.0, overhead_s_per_layer=200e-6)
    path = _profile(tmp_path, collectives=slow_link, step=step)
    base = EstimateRequest(model="deepseek-v3", gpu="h100", num_gpus=8)
    plain = evaluate(resolve(base))
    measured = evaluate(resolve(EstimateRequest(model="deepseek-v3", gpu="h100", num_gpus=8, calibration=str(path))))
    assert plain.performance is not None and measured.performance is not None
    comm = measured.performance.step_seconds["communication"]
    assert comm > 3 * plain.performance.step_seconds["communication"]
    assert measured.performance.step_seconds["fixed"] == pytest.approx(61 * 200e-6)
    assert any("collectives measured" in a for a in measured.assumptions)


def test_a_cpu_profile_feeds_offload(tmp_path: Path) -> None:
    host = HostMeasurement(cpu="Test CPU", sockets=1, threads=16, ram_gb_s=60.0, ram_gb_s_per_socket=60.0,
                           ram_buffer_bytes=1 << 30, expert_gflops_prefill=800.0)  # fmt: skip
    path = save_profile(
        CalibrationProfile(
            device="Test CPU",
            gpu_id=None,
            backend="cpu",
            dtype="fp32",
            created=dt.datetime.now(dt.timezone.utc).isoformat(),
            torch_version="2.13.0",
            bandwidth_gb_s=50.0,
            gemm_tflops=0.8,
            host=host,
        ),
        tmp_path / "cpu.json",
    )
    args = ("offload", "qwen3-30b-a3b", "--gpu", "3060", "--ram", "64", "--json")
    code, out, err = run(*args, "--host-profile", str(path))
    assert code == 0, err
    assert "calibrated" in out and "Test CPU" in out
    code, _, err = run(*args, "--host-profile", str(tmp_path / "missing.json"))
    assert code != 0 and "Traceback" not in err


def test_a_calibration_run_keeps_what_the_stored_profile_measured_and_it_did_not(tmp_path: Path) -> None:
    from moeplan.hardware.profiles import load_profile, merged_with_stored

    link = CollectivesMeasurement(backend="gloo", world_size=2, device="cpu", hidden=64,
                                  all_reduce=CollectiveFit(alpha_s=1e-4, bus_gb_s=1.0, factor=1.0))  # fmt: skip
    stored = _profile(tmp_path, collectives=link)
    step = StepMeasurement(layers=2, context=256, bandwidth_gb_s=100.0, overhead_s_per_layer=1e-4)
    new = CalibrationProfile.model_validate({**load_profile(stored).model_dump(), "collectives": None, "step": step})
    merged = merged_with_stored(new, stored)
    assert merged.collectives == link and merged.step == step


def test_multi_gpu_estimates_name_the_links_they_cross() -> None:
    two_nodes = evaluate(resolve(EstimateRequest(model="deepseek-v3", gpu="h100", num_gpus=16, tp=16)))
    assert any("TP 16 (across nodes)" in a and "InfiniBand" in a for a in two_nodes.assumptions)
    ep = resolve(EstimateRequest(model="deepseek-v3", gpu="h100", num_gpus=16, ep=16))
    assert (ep.layout.tp, ep.layout.ep) == (16, 16)  # --ep wider than the default TP widens it


def test_llama_cpp_efficiency_follows_the_experts_type() -> None:
    from moeplan.deploy.kernels import TYPE_FACTOR, expert_type_class, type_factor

    assert expert_type_class(parse_scheme("Q4_K_M")) == "k-quant"
    assert expert_type_class(parse_scheme("MXFP4_MOE")) == "mxfp4"
    assert expert_type_class(parse_scheme("BF16")) == "float"
    gpu = resolve_gpu("rtx-3090")
    k = kernel_path(ENGINES["llama.cpp"], parse_scheme("Q4_K_M"), gpu, BACKENDS["cuda"])
    m = kernel_path(ENGINES["llama.cpp"], parse_scheme("MXFP4_MOE"), gpu, BACKENDS["cuda"])
    assert m.compute_max == pytest.approx(k.compute_max * type_factor("cuda", "nvidia", "mxfp4"))
    assert 1.0 < type_factor("cuda", "nvidia", "mxfp4") < TYPE_FACTOR["mxfp4"]  # CUDA's own rows: 1.17
    assert type_factor("metal", "apple", "mxfp4") == TYPE_FACTOR["mxfp4"]  # no rows of its own: the default


def test_vulkan_bf16_on_amd_takes_the_scalar_path_f16_keeps_cooperative_matrices() -> None:
    """AMD's Vulkan drivers expose no bf16 cooperative matrices: BF16 experts run ggml-vulkan's scalar path, F16
    experts its fp16 coopmat kernels; ROCm multiplies both through hipBLAS."""
    gpu = resolve_gpu("ryzen-ai-max-395")

    def eta(fmt: str, backend: str) -> float:
        return kernel_path(ENGINES["llama.cpp"], parse_scheme(fmt), gpu, BACKENDS[backend]).compute_max

    assert eta("BF16", "vulkan") < eta("F16", "vulkan") / 1.5
    assert eta("BF16", "rocm") == pytest.approx(eta("F16", "rocm"))
    assert eta("MXFP4_MOE", "vulkan") > 2 * eta("Q4_K_M", "vulkan")


def test_short_prefill_waits_on_the_host_issuing_kernels() -> None:
    """Eager prefill: a 610-token prompt of DeepSeek at TP8 on B200 is host-bound, an 8k prompt is not."""

    def ttft(prompt: int) -> float:
        req = EstimateRequest(model="deepseek-v3", gpu="b200", num_gpus=8, engine="sglang", context=prompt,
                              prompt=prompt, use_calibration=False)  # fmt: skip
        perf = evaluate(resolve(req)).performance
        assert perf is not None
        return perf.time_to_first_token_s

    short = ttft(610)
    assert 0.06 < short < 0.2  # measured 126-153 ms (SGLang cookbook)
    assert short < ttft(8192) < 4 * short  # 13x the tokens, far from 13x the time: the short one waits on the host


def test_offload_commands_carry_the_ubatch_and_refuse_unified_memory() -> None:
    base = ("offload", "qwen3-30b-a3b", "--gpu", "3060", "--ram", "64", "--cpu", "ddr4-3200x2", "--json")
    code, out, _ = run(*base, "--ubatch", "4096")
    assert code == 0 and "-ub 4096 -b 4096" in out
    code, _, err = run("offload", "qwen3-30b-a3b", "--gpu", "apple-m4-max", "--ram", "64", "--cpu", "ddr5-5600x2")
    assert code == 1 and "nothing to offload" in err


def test_ktransformers_splits_the_experts_over_the_sockets_and_reads_them_locally() -> None:
    """kt-kernel runs one thread pool per NUMA node, each expert split over them (AMX_MOE_TP per node in its logs;
    its Kimi-K2.5 guide asks 600 GB of RAM on two sockets): two sockets hold one copy and read faster."""
    req = EstimateRequest(model="deepseek-v3", gpu="rtx-4090", quant="Q4_K_M", engine="ktransformers",
                          use_calibration=False)  # fmt: skip
    d = resolve(req, fewest=False)
    one = Host(d.gpu, 1, 2048.0, resolve_cpu("epyc-9654"))
    two = Host(d.gpu, 1, 2048.0, resolve_cpu("2x-epyc-9654"))
    from moeplan.deploy.offload import OffloadModel

    n = d.spec.arch.num_layers
    m1, m2 = OffloadModel(d, one), OffloadModel(d, two)
    p1, p2 = m1.placement(n, 8192, 1), m2.placement(n, 8192, 1)
    assert p2.ram_bytes == pytest.approx(p1.ram_bytes)
    assert m2.ram_bw == pytest.approx(1.4 * m1.ram_bw)


def test_llama_cpp_decode_attention_slows_with_context_on_the_vector_units() -> None:
    """ik_llama.cpp DeepSeek-V3 on an RTX 5090 with every expert in RAM: 17.95 tok/s empty, 12.54 at 32K (Q27-Q29)."""
    from moeplan.deploy.evaluate import offload_decode_seconds

    def tps(context: int) -> float:
        req = EstimateRequest(model="deepseek-v3", gpu="rtx-5090", quant="Q2_K", engine="llama.cpp",
                              context=max(context, 128), use_calibration=False)  # fmt: skip
        d = resolve(req, fewest=False)
        host = Host(d.gpu, 1, 1024.0, resolve_cpu("ddr5-5600x8"))
        return 1 / offload_decode_seconds(d, host, d.spec.arch.num_layers)[1]

    short, long = tps(128), tps(32256)
    assert 0.6 < long / short < 0.85  # measured 0.70


def test_dense_float_weights_run_cublas_not_the_float_experts_fallback() -> None:
    """A dense model's F16 GEMMs are plain mul_mat, which ggml-cuda hands to cuBLAS: prefill no slower than its
    Q4_K_M (LLaMA-7B on an RTX 4090: F16 11,048 tok/s, Q4_0 7,980, llama.cpp PR #4766), and batched decode rising
    with the batch; the float-experts factor stays with MoE models (their mul_mat_id fallback)."""

    def perf(model: str, quant: str | None, batch: int = 1) -> PerformanceResult:
        req = EstimateRequest(model=model, gpu="rtx-4090", engine="llama.cpp", context=2048, quant=quant, batch=batch,
                              use_calibration=False)  # fmt: skip
        out = evaluate(resolve(req)).performance
        assert out is not None
        return out

    f16, q4 = perf("llama-3.1-8b", None), perf("llama-3.1-8b", "Q4_K_M")
    assert "cuBLAS" in f16.kernel_path
    assert f16.prefill_tokens_per_s >= q4.prefill_tokens_per_s
    assert (
        perf("llama-3.1-8b", None, 16).throughput_tokens_per_s > perf("llama-3.1-8b", None, 8).throughput_tokens_per_s
    )
    assert "float experts" in perf("qwen3-30b-a3b", "BF16").kernel_path


def test_nvfp4_runs_on_nvidia_alone_and_amd_weight_only_is_not_called_marlin() -> None:
    """NVFP4 is NVIDIA's format (fp4 units on Blackwell, Marlin FP4 from Ampere): refused on AMD Instinct, where
    recommend no longer ranks it; AWQ on MI300X runs ROCm's Triton/ExLlama kernels, not Marlin (CUDA only)."""
    assert resolve_gpu("a100-80gb-sxm").has_kernels("nvfp4") and not resolve_gpu("mi300x").has_kernels("nvfp4")
    assert resolve_gpu("mi300x").has_kernels("packed4")  # AWQ, GPTQ, MXFP4
    with pytest.raises(InputError, match="nvfp4"):
        resolve(EstimateRequest(model="deepseek-v3", gpu="mi300x", quant="nvfp4"))
    awq = resolve(EstimateRequest(model="deepseek-v3", gpu="mi300x", quant="awq-int4"))
    assert "Marlin W4A16" not in awq.kernel_path and "ROCm" in awq.kernel_path
    code, out, err = run("recommend", "deepseek-v3", "--context", "32k", "--json")
    assert code == 0, err
    rows = json.loads(out)["candidates"]
    assert not [r for r in rows if r["gpu"].startswith("mi") and r["quant"] == "nvfp4"]


def test_llama_cpp_takes_only_the_layouts_it_runs() -> None:
    """llama.cpp splits a model by layer (a pipeline, its default) or by tensor (--split-mode tensor): no expert
    parallelism and no mix of the two, each refused with the split modes named."""
    base = {"model": "mixtral-8x22b", "gpu": "a100", "engine": "llama.cpp", "num_gpus": 4}
    assert resolve(EstimateRequest(**base)).layout.pp == 4  # type: ignore[arg-type]
    assert resolve(EstimateRequest(**base, tp=4)).layout.tp == 4  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no expert parallelism"):
        resolve(EstimateRequest(**base, ep=4))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not both"):
        resolve(EstimateRequest(**base, tp=2, pp=2))  # type: ignore[arg-type]


def test_llama_cpp_backend_type_factors_are_their_rows_medians(monkeypatch: pytest.MonkeyPatch) -> None:
    """BACKEND_TYPE_FACTOR is derived, not chosen: each figure is the median of ``default factor x measured /
    predicted`` over the scored llama-bench rows of its backend, vendor and type (predicted with the cross-backend
    default), to the two figures it is written with.  A change to the model that moves those medians shows here."""
    import statistics

    from moeplan.deploy import kernels
    from moeplan.plans.accuracy import check, deployment, load_records, record_gpu

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    rows = [r for r in load_records(root / "prefill_measurements.yaml") if r.get("kind") == "prefill_speed"]
    own = dict(kernels.BACKEND_TYPE_FACTOR)
    monkeypatch.setattr(kernels, "BACKEND_TYPE_FACTOR", {})
    implied: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:
        if r.get("engine") != "llama.cpp" or not r.get("gpu") or r.get("backend") in (None, "CPU"):
            continue
        gpu = record_gpu(r)
        scheme = deployment(r, gpu).scheme
        kind = kernels.expert_type_class(scheme)
        if kind == "float" and kernels.expert_gguf_type(scheme) == "BF16" and r["backend"].lower() == "vulkan":
            kind = "bf16"
        key = (r["backend"].lower(), gpu.vendor, kind)
        if key in own:
            c = check(r)
            base = kernels.TYPE_FACTOR["float" if kind == "bf16" else kind]
            implied.setdefault(key, []).append(base * c.measured / c.predicted)
    assert set(implied) == set(own)
    for key, values in implied.items():
        assert len(values) >= 3, key
        assert statistics.median(values) == pytest.approx(own[key], rel=0.06), key


# ---- a publisher's layout: projections kept in bf16 beside NVFP4 experts ---------------------------------------


def test_deepseek_nvfp4_is_sized_as_nvidias_checkpoint_ships_it() -> None:
    """nvidia/DeepSeek-R1-0528-NVFP4-v2 quantizes the experts, shared experts, dense MLP and the attention output;
    the other attention projections stay bf16: 4.25B parameters at 2 B instead of 0.5625 B, +6.1 GB.  A class
    override (or another model, or another format) keeps the toolchain's layout."""
    from moeplan.formats.schemes import model_scheme, weights_bytes_by_kind
    from moeplan.sources.catalog import resolve_model

    spec = resolve_model("deepseek-r1")
    shipped = model_scheme(spec, "nvfp4")
    assert set(shipped.kept_roles) == {"attn_q_a", "attn_q_b", "attn_kv_a_mqa", "attn_kv_b"}
    every = model_scheme(spec, "nvfp4,attention=nvfp4")
    assert every.kept_roles == ()
    extra = sum(weights_bytes_by_kind(spec.arch, shipped).values()) - sum(
        weights_bytes_by_kind(spec.arch, every).values()
    )
    kept = 61 * (1536 * 7168 + 24576 * 1536 + 576 * 7168 + 32768 * 512)  # q_a, q_b, kv_a (with rope), kv_b
    assert kept == pytest.approx(4.25e9, rel=0.01)
    assert extra == pytest.approx(kept * (2 - 0.5625), rel=0.01)
    assert model_scheme(spec, "fp8").kept_roles == () and model_scheme(spec, "awq-int4").kept_roles == ()
    assert model_scheme(resolve_model("qwen3-235b-a22b"), "nvfp4").kept_roles == ()


def test_weights_kept_in_bf16_run_at_the_bf16_peak_beside_quantized_ones() -> None:
    """float_gemm_scale: B200 native NVFP4 (9,000 x 0.4) against bf16 (2,250 x 0.75) = 2.13; H100 native fp8
    (1,979 x 0.6) against bf16 (989 x 0.75) = 1.6; a weight-only path already runs at the bf16 peak.  DeepSeek's
    shipped NVFP4 attention: 1 + 1.13 x 4.25 / 11.4 = 1.42; its bf16 output head 2.13; a prompt takes longer than
    with every projection in NVFP4."""
    from moeplan.deploy.memory import MemoryModel
    from moeplan.deploy.speed import SpeedModel

    def model(gpu: str, quant: str, n: int = 8) -> SpeedModel:
        d = resolve(EstimateRequest(model="deepseek-v3", gpu=gpu, quant=quant, num_gpus=n, context=9216,
                                    use_calibration=False), fewest=False)  # fmt: skip
        return SpeedModel(MemoryModel(d))

    b200 = model("b200", "nvfp4")
    assert b200.d.float_gemm_scale == pytest.approx(9000 * 0.4 / (2250 * 0.75), rel=0.02)
    assert b200.kind_scale["attention"] == pytest.approx(1.42, abs=0.02)
    assert b200.kind_scale["lm_head"] == pytest.approx(b200.d.float_gemm_scale)
    assert "routed_experts" not in b200.kind_scale and "shared_experts" not in b200.kind_scale
    every = model("b200", "nvfp4,attention=nvfp4")
    assert "attention" not in every.kind_scale
    assert b200.prefill_token_seconds(8192, 8192) > every.prefill_token_seconds(8192, 8192) * 1.05
    h100 = model("h100", "fp8", 16)
    assert h100.d.float_gemm_scale == pytest.approx(1.6, rel=0.02) and set(h100.kind_scale) <= {"lm_head", "router"}
    assert model("h200", "awq-int4").kind_scale == {}
