"""The commands, through typer's runner: output, JSON contract, exit codes and one-line errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moeplan.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "120", "NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


def test_estimate_prints_parameter_table() -> None:
    code, out, _ = run("estimate", "mixtral-8x22b", "--gpu", "a100", "--detail")
    assert code == 0
    assert "Mixtral 8x22B" in out and "140.63B" in out and "39.16B" in out and "routed experts" in out


def test_estimate_json_contract() -> None:
    code, out, _ = run("estimate", "deepseek-v3", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["model"] == data["model"] | {"id": "deepseek-v3", "name": "DeepSeek-V3", "architecture": "deepseek_v3"}
    p = data["params"]
    assert p["total"] == 671026404352 and p["active"] == 37552282624 and p["embedding"] == 926679040
    assert isinstance(p["total"], int)
    assert set(p["breakdown"]) >= {
        "attention",
        "routed_experts",
        "shared_experts",
        "dense_mlp",
        "router",
        "embedding",
        "lm_head",
        "norm",
        "other",
    }
    inside = sum(v for k, v in p["breakdown"].items() if k not in p["outside_total"])
    assert inside == p["total"]
    assert p["breakdown"]["mtp"] > 0 and "mtp" in p["outside_total"]
    assert isinstance(data["assumptions"], list) and data["assumptions"]


def test_models_lists_catalogue() -> None:
    code, out, _ = run("models")
    assert code == 0 and "mixtral-8x22b" in out and "deepseek-v3" in out
    code, out, _ = run("models", "--json")
    rows = json.loads(out)["models"]
    assert {"id", "total", "active", "num_experts", "top_k", "source"} <= set(rows[0])


def test_unknown_model_is_one_line_exit_1() -> None:
    code, out, err = run("estimate", "mixtrall-8x22b")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "did you mean" in err and "Traceback" not in err


def test_bad_spec_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("id: m\nname: m\narchitecture: x\narch: {vocab_size: 10}\n")
    code, _, err = run("estimate", str(path))
    assert code == 1 and err.count("\n") == 1 and str(path) in err and "arch.hidden_size" in err


def test_bad_config_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "mixtral", "hidden_size": 4096}))
    code, _, err = run("estimate", str(path))
    assert code == 1 and err.count("\n") == 1 and "field 'num_hidden_layers' is missing" in err


def test_usage_error_exits_2() -> None:
    code, _, _ = run("estimate")
    assert code == 2


def test_spec_command_round_trips(tmp_path: Path) -> None:
    code, out, _ = run("spec", "qwen3-30b-a3b")
    assert code == 0
    path = tmp_path / "qwen.yaml"
    path.write_text(out)
    code2, out2, _ = run("estimate", str(path), "--json")
    assert code2 == 0 and json.loads(out2)["params"]["total"] == 30532122624


def test_debug_env_shows_traceback() -> None:
    result = runner.invoke(app, ["estimate", "nope-model"], env={"MOEPLAN_DEBUG": "1"})
    assert result.exit_code != 0 and result.exception is not None


def test_estimate_does_not_import_torch_or_hub() -> None:
    code = (
        "import sys; from moeplan.cli import app; from typer.testing import CliRunner;"
        "r = CliRunner().invoke(app, ['estimate', 'mixtral-8x22b', '--gpu', 'a100']); assert r.exit_code == 0;"
        "bad = [m for m in ('torch', 'huggingface_hub', 'transformers') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("args", [["--help"], ["estimate", "--help"], ["models", "--help"], ["--version"]])
def test_help_and_version(args: list[str]) -> None:
    code, out, _ = run(*args)
    assert code == 0 and out


def test_estimate_memory_and_fit_json() -> None:
    code, out, _ = run("estimate", "gpt-oss-120b", "--gpu", "h100", "--context", "32k", "--json")
    assert code == 0
    data = json.loads(out)
    m, f = data["memory"], data["fit"]
    assert m["total_bytes"] == m["weights_bytes"] + m["kv_cache_bytes"] + m["activation_bytes"] + m["overhead_bytes"]
    assert m["per_gpu_bytes"] >= m["per_gpu_weights_bytes"] + m["per_gpu_kv_cache_bytes"]
    assert f["fits"] is True and f["num_gpus"] == f["min_gpus"] == 1
    assert f["max_context"] >= 32768 and f["max_batch"] >= 1
    assert data["request"]["context"] == 32768


def test_estimate_human_output_has_verdict_breakdown_and_bar() -> None:
    code, out, _ = run("estimate", "deepseek-r1", "--gpu", "h100", "--num-gpus", "8", "--detail")
    assert code == 0
    first = out.splitlines()[0]  # the verdict comes first, in one line
    assert "DOES NOT FIT" in first and "8 x h100-sxm" in first and "8 x NVIDIA H100" in out
    assert "weights: routed experts" in out and "KV cache" in out and "usable GPU memory" in out
    assert "█" in out and "Speed as if it fitted" in out  # never a speed or cost read as if it ran
    code, out, _ = run("estimate", "mixtral-8x7b", "--gpu", "h100", "--batch", "100000")
    assert "DOES NOT FIT" in out and "speed as if it fitted" in out and "cost as if it fitted:" in out
    code, out, _ = run("estimate", "mixtral-8x7b", "--gpu", "h100", "--num-gpus", "2")
    assert "as if it fitted" not in out


def test_gguf_mix_through_the_cli() -> None:
    code, out, _ = run("estimate", "mixtral-8x7b", "--quant", "Q4_K_M", "--engine", "llama.cpp", "--json")
    assert code == 0
    assert abs(json.loads(out)["memory"]["weights_bytes"] / 1e9 - 28.45) < 0.01  # real file: 28.4 GB


@pytest.mark.parametrize(
    "args",
    [
        ["--context", "0"],
        ["--context", "-5"],
        ["--context", "lots"],
        ["--batch", "0"],
        ["--num-gpus", "0"],
        ["--quant", "fp7"],
        ["--quant", "expertz=fp8"],
        ["--kv-dtype", "fp3"],
        ["--engine", "tgi"],
        ["--gpu", "h1000"],
        ["--gpu-memory", "-3"],
    ],
)
def test_nonsense_options_are_one_line_exit_1(args: list[str]) -> None:
    code, out, err = run("estimate", "mixtral-8x7b", *args)
    assert code in (1, 2), (args, code, out, err)
    assert "Traceback" not in out + err
    if code == 1:
        assert len(err.strip().splitlines()) == 1 and err.startswith("error:"), err


def test_compare_recommend_and_gpus_commands() -> None:
    code, out, _ = run("compare", "mixtral-8x7b", "llama-3.1-70b", "--gpu", "h100")
    assert code == 0 and "★" in out and "decode FLOPs per token" in out
    code, out, _ = run("compare", "mixtral-8x7b", "llama-3.1-70b", "--gpu", "h100", "--json")
    assert code == 0 and len(json.loads(out)["columns"]) == 2
    code, out, _ = run("recommend", "deepseek-v3", "--context", "32k", "--top", "5")
    assert code == 0 and "cheapest" in out and "fastest" in out
    code, out, _ = run("recommend", "deepseek-v3", "--context", "32k", "--json")
    first = json.loads(out)["candidates"][0]
    assert {"gpu", "num_gpus", "quant", "fit", "performance", "cost"} <= set(first)
    code, out, _ = run("gpus")
    assert code == 0 and "h100-sxm" in out
    code, out, _ = run("gpus", "--json")
    assert len(json.loads(out)["gpus"]) >= 40


def test_estimate_speed_and_cost_json() -> None:
    code, out, _ = run("estimate", "mixtral-8x7b", "--gpu", "h100", "--num-gpus", "2", "--price", "3", "--json")
    assert code == 0
    data = json.loads(out)
    perf, cost, flops = data["performance"], data["cost"], data["flops"]
    lo, hi = perf["decode_tokens_per_s_range"]
    assert lo < perf["decode_tokens_per_s"] < hi
    assert perf["throughput_tokens_per_s"] == perf["decode_tokens_per_s"]
    assert perf["prefill_tokens_per_s"] > 0 and perf["time_to_first_token_s"] > 0
    assert cost["usd_per_hour"] == 6.0 and cost["usd_per_million_output_tokens"] > 0
    assert flops["decode_per_token"] > flops["decode_by_kind"]["routed_experts"] > 0
    assert [r["batch"] for r in perf["by_batch"]][:3] == [1, 2, 4]


@pytest.mark.parametrize(
    "args",
    [
        ["recommend", "deepseek-v3", "--sort", "cheapest"],
        ["recommend", "deepseek-v3", "--max-gpus", "0"],
        ["recommend", "deepseek-v3", "--top", "0"],
        ["compare", "mixtral-8x7b"],
        ["compare", "a", "b", "c", "--gpu", "h100", "--gpu", "h200"],
        ["estimate", "mixtral-8x7b", "--gpu", "h100", "--routing-skew", "-1"],
        ["estimate", "mixtral-8x7b", "--gpu", "h100", "--price", "-2"],
        ["estimate", "mixtral-8x7b", "--gpu", "h100", "--prompt", "99k"],
        ["estimate", "mixtral-8x7b", "--gpu", "h100", "--calibration", "/nonexistent.json"],
        ["gpus", "--gpu-file", "/nonexistent.yaml"],
    ],
)
def test_bad_speed_options_are_one_line(args: list[str]) -> None:
    code, out, err = run(*args)
    assert code in (1, 2), (args, out, err)  # 2: an option's own range refused it (one line through main())
    assert "Traceback" not in err and (code == 2 or len(err.strip().splitlines()) == 1)


def test_engine_auto_picks_llama_cpp_for_gguf_and_apple() -> None:
    def engine(*args: str) -> str:
        code, out, err = run("estimate", *args, "--json")
        assert code == 0, err
        return str(json.loads(out)["request"]["engine"])

    assert engine("qwen3-30b-a3b", "--quant", "Q4_K_M") == "llama.cpp"
    assert engine("qwen3-30b-a3b", "--gpu", "m3-ultra") == "llama.cpp"
    assert engine("qwen3-30b-a3b", "--gpu", "h100") == "vllm"
    assert engine("qwen3-30b-a3b", "--gpu", "h100", "--engine", "sglang") == "sglang"
    # a family llama.cpp has no implementation of goes where one runs: MLX on a Mac, vLLM on a DGX Spark
    assert engine("longcat-flash", "--gpu", "m3-ultra") == "mlx" and engine("step3", "--gpu", "m3-ultra") == "mlx"
    assert engine("longcat-flash", "--gpu", "dgx-spark") == "vllm"
    # a refusal's remedy names what does run: the engines on a Gaudi 3, MLX's own formats on Apple silicon
    code, _, err = run("offload", "qwen3-30b-a3b", "--gpu", "gaudi3", "--ram", "64", "--cpu", "ddr5-5600x2")
    assert code == 1 and "engines that run there: vllm, sglang" in err and "auto picks" not in err
    code, _, err = run("estimate", "qwen3-30b-a3b", "--gpu", "h100", "--quant", "mlx-4bit", "--engine", "llama.cpp")
    assert code == 1 and "Apple silicon with --engine mlx" in err and "vllm/sglang" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["estimate", "mixtral-8x7b", "--gpu", "h100"],
        ["compare", "mixtral-8x7b", "llama-3.1-70b", "--gpu", "h100"],
        ["recommend", "qwen3-30b-a3b"],
        ["models"],
        ["gpus"],
        ["offload", "gpt-oss-120b", "--gpu", "4090", "--ram", "64", "--cpu", "ddr5-5600x2"],
    ],
)
def test_markdown_and_csv_formats(args: list[str]) -> None:
    import csv
    import io

    code, out, err = run(*args, "--format", "markdown")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("| ") and set(lines[1].replace("|", "").split()) == {"---"}
    code, out, err = run(*args, "--format", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert len(rows) >= 2 and all(len(r) == len(rows[0]) for r in rows)
    code, out, err = run(*args, "--format", "html")
    assert code == 1 and "--format" in err


def test_explain_shows_formulas_and_sources() -> None:
    code, out, _ = run("estimate", "deepseek-r1", "--gpu", "h200", "--explain")
    assert code == 0
    for needle in ("active parameters = total - (experts - top-k)", "bits per weight", "KV cache per token =",
                   "memory per GPU =", "decode step = max(", "sources and assumptions"):  # fmt: skip
        assert needle in out, needle


def test_plots_in_the_terminal() -> None:
    code, out, _ = run("estimate", "qwen3-30b-a3b", "--gpu", "4090", "--quant", "Q4_K_M", "--detail")
    assert code == 0 and "memory per GPU vs context" in out and "░" in out
    code, out, _ = run("estimate", "qwen3-30b-a3b", "--gpu", "4090", "--json")
    rows = json.loads(out)["memory_by_context"]
    sizes = [r["per_gpu_bytes"] for r in rows]
    assert sizes == sorted(sizes) and rows[0]["context"] == 1024


def test_review_fixes_compare_stars_only_what_fits() -> None:
    from moeplan.deploy.deployment import EstimateRequest
    from moeplan.plans.compare import compare, compare_requests

    reqs = compare_requests(
        ["llama-3.1-70b", "mixtral-8x7b"], ["h100"], ["bf16", "fp8"], [], EstimateRequest(model="x")
    )
    reqs = [dataclasses.replace(r, num_gpus=1) for r in reqs]
    comparison = compare(reqs)
    rows = {r.label: r for r in comparison.rows}
    assert [r.fit.fits for r in comparison.results if r.fit] == [False, True]
    assert rows["decode tokens/s per sequence"].winners == {1}  # the one that fits wins, however fast the other
    assert rows["per million output tokens"].winners == {1}
    code, out, _ = run("compare", "llama-3.1-70b", "mixtral-8x7b", "--gpu", "h100", "--num-gpus", "1")
    assert code == 0 and "in brackets: as if the deployment fitted" in out and "★" in out
    mixed = compare(compare_requests(["mixtral-8x7b"], ["h100", "h200"], [], [], EstimateRequest(model="x")))
    assert {r.label: r for r in mixed.rows}["memory per GPU"].winners == set()


def test_review_fixes_recommend_csv_and_engines() -> None:
    import csv
    import io

    from moeplan.formats.schemes import parse_scheme
    from moeplan.hardware.gpus import resolve_gpu
    from moeplan.plans.recommend import serving_engine

    code, out, _ = run("recommend", "qwen3-235b-a22b", "--quant", "Q4_K_M", "--sort", "purchase", "--top", "3",
                       "--format", "csv")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3 and "ram_gib" in rows[0]
    assert all(r["ram_gib"] for r in rows if r["gpu"] in ("rtx-3060", "rtx-4060-ti-16gb"))

    def engine_for(quant: str, gpu: str) -> str | None:
        eng = serving_engine(parse_scheme(quant), resolve_gpu(gpu))
        return eng.name if eng else None

    assert engine_for("fp8", "v100") is None
    assert engine_for("Q4_K_M", "gaudi3") is None
    assert engine_for("awq-int4", "t4") == "vllm"
    assert engine_for("fp8", "a100") == "vllm"
    assert engine_for("Q4_K_M", "apple-m3-ultra") == "llama.cpp"
    assert engine_for("fp8", "apple-m3-ultra") is None


def test_review_fixes_llama_cpp_plans_gguf_and_f16_kv(tmp_path: Path) -> None:
    code, out, _ = run("estimate", "gpt-oss-20b", "--gpu", "4060ti", "--engine", "llama.cpp", "--json")
    data = json.loads(out)
    assert code == 0 and data["memory"]["scheme"] == "MXFP4_MOE" and data["memory"]["kv_dtype"] == "fp16"
    assert abs(data["memory"]["weights_bytes"] / 2**30 - 11.27) < 0.01  # the real GGUF: 11.27 GiB
    # an F16 GGUF of gpt-oss keeps the MXFP4 experts too (ggml-org's gpt-oss-20b-F16.gguf: 12.83 GiB, not 39)
    code, out, _ = run(
        "estimate", "gpt-oss-20b", "--gpu", "4060ti", "--engine", "llama.cpp", "--quant", "F16", "--json"
    )
    assert code == 0 and abs(json.loads(out)["memory"]["weights_bytes"] / 2**30 - 12.83) < 0.05
    code, out, _ = run("estimate", "gpt-oss-20b", "--gpu", "h100", "--engine", "vllm", "--quant", "bf16", "--json")
    assert code == 0 and json.loads(out)["memory"]["weights_bytes"] / 2**30 > 35  # a bf16 checkpoint is bf16
    bad = tmp_path / "model.bin"
    bad.write_bytes(bytes(range(256)))
    code, _, err = run("estimate", str(bad))
    assert code == 1 and "not a file moeplan reads" in err
    code, out, _ = run("models", "--detail")
    assert "deepseek-r1" in out  # aliases are listed


@pytest.mark.parametrize(
    "args, message",
    [
        (["estimate", "mixtral-8x22b", "--batch", "abc"], "error: Invalid value for '--batch': 'abc' is not a valid"),
        (["estimate"], "error: Missing argument"),
        (["bogus"], "error: No such command 'bogus'"),
        (["estimate", "mixtral-8x22b", "--nope"], "error: No such option"),  # click's wording varies by version
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "moeplan.cli", *args], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message) and "--help`)" in lines[0], done.stderr
    assert args[-1] in lines[0]  # the word at fault is named


def test_entry_point_exit_codes() -> None:
    def code(*args: str) -> int:
        return subprocess.run([sys.executable, "-m", "moeplan.cli", *args], capture_output=True).returncode

    assert code("--version") == 0 and code("estimate", "--help") == 0
    assert code("estimate", "nope-model") == 1
    assert code() == 2  # no arguments: the help, as a usage error


def test_host_options_without_offload_are_refused() -> None:
    code, _, err = run("estimate", "gpt-oss-120b", "--gpu", "4090", "--ram", "128", "--cpu", "9950x")
    assert code == 1 and "--ram and --cpu describe the host for expert offload" in err and "--offload-experts" in err


def test_longest_context_says_what_limits_it() -> None:
    code, out, _ = run("estimate", "deepseek-r1", "--gpu", "h200", "--num-gpus", "8", "--quant", "fp8", "--json")
    assert code == 0 and json.loads(out)["fit"]["max_context_limit"] == "model"
    code, out, _ = run("estimate", "mixtral-8x22b", "--gpu", "h100", "--json")
    assert json.loads(out)["fit"]["max_context_limit"] == "memory"
    code, out, _ = run("estimate", "deepseek-r1", "--gpu", "h200", "--num-gpus", "8", "--quant", "fp8")
    assert "163,840 tokens (the model's trained limit)" in " ".join(out.split())


def test_recommend_filters_only_remove_entries() -> None:
    from moeplan.plans.recommend import recommend

    def keys(**kw: object) -> set[tuple[str, int, str, float | None]]:
        cands = recommend("qwen3-235b-a22b", quant="Q4_K_M", **kw)[1]  # type: ignore[arg-type]
        return {(c.gpu.id, c.num_gpus, c.quant, c.ram_gib) for c in cands}

    everything = keys()
    assert ("rtx-4090", 1, "Q4_K_M", 128.0) in {(g, n, q, r) for g, n, q, r in everything}
    for kw in ({"budget_usd": 5000.0}, {"max_gpus": 1}, {"min_tokens_per_s": 20.0}):
        assert keys(**kw) <= everything, kw


def test_small_refusals_name_what_was_given() -> None:
    """--tp alone that does not divide the GPUs is named as such (no --pp the user never gave); a GPU file that is
    a device is refused as a GPU file; offload prints the trained-context warning as estimate does."""
    code, _, err = run("estimate", "deepseek-v3", "--gpu", "h200", "--num-gpus", "8", "--tp", "3")
    assert code == 1 and "--tp 3 does not divide --num-gpus 8" in err and "--pp" not in err.split("(")[0]
    code, _, err = run("estimate", "deepseek-v3", "--gpu", "h200", "--gpu-file", "/dev/null")
    assert code != 0 and "GPU file" in err
    code, out, _ = run("offload", "qwen3-30b-a3b", "--gpu", "rtx-4090", "--ram", "128", "--cpu", "ddr5-5600x2",
                       "--context", "128k")  # fmt: skip
    assert code == 0 and "exceed the model's trained context" in " ".join(out.split())


def test_a_release_named_by_alias_is_named_so_in_every_output() -> None:
    """deepseek-r1 shares DeepSeek-V3's shapes, yet estimate's verdict, compare's columns, the markdown table and
    offload's GGUF file name it as asked (a user pasting the commands loads the checkpoint named)."""
    from typer.testing import CliRunner

    from moeplan.cli import app

    def out(*args: str) -> str:
        res = CliRunner().invoke(app, list(args), env={"COLUMNS": "120", "NO_COLOR": "1"})
        assert res.exit_code == 0, res.output
        return res.stdout

    assert out("estimate", "deepseek-r1", "--gpu", "h200").startswith("FITS deepseek-r1 ")
    assert "deepseek-r1" in out("compare", "deepseek-r1", "deepseek-v3", "--gpu", "h200").splitlines()[3]
    assert "| model | deepseek-r1 |" in out("estimate", "deepseek-r1", "--gpu", "h200", "--format", "markdown")
    assert "-m deepseek-r1-Q4_K_M.gguf" in out("offload", "deepseek-r1", "--gpu", "rtx-4090", "--ram", "512", "--cpu",
                                               "epyc-9654")  # fmt: skip


