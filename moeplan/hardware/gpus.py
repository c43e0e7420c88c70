"""The accelerator catalogue: memory, usable memory, bandwidth, dense TFLOP/s, interconnect, power and prices.

The catalogue ships as ``moeplan/data/gpus.yaml`` (every entry with its sources).  A user file,
``~/.config/moeplan/gpus.yaml`` (or ``$MOEPLAN_GPU_FILE``, or ``--gpu-file``), adds entries or overrides
fields of existing ones (prices, usually): ``gpus: [{id: h100-sxm, cloud_usd_per_hour: {low: 2, high: 2}}]``.
A GPU argument is an id or alias (``a100`` = A100 80GB SXM, ``h100``, ``4090``), case-insensitive.

Units: memory in GiB (2**30 bytes), bandwidth in decimal GB/s, compute in dense TFLOP/s (never the 2:4
sparsity figures), prices in USD.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from moeplan.errors import InputError, SpecError, UnknownGpuError
from moeplan.records import Record, to_dict, validate

Dtype = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "fp4", "int8"]
GpuKind = Literal["datacenter", "workstation", "consumer", "apple", "tpu", "soc", "custom"]


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class CloudPrice(Record):
    """Cloud price per GPU-hour: a range, an optional typical figure, its date and source."""

    typical: float | None = field(default=None, metadata={"gt": 0})  # first: a user's {typical: X} sets low and high
    low: float = field(metadata={"gt": 0})
    high: float = field(metadata={"gt": 0})
    as_of: str
    source: str
    note: str | None = None

    @property
    def expected(self) -> float:
        """The typical price, else the middle of the range (USD per GPU-hour)."""
        return self.typical if self.typical is not None else (self.low + self.high) / 2


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class PurchasePrice(Record):
    """Purchase price of one card (or one system share), USD."""

    approx: float = field(metadata={"gt": 0})
    low: float | None = field(default=None, metadata={"gt": 0})
    high: float | None = field(default=None, metadata={"gt": 0})
    as_of: str
    source: str
    note: str | None = None


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class GpuSpec(Record):
    """One accelerator.  ``usable_memory_gib`` is what one process can allocate (CUDA's total, Metal's limit)."""

    id: str = field(metadata={"pattern": r"^[a-z0-9][a-z0-9.-]*$"})
    name: str
    vendor: str
    kind: GpuKind
    aliases: tuple[str, ...] = ()
    memory_gib: float = field(metadata={"gt": 0})
    memory_type: str | None = None
    usable_memory_gib: float = field(metadata={"gt": 0})
    usable_memory_note: str
    bandwidth_gb_s: float = field(metadata={"gt": 0})
    tflops: dict[Dtype, float] = field(default_factory=dict)
    nvlink_gb_s: float | None = field(default=None, metadata={"gt": 0})
    nvlink_domain: int | None = field(default=None, metadata={"gt": 0})
    """GPUs one NVLink domain joins (72 in a GB200/GB300 NVL72 rack); None: a server of 8."""
    pcie_gb_s: float | None = field(default=None, metadata={"gt": 0})
    tdp_w: float | None = field(default=None, metadata={"gt": 0})
    cloud_usd_per_hour: CloudPrice | None = None
    purchase_usd: PurchasePrice | None = None
    street_price_usd: float | None = field(default=None, metadata={"gt": 0})
    """What one card sells for now (dealers, spot market), when a dated source gives it; beats ``purchase_usd``."""
    street_price_date: str | None = field(default=None, metadata={"pattern": r"^\d{4}-\d{2}$"})
    street_price_source: str | None = None
    notes: str | None = None
    sources: tuple[str, ...] = field(metadata={"min_length": 1})
    speed_known: bool = True
    """False for a custom GPU given without its bandwidth or compute: the missing figure would be a placeholder,
    so no speed or cost is computed for it (``--gpu-bandwidth`` and ``--gpu-tflops`` make it known)."""

    def __post_init__(self) -> None:
        if self.usable_memory_gib > self.memory_gib:
            raise ValueError(f"usable_memory_gib {self.usable_memory_gib} exceeds memory_gib {self.memory_gib}")
        if any(v <= 0 for v in self.tflops.values()):
            raise ValueError("tflops must be positive")

    @property
    def buy_price(self) -> tuple[float, str] | None:
        """USD to buy one card and its basis: the dated street price when known ("street, 2026-05"), else the
        catalogue's purchase estimate with its date ("list, 2024-2026")."""
        if self.street_price_usd is not None:
            return self.street_price_usd, f"street, {self.street_price_date}"
        if self.purchase_usd is not None:
            return self.purchase_usd.approx, f"list, {self.purchase_usd.as_of}"
        return None

    def dense_tflops(self, dtype: str) -> float | None:
        """Peak dense TFLOP/s for ``dtype`` (bf16, fp8, ...), falling back to fp16/bf16 twins; None if unknown."""
        twins = {"bf16": "fp16", "fp16": "bf16"}
        table: dict[str, float] = {str(k): v for k, v in self.tflops.items()}
        value = table.get(dtype)
        if value is None and dtype in twins:
            value = table.get(twins[dtype])
        return value

    @property
    def usable_memory_bytes(self) -> float:
        return self.usable_memory_gib * 2**30

    @property
    def unified_memory(self) -> bool:
        """Apple silicon and SoCs (DGX Spark, Strix Halo): one memory for CPU and GPU."""
        return self.kind in ("apple", "soc") or self.vendor == "apple"

    @property
    def nvidia_ampere_on(self) -> bool:
        """An NVIDIA GPU of compute capability 8.0 or more: one with bf16, fp8 or fp4 tensor units listed (Volta and
        Turing have fp16 only; the DGX Spark's GB10 lists fp4), which Marlin and vLLM's MXFP4 need."""
        return self.vendor == "nvidia" and bool(set(self.tflops) & {"bf16", "fp8", "fp4"})

    def has_kernels(self, need: str) -> bool:
        """Whether engines have kernels for a weight format needing ``need`` on this GPU.

        ``fp8``: fp8 units (H100, MI300, Gaudi) or NVIDIA Ampere on (:attr:`nvidia_ampere_on`: W8A16 Marlin kernels);
        ``packed4`` (GPTQ, AWQ): NVIDIA Turing or newer (not V100) or AMD Instinct MI300 and later; ``mxfp4``: the
        same from NVIDIA Ampere (vllm-project/vllm#22288: "mxfp4 is not supported for the current GPU SM75");
        ``nvfp4``: NVIDIA Ampere on (Blackwell natively, Marlin FP4 before it);
        ``apple`` (MLX's quantized formats): Apple silicon.  A custom GPU from ``--gpu-memory`` alone (no vendor) is
        taken to run what is asked of it: its memory and fit need no kernel, and its speed figures name their
        derived peaks.
        """
        if self.kind == "custom":
            return True
        nvidia, has, ampere = self.vendor == "nvidia", set(self.tflops), self.nvidia_ampere_on
        if need == "fp8":
            return "fp8" in has or ampere
        if need == "apple":
            return self.vendor == "apple"
        if need in ("packed4", "mxfp4"):  # MXFP4 from Ampere: vLLM asks compute capability 8.0
            nv = ampere if need == "mxfp4" else nvidia and not self.id.startswith("v100")
            return nv or (self.vendor == "amd" and "fp8" in has)
        if need == "nvfp4":  # NVIDIA's format: fp4 units on Blackwell, Marlin FP4 from Ampere; ROCm has no kernels
            return ampere
        return True


