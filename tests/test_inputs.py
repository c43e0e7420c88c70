"""Real inputs: model folders with safetensors, GGUF files, and hf: ids through a fake Hub (no network)."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from moeplan.cli import app
from moeplan.errors import MoeplanError, SpecError
from moeplan.formats.schemes import named_scheme, quantized_tensors
from moeplan.model.params import count_params
from moeplan.model.spec import ArchSpec
from moeplan.records import validate
from moeplan.sources.catalog import resolve_model
from moeplan.sources.checkpoint import classify, native_format
from moeplan.sources.gguf_file import read_gguf
from moeplan.sources.gguf_spec import spec_from_gguf
from moeplan.sources.safetensors_headers import read_file

CONFIGS = Path(__file__).parent / "data" / "hf_configs"
runner = CliRunner()


def write_safetensors(path: Path, tensors: list[tuple[str, str, tuple[int, ...]]]) -> int:
    """A safetensors file with these tensors (zero data, sparse on disk); returns its data bytes."""
    bits = {"BF16": 16, "F32": 32, "F8_E4M3": 8, "U8": 8, "I32": 32}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        size = n * bits[dtype] // 8
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return offset


def model_folder(tmp: Path, config: dict[str, Any], shards: int = 2) -> Path:
    """config.json + sharded safetensors with the reference implementation's real parameter names."""
    pytest.importorskip("transformers")
    from reference_impl import build_meta_model

    folder = tmp / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    model = build_meta_model(config)
    seen: set[int] = set()
    tensors = []
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        name = name.replace("model.language_model.", "model.")
        tensors.append((name, "BF16", tuple(p.shape)))
    parts = [tensors[i::shards] for i in range(shards)]
    weight_map = {}
    for i, part in enumerate(parts):
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(folder / fname, part)
        weight_map.update({name: fname for name, _, _ in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return folder


# -- safetensors folders ------------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", ["mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v3", "gpt_oss", "glm4_moe"])
def test_folder_counts_equal_the_spec_by_kind(tmp_path: Path, model_type: str) -> None:
    from reference_impl import small_config

    folder = model_folder(tmp_path, small_config(model_type))
    spec = resolve_model(str(folder))
    assert spec.checkpoint is not None and spec.checkpoint.files == 2
    counts = count_params(spec)
    got = {k: v for k, v in spec.checkpoint.params_by_kind.items() if v}
    assert got == {k: v for k, v in counts.breakdown.items() if v}
    assert spec.checkpoint.total_bytes == 2 * counts.total


def test_folder_estimate_uses_the_files_bytes(tmp_path: Path) -> None:
    from reference_impl import small_config

    folder = model_folder(tmp_path, small_config("qwen3_moe"))
    r = runner.invoke(app, ["estimate", str(folder), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    spec = resolve_model(str(folder))
    assert spec.checkpoint is not None
    assert data["memory"]["weights_bytes"] == spec.checkpoint.total_bytes
    assert any(a.startswith("checkpoint:") for a in data["assumptions"])


def test_classic_per_expert_names() -> None:
    names = {
        "model.layers.0.block_sparse_moe.experts.7.w1.weight": "routed_experts",
        "model.layers.0.block_sparse_moe.gate.weight": "router",
        "model.layers.3.mlp.gate.e_score_correction_bias": "router",
        "model.layers.3.mlp.shared_experts.down_proj.weight": "shared_experts",
        "model.layers.0.mlp.gate_proj.weight": "dense_mlp",
        "model.layers.0.self_attn.kv_a_proj_with_mqa.weight": "attention",
        "model.layers.0.self_attn.kv_a_layernorm.weight": "norm",
        "model.layers.61.eh_proj.weight": "mtp",
        "model.layers.0.mlp.experts.gate_up_proj_blocks": "routed_experts",
        "vision_model.encoder.layers.0.mlp.fc1.weight": "vision",
        "transformer.blocks.0.ffn.router.layer.weight": "router",
        "blk.3.ffn_down_exps.weight": "routed_experts",
        "blk.3.ffn_gate_inp_shexp.weight": "shared_experts",
        "output_norm.weight": "norm",
        "output.weight": "lm_head",
        "token_embd.weight": "embedding",
    }
    for name, kind in names.items():
        assert classify(name, 61) == kind, name


@pytest.mark.parametrize(
    ("qc", "expected"),
    [
        ({"quant_method": "fp8", "weight_block_size": [128, 128]}, "fp8-block128"),
        ({"quant_method": "mxfp4"}, "mxfp4-experts"),
        ({"quant_method": "gptq", "bits": 4, "group_size": 128}, "gptq-int4"),
        ({"quant_method": "gptq", "bits": 4, "group_size": 32}, "gptq-int4-g32"),
        ({"quant_method": "gptq", "bits": 4, "group_size": -1}, "gptq-int4-pc"),
        ({"quant_method": "awq", "bits": 4}, "awq-int4"),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}, "nf4"),
        ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 8, "type": "float",
          "strategy": "channel"}}}}, "fp8-channel"),
        ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 4, "type": "float",
          "group_size": 16}}}}, "nvfp4"),
    ],
)  # fmt: skip
def test_native_formats(qc: dict[str, Any], expected: str) -> None:
    assert native_format({"quantization_config": qc}) == expected


