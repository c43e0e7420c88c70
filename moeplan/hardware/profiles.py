"""Calibration profiles: efficiency factors measured by ``moeplan calibrate`` on one device.

A profile is a JSON file holding the device it was measured on, when, and the fitted factors (achieved share
of peak bandwidth, best share of peak compute).  Profiles live in the user's cache folder
(``$MOEPLAN_CACHE/calibration/<gpu-id>.json``, by default under ``~/.cache/moeplan``) or wherever ``--save`` put them.
``estimate`` applies the stored profile of its GPU automatically and says so; a profile measured on another
device, or older than :data:`MAX_AGE_DAYS`, is never applied silently: it is refused with the reason.

Beside the device's factors a profile may carry (all optional, so profiles written before them still load):
``host`` (:class:`HostMeasurement`: the CPU's RAM bandwidth and expert GEMM, which the offload model wants),
``collectives`` (:class:`CollectivesMeasurement`: all-reduce and all-to-all latency and bus bandwidth across
the box's devices), ``step`` (:class:`StepMeasurement`: a full decode step of several layers and the fixed cost
per layer it reveals) and ``notes`` (what the run could not measure, and why).  ``calibrate --device cpu``
saves its profile as ``cpu.json`` (:data:`HOST_PROFILE_ID`); :func:`load_host_profile` finds it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moeplan.cache import cache_root, profile_path
from moeplan.errors import InputError, SpecError
from moeplan.hardware.gpus import GpuSpec
from moeplan.records import Value

MAX_AGE_DAYS = 180
MAX_PROFILE_BYTES = 1 << 20
PROFILE_SCHEMA_VERSION = 1
"""The layout of calibration profiles this moeplan writes and reads."""
HOST_PROFILE_ID = "cpu"
"""The cache name of the profile ``calibrate --device cpu`` writes: ``$MOEPLAN_CACHE/calibration/cpu.json``."""


class _Record(BaseModel):
    """Base of a profile's parts: frozen, no unknown keys, and only finite numbers (a profile is JSON from disk)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Measurement(_Record):
    """One token count of the synthetic MoE layer."""

    tokens: int = Field(gt=0)
    seconds: float = Field(gt=0)
    seconds_spread: float = Field(ge=0)
    flops: float = Field(ge=0)
    bytes: float = Field(ge=0)
    achieved_tflops: float = Field(ge=0)
    achieved_gb_s: float = Field(ge=0)
    predicted_seconds: float | None = None
    peak_memory_bytes: int | None = None
    predicted_memory_bytes: int | None = None


class HostTiming(_Record):
    """One timed host kernel: a read over the RAM buffer (``ram_read``) or one expert's MLP (``expert_gemm``)."""

    kind: Literal["ram_read", "expert_gemm"]
    tokens: int | None = Field(default=None, gt=0)
    """Rows of the expert GEMM (None for the RAM read)."""
    bytes: float = Field(ge=0)
    """Bytes one call reads (the buffer; the experts' weights)."""
    flops: float = Field(ge=0)
    seconds: float = Field(gt=0)
    """Median of the runs, one call."""
    seconds_spread: float = Field(ge=0)
    runs: int = Field(gt=0)
    steady: bool = True