def _data_file() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "gpus.yaml"


def user_gpu_file() -> Path | None:
    """``$MOEPLAN_GPU_FILE`` or ``~/.config/moeplan/gpus.yaml`` (``$XDG_CONFIG_HOME`` honoured), if it exists."""
    env = os.environ.get("MOEPLAN_GPU_FILE")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = base / "moeplan" / "gpus.yaml"
    return path if path.is_file() else None


def _entries(path: Path, builtin: bool = False) -> list[Mapping[str, Any]]:
    from moeplan.cache import cached_yaml
    from moeplan.files import read_yaml

    data = cached_yaml(path) if builtin else read_yaml(path, "a YAML GPU file (gpus: [...])")
    gpus = data.get("gpus") if isinstance(data, dict) else None
    if not isinstance(gpus, list) or not all(isinstance(g, dict) for g in gpus):
        raise SpecError(f"{path}: expected a mapping with a 'gpus:' list of entries")
    return gpus


def _build(path: Path, raw: Mapping[str, Any]) -> GpuSpec:
    return validate(GpuSpec, raw, f"{path}: gpu '{raw.get('id', '?')}'")


def _builtin_gpus(path: Path) -> tuple[GpuSpec, ...]:
    """The packaged catalogue, validated once and then read from the cache's copy."""
    from moeplan.cache import cached_records

    return cached_records(path, GpuSpec, lambda: [_build(path, raw) for raw in _entries(path, builtin=True)])


@functools.lru_cache(maxsize=8)
def load_gpus(extra_file: str | None = None) -> tuple[GpuSpec, ...]:
    """The built-in catalogue, then the user's file (``extra_file``, else :func:`user_gpu_file`) merged by id."""
    builtin = _data_file()
    user = Path(extra_file).expanduser() if extra_file else user_gpu_file()
    gpus = _builtin_gpus(builtin) if user is None else _merged_gpus(builtin, user)
    _check_unique(gpus, f"{user}: " if user is not None else "")
    return gpus


