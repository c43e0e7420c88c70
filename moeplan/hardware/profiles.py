"""Calibration profiles: efficiency factors measured by ``moeplan calibrate`` on one device.

A profile is a JSON file holding the device it was measured on, when, and the fitted factors (achieved share
of peak bandwidth, best share of peak compute).  Profiles live in the user's cache folder
(``$MOEPLAN_CACHE/calibration/<gpu-id>.json``, by default under ``~/.cache/moeplan``) or wherever ``--save`` put them.
``estimate`` applies the stored profile of its GPU automatically and says so; a profile measured on another
device, or older than :data:`MAX_AGE_DAYS`, is never applied silently: it is refused with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moeplan.cache import profile_path
from moeplan.errors import InputError
from moeplan.hardware.gpus import GpuSpec
from moeplan.records import Value

MAX_AGE_DAYS = 180
MAX_PROFILE_BYTES = 1 << 20


class Measurement(BaseModel):
    """One token count of the synthetic MoE layer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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


class CalibrationProfile(BaseModel):
    """Measured efficiencies of one device."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1
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


def load_profile(path: Path) -> CalibrationProfile:
    """Read a profile; a missing, oversized or malformed file is an InputError naming it."""
    try:
        if path.stat().st_size > MAX_PROFILE_BYTES:
            raise InputError(f"{path}: too large for a calibration profile")
        data = json.loads(path.read_text(encoding="utf-8"))
    except InputError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read calibration profile {path}: {getattr(e, 'strerror', None) or e}") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise InputError(f"{path}: not a calibration profile (invalid JSON: {e})") from None
    try:
        return CalibrationProfile.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path}: not a calibration profile ({loc}: {err['msg']})") from None


def save_profile(profile: CalibrationProfile, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profile.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def _age_days(profile: CalibrationProfile, now: dt.datetime | None = None) -> float:
    created = dt.datetime.fromisoformat(profile.created)
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return ((now or dt.datetime.now(dt.UTC)) - created).total_seconds() / 86400


@dataclass(frozen=True, repr=False, eq=False)
class Measured(Value):
    """The factors a profile measured, ready to replace an engine's defaults (see ``deploy.resolve``)."""

    bandwidth_efficiency: float | None
    compute_efficiency: float | None
    label: str
    """``<file> (<date>)``: where the factors come from."""
    note: str
    """What was applied, for the assumptions."""


def measured_for(gpu: GpuSpec, path: str | None) -> tuple[Measured | None, str | None]:
    """The calibration for ``gpu``, or None with the reason it is not applied (None: there is no profile).

    ``path`` (``--calibration``) must match the GPU; without it the stored profile for the GPU is used if
    there is one and it is fresh.  An explicit profile that does not apply is an InputError.
    """
    explicit = path is not None
    file = Path(path).expanduser() if path else profile_path(gpu.id)
    if not explicit and not file.is_file():
        return None, None
    profile = load_profile(file)
    if profile.gpu_id != gpu.id:
        msg = f"calibration {file} was measured on {profile.device} ({profile.gpu_id or 'no catalogue match'})"
        if explicit:
            raise InputError(f"{msg}, not on {gpu.id}", f"run `moeplan calibrate` on a {gpu.name}")
        return None, f"{msg}; not applied to {gpu.id}"
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
    return Measured(profile.bandwidth_efficiency, profile.compute_efficiency, label, note), None