class HostMeasurement(_Record):
    """What ``calibrate`` measured on the host CPU: RAM bandwidth and one expert's MLP in torch.

    ``ram_gb_s`` is the read bandwidth of a sum over a buffer several times the last-level cache, run on
    ``threads`` threads across all ``sockets``; ``ram_gb_s_per_socket = ram_gb_s / sockets`` (a two-socket
    box reading 300 GB/s: 150 GB/s per socket).  ``expert_gflops_decode`` maps tokens (1, 8) to the GFLOP/s of
    one expert's gate, up and down projections, ``2 x tokens x 3 x hidden x expert_ffn`` FLOPs per call, with
    the weights cycled through enough experts to come from RAM; ``expert_gflops_prefill`` is the same at 512 tokens.
    """

    cpu: str
    sockets: int = Field(ge=1)
    threads: int = Field(ge=1)
    dtype: str = "fp32"
    ram_gb_s: float = Field(gt=0)
    ram_gb_s_per_socket: float = Field(gt=0)
    ram_buffer_bytes: int = Field(gt=0)
    last_level_cache_bytes: int | None = Field(default=None, gt=0)
    expert_shape: dict[str, int] = Field(default_factory=dict)
    """``hidden`` and ``expert_ffn`` of the expert timed."""
    expert_gflops_decode: dict[int, float] = Field(default_factory=dict)
    """Tokens (1, 8) -> GFLOP/s of one expert's MLP."""
    expert_gflops_prefill: float = Field(gt=0)
    """GFLOP/s of one expert's MLP at 512 tokens."""
    timings: list[HostTiming] = Field(default_factory=list)

    def expert_seconds(self, tokens: int) -> float:
        """Seconds of one expert's MLP for ``tokens`` tokens at the measured rate nearest in tokens.

        ``2 x tokens x 3 x hidden x expert_ffn / (GFLOP/s x 1e9)``: Qwen3-30B-A3B's expert (2048 x 768) at
        1 token and 2.0 GFLOP/s is 9.4 MFLOP / 2.0e9 = 4.7 ms.
        """
        rates = {**self.expert_gflops_decode, 512: self.expert_gflops_prefill}
        nearest = min(rates, key=lambda t: (abs(t - tokens), t))
        flops = 2.0 * tokens * 3 * self.expert_shape.get("hidden", 0) * self.expert_shape.get("expert_ffn", 0)
        return flops / (rates[nearest] * 1e9)


CollectiveOp = Literal["all_reduce", "all_to_all"]


class CollectivePoint(_Record):
    """One collective at one message size: the slowest rank's median seconds per call."""

    op: CollectiveOp
    tokens: int = Field(gt=0)
    bytes: int = Field(gt=0)
    """Bytes of each rank's buffer (``tokens x hidden x 2``)."""
    seconds: float = Field(gt=0)
    seconds_spread: float = Field(ge=0)
    runs: int = Field(gt=0)
    steady: bool = True


class CollectiveFit(_Record):
    """``t = alpha_s + factor x bytes / (bus_gb_s x 1e9)``, least squares over the measured sizes.

    ``factor`` is ``2 (n - 1) / n`` for a ring all-reduce and ``(n - 1) / n`` for an all-to-all (the share of
    the buffer each rank sends).  8 ranks, alpha 20 us, 100 GB/s bus, a 1 MiB all-reduce:
    20e-6 + 1.75 x 1,048,576 / 100e9 = 38.4 us.
    """

    alpha_s: float = Field(gt=0)
    bus_gb_s: float = Field(gt=0)
    factor: float = Field(gt=0, le=2)
    method: str = "least squares"
    """How the fit was reached (``least squares``, or the fallback used when noise made it unphysical)."""

    def seconds(self, nbytes: float) -> float:
        """Predicted seconds of one collective of ``nbytes`` per rank."""
        return self.alpha_s + self.factor * nbytes / (self.bus_gb_s * 1e9)


class CollectivesMeasurement(_Record):
    """All-reduce and all-to-all across ``world_size`` processes of this box (NCCL on GPUs, gloo on the CPU)."""

    backend: Literal["nccl", "gloo"]
    world_size: int = Field(ge=2)
    device: str
    dtype: str = "bf16"
    hidden: int = Field(gt=0)
    all_reduce: CollectiveFit | None = None
    all_to_all: CollectiveFit | None = None
    """None when it could not be measured (the profile's ``notes`` say why)."""
    all_to_all_emulated: bool = False
    """True when this torch's backend had no all-to-all and it was timed as point-to-point sends and receives."""
    points: list[CollectivePoint] = Field(default_factory=list)

    def seconds(self, op: CollectiveOp, nbytes: float) -> float | None:
        """Predicted seconds of ``op`` on ``nbytes`` per rank (None if that op was not measured)."""
        fit = self.all_reduce if op == "all_reduce" else self.all_to_all
        return fit.seconds(nbytes) if fit else None


