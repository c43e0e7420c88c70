"""Host platforms for expert offload: CPUs with their memory subsystem, and generic RAM configurations.

The catalogue ships as ``moeplan/data/cpus.yaml`` (each entry sourced).  Theoretical bandwidth of DIMM
platforms is ``channels x 8 bytes x MT/s``; Apple and LPDDR SoCs use the vendor's figure.  A bare memory
configuration such as ``ddr5-5600x2`` (type, speed, channels) stands for any CPU with that memory.
Peak CPU compute (GFLOP/s, fp32) = cores x FLOPs per cycle per core x clock.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from moeplan.errors import InputError, SpecError
from moeplan.records import Record, validate


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Price(Record):
    """Approximate purchase price of a host platform, USD, with its date and source."""

    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "ignore"}

    approx: float = field(metadata={"gt": 0})
    as_of: str | None = None
    source: str | None = None


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class CpuSpec(Record):
    """One host platform (keys the catalogue adds for people, such as ``url``, are ignored)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "ignore"}

    id: str
    name: str
    vendor: str = ""
    kind: str = "desktop"
    aliases: tuple[str, ...] = ()
    cores: int = field(metadata={"gt": 0})
    sockets: int = field(default=1, metadata={"ge": 1, "le": 8})
    threads: int | None = None
    memory_type: str = ""
    memory_channels: int | None = None
    memory_mt_s: int | None = None
    max_memory_gib: float | None = None
    bandwidth_gb_s: float = field(metadata={"gt": 0})
    fabric_read_gb_s: float | None = field(default=None, metadata={"gt": 0})
    """Read bandwidth measured where the links from the cores to the memory controllers, not the DIMMs, bound it
    (few-CCD EPYC, single-CCD Ryzen), all sockets; None where the DIMMs do."""
    isa: tuple[str, ...] = ()
    fp32_gflops_per_core_cycle: float | None = field(default=None, metadata={"gt": 0})
    base_ghz: float | None = field(default=None, metadata={"gt": 0})
    all_core_ghz: float | None = field(default=None, metadata={"gt": 0})
    tdp_w: float | None = None
    price_usd: Price | None = None
    sources: tuple[str, ...] = ()
    notes: str | None = None

    @property
    def dimm_equivalent_gb_s(self) -> float:
        """The theoretical DIMM bandwidth the offload model's efficiencies are shares of, all sockets: the catalogue
        figure, or where the fabric bounds the reads, its measured read taken as :data:`MEASURED_READ_SHARE` of a
        peak (two EPYC 9124s: 530 GB/s read, 624 of their DIMMs' 922)."""
        capped = self.fabric_read_gb_s / MEASURED_READ_SHARE if self.fabric_read_gb_s else self.bandwidth_gb_s
        return min(self.bandwidth_gb_s, capped)

    @property
    def effective_bandwidth_gb_s(self) -> float:
        """RAM bandwidth a single inference process that reads NUMA-locally (KTransformers) can use: each extra
        socket adds 40%, not 100% (its DeepSeek-R1 runs on one and two Xeon 6454S sockets measure 8.73 and 12.21
        tok/s: 1.4x for twice the channels).  llama.cpp gets one socket's (deploy.offload.ram_bytes_per_s).
        """
        per_socket = self.dimm_equivalent_gb_s / self.sockets
        return per_socket * (1 + 0.4 * (self.sockets - 1))

    @property
    def fp32_gflops(self) -> float:
        """Peak fp32 GFLOP/s of all cores (16 FLOPs/cycle and 3 GHz where the catalogue lacks a figure)."""
        per = self.fp32_gflops_per_core_cycle or 16.0
        ghz = self.all_core_ghz or self.base_ghz or 3.0
        return self.cores * per * ghz


def _data() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "cpus.yaml"


@functools.lru_cache(maxsize=4)
def _catalogue() -> dict[str, Any]:
    from moeplan.cache import cached_yaml

    path = _data()
    if not path.is_file():
        return {"cpus": [], "memory_prices": []}
    data = cached_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping with a 'cpus:' list")
    return data


@functools.lru_cache(maxsize=4)
def load_cpus() -> tuple[CpuSpec, ...]:
    from moeplan.cache import cached_records

    path = _data()
    if not path.is_file():
        return ()

    def validated() -> list[CpuSpec]:
        cpus = _catalogue().get("cpus") or []
        return [validate(CpuSpec, raw, f"{path}: cpu '{raw.get('id', '?')}'") for raw in cpus]

    return cached_records(path, CpuSpec, validated)