def test_a_quantization_config_moeplan_does_not_read_needs_quant(tmp_path: Path) -> None:
    """AMD Quark's MXFP4 (and HQQ, EETQ, ...) is neither bf16 nor a format moeplan reads: sizing it as bf16 gave 4x
    the weights, so it is refused until --quant names the format."""
    from moeplan.sources.checkpoint import unread_quant_method

    quark = {"quant_method": "quark", "global_quant_config": {"weight": {"dtype": "fp4", "group_size": 32}}}
    assert unread_quant_method({"quantization_config": quark}) == "quark"
    assert unread_quant_method({"quantization_config": {"quant_method": "fp8"}}) is None
    assert unread_quant_method({}) is None
    config = {"model_type": "mixtral", "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000, "num_local_experts": 8,
              "num_experts_per_tok": 2, "quantization_config": quark}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    res = CliRunner().invoke(app, ["estimate", str(tmp_path / "config.json"), "--gpu", "h100"])
    assert res.exit_code == 1 and "quark" in res.output and "--quant" in res.output
    res = CliRunner().invoke(app, ["estimate", str(tmp_path / "config.json"), "--gpu", "h100", "--quant", "mxfp4"])
    assert res.exit_code == 0, res.output


def test_modelopt_hf_quant_config() -> None:
    assert native_format({}, {"quantization": {"quant_algo": "NVFP4"}}) == "nvfp4"


def test_a_modelopt_mixed_precision_checkpoint_is_read_class_by_class() -> None:
    """NVIDIA's Qwen3.6-35B-A3B-NVFP4 (quant_algo MIXED_PRECISION): weight-only NVFP4 experts, shared expert and
    head, FP8 attention and linear-attention projections; it had been refused as a format moeplan does not read."""
    path = CONFIGS.parent / "hf_configs_2026" / "nvidia__Qwen3.6-35B-A3B-NVFP4.json"
    config = json.loads(path.read_text())
    assert native_format(config) == "experts=nvfp4,shared_experts=nvfp4,attention=fp8,lm_head=nvfp4"
    unknown = {"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION",
               "quantized_layers": {"model.layers.0.mlp.experts": {"quant_algo": "W4A8_AWQ"}}}  # fmt: skip
    assert native_format({"quantization_config": unknown}) is None  # an algorithm it does not know: refused
    res = CliRunner().invoke(app, ["estimate", str(path), "--gpu", "rtx-5090"])
    assert res.exit_code == 0 and "routed_experts=nvfp4" in res.output, res.output


def test_packed_and_scaled_tensors_count_logical_parameters() -> None:
    from moeplan.sources.checkpoint import summarize
    from moeplan.sources.safetensors_headers import TensorInfo

    tensors = [
        TensorInfo("model.layers.0.mlp.experts.gate_up_proj_blocks", "U8", (4, 64, 8, 16), 4 * 64 * 8 * 16),
        TensorInfo("model.layers.0.mlp.experts.gate_up_proj_scales", "U8", (4, 64, 8), 4 * 64 * 8),
        TensorInfo("model.layers.0.self_attn.q_proj.qweight", "I32", (32, 64), 32 * 64 * 4),
        TensorInfo("model.layers.0.self_attn.q_proj.scales", "F16", (2, 64), 256),
        TensorInfo("model.layers.0.mlp.down_proj.weight_scale_inv", "F32", (1, 1), 4),
    ]
    info = summarize(tensors, {"quantization_config": {"bits": 4}}, 1, "t")
    assert info.params_by_kind["routed_experts"] == 4 * 64 * 8 * 32
    assert info.params_by_kind["attention"] == 32 * 64 * 8
    assert info.bytes_by_kind["routed_experts"] == 4 * 64 * 8 * 17


