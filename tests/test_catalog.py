"""The model catalogue tested as data, and the resolution of MODEL arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from moeplan.errors import SpecError, UnknownModelError
from moeplan.model.params import count_params
from moeplan.model.spec import ModelSpec
from moeplan.sources.catalog import (
    catalog_dir,
    load_catalog,
    load_spec_file,
    resolve_model,
    spec_to_yaml,
    suggestions,
)
from moeplan.sources.config_adapters import spec_from_config

CATALOG = load_catalog()
CONFIGS = Path(__file__).parent / "data" / "hf_configs"


def test_catalogue_size_and_unique_ids() -> None:
    ids = [s.id for s in CATALOG]
    assert len(ids) == len(set(ids))
    assert len(CATALOG) >= 30


@pytest.mark.parametrize("spec", CATALOG, ids=[s.id for s in CATALOG])
def test_entry_has_sources_and_valid_file(spec: ModelSpec) -> None:
    assert spec.sources, f"{spec.id} names no source for its shapes"
    assert all(s.startswith("http") for s in spec.sources)
    assert spec.published is not None, f"{spec.id} has no published figures"
    assert spec.published.source.startswith("http")
    path = catalog_dir() / f"{spec.id}.yaml"
    assert path.read_text().startswith("#"), "each file opens with a comment saying where its shapes come from"


@pytest.mark.parametrize("spec", CATALOG, ids=[s.id for s in CATALOG])
def test_counts_match_published_figures(spec: ModelSpec) -> None:
    pub = spec.published
    assert pub is not None
    counts = count_params(spec)
    total = counts.total + ((counts.vision or 0) if pub.total_includes_vision else 0)
    assert abs(total / 1e9 - pub.total_b) / pub.total_b * 100 <= pub.tolerance_pct, (total, pub.total_b)
    if pub.active_b is not None:
        active = counts.active - sum(counts.active_breakdown[k] for k in pub.excludes)
        assert abs(active / 1e9 - pub.active_b) / pub.active_b * 100 <= pub.tolerance_pct, (active, pub.active_b)
    else:
        assert counts.active == counts.total, "a model published without an active figure must be dense"


def _config_for(spec: ModelSpec) -> Path | None:
    if spec.hf_id is None:
        return None
    for folder in (CONFIGS, CONFIGS.with_name("hf_configs_2026")):
        path = folder / (spec.hf_id.replace("/", "__") + ".json")
        if path.exists():
            return path
    return None


WITH_CONFIG = [s for s in CATALOG if _config_for(s) is not None]


@pytest.mark.parametrize("spec", WITH_CONFIG, ids=[s.id for s in WITH_CONFIG])
def test_catalogue_shapes_equal_the_adapter_on_the_real_config(spec: ModelSpec) -> None:
    path = _config_for(spec)
    assert path is not None
    config = {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
    from_config = spec_from_config(config, where=path.name)
    assert spec.arch == from_config.arch
    assert spec.architecture == from_config.architecture
    assert spec.vision_params == from_config.vision_params


# Entries written by hand, each saying so in its opening comment: Grok-1 ships no config.json (a JAX
# checkpoint) and Arctic's model_type has no transformers class; OLMoE, Phi-3.5-MoE and Granite 1B-A400M
# have no copy of their config.json in this repository (their architectures are checked on other configs);
# Granite 4.0-H-Small's shapes come from its GGUF metadata (its architecture is checked on synthetic configs).
HAND_WRITTEN = {
    "grok-1",
    "snowflake-arctic",
    "olmoe-1b-7b",
    "phi-3.5-moe",
    "granite-3.0-1b-a400m",
    "granite-4.0-h-small",
}


def test_the_catalogue_is_checked_against_real_configs_except_the_hand_written() -> None:
    without = {s.id for s in CATALOG if _config_for(s) is None}
    assert without <= HAND_WRITTEN
    for spec in CATALOG:
        if spec.id in without:
            first = (catalog_dir() / f"{spec.id}.yaml").read_text().splitlines()[0]
            assert "by hand" in first or "no config" in first, spec.id


@pytest.mark.parametrize("spec", CATALOG, ids=[s.id for s in CATALOG])
def test_yaml_round_trip(spec: ModelSpec, tmp_path: Path) -> None:
    path = tmp_path / f"{spec.id}.yaml"
    path.write_text(spec_to_yaml(spec))
    assert load_spec_file(path) == spec


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mixtral-8x22b", "mixtral-8x22b"),
        ("Mixtral-8x22B", "mixtral-8x22b"),
        ("mistralai/Mixtral-8x22B-v0.1", "mixtral-8x22b"),
        ("deepseek-r1", "deepseek-v3"),
        ("gpt-oss-120b", "gpt-oss-120b"),
        ("gpt_oss_120b", "gpt-oss-120b"),
    ],
)
def test_ids_aliases_and_hub_ids_resolve(name: str, expected: str) -> None:
    assert resolve_model(name).id == expected


def test_an_alias_that_is_its_own_checkpoint_keeps_the_shapes_and_names_its_repository() -> None:
    """``deepseek-r1`` has DeepSeek-V3's shapes and counts but its own name and repository, so that headings and
    launch lines name the checkpoint asked for; every such alias is one of the spec's aliases, and an alias that is
    not a checkpoint of its own keeps the id's repository."""
    v3, r1 = resolve_model("deepseek-v3"), resolve_model("deepseek-r1")
    assert (r1.id, r1.name, r1.hf_id) == ("deepseek-v3", "DeepSeek-R1", "deepseek-ai/DeepSeek-R1")
    assert r1.arch == v3.arch and v3.hf_id == "deepseek-ai/DeepSeek-V3"
    glm = resolve_model("glm-4.6")  # a release with its own context and its own repository
    assert glm.hf_id == "zai-org/GLM-4.6" and glm.arch.max_context == 202752
    assert resolve_model("glm4.5").hf_id == "zai-org/GLM-4.5"
    for spec in load_catalog():
        for release in spec.alias_checkpoints:
            assert release.alias in spec.aliases, (spec.id, release.alias)
    # outputs name the release asked for: headlines, compare's columns, offload's GGUF file
    assert (r1.shown_id, v3.shown_id, glm.shown_id) == ("deepseek-r1", "deepseek-v3", "glm-4.6")
    assert resolve_model("deepseek-ai/deepseek-r1").shown_id == "deepseek-r1"
    assert resolve_model("glm4.5").shown_id == "glm-4.5"  # a spelling, not a release


