"""What ``calibrate`` measures beside the MoE layer: the host, a full decode step, the collectives.

:func:`run_extras` takes a finished :class:`~moeplan.calibration.run.CalibrationRun` and adds to its profile
the measurements an :class:`Extras` asks for, in this order: the host (:mod:`.host`; its RAM figure is the
bandwidth a CPU's full step is set against), the full step (:mod:`.step`), the collectives (:mod:`.collectives`,
last, since it spawns processes).  Whatever one of them could not measure is a note in the profile and in
the run's notices, never a silent gap.  :func:`describe` gives the lines ``calibrate`` prints for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from moeplan.calibration.collectives import DECODE_TOKENS, DEFAULT_HIDDEN, PREFILL_TOKENS
from moeplan.calibration.device_memory import free_bytes
from moeplan.calibration.run import CalibrationError, CalibrationRun, LayerShape
from moeplan.calibration.step import DEFAULT_CONTEXT, DEFAULT_LAYERS, AttentionShape
from moeplan.errors import InputError
from moeplan.hardware.profiles import HOST_PROFILE_ID, CalibrationProfile


@dataclass(frozen=True)
class Extras:
    """Which extra measurements to run, and their sizes."""

    host: bool = False
    collectives: bool = False
    world_size: int | None = None
    collectives_hidden: int = DEFAULT_HIDDEN
    full_step: bool = False
    layers: int = DEFAULT_LAYERS
    context: int = DEFAULT_CONTEXT
    attention: AttentionShape | None = None
    """The attention of the full step (required with ``full_step``)."""

    @classmethod
    def from_options(
        cls,
        device: str,
        shape: LayerShape,
        model: str | None,
        chosen: bool,
        host: bool = True,
        collectives: bool = False,
        world_size: int | None = None,
        full_step: bool = False,
        layers: int | None = None,
        context: str | None = None,
    ) -> Extras:
        """The extras ``calibrate``'s options ask for, checked against ``device`` (``auto``, ``cuda``, ...): a
        world the collectives cannot run fails here, before any timing.

        ``model`` is the MODEL the layer came from (None for a layer given by its sizes: the attention is then
        derived from the hidden size); ``chosen`` says whether the user picked the layer (``--model`` or the
        sizes).  The collectives' messages are ``tokens x hidden x 2`` bytes for a chosen layer's hidden size,
        else for 4,096.
        """
        from moeplan.calibration.step import attention_for_hidden, attention_from_model
        from moeplan.units import parse_tokens

        if world_size is not None and not collectives:
            raise InputError("--world-size goes with --collectives")
        if (layers is not None or context is not None) and not full_step:
            raise InputError("--layers and --context go with --full-step")
        if layers is not None and not 1 <= layers <= 256:
            raise InputError(f"--layers {layers}: give 1 to 256 decoder layers")
        attention = None
        if full_step:
            attention = attention_from_model(model) if model else attention_for_hidden(shape.hidden)
        extras = cls(
            host=host,
            collectives=collectives,
            world_size=world_size,
            collectives_hidden=shape.hidden if chosen else DEFAULT_HIDDEN,
            full_step=full_step,
            layers=layers or DEFAULT_LAYERS,
            context=parse_tokens(context, "--context") if context else DEFAULT_CONTEXT,
            attention=attention,
        )
        if collectives:
            from moeplan.calibration.collectives import plan_world
            from moeplan.calibration.run import pick_device

            plan_world(pick_device(device)[0], world_size)
        return extras

    def ticks(self) -> int:
        """Progress steps these measurements report."""
        sizes = len(DECODE_TOKENS + PREFILL_TOKENS)
        return 4 * self.host + 2 * self.full_step + 2 * sizes * self.collectives


def run_extras(
    run: CalibrationRun, extras: Extras, quick: bool = False, progress: Callable[[str], None] | None = None
) -> CalibrationRun:
    """Measure what ``extras`` asks for on the run's device and add it to ``run.profile`` (and its notes)."""
    if run.profile is None:
        raise CalibrationError("the layer calibration produced no profile to add to")
    tick = progress or (lambda _msg: None)
    notes: list[str] = []
    update: dict[str, object] = {}
    host = None
    if run.device == "cpu" and not extras.host:
        notes.append("--no-host: on --device cpu the host is the device, so it is measured anyway")
    if extras.host or run.device == "cpu":
        from moeplan.calibration.host import measure_host

        host, more = measure_host(run.shape, run.dtype if run.device == "cpu" else "fp32", quick, tick)
        notes += more
        update["host"] = host.model_dump()
    if extras.full_step:
        from moeplan.calibration.step import measure_step

        if extras.attention is None:
            raise CalibrationError("--full-step needs the model's attention shape")
        bandwidth, source = run.copy_gb_s, "copy"
        if run.device == "cpu" and host is not None:
            bandwidth, source = host.ram_gb_s, "host RAM read"
        step, more = measure_step(
            run.shape,
            extras.attention,
            bandwidth,
            source,
            extras.layers,
            extras.context,
            dtype=run.dtype,
            device=run.device,
            quick=quick,
            available_bytes=free_bytes(run.device),
            progress=tick,
        )
        notes += more
        update["step"] = step.model_dump()
    if extras.collectives:
        from moeplan.calibration.collectives import measure_collectives

        coll, more = measure_collectives(
            run.device, extras.world_size, extras.collectives_hidden, quick=quick, progress=tick
        )
        notes += more
        update["collectives"] = coll.model_dump()
    run.notices.extend(notes)
    data = run.profile.model_dump()
    data.update(update)
    data["notes"] = [*run.notices, *run.skipped]
    run.profile = CalibrationProfile.model_validate(data)
    return run


