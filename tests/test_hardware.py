"""The accelerator catalogue as data, GPU name resolution, user overrides and custom GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from moeplan.errors import InputError, SpecError, UnknownGpuError
from moeplan.hardware.gpus import GpuSpec, custom_gpu, load_gpus, resolve_gpu

GPUS = load_gpus()


def test_catalogue_is_valid_and_unique() -> None:
    ids = [g.id for g in GPUS]
    assert len(ids) == len(set(ids))
    assert len(GPUS) >= 30


@pytest.mark.parametrize("gpu", GPUS, ids=[g.id for g in GPUS])
def test_every_entry_is_sourced_and_sane(gpu: GpuSpec) -> None:
    assert gpu.sources
    assert 0 < gpu.usable_memory_gib <= gpu.memory_gib
    assert gpu.bandwidth_gb_s > 0
    bf16 = gpu.dense_tflops("bf16")
    if bf16 is not None and gpu.dense_tflops("fp8") is not None:
        assert bf16 <= gpu.dense_tflops("fp8") <= 2.05 * bf16  # fp8 never slower, at most twice bf16 (dense)
    for price in (gpu.cloud_usd_per_hour, gpu.purchase_usd):
        if price is not None:
            assert price.as_of and price.source


@pytest.mark.parametrize(
    ("name", "gid"),
    [("a100", "a100-80gb-sxm"), ("A100", "a100-80gb-sxm"), ("h100", "h100-sxm"), ("4090", "rtx-4090"),
     ("RTX 4090", "rtx-4090"), ("nvidia-h200", "h200-sxm"), ("mi300x", "mi300x"), ("m3-ultra", "apple-m3-ultra")],
)  # fmt: skip
def test_short_names_resolve(name: str, gid: str) -> None:
    assert resolve_gpu(name).id == gid


def test_usable_memory_is_what_cuda_reports() -> None:
    assert resolve_gpu("h100").usable_memory_gib == 79.22  # vLLM log
    assert resolve_gpu("a100").usable_memory_gib == 79.15  # torch.cuda.mem_get_info
    assert resolve_gpu("3090").usable_memory_gib == 23.58


def test_unknown_gpu_suggests_close_names() -> None:
    with pytest.raises(UnknownGpuError) as e:
        resolve_gpu("h1000")
    assert "h100" in str(e.value)


def test_user_file_overrides_and_adds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "gpus.yaml"
    f.write_text(
        "gpus:\n"
        "- id: h100-sxm\n  cloud_usd_per_hour: {low: 1.0, high: 1.0, as_of: '2026-11', source: my contract}\n"
        "- id: my-card\n  name: My Card\n  vendor: acme\n  kind: consumer\n  memory_gib: 16\n"
        "  usable_memory_gib: 15.5\n  usable_memory_note: measured\n  bandwidth_gb_s: 500\n"
        "  sources: [my bench]\n"
    )
    monkeypatch.setenv("MOEPLAN_GPU_FILE", str(f))
    load_gpus.cache_clear()
    try:
        h100 = resolve_gpu("h100")
        assert h100.cloud_usd_per_hour is not None and h100.cloud_usd_per_hour.expected == 1.0
        assert h100.usable_memory_gib == 79.22  # untouched fields keep the catalogue's
        assert resolve_gpu("my-card").usable_memory_gib == 15.5
    finally:
        load_gpus.cache_clear()


def test_bad_user_file_names_the_file_and_field(tmp_path: Path) -> None:
    f = tmp_path / "gpus.yaml"
    f.write_text("gpus:\n- id: x1\n  name: X\n  vendor: v\n  kind: consumer\n  memory_gib: -4\n")
    with pytest.raises(SpecError, match=r"gpus.yaml: gpu 'x1': memory_gib"):
        load_gpus(str(f))
    with pytest.raises(InputError):
        load_gpus(str(tmp_path / "missing.yaml"))


def test_custom_gpu_from_figures() -> None:
    g = custom_gpu(None, 20.0, 400.0, 50.0)
    assert (g.usable_memory_gib, g.bandwidth_gb_s, g.dense_tflops("bf16")) == (20.0, 400.0, 50.0)
    h = custom_gpu(resolve_gpu("h100"), 70.0, None, None)
    assert h.usable_memory_gib == 70.0 and h.bandwidth_gb_s == resolve_gpu("h100").bandwidth_gb_s
    with pytest.raises(InputError):
        custom_gpu(None, None, 400.0, None)
    with pytest.raises(InputError):
        custom_gpu(None, -1.0, None, None)


def test_builtin_catalogue_is_cached_as_json_and_refreshed_when_the_file_changes(tmp_path: Path) -> None:
    from moeplan.cache import cache_root, cached_yaml

    src = tmp_path / "gpus.yaml"
    src.write_text("gpus: [{id: a}]\n")
    assert cached_yaml(src) == {"gpus": [{"id": "a"}]}
    assert list((cache_root() / "parsed").glob("gpus-*.json"))
    src.write_text("gpus: [{id: bb}]\n")
    assert cached_yaml(src) == {"gpus": [{"id": "bb"}]}


def test_common_macs_are_in_the_catalogue() -> None:
    from moeplan.hardware.gpus import resolve_gpu

    for alias, bandwidth, usable in (("m4-pro", 273.0, 48.0), ("m4", 120.0, 21.33), ("m3-pro", 150.0, 24.0)):
        gpu = resolve_gpu(alias)
        assert gpu.kind == "apple" and gpu.bandwidth_gb_s == bandwidth and gpu.usable_memory_gib == usable
        assert f"{gpu.memory_gib:g} GB" in gpu.name  # the memory size the entry assumes is in its name


def test_a_gpu_file_overrides_nested_fields_and_adds_cards(tmp_path: Path) -> None:
    """The example of docs/interface.md: a price override keeps the catalogue's other price fields, and a new card
    given with the required fields is usable."""
    from moeplan.hardware.gpus import load_gpus, resolve_gpu

    text = (Path(__file__).resolve().parent.parent / "docs" / "interface.md").read_text()
    example = text.split("## Your own GPUs and prices", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "gpus.yaml"
    path.write_text(example)
    load_gpus.cache_clear()
    try:
        h100 = resolve_gpu("h100", str(path))
        assert h100.cloud_usd_per_hour is not None and h100.cloud_usd_per_hour.expected == 1.5
        assert h100.cloud_usd_per_hour.source == "--gpu-file" and h100.usable_memory_gib == 79.22
        assert resolve_gpu("my-card", str(path)).bandwidth_gb_s == 960
    finally:
        load_gpus.cache_clear()


def test_a_gpu_file_refuses_repeated_ids_and_prices_new_gpus_by_shorthand(tmp_path: Path) -> None:
    """Two entries for one id are refused (the last had silently won); a new GPU takes the same price shorthand
    as an override of a catalogue one ({typical: 0.2}, {approx: 25000})."""
    from moeplan.errors import SpecError
    from moeplan.hardware.gpus import load_gpus

    dup = tmp_path / "dup.yaml"
    dup.write_text("gpus:\n  - {id: h100-sxm, cloud_usd_per_hour: {typical: 1.5}}\n"
                   "  - {id: h100-sxm, cloud_usd_per_hour: {typical: 9}}\n")  # fmt: skip
    with pytest.raises(SpecError, match="appears twice"):
        load_gpus(str(dup))
    new = tmp_path / "new.yaml"
    new.write_text(
        "gpus:\n  - {id: my-card, name: My Card, vendor: nvidia, kind: workstation, memory_gib: 96, "
        "usable_memory_gib: 94, usable_memory_note: mine, sources: [mine], bandwidth_gb_s: 1800, "
        "tflops: {bf16: 500}, cloud_usd_per_hour: {typical: 0.2}, purchase_usd: {approx: 25000}}\n"
    )
    card = next(g for g in load_gpus(str(new)) if g.id == "my-card")
    assert card.cloud_usd_per_hour is not None and card.cloud_usd_per_hour.typical == 0.2
    assert card.purchase_usd is not None and card.purchase_usd.approx == 25000
    free = tmp_path / "free.yaml"  # a price of 0 would rank a card first by cost at no cost: refused as --price 0 is
    free.write_text("gpus:\n  - {id: h100-sxm, cloud_usd_per_hour: {typical: 0}}\n")
    with pytest.raises(SpecError, match=r"cloud_usd_per_hour\.typical: must be greater than 0"):
        load_gpus(str(free))
