"""The fault corpus: hostile files, a broken environment, absurd numbers and contradictory options.

Every case runs the real command line (``main()``, as the console script does) in a subprocess with a time limit,
so a hang fails the case instead of the suite.  A case either must be refused -- exit 1 or 2 and exactly one
line on stderr, starting ``error:`` -- or must work -- exit 0, nothing but notices on stderr, and with ``--json``
an output that strict JSON accepts (no ``NaN``/``Infinity``).  Never a traceback.

Permission cases need a user that file modes stop: as root the command runs with the DAC-override capabilities
dropped (``setpriv``), so modes apply to it as to anyone; without setpriv they are skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TIMEOUT_S = 30
ROOT = Path(__file__).resolve().parent.parent
CONFIG = {
    "model_type": "mixtral", "hidden_size": 1024, "intermediate_size": 2048, "num_hidden_layers": 4,
    "num_attention_heads": 16, "num_key_value_heads": 4, "vocab_size": 32000, "num_local_experts": 8,
    "num_experts_per_tok": 2, "max_position_embeddings": 4096,
}  # fmt: skip
PROFILE = {
    "schema_version": 1, "device": "NVIDIA H100 80GB HBM3", "gpu_id": "h100", "backend": "cuda", "dtype": "bf16",
    "created": "2026-11-01T00:00:00+00:00", "torch_version": "2.13.0", "bandwidth_gb_s": 2900.0,
    "gemm_tflops": 700.0, "bandwidth_efficiency": 0.86, "compute_efficiency": 0.7,
}  # fmt: skip
DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]


@dataclass
class Case:
    name: str
    args: list[str]
    expect: str  # "refused" or "works"
    setup: Callable[[Path], dict[str, str]] | None = None
    """Makes the files the case needs under its folder; returns extra environment variables."""
    contains: str = ""
    """A phrase the error line (refused) or the output (works) must hold."""
    unprivileged: bool = False
    full_disk: bool = False
    env: dict[str, str] = field(default_factory=dict)


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _config_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    return folder


def _profile(path: Path, **changes: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**PROFILE, **changes}))
    return path


def _gpu_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GPU_YAML = """
- id: test-gpu
  name: Test GPU
  vendor: nvidia
  kind: datacenter
  memory_gib: 80
  usable_memory_gib: 79
  usable_memory_note: test
  bandwidth_gb_s: {bw}
  tflops: {{bf16: 900}}
  sources: [test]