def profile_key(run: CalibrationRun) -> str:
    """The cache name of a run's profile: its catalogue GPU, ``cpu`` on a CPU (:func:`load_host_profile` looks
    there first), else the device's name as a slug (``Apple GPU (arm64)``: ``apple-gpu-arm64``)."""
    import re

    if run.profile is not None and run.profile.gpu_id:
        return run.profile.gpu_id
    if run.device == "cpu":
        return HOST_PROFILE_ID
    return re.sub(r"[^a-z0-9]+", "-", run.device_name.lower()).strip("-") or "device"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.3f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def _size(nbytes: float) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.4g} {unit}"
    return f"{nbytes:,.0f} B"


def describe(profile: CalibrationProfile) -> list[str]:
    """Plain lines for the host, full-step and collectives measurements a profile holds (none: no lines)."""
    lines: list[str] = []
    if (h := profile.host) is not None:
        e = h.expert_shape
        rates = ", ".join(
            f"{v:,.1f} at {t} token{'s' if t > 1 else ''}" for t, v in sorted(h.expert_gflops_decode.items())
        )
        lines.append(
            f"host: {h.cpu}, {h.sockets} socket{'s' if h.sockets > 1 else ''}, {h.threads} threads: RAM read "
            f"{h.ram_gb_s:,.1f} GB/s ({h.ram_gb_s_per_socket:,.1f} per socket; {_size(h.ram_buffer_bytes)} buffer)"
        )
        lines.append(
            f"host expert GEMM ({e.get('hidden')} x {e.get('expert_ffn')}, {h.dtype}), GFLOP/s: {rates}, "
            f"{h.expert_gflops_prefill:,.1f} at 512 tokens"
        )
    if (s := profile.step) is not None:
        parts = "; ".join(
            f"batch {p.batch}: {_ms(p.seconds)} a step, {_ms(p.seconds_per_layer)} a layer for "
            f"{_size(p.bytes_per_layer)}, fixed {_ms(p.overhead_s_per_layer)} a layer"
            for p in s.points
        )
        lines.append(f"full step ({s.layers} layers, {s.context:,}-token cache, vs {s.bandwidth_source} "
                     f"{s.bandwidth_gb_s:,.1f} GB/s): {parts}")  # fmt: skip
    if (c := profile.collectives) is not None:
        lines.append(f"collectives: {c.backend}, {c.world_size} processes on {c.device}, hidden {c.hidden} ({c.dtype})")
        for op, fit in (("all_reduce", c.all_reduce), ("all_to_all", c.all_to_all)):
            points = ", ".join(f"{_size(p.bytes)} {_ms(p.seconds)}" for p in c.points if p.op == op)
            if fit is None:
                lines.append(f"  {op}: not measured")
                continue
            how = " (point-to-point)" if op == "all_to_all" and c.all_to_all_emulated else ""
            lines.append(
                f"  {op}{how}: latency {fit.alpha_s * 1e6:,.1f} us, bus {fit.bus_gb_s:,.2f} GB/s; measured {points}"
            )
    return lines