class StepPoint(_Record):
    """One decode step of the layer stack at one batch size."""

    batch: int = Field(gt=0)
    seconds: float = Field(gt=0)
    """The whole step (all layers), median."""
    seconds_spread: float = Field(ge=0)
    seconds_per_layer: float = Field(gt=0)
    bytes_per_layer: float = Field(ge=0)
    """Weights read (attention, the experts used, norms) plus the KV cache read, per layer."""
    overhead_s_per_layer: float = Field(ge=0)
    """``max(0, seconds_per_layer - bytes_per_layer / bandwidth)``: what the bytes do not explain."""
    runs: int = Field(gt=0)
    steady: bool = True


class StepMeasurement(_Record):
    """A full decode step: ``layers`` decoder layers (norm, attention over ``context`` cached tokens, norm, MoE).

    The fixed cost per layer is ``seconds per layer - bytes per layer / bandwidth`` (floor 0): 60 us per layer
    measured for 50 MB at 2,000 GB/s (25 us) leaves 35 us of launches, synchronisation and small kernels.
    """

    layers: int = Field(gt=0)
    context: int = Field(gt=0)
    attention: dict[str, int] = Field(default_factory=dict)
    """``heads``, ``kv_heads``, ``head_dim``, ``v_head_dim`` of the attention timed."""
    bandwidth_gb_s: float = Field(gt=0)
    """The bandwidth the bytes are divided by."""
    bandwidth_source: str = "copy"
    """Which measurement that is (``copy``: the device's memory copy; ``host RAM read`` on a CPU)."""
    points: list[StepPoint] = Field(default_factory=list)
    overhead_s_per_layer: float = Field(ge=0)
    """The smallest batch's fixed cost per layer (batch 1: the least compute beside it)."""


class CalibrationProfile(_Record):
    """Measured efficiencies of one device."""

    schema_version: int = 1
    """The layout of this file (:data:`PROFILE_SCHEMA_VERSION`); a profile of another layout is refused."""
    device: str
    """The device's own name (``torch.cuda.get_device_name``, or the CPU's)."""
    gpu_id: str | None
    """The catalogue entry the device matched, if any."""
    backend: str
    dtype: str
    created: str
    """ISO date-time (UTC)."""
    torch_version: str
    bandwidth_gb_s: float = Field(gt=0)
    """Achieved copy bandwidth (memory-copy microbenchmark)."""
    gemm_tflops: float = Field(gt=0)
    """Achieved dense GEMM TFLOP/s."""
    bandwidth_efficiency: float | None = Field(default=None, gt=0, le=1.0)
    """Achieved / catalogue peak bandwidth (None without a catalogue match)."""
    compute_efficiency: float | None = Field(default=None, gt=0, le=1.0)
    """Achieved GEMM / catalogue peak compute."""
    moe_efficiency: dict[int, float] = Field(default_factory=dict)
    """Tokens -> achieved MoE-layer TFLOP/s / catalogue peak."""
    layer: dict[str, int] = Field(default_factory=dict)
    measurements: list[Measurement] = Field(default_factory=list)
    host: HostMeasurement | None = None
    """The host CPU and RAM (always on ``--device cpu``; on GPUs unless ``--no-host``)."""
    collectives: CollectivesMeasurement | None = None
    """All-reduce and all-to-all across the box's devices (``--collectives``)."""
    step: StepMeasurement | None = None
    """A full decode step of several layers (``--full-step``)."""
    notes: list[str] = Field(default_factory=list)
    """What the run could not measure or measured with a caveat."""