"""


def _setups() -> dict[str, Callable[[Path], dict[str, str]]]:
    def fifo_json(d: Path) -> dict[str, str]:
        _fifo(d / "model.json")
        return {}

    def fifo_config(d: Path) -> dict[str, str]:
        _fifo(d / "m" / "config.json")
        return {}

    def fifo_gguf(d: Path) -> dict[str, str]:
        _fifo(d / "m.gguf")
        return {}

    def fifo_gguf_in_folder(d: Path) -> dict[str, str]:
        _fifo(d / "m" / "model.gguf")
        return {}

    def fifo_safetensors(d: Path) -> dict[str, str]:
        _config_folder(d / "m")
        _fifo(d / "m" / "model.safetensors")
        return {}

    def fifo_index(d: Path) -> dict[str, str]:
        _config_folder(d / "m")
        _fifo(d / "m" / "model.safetensors.index.json")
        (d / "m" / "a.safetensors").write_bytes(b"")
        return {}

    def fifo_shard(d: Path) -> dict[str, str]:
        _config_folder(d / "m")
        index = {"weight_map": {"w": "a.safetensors"}}
        (d / "m" / "model.safetensors.index.json").write_text(json.dumps(index))
        _fifo(d / "m" / "a.safetensors")
        return {}

    def fifo_quant_config(d: Path) -> dict[str, str]:
        _config_folder(d / "m")
        (d / "m" / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
        _fifo(d / "m" / "hf_quant_config.json")
        return {}

    def missing_shard(d: Path) -> dict[str, str]:
        _config_folder(d / "m")
        header = json.dumps({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}).encode()
        data = len(header).to_bytes(8, "little") + header + bytes(8)
        (d / "m" / "model-00001-of-00003.safetensors").write_bytes(data)
        return {}

    def fifo_yaml(d: Path) -> dict[str, str]:
        _fifo(d / "spec.yaml")
        return {}

    def fifo_profile(d: Path) -> dict[str, str]:
        _fifo(d / "p.json")
        return {}

    def fifo_gpu_file(d: Path) -> dict[str, str]:
        _fifo(d / "gpus.yaml")
        return {}

    def zero_config(d: Path) -> dict[str, str]:
        (d / "m").mkdir()
        (d / "m" / "config.json").symlink_to("/dev/zero")
        return {}

    def zero_json(d: Path) -> dict[str, str]:
        (d / "model.json").symlink_to("/dev/zero")
        return {}

    def zero_gguf(d: Path) -> dict[str, str]:
        (d / "m.gguf").symlink_to("/dev/zero")
        return {}

    def zero_profile(d: Path) -> dict[str, str]:
        (d / "p.json").symlink_to("/dev/zero")
        return {}

    def urandom_yaml(d: Path) -> dict[str, str]:
        (d / "spec.yaml").symlink_to("/dev/urandom")
        return {}

    def folder_json(d: Path) -> dict[str, str]:
        (d / "model.json").mkdir()
        return {}

    def folder_gguf(d: Path) -> dict[str, str]:
        (d / "m.gguf").mkdir()
        return {}

    def folder_profile(d: Path) -> dict[str, str]:
        (d / "p.json").mkdir()
        return {}

    def socket_config(d: Path) -> dict[str, str]:
        (d / "m").mkdir()
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(d / "m" / "config.json"))
        s.close()
        return {}

    def dangling(d: Path) -> dict[str, str]:
        (d / "model.json").symlink_to(d / "nowhere.json")
        return {}

    def loop(d: Path) -> dict[str, str]:
        (d / "model.json").symlink_to(d / "model.json")
        return {}

    def home_unreadable(d: Path) -> dict[str, str]:
        home = d / "home"
        (home / ".cache").mkdir(parents=True)
        home.chmod(0)
        return {"HOME": str(home), "MOEPLAN_CACHE": "", "XDG_CACHE_HOME": ""}

    def home_missing(d: Path) -> dict[str, str]:
        return {"HOME": str(d / "no-such-home"), "MOEPLAN_CACHE": "", "XDG_CACHE_HOME": ""}

    def cache_unreadable(d: Path) -> dict[str, str]:
        cache = d / "cache"
        (cache / "parsed").mkdir(parents=True)
        cache.chmod(0)
        return {"MOEPLAN_CACHE": str(cache)}

    def cache_read_only(d: Path) -> dict[str, str]:
        cache = d / "cache"
        cache.mkdir()
        cache.chmod(0o555)
        return {"MOEPLAN_CACHE": str(cache)}

    def cache_is_file(d: Path) -> dict[str, str]:
        (d / "cache").write_text("not a folder")
        return {"MOEPLAN_CACHE": str(d / "cache")}

    def cache_full(d: Path) -> dict[str, str]:
        return {"MOEPLAN_CACHE": str(d / "cache")}

    def profile_unreadable(d: Path) -> dict[str, str]:
        _profile(d / "p.json").chmod(0)
        return {}

    def stored_profile_unreadable(d: Path) -> dict[str, str]:
        _profile(d / "cache" / "calibration" / "h100.json").chmod(0)
        return {"MOEPLAN_CACHE": str(d / "cache")}

    def model_unreadable(d: Path) -> dict[str, str]:
        (_config_folder(d / "m") / "config.json").chmod(0)
        return {}

    def save_under_file(d: Path) -> dict[str, str]:
        (d / "file").write_text("x")
        return {}

    def save_read_only(d: Path) -> dict[str, str]:
        (d / "ro").mkdir()
        (d / "ro").chmod(0o555)
        return {}

    def wrong_shape_cache(d: Path) -> dict[str, str]:
        env = {"MOEPLAN_CACHE": str(d / "cache")}
        subprocess.run([sys.executable, "-c", "from moeplan.cli import main; main()", "gpus", "--json"],
                       env={**os.environ, **env}, capture_output=True, timeout=TIMEOUT_S, check=True)  # fmt: skip
        for entry in (d / "cache" / "parsed").glob("*.json"):
            entry.write_text('{"unexpected": [1, 2, 3]}')
        return env

    def list_shape_cache(d: Path) -> dict[str, str]:
        env = {"MOEPLAN_CACHE": str(d / "cache")}
        subprocess.run([sys.executable, "-c", "from moeplan.cli import main; main()", "models", "--json"],
                       env={**os.environ, **env}, capture_output=True, timeout=TIMEOUT_S, check=True)  # fmt: skip
        for entry in (d / "cache" / "parsed").glob("*.json"):
            entry.write_text("[[1], [2], null, 7]")
        return env

    def hub_cache_wrong_shape(d: Path) -> dict[str, str]:
        hub = d / "cache" / "hub"
        hub.mkdir(parents=True)
        for name in ("models.json", "search.json"):
            (hub / name).write_text('{"rows": "not a list"}')
        return {"MOEPLAN_CACHE": str(d / "cache")}

    def bad_date(d: Path) -> dict[str, str]:
        _profile(d / "p.json", created="yesterday at noon")
        return {}

    def future_date(d: Path) -> dict[str, str]:
        _profile(d / "p.json", created="2999-01-01T00:00:00+00:00")
        return {}

    def stored_future(d: Path) -> dict[str, str]:
        _profile(d / "cache" / "calibration" / "h100.json", created="2999-01-01T00:00:00+00:00")
        return {"MOEPLAN_CACHE": str(d / "cache")}

    def unknown_schema(d: Path) -> dict[str, str]:
        _profile(d / "p.json", schema_version=7)
        return {}

    def nan_profile(d: Path) -> dict[str, str]:
        (d / "p.json").write_text(json.dumps(PROFILE).replace("2900.0", "NaN"))
        return {}

    def inf_profile(d: Path) -> dict[str, str]:
        (d / "p.json").write_text(json.dumps(PROFILE).replace("2900.0", "Infinity"))
        return {}

    def list_profile(d: Path) -> dict[str, str]:
        (d / "p.json").write_text("[1, 2]")
        return {}

    def huge_profile(d: Path) -> dict[str, str]:
        (d / "p.json").write_text(" " * (2 << 20) + "{}")
        return {}

    def binary_profile(d: Path) -> dict[str, str]:
        (d / "p.json").write_bytes(b"\xff\xfe\x00garbage")
        return {}

    def deep_profile(d: Path) -> dict[str, str]:
        (d / "p.json").write_text("[" * 100_000 + "]" * 100_000)
        return {}

    def gpu_file_inf(d: Path) -> dict[str, str]:
        _gpu_file(d / "gpus.yaml", GPU_YAML.format(bw=".inf"))
        return {}

    def gpu_file_nan(d: Path) -> dict[str, str]:
        _gpu_file(d / "gpus.yaml", GPU_YAML.format(bw=".nan"))
        return {}

    def gpu_file_scalar(d: Path) -> dict[str, str]:
        _gpu_file(d / "gpus.yaml", "just a string\n")
        return {}

    def gpu_file_bomb(d: Path) -> dict[str, str]:
        lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
        lines += [
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ]
        _gpu_file(d / "gpus.yaml", "\n".join(lines) + "\n")
        return {}

    def nan_config(d: Path) -> dict[str, str]:
        (d / "m").mkdir()
        (d / "m" / "config.json").write_text(json.dumps(CONFIG).replace("1024", "NaN", 1))
        return {}

    def inf_config(d: Path) -> dict[str, str]:
        (d / "m").mkdir()
        (d / "m" / "config.json").write_text(json.dumps(CONFIG).replace("2048", "Infinity", 1))
        return {}

    def closed_hub(d: Path) -> dict[str, str]:
        return {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(d / "hf")}

    def offline_cold(d: Path) -> dict[str, str]:
        return {"HF_HUB_OFFLINE": "1", "HF_HOME": str(d / "hf")}

    return {k: v for k, v in locals().items() if callable(v)}


S = _setups()
M = ["mixtral-8x7b"]
H100 = ["--gpu", "h100"]
OFFLOAD = ["offload", "mixtral-8x7b", "--gpu", "rtx-4090", "--ram", "64", "--cpu", "ddr5-5600x2"]

CASES: list[Case] = [
    # -- files that are not regular files: never opened for reading, refused by name
    Case("fifo json", ["estimate", "{d}/model.json", *H100], "refused", S["fifo_json"], "FIFO"),
    Case("fifo config.json in a folder", ["estimate", "{d}/m", *H100], "refused", S["fifo_config"], "FIFO"),
    Case("fifo gguf", ["estimate", "{d}/m.gguf", *H100], "refused", S["fifo_gguf"], "FIFO"),
    Case("fifo gguf in a folder", ["estimate", "{d}/m", *H100], "refused", S["fifo_gguf_in_folder"], "FIFO"),
    Case("fifo safetensors", ["estimate", "{d}/m", *H100], "refused", S["fifo_safetensors"], "FIFO"),
    Case("fifo safetensors index", ["estimate", "{d}/m", *H100], "refused", S["fifo_index"], "FIFO"),
    Case("fifo shard named by the index", ["estimate", "{d}/m", *H100], "refused", S["fifo_shard"], "FIFO"),
    Case("fifo hf_quant_config.json", ["estimate", "{d}/m", *H100], "refused", S["fifo_quant_config"]),
    Case("fifo yaml spec", ["estimate", "{d}/spec.yaml", *H100], "refused", S["fifo_yaml"], "FIFO"),
    Case(
        "fifo --calibration",
        ["estimate", *M, *H100, "--calibration", "{d}/p.json"],
        "refused",
        S["fifo_profile"],
        "FIFO",
    ),
    Case("fifo --host-profile", [*OFFLOAD, "--host-profile", "{d}/p.json"], "refused", S["fifo_profile"], "FIFO"),
    Case("fifo --gpu-file", ["gpus", "--gpu-file", "{d}/gpus.yaml"], "refused", S["fifo_gpu_file"], "FIFO"),
    Case("config.json -> /dev/zero", ["estimate", "{d}/m", *H100], "refused", S["zero_config"], "device"),
    Case("model.json -> /dev/zero", ["estimate", "{d}/model.json", *H100], "refused", S["zero_json"], "device"),
    Case("gguf -> /dev/zero", ["estimate", "{d}/m.gguf", *H100], "refused", S["zero_gguf"], "device"),
    Case(
        "--calibration -> /dev/zero",
        ["estimate", *M, *H100, "--calibration", "{d}/p.json"],
        "refused",
        S["zero_profile"],
        "device",
    ),
    Case("spec -> /dev/urandom", ["estimate", "{d}/spec.yaml", *H100], "refused", S["urandom_yaml"], "device"),
    Case("a folder named .json", ["estimate", "{d}/model.json", *H100], "refused", S["folder_json"]),
    Case("a folder named .gguf", ["estimate", "{d}/m.gguf", *H100], "refused", S["folder_gguf"]),
    Case(
        "a folder as --calibration",
        ["estimate", *M, *H100, "--calibration", "{d}/p.json"],
        "refused",
        S["folder_profile"],
        "folder",
    ),
    Case("a socket as config.json", ["estimate", "{d}/m", *H100], "refused", S["socket_config"], "socket"),
    Case("a dangling link", ["estimate", "{d}/model.json", *H100], "refused", S["dangling"]),
    Case("a link to itself", ["estimate", "{d}/model.json", *H100], "refused", S["loop"]),
    Case("/dev/null as a model", ["estimate", "/dev/null", *H100], "refused"),
    Case("/dev/stdin as --gpu-file", ["gpus", "--gpu-file", "/dev/stdin"], "refused"),
    # -- the environment: what can still work works; what cannot is one line
    Case("unreadable HOME", ["estimate", *M, *H100, "--json"], "works", S["home_unreadable"], unprivileged=True),
    Case("HOME that does not exist", ["estimate", *M, *H100, "--json"], "works", S["home_missing"]),
    Case(
        "unreadable cache folder", ["estimate", *M, *H100, "--json"], "works", S["cache_unreadable"], unprivileged=True
    ),
    Case("read-only cache folder", ["recommend", *M, "--json"], "works", S["cache_read_only"], unprivileged=True),
    Case("cache folder is a file", ["gpus", "--json"], "works", S["cache_is_file"]),
    Case("full disk under the cache", ["estimate", *M, *H100, "--json"], "works", S["cache_full"], full_disk=True),
    Case(
        "full disk, calibration profile",
        [
            "calibrate",
            "--device",
            "cpu",
            "--quick",
            "--no-host",
            "--hidden",
            "64",
            "--expert-ffn",
            "32",
            "--experts",
            "4",
            "--top-k",
            "2",
            "--save",
            "{d}/p.json",
        ],
        "refused",
        None,
        "cannot write",
        full_disk=True,
    ),
    Case("catalogue cache of the wrong shape", ["gpus", "--json"], "works", S["wrong_shape_cache"]),
    Case("model cache of the wrong shape", ["estimate", *M, *H100, "--json"], "works", S["list_shape_cache"]),
    Case("hub cache of the wrong shape", ["estimate", *M, *H100, "--json"], "works", S["hub_cache_wrong_shape"]),
    Case(
        "unreadable --calibration",
        ["estimate", *M, *H100, "--calibration", "{d}/p.json"],
        "refused",
        S["profile_unreadable"],
        "ermission",
        unprivileged=True,
    ),
    Case(
        "unreadable stored profile",
        ["estimate", *M, *H100, "--json"],
        "works",
        S["stored_profile_unreadable"],
        unprivileged=True,
    ),
    Case(
        "unreadable config.json",
        ["estimate", "{d}/m", *H100],
        "refused",
        S["model_unreadable"],
        "ermission",
        unprivileged=True,
    ),
    Case(
        "--save under a file",
        ["calibrate", "--device", "cpu", "--quick", "--save", "{d}/file/p.json"],
        "refused",
        S["save_under_file"],
        "cannot write",
    ),
    Case(
        "--save in a read-only folder",
        ["calibrate", "--device", "cpu", "--quick", "--save", "{d}/ro/p.json"],
        "refused",
        S["save_read_only"],
        "cannot write",
        unprivileged=True,
    ),
    Case("--save to a folder", ["calibrate", "--device", "cpu", "--quick", "--save", "{d}"], "refused", None, "folder"),
    Case(
        "profile date unparsable",
        ["estimate", *M, *H100, "--calibration", "{d}/p.json"],
        "refused",
        S["bad_date"],
        "date",
    ),
    Case(
        "profile date in the future",
        ["estimate", *M, *H100, "--calibration", "{d}/p.json"],
        "refused",
        S["future_date"],
        "future",
    ),
    Case("stored profile in the future", ["estimate", *M, *H100, "--json"], "works", S["stored_future"]),
    Case(
        "profile schema_version 7",
        ["estimate", *M, *H100, "--calibration", "{d}/p.json"],
        "refused",
        S["unknown_schema"],
        "schema_version",
    ),
    Case("profile holding NaN", ["estimate", *M, *H100, "--calibration", "{d}/p.json"], "refused", S["nan_profile"]),
    Case(
        "profile holding Infinity", ["estimate", *M, *H100, "--calibration", "{d}/p.json"], "refused", S["inf_profile"]
    ),
    Case(
        "profile that is a list", ["estimate", *M, *H100, "--calibration", "{d}/p.json"], "refused", S["list_profile"]
    ),
    Case(
        "profile of 2 MB",
        ["estimate", *M, *H100, "--calibration", "{d}/p.json"],
        "refused",
        S["huge_profile"],
        "too large",
    ),
    Case(
        "profile of binary bytes",
        ["estimate", *M, *H100, "--calibration", "{d}/p.json"],
        "refused",
        S["binary_profile"],
    ),
    Case(
        "profile nested 100,000 deep",
        ["estimate", *M, *H100, "--calibration", "{d}/p.json"],
        "refused",
        S["deep_profile"],
    ),
    Case(
        "gpu file bandwidth .inf",
        ["estimate", *M, "--gpu", "test-gpu", "--gpu-file", "{d}/gpus.yaml"],
        "refused",
        S["gpu_file_inf"],
    ),
    Case(
        "gpu file bandwidth .nan",
        ["estimate", *M, "--gpu", "test-gpu", "--gpu-file", "{d}/gpus.yaml"],
        "refused",
        S["gpu_file_nan"],
    ),
    Case("gpu file of a scalar", ["gpus", "--gpu-file", "{d}/gpus.yaml"], "refused", S["gpu_file_scalar"]),
    Case("gpu file alias bomb", ["gpus", "--gpu-file", "{d}/gpus.yaml"], "refused", S["gpu_file_bomb"]),
    Case("config.json with NaN", ["estimate", "{d}/m", *H100], "refused", S["nan_config"]),
    Case("config.json with Infinity", ["estimate", "{d}/m", *H100], "refused", S["inf_config"]),
    Case("hub unreachable", ["estimate", "hf:org/model", *H100], "refused", S["closed_hub"], "reach"),
    Case("offline, cold cache", ["estimate", "hf:org/model", *H100], "refused", S["offline_cold"], "lacks"),
    # -- non-finite and absurd numbers: refused at the option layer
    *[
        Case(f"{opt} {value}", [*cmd, opt, value], "refused", contains=opt)
        for cmd, opt, values in (
            (["estimate", *M], "--gpu-memory", ("inf", "nan", "-5", "0", "1e400")),
            (["estimate", *M, "--gpu-memory", "80"], "--gpu-bandwidth", ("nan", "-inf")),
            (["estimate", *M, "--gpu-memory", "80"], "--gpu-tflops", ("inf",)),
            (OFFLOAD[:-4], "--ram", ("inf", "nan")),
            (OFFLOAD[:-2], "--ram-bandwidth", ("nan", "inf")),
            (["estimate", *M, *H100], "--price", ("inf", "nan", "-1")),
            (["estimate", *M, *H100], "--energy-price", ("nan",)),
            (["recommend", *M], "--budget", ("nan", "inf")),
            (["recommend", *M], "--min-tokens-per-s", ("nan",)),
            (["estimate", *M, *H100], "--batch", (str(2**63), "0", "-1")),
            (["estimate", *M, *H100], "--num-gpus", (str(2**40),)),
            (["estimate", *M, *H100], "--tp", ("0",)),
            (["estimate", *M, *H100], "--concurrency", (str(2**63),)),
            (["estimate", *M, *H100, "--concurrency", "4"], "--mtp-accept", ("1.5", "nan")),
            (["estimate", *M, *H100], "--rate", ("nan", "inf", "0")),
            (["estimate", *M, *H100], "--routing-skew", ("nan",)),
            (["serve", "qwen3-30b-a3b", "--concurrency", "8"], "--prefix-hit", ("nan", "1")),
            (["serve", "qwen3-30b-a3b", "--concurrency", "8"], "--ttft", ("inf",)),
            (["serve", "qwen3-30b-a3b", "--concurrency", "8"], "--tpot", ("nan",)),
            (["estimate", *M, *H100], "--context", ("inf", "nan", "-1", "99999999999999999999k", "1e400")),
            (["estimate", *M, *H100, "--concurrency", "4"], "--isl", ("nan",)),
            (["estimate", *M, *H100], "--prompt", ("inf",)),
            (["estimate", *M, *H100], "--ubatch", ("0",)),
            (["recommend", *M], "--top", ("0",)),
            (["recommend", *M], "--max-gpus", ("0",)),
        )
        for value in values
    ],
    # -- options that do not go together: refused, never silently changed
    Case(
        "--offload-experts under vLLM",
        [
            "estimate",
            *M,
            "--gpu",
            "rtx-4090",
            "--engine",
            "vllm",
            "--offload-experts",
            "4",
            "--ram",
            "64",
            "--cpu",
            "ddr5-5600x2",
        ],
        "refused",
        None,
        "vllm",
    ),
    Case(
        "a quant class twice",
        ["estimate", *M, *H100, "--quant", "experts=fp8,experts=awq-int4"],
        "refused",
        None,
        "twice",
    ),
    Case(
        "llama.cpp with fp8 weights",
        ["estimate", *M, *H100, "--engine", "llama.cpp", "--quant", "fp8"],
        "refused",
        None,
        "GGUF",
    ),
    Case("vLLM on Apple silicon", ["estimate", *M, "--gpu", "m3-max", "--engine", "vllm"], "refused", None, "vllm"),
    Case("an unknown engine", ["estimate", *M, *H100, "--engine", "vllmm"], "refused", None, "engine"),
    Case(
        "--num-gpus beyond a layer per stage",
        ["estimate", *M, *H100, "--num-gpus", "100000"],
        "refused",
        None,
        "at most",
    ),
    Case("unknown model", ["estimate", "gpt-5", *H100], "refused", None, "unknown model"),
    Case("unknown GPU", ["estimate", *M, "--gpu", "h1000000"], "refused", None, "unknown GPU"),
    Case(
        "--gpu-memory alone prints no speed",
        ["estimate", *M, "--gpu-memory", "80", "--json"],
        "works",
        None,
        '"performance": null',
    ),
    Case(
        "--gpu-memory alone gives a quantized checkpoint its memory and fit",
        ["estimate", "deepseek-v3", "--gpu-memory", "80", "--num-gpus", "8", "--quant", "fp8", "--json"],
        "works",
        None,
        '"fits": false',
    ),
    Case("--price in JSON stays finite", ["estimate", *M, *H100, "--price", "1e5", "--json"], "works"),
    Case("a folder missing shards", ["estimate", "{d}/m", *H100], "refused", S["missing_shard"], "1 of the 3 shards"),
    Case("--isl without a load", ["estimate", *M, *H100, "--isl", "4k"], "refused", None, "--concurrency"),
    Case(
        "--batch beside a load",
        ["estimate", *M, *H100, "--batch", "8", "--concurrency", "64"],
        "refused",
        None,
        "drop --batch",
    ),
    Case(
        "recommend --batch beside a load",
        ["recommend", *M, "--batch", "64", "--rate", "2"],
        "refused",
        None,
        "drop --batch",
    ),
    Case(
        "compare an engine and its alias",
        ["compare", *M, *H100, "--engine", "llama.cpp,ollama"],
        "refused",
        None,
        "same deployment",
    ),
    Case(
        "ktransformers with experts on the GPU",
        [
            "offload",
            "gpt-oss-120b",
            "--gpu",
            "4090",
            "--ram",
            "64",
            "--cpu",
            "ddr5-6000x2",
            "--engine",
            "ktransformers",
            "--offload-experts",
            "30",
        ],
        "refused",
        None,
        "drop --offload",
    ),
    Case("--json with --format csv", ["estimate", *M, *H100, "--json", "--format", "csv"], "refused", None, "two"),
    Case(
        "serve a GGUF mix",
        ["serve", "qwen3-30b-a3b", "--concurrency", "8", "--quant", "Q4_K_M"],
        "refused",
        None,
        "GGUF",
    ),
    Case(
        "serve beyond the trained context",
        ["serve", "qwen3-30b-a3b", "--isl", "1M", "--concurrency", "8"],
        "refused",
        None,
        "trained context",
    ),
    Case("--mtp on a model without MTP layers", ["estimate", *M, *H100, "--mtp"], "refused", None, "multi-token"),
]


def _run(case: Case, folder: Path) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "COLUMNS": "80",
        "MOEPLAN_CACHE": str(folder / "cache"),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("MOEPLAN_DEBUG", None)
    if case.setup is not None:
        env.update(case.setup(folder))
    env.update(case.env)
    env = {k: v for k, v in env.items() if v != ""}
    args = [a.replace("{d}", str(folder)) for a in case.args]
    cmd = [sys.executable, "-c", "from moeplan.cli import main; main()", *args]
    if case.unprivileged and os.geteuid() == 0:
        cmd = [*DROP_DAC, *cmd]

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=folder,
                       stdin=subprocess.DEVNULL, preexec_fn=limit_files if case.full_disk else None)  # fmt: skip
    return p.returncode, p.stdout, p.stderr


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} in JSON output")


def _verdict(case: Case, code: int, out: str, err: str) -> str | None:
    """What is wrong with the run, or None."""
    if "Traceback" in err or "Traceback" in out:
        return f"traceback:\n{err[-1500:]}"
    if case.expect == "refused":
        lines = err.strip().splitlines()
        if code not in (1, 2):
            return f"exit {code}, not 1 or 2 (stdout {out[:200]!r})"
        if len(lines) != 1 or not lines[0].startswith("error: "):
            return f"stderr is not one 'error:' line: {err!r}"
        if case.contains and case.contains.lower() not in lines[0].lower():
            return f"the error does not say {case.contains!r}: {lines[0]}"
        return None
    if code != 0:
        return f"exit {code}: {err[-500:]}"
    if "--json" in case.args:
        try:
            json.loads(out, parse_constant=_reject_constant)
        except ValueError as e:
            return f"invalid JSON: {e}"
    if case.contains and case.contains not in out:
        return f"the output does not hold {case.contains!r}"
    return None


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 80
    assert len({c.name for c in CASES}) == len(CASES)


def test_fault_corpus(tmp_path: Path) -> None:
    """Every case, two at a time; the failures listed together."""
    can_drop = os.geteuid() != 0 or shutil.which("setpriv") is not None
    cases = [c for c in CASES if can_drop or not c.unprivileged]
    folders = []
    for i in range(len(cases)):
        folder = tmp_path / f"c{i:03d}"
        folder.mkdir()
        folders.append(folder)

    def one(pair: tuple[Case, Path]) -> str | None:
        case, folder = pair
        try:
            code, out, err = _run(case, folder)
        except subprocess.TimeoutExpired:
            return f"{case.name}: hung for {TIMEOUT_S} s"
        problem = _verdict(case, code, out, err)
        return f"{case.name}: {problem}" if problem else None

    try:
        with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
            problems = [p for p in pool.map(one, zip(cases, folders, strict=True)) if p]
    finally:
        for folder in folders:  # give the cleanup back what the cases locked away
            for path in [folder, *folder.rglob("*")] if folder.exists() else []:
                if not path.is_symlink():
                    with contextlib.suppress(OSError):
                        path.chmod(0o755)
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(sys.platform != "linux", reason="FIFOs and /dev/zero as on Linux")
def test_a_fifo_is_refused_in_process_without_blocking(tmp_path: Path) -> None:
    """The bounded reader's own check, without a subprocess: opening never waits for a writer."""
    from moeplan.errors import SpecError
    from moeplan.files import read_text

    fifo = _fifo(tmp_path / "config.json")
    with pytest.raises(SpecError, match="FIFO"):
        read_text(fifo, 1024, "a JSON config.json")
    with pytest.raises(SpecError, match="device"):
        read_text(Path("/dev/zero"), 1024, "a JSON config.json")