def test_unknown_model_suggests_close_matches() -> None:
    with pytest.raises(UnknownModelError) as e:
        resolve_model("mixtral-8x23b")
    assert "mixtral-8x22b" in str(e.value)
    assert suggestions("qwen3")


def test_config_file_and_folder_resolve(tmp_path: Path) -> None:
    src = CONFIGS / "mistralai__Mixtral-8x7B-v0.1.json"
    folder = tmp_path / "Mixtral-8x7B"
    folder.mkdir()
    (folder / "config.json").write_text(src.read_text())
    a = resolve_model(str(folder))
    b = resolve_model(str(folder / "config.json"))
    assert a.arch == b.arch == resolve_model("mixtral-8x7b").arch
    assert a.id == "mixtral-8x7b"


def test_folder_without_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"config\.json"):
        resolve_model(str(tmp_path))


def test_missing_path_is_an_error() -> None:
    with pytest.raises(UnknownModelError, match="no such file"):
        resolve_model("./nope/config.json")


def _write_spec(tmp_path: Path, mutate: dict) -> Path:  # type: ignore[type-arg]
    data = yaml.safe_load((catalog_dir() / "mixtral-8x7b.yaml").read_text())
    for dotted, value in mutate.items():
        node = data
        *parents, last = dotted.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        ({"arch.hidden_sise": 4096}, "arch.hidden_sise: unknown field"),
        ({"arch.attention.num_heads": -1}, "arch.attention.num_heads"),
        ({"arch.moe.top_k": 9}, "top_k (9) exceeds num_experts (8)"),
        ({"arch.vocab_size": "many"}, "arch.vocab_size"),
    ],
)
def test_bad_spec_names_file_and_field(tmp_path: Path, mutate: dict, message: str) -> None:  # type: ignore[type-arg]
    path = _write_spec(tmp_path, mutate)
    with pytest.raises(SpecError) as e:
        resolve_model(str(path))
    assert str(path) in str(e.value) and message in str(e.value)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\narch: [unclosed\n")
    with pytest.raises(SpecError, match=r"bad.yaml: invalid YAML at line \d+"):
        resolve_model(str(path))


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="invalid YAML"):
        resolve_model(str(path))


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("mixtrall-8x22b", ["mixtral-8x22b"]),
        ("deepseekv3", ["deepseek-v3"]),
        ("gpt-oss", ["gpt-oss-120b", "gpt-oss-20b"]),
        ("kimi-k3", []),  # another model, not a misspelt kimi-k2
        ("qwen3.7", []),  # a release the catalogue does not have
        ("falcon-h1-34b", []),
    ],
)
def test_did_you_mean_offers_only_close_names(name: str, suggested: list[str]) -> None:
    assert sorted(suggestions(name)) == sorted(suggested)