def load_profile(path: Path) -> CalibrationProfile:
    """Read a profile; a missing, oversized or malformed file is an InputError naming it."""
    from moeplan.files import read_text

    try:
        text = read_text(path, MAX_PROFILE_BYTES, "a calibration profile")
        data = json.loads(text, parse_constant=_no_constant)
    except SpecError as e:
        raise InputError(str(e)) from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise InputError(f"{path}: not a calibration profile (invalid JSON: {e})") from None
    except ValueError as e:
        raise InputError(f"{path}: not a calibration profile ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a calibration profile (a JSON object expected, not {type(data).__name__})")
    version = data.get("schema_version", 1)
    if version != PROFILE_SCHEMA_VERSION:
        raise InputError(
            f"{path}: calibration profile schema_version {version!r}; this moeplan reads {PROFILE_SCHEMA_VERSION}",
            "run `moeplan calibrate` again with this version",
        )
    try:
        profile = CalibrationProfile.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path}: not a calibration profile ({loc}: {err['msg']})") from None
    try:
        age = _age_days(profile)
    except ValueError:
        raise InputError(f"{path}: its date '{profile.created}' is not an ISO date-time", "calibrate again") from None
    if age < -1 / 24:  # an hour of clock skew is forgiven
        raise InputError(
            f"{path}: dated {profile.created}, in the future (this machine's clock says otherwise)", "calibrate again"
        )
    return profile


def _no_constant(name: str) -> float:
    """``json.loads`` accepts ``NaN`` and ``Infinity``; a profile holding them is refused."""
    raise ValueError(f"{name} is not a number a profile may hold")


def merged_with_stored(profile: CalibrationProfile, path: Path) -> CalibrationProfile:
    """``profile`` with the host, collectives and step measurements of the profile stored at ``path`` that this
    run did not take (same device only; an unreadable or foreign file is simply replaced)."""
    if not path.is_file():
        return profile
    try:
        old = load_profile(path)
    except InputError:
        return profile
    if old.device != profile.device:
        return profile
    keep = {k: getattr(old, k) for k in ("host", "collectives", "step") if getattr(profile, k) is None}
    keep = {k: v for k, v in keep.items() if v is not None}
    return profile.model_copy(update=keep) if keep else profile


def check_writable(path: Path) -> None:
    """Refuse, before a calibration runs for minutes, a ``--save`` target that cannot be written: its folder
    cannot be made (a path under a file, no permission), or the target is a folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise InputError(f"--save {path}: a folder; give a file name such as {path / 'profile.json'}")
        probe = path.parent / f".{path.name}.{os.getpid()}.probe"
        probe.write_bytes(b"{}\n")  # a byte or more: a full disk or a file-size limit shows now, not after
        probe.unlink()
    except InputError:
        raise
    except OSError as e:
        raise InputError(f"cannot write the profile to {path}: {e.strerror or e}") from None


def save_profile(profile: CalibrationProfile, path: Path) -> Path:
    """Write ``profile`` to ``path`` (through a temporary file, so a full disk leaves no half-written profile)."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(profile.model_dump_json(indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write the profile to {path}: {e.strerror or e}") from None
    return path


def _age_days(profile: CalibrationProfile, now: dt.datetime | None = None) -> float:
    text = profile.created
    if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat reads only what isoformat() writes
        text = text[:-1] + "+00:00"
    created = dt.datetime.fromisoformat(text)
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.timezone.utc)
    return ((now or dt.datetime.now(dt.timezone.utc)) - created).total_seconds() / 86400


@dataclass(frozen=True, repr=False, eq=False)
class Measured(Value):
    """The factors a profile measured, ready to replace an engine's defaults (see ``deploy.resolve``)."""

    bandwidth_efficiency: float | None
    compute_efficiency: float | None
    label: str
    """``<file> (<date>)``: where the factors come from."""
    note: str
    """What was applied, for the assumptions."""
    collectives: CollectivesMeasurement | None = None
    """All-reduce and all-to-all measured on this box (``calibrate --collectives``)."""
    layer_overhead_s: float | None = None
    """Fixed seconds per decoder layer of a decode step (``calibrate --full-step``, batch 1)."""