# -- hostile files ------------------------------------------------------------------------------------


def _st(tmp: Path, header: bytes, n: int | None = None, tail: int = 0) -> Path:
    p = tmp / "x.safetensors"
    p.write_bytes(struct.pack("<Q", len(header) if n is None else n) + header + b"\0" * tail)
    return p


@pytest.mark.parametrize(
    ("header", "n", "tail", "message"),
    [
        (b"{}", 2**40, 0, "not a safetensors file .its first 8 bytes declare a header of 1,099,511,627,776 bytes"),
        (b'{"a": 1}', 1000, 0, "longer than the file"),
        (b"{not json", None, 0, "corrupt"),
        (b"[" * 100000 + b"]" * 100000, None, 0, "nested too deeply"),
        (b'{"w": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 2]}}', None, 2, "unknown dtype"),
        (b'{"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 2]}}', None, 2, "need 8"),
        (b'{"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}', None, 2, "beyond the end"),
        (b'{"w": {"dtype": "BF16", "shape": [-4], "data_offsets": [0, 8]}}', None, 8, "bad shape"),
    ],
)
def test_bad_safetensors(tmp_path: Path, header: bytes, n: int | None, tail: int, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        read_file(_st(tmp_path, header, n, tail))


def _tiny(**fields: Any) -> ArchSpec:
    """A 4-layer, 256-wide test model of 512 tokens' vocabulary; ``fields`` add the rest (attention, moe, ...)."""
    return validate(
        ArchSpec, {"vocab_size": 512, "hidden_size": 256, "num_layers": 4, "max_context": 4096, **fields}, "test"
    )


def _tiny_moe() -> ArchSpec:
    return _tiny(
        attention={"num_heads": 4, "num_kv_heads": 2, "head_dim": 64, "qk_norm": "per_head"},
        moe={"num_experts": 8, "top_k": 2, "expert_intermediate_size": 256},
    )


@pytest.fixture
def gguf_file(tmp_path: Path) -> Path:
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf

    return write_gguf(tmp_path / "tiny-qwen3moe-Q4_K_M.gguf", "qwen3moe", _tiny_moe(), "Q4_K_M")[0]


def _corruptions(good: bytes) -> Iterator[tuple[str, bytes, str]]:
    yield "wrong magic", b"GGML" + good[4:], "wrong magic"
    yield "truncated header", good[:200], "ends early|truncated"
    yield "truncated data", good[: len(good) - 1000], "beyond the end"
    yield "version", good[:4] + struct.pack("<I", 9) + good[8:], "version 9"
    yield "absurd counts", good[:8] + struct.pack("<QQ", 2**40, 2**40) + good[24:], "corrupt"
    # the first metadata key's length made absurd
    yield "huge string", good[:24] + struct.pack("<Q", 2**62) + good[32:], "string of"


def test_hostile_gguf_fails_fast_with_one_message(tmp_path: Path, gguf_file: Path) -> None:
    good = gguf_file.read_bytes()
    for label, data, message in _corruptions(good):
        bad = tmp_path / f"bad-{label.replace(' ', '-')}.gguf"
        bad.write_bytes(data)
        start = time.perf_counter()
        with pytest.raises(SpecError, match=message):
            read_gguf(bad)
        assert time.perf_counter() - start < 2, label
        r = runner.invoke(app, ["estimate", str(bad)])
        assert r.exit_code == 1 and "Traceback" not in r.output and len(r.stderr.strip().splitlines()) == 1


# -- GGUF ---------------------------------------------------------------------------------------------


def test_gguf_round_trip_qwen3_moe(gguf_file: Path) -> None:
    spec = spec_from_gguf(gguf_file)
    arch = _tiny_moe()
    assert spec.arch == arch
    assert spec.native_quant == "Q4_K_M"
    assert spec.checkpoint is not None
    assert spec.checkpoint.total_bytes == sum(b for _, _, b in quantized_tensors(arch, named_scheme("Q4_K_M")))
    assert spec.checkpoint.language_params == count_params(spec).total
    assert spec.checkpoint.dtypes.get("Q6_K") and spec.checkpoint.dtypes.get("F32")


@pytest.mark.parametrize("parts", [1, 3])
def test_gguf_mla_shared_experts_and_split_files(tmp_path: Path, parts: int) -> None:
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf

    arch = _tiny(
        attention={"kind": "mla", "num_heads": 4, "num_kv_heads": 4, "head_dim": 96,
                   "mla": {"q_lora_rank": 256, "kv_lora_rank": 256, "qk_nope_head_dim": 64, "qk_rope_head_dim": 32,
                           "v_head_dim": 64}},
        mlp={"intermediate_size": 512},
        moe={"num_experts": 8, "top_k": 2, "expert_intermediate_size": 256, "num_shared_experts": 1,
             "shared_intermediate_size": 256, "dense_layers": [0], "router_correction_bias": True},
    )  # fmt: skip
    paths = write_gguf(tmp_path / "tiny-ds.gguf", "deepseek2", arch, "Q4_K_M", parts=parts)
    spec = resolve_model(str(paths[-1]))  # any part finds the others
    assert spec.arch == arch
    assert spec.checkpoint is not None and spec.checkpoint.files == parts
    # The file also holds exp_probs_b, the routers' correction bias (a buffer, not a parameter): 3 x 8 x F32.
    predicted = sum(b for _, _, b in quantized_tensors(arch, named_scheme("Q4_K_M")))
    assert spec.checkpoint.total_bytes == predicted + 3 * 8 * 4


def test_gguf_gpt_oss_mxfp4_sinks_biases_windows(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf

    arch = _tiny(
        attention={"num_heads": 4, "num_kv_heads": 2, "head_dim": 64, "qkv_bias": True, "o_bias": True,
                   "sinks": True, "window_tokens": 128, "layer_pattern": "SF"},
        moe={"num_experts": 8, "top_k": 2, "expert_intermediate_size": 256, "expert_bias": True, "router_bias": True},
    )  # fmt: skip
    path = write_gguf(tmp_path / "tiny-oss.gguf", "gpt-oss", arch, "MXFP4_MOE")[0]
    spec = spec_from_gguf(path)
    assert spec.arch == arch and spec.native_quant == "MXFP4_MOE"
    r = runner.invoke(app, ["estimate", str(path), "--gpu", "4090", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["request"]["engine"] == "llama.cpp"
    assert data["memory"]["weights_bytes"] == spec.checkpoint.total_bytes  # type: ignore[union-attr]
    assert data["memory"]["kv_bytes_per_token"] == 2 * 2 * 2 * 64 * 2  # 2 full layers under llama.cpp


def test_missing_split_part_is_named(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf

    paths = write_gguf(tmp_path / "m.gguf", "qwen3moe", _tiny_moe(), "Q8_0", parts=2)
    paths[1].unlink()
    with pytest.raises(SpecError, match=r"missing m-00002-of-00002\.gguf"):
        spec_from_gguf(paths[0])


# -- the Hub, through a fake transport --------------------------------------------------------------------


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import huggingface_hub.constants as c
    from fake_hub import FakeHub, serving

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    config = json.loads((CONFIGS / "mistralai__Mixtral-8x7B-v0.1.json").read_text())
    small = tmp_path / "st"
    small.mkdir()
    tensors = [(n, "BF16", (2, 2)) for n in ("model.embed_tokens.weight", "lm_head.weight")]
    write_safetensors(small / "model.safetensors", tensors)
    st = (small / "model.safetensors").read_bytes()
    repos = {
        "mistralai/Mixtral-8x7B-v0.1": {"config.json": json.dumps(config).encode(), "model.safetensors": st},
        "someone/gguf-only": {"README.md": b"GGUF files"},
        "meta-llama/Llama-3.1-8B": {"config.json": b"{}"},
    }
    fake = FakeHub(repos)
    fake.gated.add("meta-llama/Llama-3.1-8B")
    with serving(fake):
        yield fake


def test_hub_model_reads_config_and_headers(hub: Any) -> None:
    spec = resolve_model("hf:mistralai/Mixtral-8x7B-v0.1")
    assert spec.hf_id == "mistralai/Mixtral-8x7B-v0.1" and spec.arch == resolve_model("mixtral-8x7b").arch
    assert spec.checkpoint is not None and spec.checkpoint.tensor_count == 2
    assert not any("model.safetensors" in r and "GET" in r and "bytes" in r for r in hub.requests)
    r = runner.invoke(app, ["estimate", "hf:mistralai/Mixtral-8x7B-v0.1", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["params"]["total"] == count_params(resolve_model("mixtral-8x7b")).total


def test_hub_offline_with_a_warm_cache(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as c

    resolve_model("hf:mistralai/Mixtral-8x7B-v0.1")
    n = len(hub.requests)
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    spec = resolve_model("hf:mistralai/Mixtral-8x7B-v0.1")
    assert spec.checkpoint is not None and len(hub.requests) == n  # nothing went out


def test_hub_offline_cold_cache_is_one_clear_error(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(MoeplanError, match="cache"):
        resolve_model("hf:mistralai/Mixtral-8x7B-v0.1")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("hf:meta-llama/Llama-3.1-8B", "gated"),
        ("hf:nobody/nothing", "does not exist or is private"),
        ("hf:mistralai/Mixtral-8x7B-v0.1@v9", "no revision 'v9'"),
        ("hf:someone/gguf-only", "no config.json"),
        ("hf:not a repo", "not a Hub model id"),
    ],
)
def test_hub_errors_are_one_line_with_a_remedy(hub: Any, model: str, message: str) -> None:
    r = runner.invoke(app, ["estimate", model])
    assert r.exit_code == 1
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_hub_rate_limit_and_no_network(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub.utils import _http

    monkeypatch.setattr(_http.time, "sleep", lambda _s: None)  # huggingface_hub backs off before giving up
    hub.rate_limited = True
    with pytest.raises(MoeplanError, match="rate-limiting"):
        resolve_model("hf:mistralai/Mixtral-8x7B-v0.1")
    hub.rate_limited = False

    def refuse(request: Any) -> Any:
        from fake_hub import http_client

        raise http_client().ConnectError("no route to host", request=request)

    monkeypatch.setattr(hub, "handle", refuse)
    from fake_hub import serving

    with serving(hub), pytest.raises(MoeplanError, match=r"cannot reach|offline"):
        resolve_model("hf:mistralai/Mixtral-8x7B-v0.1")


def test_hub_sends_the_token(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = hub.handle

    def spy(request: Any) -> Any:
        seen.append(request.headers.get("authorization", ""))
        return real(request)

    monkeypatch.setattr(hub, "handle", spy)
    monkeypatch.setenv("HF_TOKEN", "hf_testtoken")
    from fake_hub import serving

    with serving(hub):
        resolve_model("hf:mistralai/Mixtral-8x7B-v0.1")
    assert any(s == "Bearer hf_testtoken" for s in seen)


def test_absurd_layer_counts_are_refused_quickly(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf

    path = write_gguf(tmp_path / "huge.gguf", "qwen3moe", _tiny_moe(), "Q8_0", extra_meta={"qwen3moe.block_count": 0})[
        0
    ]
    with pytest.raises(SpecError, match="plausible layer count"):
        spec_from_gguf(path)
    config = json.loads((CONFIGS / "mistralai__Mixtral-8x7B-v0.1.json").read_text())
    config["num_hidden_layers"] = 10**9
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(SpecError, match="implausibly large"):
        resolve_model(str(tmp_path / "config.json"))


def test_hub_unreachable_fails_in_seconds(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: Any) -> Any:
        from fake_hub import http_client

        raise http_client().ConnectError("no route to host", request=request)

    monkeypatch.setattr(hub, "handle", refuse)
    from fake_hub import serving

    start = time.perf_counter()
    with serving(hub), pytest.raises(MoeplanError, match="cannot reach"):
        resolve_model("hf:mistralai/Mixtral-8x7B-v0.1")
    assert time.perf_counter() - start < 3  # no half-minute of retries


def test_a_json_config_not_named_config_json_is_named_by_itself(tmp_path: Path) -> None:
    src = Path(__file__).parent / "data" / "hf_configs"
    first = sorted(src.glob("*.json"))[0]
    (tmp_path / "my-model.json").write_text(first.read_text())
    spec = resolve_model(str(tmp_path / "my-model.json"))
    assert spec.id == "my-model" and spec.name == "my-model"
    folder = tmp_path / "Some-Model"
    folder.mkdir()
    (folder / "config.json").write_text(first.read_text())
    assert resolve_model(str(folder / "config.json")).id == "some-model"


def test_a_folder_of_several_gguf_models_names_them_and_a_split_file_is_one(tmp_path: Path) -> None:
    """A publisher's folder holds many quants: planning the alphabetically first in silence picked one the user
    may not mean, so the folder is refused with the models named; the parts of one split file are one model."""
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf

    many, split = tmp_path / "many", tmp_path / "split"
    many.mkdir()
    split.mkdir()
    write_gguf(many / "tiny-Q4_K_M.gguf", "qwen3moe", _tiny_moe(), "Q4_K_M")
    write_gguf(many / "tiny-Q8_0.gguf", "qwen3moe", _tiny_moe(), "Q8_0")
    write_gguf(split / "tiny-Q8_0.gguf", "qwen3moe", _tiny_moe(), "Q8_0", parts=2)
    res = CliRunner().invoke(app, ["estimate", str(many)])
    assert res.exit_code == 1 and "2 GGUF models" in res.output and "tiny-Q8_0" in res.output
    assert CliRunner().invoke(app, ["estimate", str(split)]).exit_code == 0


def test_a_folder_named_in_any_script_gets_an_ascii_id(tmp_path: Path) -> None:
    """A folder named 模型 or naïve holds a valid config: its id keeps the ASCII it can (else 'model')."""
    from moeplan.sources.config_fields import slug

    assert slug("模型") == "model" and slug("naïve-MoE") == "na-ve-moe" and slug("模型", "gguf") == "gguf"


def test_a_float_gguf_file_keeps_its_type_bytes_and_engine(tmp_path: Path) -> None:
    """An F16 .gguf is planned as what it is: fp16 weights of the file's own bytes, on llama.cpp (it had been
    labelled bf16, resized as bf16 would store it and planned on vLLM)."""
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf

    path = write_gguf(tmp_path / "tiny-F16.gguf", "qwen3moe", _tiny_moe(), "F16")[0]
    res = CliRunner().invoke(app, ["estimate", str(path), "--gpu", "4090", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["memory"]["engine"] == "llama.cpp" and out["memory"]["scheme"] == "fp16"
    assert any("the checkpoint's own bytes" in a for a in out["assumptions"])


def test_config_files_with_a_bom_or_a_wrong_model_type_get_a_plain_answer(tmp_path: Path) -> None:
    """An editor's byte-order mark is read past; a non-string model_type is named as such, not as missing; a
    safetensors index given as the model points at its folder."""
    config = {"model_type": "mixtral", "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000, "num_local_experts": 8,
              "num_experts_per_tok": 2}  # fmt: skip
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(config).encode())
    assert CliRunner().invoke(app, ["estimate", str(bom)]).exit_code == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**config, "model_type": 5}))
    res = CliRunner().invoke(app, ["estimate", str(bad)])
    assert res.exit_code == 1 and "must be a string" in res.output
    index = tmp_path / "model.safetensors.index.json"
    index.write_text('{"metadata": {}, "weight_map": {}}')
    res = CliRunner().invoke(app, ["estimate", str(index)])
    assert res.exit_code == 1 and "give its folder" in res.output


def test_gguf_types_and_mixes_in_a_class_override_are_told_apart() -> None:
    """experts=Q4_K is a GGUF type: llama.cpp's refusal names the class still in fp8 (DeepSeek's own blocks) and how
    to type every class; experts=Q4_K_M is a mix, a whole scheme, and says so instead of 'unknown format'."""
    from moeplan.deploy.deployment import EstimateRequest
    from moeplan.deploy.resolve import resolve
    from moeplan.errors import InputError

    with pytest.raises(InputError, match="fp8-block128 weights are not one") as typed:
        resolve(EstimateRequest(model="deepseek-v3", gpu="b200", quant="experts=Q4_K", engine="llama.cpp"))
    assert "--quant Q8_0,experts=Q4_K" in (typed.value.remedy or "")
    with pytest.raises(InputError, match="is a GGUF mix"):
        resolve(EstimateRequest(model="deepseek-v3", gpu="b200", quant="experts=Q4_K_M"))