def test_explain_names_why_the_kv_cache_is_larger_than_per_token_times_context() -> None:
    """Copies on the TP ranks only where they outnumber the KV heads (DeepSeek's MLA latent: every rank; Qwen3-235B's
    4 heads at TP 8); Llama-4 Maverick's 8 heads at TP 8 are not copied: its 4x is the chunked layers, which the
    per-token figure (full-attention layers only) leaves out."""

    def line(*args: str) -> str:
        code, out, err = run("estimate", *args, "--explain")
        assert code == 0, err
        text = " ".join(out.split())
        return text[text.index("KV cache per token") :][:260]

    maverick = line("llama-4-maverick", "--gpu", "h200", "--num-gpus", "8", "--quant", "fp8")
    assert "full-attention layers" in maverick and "as the engine allocates" in maverick and "copies" not in maverick
    assert "copies on the TP ranks" in line("deepseek-v3", "--gpu", "h200", "--num-gpus", "8")
    assert "copies on the TP ranks" in line("qwen3-235b-a22b", "--gpu", "h200", "--num-gpus", "8", "--quant", "fp8")


def test_gpus_shows_a_derived_bf16_peak_marked_as_such() -> None:
    """DGX Spark publishes fp4 (500) and fp32 only: the table gives the bf16 peak estimates use, ~125, marked."""
    from moeplan.hardware.gpus import resolve_gpu
    from moeplan.output.rich_tables import derived_bf16

    assert derived_bf16(resolve_gpu("dgx-spark")) == "~125"
    assert derived_bf16(resolve_gpu("h100")) == "-"  # published: the table prints the figure itself
