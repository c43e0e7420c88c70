"""``moeplan calibrate``: the command's options and flow (the timing itself lives in :mod:`moeplan.calibration`)."""

from __future__ import annotations

from typing import Annotated

import typer

from moeplan.cli_options import JsonOpt, emit_json, handled_errors, stdout_console
from moeplan.errors import InputError


def calibrate(
    device: Annotated[str, typer.Option("--device", help="auto, cuda, mps or cpu.")] = "auto",
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="bf16, fp16 or fp32 (default: bf16 on GPUs, fp32 on CPUs).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Take the layer's shapes from this model (default qwen3-30b-a3b).")
    ] = None,
    hidden: Annotated[
        int | None, typer.Option("--hidden", help="Hidden size (instead of --model).", min=1, max=1048576)
    ] = None,
    expert_ffn: Annotated[
        int | None, typer.Option("--expert-ffn", help="Width of one expert.", min=1, max=1048576)
    ] = None,
    experts: Annotated[int | None, typer.Option("--experts", help="Routed experts.", min=1, max=65536)] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Experts per token.", min=1, max=65536)] = None,
    shared_ffn: Annotated[
        int, typer.Option("--shared-ffn", help="Total width of shared experts.", min=0, max=1048576)
    ] = 0,
    tokens: Annotated[str | None, typer.Option("--tokens", help="Token counts to time, e.g. 1,8,64,512,4096.")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer token counts and repeats.")] = False,
    gpu: Annotated[
        str | None, typer.Option("--gpu", help="Catalogue id of this device when its name is not recognised.")
    ] = None,
    save: Annotated[str | None, typer.Option("--save", help="Write the profile here (default: the cache).")] = None,
    host: Annotated[
        bool, typer.Option("--host/--no-host", help="Also time the host's RAM and CPU expert GEMM (always on a CPU).")
    ] = True,
    collectives: Annotated[
        bool, typer.Option("--collectives", help="Time all-reduce and all-to-all across this box's devices.")
    ] = False,
    world_size: Annotated[
        int | None, typer.Option("--world-size", help="Collective ranks (GPUs; CPU: 2).", min=2, max=64)
    ] = None,
    full_step: Annotated[bool, typer.Option("--full-step", help="Time a decode step through whole layers.")] = False,
    layers: Annotated[
        int | None, typer.Option("--layers", help="Layers of --full-step (default 4).", min=1, max=1024)
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="Cached tokens per layer (default 1024).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a synthetic MoE layer on this machine and store the efficiencies later estimates use.

    Also times the host's RAM and CPU experts (a CPU's profile is cpu.json), on request collectives and a full step.

    Examples:

      moeplan calibrate

      moeplan calibrate --model mixtral-8x7b --tokens 1,64,4096

      moeplan calibrate --device cpu --hidden 512 --expert-ffn 256 --experts 16 --top-k 2 --quick

      moeplan calibrate --collectives --full-step --model deepseek-v3
    """
    from pathlib import Path

    from rich.console import Console

    from moeplan.cache import profile_path
    from moeplan.calibration.run import (
        DEFAULT_TOKENS,
        QUICK_TOKENS,
        LayerShape,
        parse_token_list,
        run_calibration,
        shape_from_model,
    )
    from moeplan.calibration.suite import Extras, describe, profile_key, run_extras
    from moeplan.hardware.profiles import check_writable, merged_with_stored, save_profile

    err = Console(stderr=True, no_color=None)
    with handled_errors():
        # a CPU run keyed to a GPU would become that GPU's profile in the cache: refused before the run where
        # --device cpu says so, after it where --device auto found no accelerator
        cpu_keyed = InputError(f"a CPU run keyed to --gpu {gpu} would replace that GPU's calibration in the cache",
                               "give --save FILE to keep it apart, or drop --gpu")  # fmt: skip
        if save:
            check_writable(Path(save).expanduser())
        elif gpu and device.strip().lower() == "cpu":
            raise cpu_keyed
        manual = (hidden, expert_ffn, experts, top_k)
        if any(v is not None for v in manual):
            if any(v is None for v in manual) or model is not None:
                raise InputError("give --hidden, --expert-ffn, --experts and --top-k together (or --model)")
            shape = LayerShape(hidden, expert_ffn, experts, top_k, shared_ffn)  # type: ignore[arg-type]
        else:
            shape = shape_from_model(model or "qwen3-30b-a3b")
        counts = parse_token_list(tokens) if tokens else (QUICK_TOKENS if quick else DEFAULT_TOKENS)
        extras = Extras.from_options(
            device, shape, None if hidden else model or "qwen3-30b-a3b", model is not None or hidden is not None,
            host, collectives, world_size, full_step, layers, context,
        )  # fmt: skip
        from rich.progress import Progress

        with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("calibrating", total=3 + len(counts) + extras.ticks())
            run = run_calibration(shape, counts, device, dtype, quick, gpu, lambda msg: bar.advance(task))
            run = run_extras(run, extras, quick, lambda msg: bar.advance(task))
        assert run.profile is not None
        if gpu and run.device == "cpu" and not save:
            raise cpu_keyed
        target = Path(save).expanduser() if save else profile_path(profile_key(run))
        written = save_profile(merged_with_stored(run.profile, target), target)
    for note in run.notices + run.skipped:
        err.print(f"[yellow]notice:[/yellow] {note}")
    if json_out:
        emit_json("calibrate", {"profile": run.profile.model_dump(), "saved_to": str(written), "skipped": run.skipped})
        return
    from moeplan.output.rich_tables import print_calibration

    print_calibration(out := stdout_console(), run, str(written))
    for line in describe(run.profile):
        out.print(line, markup=False)
