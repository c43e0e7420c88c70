"""Records: pydantic validation of the dataclasses, the cache's round trip, and start-up without pydantic."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from moeplan.cache import cache_root, cached_records
from moeplan.errors import SpecError
from moeplan.hardware.gpus import GpuSpec, load_gpus
from moeplan.hardware.hosts import CpuSpec, load_cpus
from moeplan.model.spec import ArchSpec, ModelSpec, MoeSpec
from moeplan.records import build, checked, schema_tag, to_dict, validate
from moeplan.sources.catalog import catalog_dir, load_catalog, load_spec_file

ARCH = {
    "vocab_size": 1000,
    "hidden_size": 64,
    "num_layers": 2,
    "attention": {"num_heads": 4, "num_kv_heads": 2, "head_dim": 16},
    "moe": {"num_experts": 4, "top_k": 2, "expert_intermediate_size": 32},
}


def _via_json(record: object) -> object:
    return json.loads(json.dumps(to_dict(record)))


@pytest.mark.parametrize("cls, records", [(ModelSpec, load_catalog), (GpuSpec, load_gpus), (CpuSpec, load_cpus)])
def test_every_catalogue_record_survives_the_cache_round_trip(cls: type, records: object) -> None:
    items = records()  # type: ignore[operator]
    assert items
    for record in items:
        again = build(cls, _via_json(record))  # type: ignore[arg-type]
        assert again == record
        assert validate(cls, _via_json(record), "round trip") == record


def test_limits_live_in_the_field_metadata() -> None:
    assert validate(ArchSpec, ARCH, "t").moe == MoeSpec(num_experts=4, top_k=2, expert_intermediate_size=32)
    cases = [
        ({**ARCH, "hidden_size": 0}, "t: hidden_size: must be greater than 0"),
        ({**ARCH, "num_layers": 10_000}, "t: num_layers: must be less than or equal to 4096"),
        ({**ARCH, "hiden_size": 64}, "t: hiden_size: unknown field (misspelled?)"),
        (
            {**{k: v for k, v in ARCH.items() if k != "num_layers"}, "num_layer": 2},
            "t: num_layer: unknown field (did you mean 'num_layers'?)",
        ),
        ({**ARCH, "attention": {**ARCH["attention"], "layer_pattern": "FQ"}}, "t: attention.layer_pattern: String"),
        ({**ARCH, "moe": {**ARCH["moe"], "top_k": 5}}, "t: moe: top_k (5) exceeds num_experts (4)"),
        ({**ARCH, "num_layers": "two"}, "t: num_layers: must be a valid integer"),
    ]
    for data, message in cases:
        with pytest.raises(SpecError) as e:
            validate(ArchSpec, data, "t")
        assert str(e.value).startswith(message), str(e.value)
    with pytest.raises(SpecError, match="expected a mapping of fields, not list"):
        validate(ArchSpec, [1, 2], "t")


def test_rules_between_fields_hold_for_records_built_in_code() -> None:
    with pytest.raises(ValueError, match="exceeds num_experts"):
        MoeSpec(num_experts=2, top_k=3, expert_intermediate_size=8)
    arch = validate(ArchSpec, ARCH, "t")
    with pytest.raises(SpecError, match="hidden_size: must be greater than 0"):
        checked(dataclasses.replace(arch, hidden_size=0), "t")


def test_to_dict_leaves_out_defaults_on_request() -> None:
    arch = validate(ArchSpec, ARCH, "t")
    slim = to_dict(arch, exclude_defaults=True)
    assert "tie_embeddings" not in slim and slim["attention"]["num_heads"] == 4
    assert validate(ArchSpec, slim, "t") == arch


def test_schema_tag_is_the_same_in_every_process() -> None:
    code = (
        "from moeplan.records import schema_tag; from moeplan.model.spec import ModelSpec; print(schema_tag(ModelSpec))"
    )
    tags = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout for _ in range(2)}
    assert tags == {schema_tag(ModelSpec) + "\n"}


def test_cached_records_validate_once_then_read_the_copy(tmp_path: Path) -> None:
    src = catalog_dir() / "mixtral-8x22b.yaml"
    calls: list[int] = []

    def validated() -> list[ModelSpec]:
        calls.append(1)
        return [load_spec_file(src)]

    first = cached_records(src, ModelSpec, validated)
    second = cached_records(src, ModelSpec, validated)
    assert first == second and len(calls) == 1
    copies = list((cache_root() / "parsed").glob("mixtral-8x22b-ModelSpec-*.json"))
    assert len(copies) == 1
    copies[0].write_text('[{"id": "mixtral-8x22b", "no_such_field": 1}]')  # written by another version
    assert cached_records(src, ModelSpec, validated) == first and len(calls) == 2
    copies[0].write_text("{not json")
    assert cached_records(src, ModelSpec, validated) == first and len(calls) == 3


def test_catalogue_commands_import_neither_pydantic_nor_yaml_once_cached() -> None:
    code = (
        "import atexit, sys\n"
        "heavy = ('pydantic.main', 'pydantic.fields', 'yaml', 'rich.console', 'torch', 'huggingface_hub')\n"
        "atexit.register(lambda: print([m for m in heavy if m in sys.modules], file=sys.stderr))\n"
        "sys.argv = ['moeplan', 'estimate', 'mixtral-8x22b', '--gpu', 'a100', '--json']\n"
        "from moeplan.cli import main\n"
        "main()\n"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0]
    assert json.loads(runs[0].stdout) == json.loads(runs[1].stdout)
    assert "pydantic.main" in runs[0].stderr  # the first run validates the catalogues
    assert runs[1].stderr.strip().splitlines()[-1] == "[]"


def _moeplan_dataclasses() -> list[type]:
    import importlib
    import pkgutil

    import moeplan

    out = []
    for info in pkgutil.walk_packages(moeplan.__path__, "moeplan."):
        module = importlib.import_module(info.name)
        out += [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__
        ]
    return out


def test_every_dataclass_compares_by_value() -> None:
    classes = _moeplan_dataclasses()
    assert len(classes) > 30
    for cls in classes:
        assert cls.__eq__ is not object.__eq__, cls
        if cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            assert cls.__hash__ is not object.__hash__ and cls.__hash__ is not None, cls


def test_value_methods_behave_as_the_generated_ones() -> None:
    @dataclasses.dataclass(frozen=True)
    class Generated:
        a: int
        b: tuple[str, ...] = ()

    from moeplan.records import Value

    @dataclasses.dataclass(frozen=True, repr=False, eq=False)
    class Inherited(Value):
        a: int
        b: tuple[str, ...] = ()

    for cls in (Generated, Inherited):
        x, y, z = cls(1, ("p",)), cls(1, ("p",)), cls(2)
        assert x == y and x != z and hash(x) == hash(y) and len({x, y, z}) == 2
        assert repr(z) == f"{cls.__qualname__}(a=2, b=())"
        assert x != (1, ("p",)) and x.__eq__((1, ("p",))) is NotImplemented
        with pytest.raises(dataclasses.FrozenInstanceError):
            x.a = 3  # type: ignore[misc]
    assert Inherited(1) != Generated(1)


def test_a_changed_file_replaces_its_cached_copy(tmp_path: Path) -> None:
    from moeplan.cache import cached_json

    src = tmp_path / "cat.yaml"
    for text in ("a: 1", "a: 22", "a: 333"):
        src.write_text(text)
        assert cached_json(src, "t", lambda: {"size": src.stat().st_size}) == {"size": len(text)}
    assert len(list((cache_root() / "parsed").glob("cat-t-*.json"))) == 1