def ram_usd_per_gb(kind: str = "DDR5") -> tuple[float, str] | None:
    """The catalogue's price of RAM per GB for a memory type (first match), with its source."""
    for p in _catalogue().get("memory_prices") or []:
        if isinstance(p, dict) and str(p.get("type", "")).upper().startswith(kind.upper()):
            try:
                return float(p["usd_per_gb"]), f"{p.get('source', '')} ({p.get('as_of', '')})"
            except (KeyError, TypeError, ValueError):
                continue
    return None


_MEM = re.compile(r"^(?P<type>ddr4|ddr5|lpddr5x?)-(?P<mts>\d{4,5})x(?P<ch>\d{1,2})$")


def memory_config(text: str) -> CpuSpec | None:
    """``ddr5-5600x2`` -> a generic host with that memory (8-core, 16 FLOPs/cycle CPU assumed)."""
    m = _MEM.match(text.strip().lower())
    if not m:
        return None
    mts, ch = int(m.group("mts")), int(m.group("ch"))
    if not 1 <= ch <= 24 or not 1600 <= mts <= 12800:
        raise InputError(f"memory configuration '{text}' is out of range")
    bw = ch * 8 * mts / 1000
    return CpuSpec(
        id=text.lower(),
        name=f"{m.group('type').upper()}-{mts} x {ch} channels",
        cores=8 if ch <= 2 else 32,
        memory_type=m.group("type").upper(),
        memory_channels=ch,
        memory_mt_s=mts,
        bandwidth_gb_s=bw,
        sources=("channels x 8 bytes x MT/s",),
    )


def resolve_cpu(name: str) -> CpuSpec:
    """A CPU by id or alias, or a memory configuration (``ddr5-6000x2``)."""
    generic = memory_config(name)
    if generic is not None:
        return generic
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    cpus = load_cpus()
    for c in cpus:
        if key == c.id or key in (a.lower() for a in c.aliases):
            return c
    import difflib

    names = [c.id for c in cpus] + [a for c in cpus for a in c.aliases]
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise InputError(
        f"unknown CPU '{name}'", hint + "`moeplan cpus` lists them; or give --ram-bandwidth, or e.g. ddr5-5600x2"
    )


def custom_host(bandwidth_gb_s: float, cores: int | None = None) -> CpuSpec:
    """A host known only by its RAM bandwidth; without ``cores``, one core per 6 GB/s (desktop 89.6 GB/s: 15
    cores; a 12-channel server: 77), the balance real platforms have."""
    if not bandwidth_gb_s > 0:
        raise InputError(f"--ram-bandwidth must be positive, not {bandwidth_gb_s}")
    cores = cores or max(4, round(bandwidth_gb_s / 6))
    return CpuSpec(
        id="custom-host",
        name=f"host with {bandwidth_gb_s:g} GB/s RAM",
        cores=cores,
        bandwidth_gb_s=bandwidth_gb_s,
        sources=("given by the user",),
    )


MEASURED_READ_SHARE = 0.85
"""A streaming read over a large buffer reaches ~85% of the DIMMs' theoretical rate (STREAM on DDR4/DDR5
servers and desktops): a measured read bandwidth stands for ``measured / 0.85`` of theoretical, the figure the
offload model's RAM efficiencies are shares of."""
MEASURED_GEMM_SHARE = 0.8
"""A torch fp32 GEMM of 512 rows reaches ~80% of the CPU's fp32 peak (MKL/oneDNN SGEMM)."""


def measured_host(name: str, sockets: int, threads: int, ram_gb_s: float, gemm_gflops: float) -> CpuSpec:
    """A host from ``moeplan calibrate``'s measurement: theoretical RAM bandwidth ``ram_gb_s / 0.85`` and fp32
    peak ``gemm_gflops / 0.8`` over ``threads`` cores (120 GB/s read, 2,000 GFLOP/s on 16 threads: 141 GB/s,
    2,500 GFLOP/s peak)."""
    peak = gemm_gflops / MEASURED_GEMM_SHARE
    return CpuSpec(
        id="measured-host",
        name=f"{name} (calibrated: {ram_gb_s:,.0f} GB/s read, taken as {MEASURED_READ_SHARE:.0%} of a "
        f"{ram_gb_s / MEASURED_READ_SHARE:,.0f} GB/s peak; {gemm_gflops:,.0f} GFLOP/s fp32 GEMM)",
        cores=threads,
        sockets=max(1, min(8, sockets)),
        bandwidth_gb_s=ram_gb_s / MEASURED_READ_SHARE,
        fp32_gflops_per_core_cycle=peak / threads,
        all_core_ghz=1.0,
        sources=("moeplan calibrate",),
    )
