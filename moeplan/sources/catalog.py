"""The model catalogue (``model_specs/*.yaml``) and the resolution of a MODEL argument to a ModelSpec.

MODEL is a catalogue id or alias, a Hub id of a catalogue model (``mistralai/Mixtral-8x22B-v0.1``), a path
to a ``config.json`` or to a YAML spec, or a folder holding a ``config.json``.  The catalogue ships inside
the wheel (``moeplan/model_specs``); in a source checkout it is read from the top-level ``model_specs/``.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from moeplan.errors import InputError, SpecError, UnknownModelError
from moeplan.files import read_yaml
from moeplan.model.spec import ModelSpec
from moeplan.records import Value, to_dict, validate


def catalog_dir() -> Path:
    """The folder of catalogue specs: inside the installed package, else the source checkout's."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "model_specs"
    return packaged if packaged.is_dir() else here.parent / "model_specs"


def load_spec_file(path: Path, origin: str | None = None) -> ModelSpec:
    """A ModelSpec from one YAML file; a bad key or value names the file and the field."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a model spec must be a YAML mapping of fields")
    if origin is not None:
        data = {**data, "origin": origin}
    return validate(ModelSpec, data, str(path))


@functools.lru_cache(maxsize=256)
def catalogue_spec(path: Path) -> ModelSpec:
    """A packaged catalogue spec: validated on first use, then rebuilt from the cache's copy (no pydantic);
    one object per file in a process, so every cached computation on the spec finds it by identity."""
    from moeplan.cache import cached_records

    return cached_records(path, ModelSpec, lambda: [load_spec_file(path)])[0]


@functools.lru_cache(maxsize=1)
def load_catalog() -> tuple[ModelSpec, ...]:
    """Every catalogue spec, sorted by id; ids and aliases must be unique and match the file names."""
    specs: list[ModelSpec] = []
    for path in sorted(catalog_dir().glob("*.yaml")):
        spec = catalogue_spec(path)
        if spec.id != path.stem:
            raise SpecError(f"{path}: id '{spec.id}' must match the file name '{path.stem}'")
        specs.append(spec)
    seen: dict[str, str] = {}
    for spec in specs:
        for key in _keys(spec):
            if key in seen and seen[key] != spec.id:
                raise SpecError(f"catalogue: '{key}' names both {seen[key]} and {spec.id}")
            seen[key] = spec.id
    return tuple(specs)


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def _keys(spec: ModelSpec) -> Iterable[str]:
    yield _norm(spec.id)
    for alias in spec.aliases:
        yield _norm(alias)
    if spec.hf_id:
        yield _norm(spec.hf_id)


def _catalog_lookup(name: str) -> ModelSpec | None:
    key = _norm(name)
    direct = catalog_dir() / f"{key}.yaml"
    if direct.is_file():  # the common case reads one file, not the whole catalogue
        spec = catalogue_spec(direct)
        if spec.id == key:
            return spec
    for spec in load_catalog():
        if key in _keys(spec):
            return as_alias(spec, key)
    return None


@functools.lru_cache(maxsize=256)
def as_alias(spec: ModelSpec, key: str) -> ModelSpec:
    """``spec`` as the release ``key`` names: with that release's own trained context where it has one, and its
    own name and repository where it is a checkpoint of its own (``deepseek-r1``: DeepSeek-R1, whose launch lines
    load deepseek-ai/DeepSeek-R1, not DeepSeek-V3)."""
    out = spec
    for entry in spec.alias_contexts:
        if _norm(entry.alias) == key:
            arch = replace(spec.arch, max_context=entry.max_context)
            out = replace(out, arch=arch, notes=f"{entry.alias}: {entry.max_context:,}-token context ({entry.source})",
                          release=key.split("/")[-1])  # fmt: skip
    for release in spec.alias_checkpoints:
        if _norm(release.alias) == key:
            name = release.name or release.hf_id.split("/")[-1]
            out = replace(out, name=name, hf_id=release.hf_id, release=key.split("/")[-1])
    return out


def suggestions(name: str, limit: int = 3) -> list[str]:
    """The catalogue ids ``name`` most likely misspells (by id, alias or Hub id), or the ids it is the leading
    part of ("mixtral" -> mixtral-8x7b, mixtral-8x22b); never merely similar models of another family or size
    ("kimi-linear" is not kimi-k2, "qwen3.5" not qwen3-235b-a22b)."""
    key = _norm(name)
    index: dict[str, str] = {}
    for spec in load_catalog():
        for k in _keys(spec):
            index.setdefault(k, spec.id)
    close = difflib.get_close_matches(key, list(index), n=limit * 3, cutoff=0.9)
    if not close and key:  # a leading fragment such as "mixtral" or "qwen3"
        close = [k for k in index if k.startswith(key) and k[len(key) : len(key) + 1] in ("", "-", "/")]
    out: list[str] = []
    for k in close:
        if index[k] not in out:
            out.append(index[k])
    return out[:limit]


def _optional_json(path: Path) -> dict[str, Any] | None:
    from moeplan.sources.config_fields import read_config_file

    return read_config_file(path) if path.exists() else None


def _from_folder(path: Path) -> ModelSpec:
    from moeplan.sources.config_adapters import spec_from_config
    from moeplan.sources.config_fields import read_config_file

    config_path = path / "config.json"
    gguf = sorted(path.glob("*.gguf"))
    if not config_path.exists():  # a FIFO or a link to a device is there: read_config_file refuses it by name
        if gguf:
            from moeplan.sources.gguf_file import model_stem
            from moeplan.sources.gguf_spec import spec_from_gguf

            files = sorted({model_stem(g) for g in gguf})  # the parts of a split file are one model
            if len(files) > 1:
                raise InputError(f"{path} holds {len(files)} GGUF models ({', '.join(files[:4])}"
                                 f"{', ...' if len(files) > 4 else ''})", "give the .gguf file to plan")  # fmt: skip
            return spec_from_gguf(gguf[0])
        raise SpecError(f"{path}: a model folder must hold a config.json (or a .gguf file)")
    config = read_config_file(config_path)
    spec = spec_from_config(config, where=str(config_path), model_id=path.name)
    if not any(path.glob("*.safetensors")):
        return spec
    from moeplan.sources.safetensors_headers import read_folder

    tensors = read_folder(path)
    from moeplan.sources.checkpoint import with_checkpoint

    return with_checkpoint(
        spec, tensors, config, f"{path} (safetensors headers)", _optional_json(path / "hf_quant_config.json")
    )


def _from_path(path: Path) -> ModelSpec:
    if path.is_dir():
        return _from_folder(path)
    if path.suffix in (".yaml", ".yml"):
        return load_spec_file(path, origin=str(path))
    if path.suffix == ".json":
        from moeplan.sources.config_adapters import spec_from_config
        from moeplan.sources.config_fields import read_config_file

        # a config.json is named by its folder (the checkpoint's name); any other JSON file by itself
        name = path.parent.name if path.name == "config.json" else path.stem
        return spec_from_config(read_config_file(path), where=str(path), model_id=name or None)
    if path.suffix == ".gguf":
        from moeplan.sources.gguf_spec import spec_from_gguf

        return spec_from_gguf(path)
    raise SpecError(
        f"{path}: not a file moeplan reads",
        "give a config.json, a .gguf file, a YAML spec, or the model folder (safetensors are read from it)",
    )


def resolve_model(name: str) -> ModelSpec:
    """The ModelSpec a MODEL argument names (see the module docstring for the accepted forms)."""
    if not name or not name.strip():
        raise UnknownModelError("empty model name", "run `moeplan models` for the catalogue")
    if name.startswith("hf:"):
        from moeplan.sources.hub import spec_from_hub

        return spec_from_hub(name)
    path = Path(name).expanduser()
    looks_like_path = path.suffix in (".json", ".yaml", ".yml", ".gguf") or name.startswith((".", "/", "~"))
    if path.exists() and (looks_like_path or path.is_dir() or path.is_file()):
        return _from_path(path)
    spec = _catalog_lookup(name)
    if spec is not None:
        return spec
    if looks_like_path:
        raise UnknownModelError(f"{name}: no such file")
    close = suggestions(name)
    hint = (
        f"did you mean {', '.join(close)}?"
        if close
        else "run `moeplan models` for the catalogue, or give the model's config.json, folder or hf:ORG/NAME"
    )
    raise UnknownModelError(f"unknown model '{name}'", hint)


def spec_to_yaml(spec: ModelSpec) -> str:
    """A spec as YAML in catalogue form (defaults left out); loading it gives the same spec back."""
    import yaml

    data = to_dict(spec, exclude_defaults=True, exclude=frozenset({"origin", "checkpoint", "release"}))
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


@dataclass(frozen=True, repr=False, eq=False)
class CatalogRow(Value):
    """One line of ``moeplan models``."""

    id: str
    name: str
    architecture: str
    total: int
    active: int
    num_experts: int
    top_k: int
    source: str
    aliases: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def catalog_rows() -> list[CatalogRow]:
    """Every catalogue model with its counts, in natural order of id (deepseek-v3 before deepseek-v3.2, kimi-k2
    before kimi-k2.5: numbers compared as numbers)."""
    import re

    from moeplan.model.params import count_params

    def natural(spec: ModelSpec) -> list[tuple[int, str]]:
        return [(int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", spec.id)]

    rows = []
    for spec in sorted(load_catalog(), key=natural):
        p = count_params(spec)
        moe = spec.arch.moe
        source = spec.published.source if spec.published else (spec.sources[0] if spec.sources else "")
        rows.append(
            CatalogRow(
                id=spec.id,
                name=spec.name,
                architecture=spec.architecture,
                total=p.total,
                active=p.active,
                num_experts=moe.num_experts if moe else 0,
                top_k=moe.top_k if moe else 0,
                source=source,
                aliases=spec.aliases,
            )
        )
    return rows


def mtp_models() -> str:
    """The catalogue models whose checkpoints carry MTP layers, by name, for the refusal of ``--mtp`` on one that
    has none: ``DeepSeek-V3, DeepSeek-V3.2, GLM-4.5, ...``."""
    return ", ".join(s.name for s in sorted(load_catalog(), key=lambda s: s.id) if s.arch.mtp_layers)