def measured_for(gpu: GpuSpec, path: str | None) -> tuple[Measured | None, str | None]:
    """The calibration for ``gpu``, or None with the reason it is not applied (None: there is no profile).

    ``path`` (``--calibration``) must match the GPU; without it the stored profile for the GPU is used if
    there is one and it is fresh.  An explicit profile that does not apply is an InputError.
    """
    explicit = path is not None
    file = Path(path).expanduser() if path else profile_path(gpu.id)
    if not explicit and not file.is_file():
        return None, None
    try:
        profile = load_profile(file)
    except InputError as e:
        if explicit:
            raise
        return None, f"stored calibration not applied: {e}"
    if profile.gpu_id != gpu.id:
        msg = f"calibration {file} was measured on {profile.device} ({profile.gpu_id or 'no catalogue match'})"
        if explicit:
            raise InputError(f"{msg}, not on {gpu.id}", f"run `moeplan calibrate` on a {gpu.name}")
        return None, f"{msg}; not applied to {gpu.id}"
    if profile.backend == "cpu" and not explicit:  # a CPU run keyed to a GPU by hand, then left in the cache
        return None, f"calibration {file} was measured on the CPU ({profile.device}); not applied to {gpu.id}"
    age = _age_days(profile)
    if age > MAX_AGE_DAYS:
        note = f"calibration {file} is {age:.0f} days old (over {MAX_AGE_DAYS}); not applied, rerun calibrate"
        if explicit:
            raise InputError(note)
        return None, note
    note = (
        f"calibrated: {file} measured on {profile.device} {profile.created[:10]}: "
        f"bandwidth {profile.bandwidth_efficiency or 0:.0%}, compute {profile.compute_efficiency or 0:.0%} of peak"
    )
    label = f"{file} ({profile.created[:10]})"
    step = profile.step.overhead_s_per_layer if profile.step is not None else None
    if profile.collectives is not None:
        c = profile.collectives
        note += f"; collectives measured over {c.world_size} ranks ({c.backend})"
    if step is not None:
        note += f"; {step * 1e6:.0f} us fixed per layer measured in a full decode step"
    measured = Measured(
        profile.bandwidth_efficiency, profile.compute_efficiency, label, note, profile.collectives, step
    )
    return measured, None


def _host_candidates() -> list[Path]:
    """The cached profiles that may hold a host measurement: ``cpu.json`` first, then the others, newest first."""
    folder = cache_root() / "calibration"
    first = profile_path(HOST_PROFILE_ID)
    try:
        others = sorted((p for p in folder.glob("*.json") if p != first), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        others = []
    return [first, *others]


def host_measured_for(path: str | None) -> tuple[HostMeasurement | None, str | None]:
    """The host measurement to use, and a note: what was applied, or why nothing was (None, None: no profile).

    ``path`` (a profile file) must hold a fresh host measurement, else InputError.  Without it the cache's
    ``cpu.json`` is used, else the newest cached profile that measured the host (a GPU run measures its host
    too); one older than :data:`MAX_AGE_DAYS` is refused with the reason.
    """
    explicit = path is not None
    if path is not None:
        file = Path(path).expanduser()
        profile = load_profile(file)
    else:
        for file in _host_candidates():
            if not file.is_file():
                continue
            try:
                profile = load_profile(file)
            except InputError:
                continue
            if profile.host is not None:
                break
        else:
            return None, None
    host = profile.host
    if host is None:
        raise InputError(f"calibration {file} holds no host measurement", "run `moeplan calibrate --device cpu`")
    age = _age_days(profile)
    if age > MAX_AGE_DAYS:
        note = f"host calibration {file} is {age:.0f} days old (over {MAX_AGE_DAYS}); not applied, rerun calibrate"
        if explicit:
            raise InputError(note)
        return None, note
    decode = host.expert_gflops_decode.get(1) or next(iter(host.expert_gflops_decode.values()), None)
    note = (
        f"host calibrated: {file} measured on {host.cpu} {profile.created[:10]}: RAM {host.ram_gb_s:,.1f} GB/s "
        f"({host.ram_gb_s_per_socket:,.1f} per socket x {host.sockets}), expert GEMM "
        + (f"{decode:,.1f} GFLOP/s at 1 token, " if decode else "")
        + f"{host.expert_gflops_prefill:,.1f} at 512"
    )
    return host, note


def load_host_profile(path: str | None) -> HostMeasurement | None:
    """:func:`host_measured_for` without its note (None when there is none, or the stored one is stale)."""
    return host_measured_for(path)[0]