def _override(old: dict[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """A user entry's fields over a catalogue entry: ``tflops`` dtype by dtype; a price table whole (its figures go
    together), dated and sourced as the user's when they do not say (``{typical: 1.5}`` alone is a price of 1.5)."""
    out = dict(raw)
    if isinstance(raw.get("tflops"), dict) and isinstance(old.get("tflops"), dict):
        out["tflops"] = {**old["tflops"], **raw["tflops"]}
    cloud = raw.get("cloud_usd_per_hour")
    if isinstance(cloud, dict):
        figure = cloud.get("typical", cloud.get("low", cloud.get("high")))
        out["cloud_usd_per_hour"] = {"low": figure, "high": figure, "as_of": "user", "source": "--gpu-file", **cloud}
    buy = raw.get("purchase_usd")
    if isinstance(buy, dict):
        out["purchase_usd"] = {"as_of": "user", "source": "--gpu-file", **buy}
    return out


def _merged_gpus(builtin: Path, user: Path) -> tuple[GpuSpec, ...]:
    """The packaged entries with the user's file applied: new ids added, fields of known ids overridden."""
    merged: dict[str, dict[str, Any]] = {str(g["id"]): dict(g) for g in _entries(builtin, builtin=True)}
    sources = {gid: builtin for gid in merged}
    if not user.exists():
        raise InputError(f"GPU file {user} does not exist")
    mine: set[str] = set()
    for raw in _entries(user):
        gid = str(raw.get("id", "")).lower()
        if gid in mine:
            raise SpecError(f"{user}: gpu '{gid}' appears twice", "keep one entry per id")
        mine.add(gid)
        if gid in merged:  # an override of some fields of a built-in entry
            merged[gid] = {**merged[gid], **_override(merged[gid], raw), "id": gid}
        else:  # a new GPU: the same price shorthand ({typical: 1.5}, {approx: 25000}) as an override
            merged[gid] = _override({}, raw)
        sources[gid] = user
    return tuple(_build(sources[gid], raw) for gid, raw in merged.items())


def _check_unique(gpus: tuple[GpuSpec, ...], where: str = "") -> None:
    seen: dict[str, str] = {}
    for g in gpus:
        for key in (g.id, *(a.lower() for a in g.aliases)):
            if key in seen and seen[key] != g.id:
                raise SpecError(f"{where}GPU name '{key}' is used by both {seen[key]} and {g.id}")
            seen[key] = g.id


def _index(gpus: tuple[GpuSpec, ...]) -> dict[str, GpuSpec]:
    out: dict[str, GpuSpec] = {}
    for g in gpus:
        for key in (g.id, *g.aliases):
            out[_norm(key)] = g
    return out


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def resolve_gpu(name: str, gpu_file: str | None = None) -> GpuSpec:
    """The accelerator named ``name`` (id or alias); UnknownGpuError with the closest names otherwise."""
    gpus = load_gpus(gpu_file)
    index = _index(gpus)
    key = _norm(name)
    for candidate in (key, key.removeprefix("nvidia-"), f"rtx-{key}"):
        if candidate in index:
            return index[candidate]
    close = difflib.get_close_matches(key, list(index), n=4, cutoff=0.5)
    hint = f"did you mean {', '.join(dict.fromkeys(index[c].id for c in close))}?" if close else None
    remedy = (hint + " " if hint else "") + "`moeplan gpus` lists them; --gpu-memory/--gpu-bandwidth for others"
    raise UnknownGpuError(f"unknown GPU '{name}'", remedy)


def custom_gpu(
    base: GpuSpec | None,
    memory_gib: float | None,
    bandwidth_gb_s: float | None,
    tflops: float | None,
) -> GpuSpec:
    """``base`` with the figures the user gave (or a custom GPU from them alone: memory is then required).

    ``memory_gib`` is taken as the usable memory; ``tflops`` as dense bf16/fp16 TFLOP/s.
    """
    for label, value in (("--gpu-memory", memory_gib), ("--gpu-bandwidth", bandwidth_gb_s), ("--gpu-tflops", tflops)):
        if value is not None and not value > 0:
            raise InputError(f"{label} must be a positive number, not {value}")
    if base is None and memory_gib is None:
        raise InputError("a custom GPU needs --gpu-memory (GiB usable per GPU)", "or name one with --gpu")
    fields: dict[str, Any] = (
        to_dict(base)
        if base is not None
        else {
            "id": "custom",
            "name": "custom GPU",
            "vendor": "user",
            "kind": "custom",
            "memory_gib": memory_gib,
            "usable_memory_gib": memory_gib,
            "usable_memory_note": "given by the user",
            "bandwidth_gb_s": bandwidth_gb_s or 1000.0,
            "sources": ("given on the command line",),
            "speed_known": bandwidth_gb_s is not None and tflops is not None,
        }
    )
    if memory_gib is not None:
        fields["memory_gib"] = max(memory_gib, fields["memory_gib"]) if base else memory_gib
        fields["usable_memory_gib"] = memory_gib
        fields["usable_memory_note"] = "given by the user (--gpu-memory)"
    if bandwidth_gb_s is not None:
        fields["bandwidth_gb_s"] = bandwidth_gb_s
    if tflops is not None:
        fields["tflops"] = {**fields.get("tflops", {}), "bf16": tflops, "fp16": tflops}
    if base is not None and any(v is not None for v in (memory_gib, bandwidth_gb_s, tflops)):
        fields["name"] = f"{base.name} (with user figures)"
    return validate(GpuSpec, fields, "custom GPU")
