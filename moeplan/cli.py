"""The typer app: parse, call one plan (:mod:`moeplan.plans`), render.  The only module that prints or exits."""

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

# moeplan uses no pydantic plugins; not scanning the installed packages for them saves start-up time.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from moeplan.cli_calibrate import calibrate
from moeplan.cli_options import (
    MAX_GPUS,
    BackendOpt,
    BatchOpt,
    BatchOverlapOpt,
    CalibrationOpt,
    ConcurrencyOpt,
    ContextLoadOpt,
    ContextOpt,
    CpuOpt,
    DetailOpt,
    DpAttentionOpt,
    EnergyOpt,
    EngineOpt,
    EplbOpt,
    EpOpt,
    FormatOpt,
    GpuBandwidthOpt,
    GpuFileOpt,
    GpuMemoryOpt,
    GpuOpt,
    GpuTflopsOpt,
    IslOpt,
    JsonOpt,
    KtThresholdOpt,
    KvOpt,
    MaxRunningOpt,
    MinBitsOpt,
    ModelArg,
    MtpAcceptOpt,
    MtpDraftsOpt,
    MtpOpt,
    MultiEngineOpt,
    MultiGpuOpt,
    MultiQuantOpt,
    NoFaOpt,
    NumGpusOpt,
    OffloadOpt,
    OslOpt,
    PcieOpt,
    PpOpt,
    PriceOpt,
    PromptOpt,
    QuantOpt,
    RamBwOpt,
    RamOpt,
    RateOpt,
    RecvIntervalOpt,
    RtrOpt,
    SkewOpt,
    StateOpt,
    TopOpt,
    TpOpt,
    UbatchOpt,
    check_format,
    emit,
    emit_json,
    handled_errors,
    listed,
    number,
    progress_bar,
    serving_load,
    stdout_console,
    whole,
)
from moeplan.cli_serve import serve
from moeplan.errors import InputError
from moeplan.version import __version__

if TYPE_CHECKING:
    from rich.console import Console


app = typer.Typer(
    name="moeplan",
    help="VRAM, speed and cost planner for Mixture-of-Experts language models.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"moeplan {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """VRAM, speed and cost planner for Mixture-of-Experts language models."""


@app.command()
def estimate(
    model: ModelArg,
    gpu: GpuOpt = None,
    gpu_memory: GpuMemoryOpt = None,
    gpu_bandwidth: GpuBandwidthOpt = None,
    gpu_tflops: GpuTflopsOpt = None,
    num_gpus: NumGpusOpt = None,
    tp: TpOpt = None,
    ep: EpOpt = None,
    pp: PpOpt = None,
    quant: QuantOpt = None,
    kv_dtype: KvOpt = "auto",
    state_dtype: StateOpt = "auto",
    context: ContextLoadOpt = None,
    batch: BatchOpt = 1,
    engine: EngineOpt = "auto",
    backend: BackendOpt = "auto",
    ubatch: UbatchOpt = None,
    eplb: EplbOpt = False,
    dp_attention: DpAttentionOpt = False,
    batch_overlap: BatchOverlapOpt = False,
    mtp_accept: MtpAcceptOpt = None,
    mtp_drafts: MtpDraftsOpt = None,
    isl: IslOpt = None,
    osl: OslOpt = None,
    concurrency: ConcurrencyOpt = None,
    rate: RateOpt = None,
    recv_interval: RecvIntervalOpt = 1,
    max_running: MaxRunningOpt = None,
    no_flash_attention: NoFaOpt = False,
    mtp: MtpOpt = False,
    prompt: PromptOpt = None,
    routing_skew: SkewOpt = 0.0,
    price: PriceOpt = None,
    energy_price: EnergyOpt = None,
    gpu_file: GpuFileOpt = None,
    calibration: CalibrationOpt = None,
    offload_experts: OffloadOpt = None,
    ram: RamOpt = None,
    cpu: CpuOpt = None,
    ram_bandwidth: RamBwOpt = None,
    pcie: PcieOpt = "gen4",
    explain: Annotated[bool, typer.Option("--explain", help="Show each figure's formula, inputs and sources.")] = False,
    detail: DetailOpt = False,
    fmt: FormatOpt = "table",
    json_out: JsonOpt = False,
) -> None:
    """One deployment: parameters, memory per GPU, whether it fits, FLOPs, speed and cost.

    With --offload-experts auto|N (and --ram, --cpu or --ram-bandwidth) it plans routed experts in system RAM,
    as `moeplan offload` does.

    Examples:

      moeplan estimate mixtral-8x22b --gpu a100

      moeplan estimate deepseek-v3 --gpu h200 --num-gpus 8 --context 32k --json

      moeplan estimate qwen3-30b-a3b --gpu rtx-4090 --quant Q4_K_M --engine llama.cpp

      moeplan estimate ./Qwen3-30B-A3B/config.json --gpu h100 --quant experts=fp8
    """
    from moeplan.deploy.deployment import DEFAULT_CONTEXT, EstimateRequest
    from moeplan.plans.estimate import estimate as run_estimate
    from moeplan.units import parse_tokens

    if offload_experts is not None:
        if recv_interval != 1 or max_running is not None:
            flag = "--recv-interval" if recv_interval != 1 else "--max-running"
            with handled_errors():
                raise InputError(f"{flag} shapes a serving load, which expert offload does not plan",
                                 f"drop {flag}")  # fmt: skip
        offload(
            model, gpu, gpu_memory, gpu_bandwidth, gpu_tflops, num_gpus or 1, ram, cpu, ram_bandwidth, pcie,
            context or "8k", batch, quant, kv_dtype if kv_dtype != "auto" else "f16", offload_experts, prompt,
            price=price, gpu_file=gpu_file, fmt=fmt, json_out=json_out, backend=backend, ubatch=ubatch, detail=detail,
            engine=engine if engine.strip().lower() != "auto" else "llama.cpp",
        )  # fmt: skip
        return
    with handled_errors():
        check_format(fmt)
        host = [
            name for name, v in (("--ram", ram), ("--cpu", cpu), ("--ram-bandwidth", ram_bandwidth)) if v is not None
        ]
        if host:
            raise InputError(
                f"{' and '.join(host)} describe{'s' if len(host) == 1 else ''} the host for expert offload, "
                "which this estimate does not use",
                "add --offload-experts auto or --offload-experts N, or use `moeplan offload`",
            )
        ctx = parse_tokens(context) if context else None
        load = serving_load(isl, osl, concurrency, rate, recv_interval, max_running, ctx, batch)
        request = EstimateRequest(
            model=model,
            gpu=gpu,
            gpu_memory_gib=gpu_memory,
            gpu_bandwidth_gb_s=gpu_bandwidth,
            gpu_tflops=gpu_tflops,
            num_gpus=num_gpus,
            tp=tp,
            ep=ep,
            pp=pp,
            quant=quant,
            kv_dtype=kv_dtype,
            state_dtype=state_dtype,
            context=ctx or max(DEFAULT_CONTEXT, load.longest if load else 0),
            batch=batch,
            engine=engine,
            backend=backend,
            ubatch=ubatch,
            eplb=eplb,
            dp_attention=dp_attention,
            batch_overlap=batch_overlap,
            mtp_accept=mtp_accept,
            mtp_drafts=mtp_drafts,
            traffic=load,
            recv_interval=recv_interval,
            max_running=max_running,
            flash_attention=not no_flash_attention,
            mtp=mtp,
            prompt=parse_tokens(prompt, "--prompt") if prompt is not None else None,
            routing_skew=routing_skew,
            price_usd_per_hour=price,
            energy_usd_per_kwh=energy_price,
            gpu_file=gpu_file,
            calibration=calibration,
        )
        result = run_estimate(request)
    from moeplan.output.plain import estimate_table

    def rich(console: "Console") -> None:
        from moeplan.output.rich_estimate import print_estimate, print_explain

        print_estimate(console, result, detail)
        if explain:
            print_explain(console, result)

    if fmt != "table" and not json_out:  # a report or spreadsheet carries no notes: the warnings go to stderr
        for note in result.assumptions:
            if note.startswith("warning:"):
                typer.echo(note, err=True)
    emit(json_out, fmt, result.to_json, lambda: estimate_table(result), rich, "estimate")


@app.command()
def compare(
    models: Annotated[
        list[str], typer.Argument(help="Two or more models (or one, with several --quant/--gpu).", metavar="MODEL...")
    ],
    gpu: MultiGpuOpt = None,
    quant: MultiQuantOpt = None,
    engine: MultiEngineOpt = None,
    num_gpus: NumGpusOpt = None,
    kv_dtype: KvOpt = "auto",
    state_dtype: StateOpt = "auto",
    context: ContextOpt = "8k",
    batch: BatchOpt = 1,
    price: PriceOpt = None,
    gpu_file: GpuFileOpt = None,
    fmt: FormatOpt = "table",
    json_out: JsonOpt = False,
) -> None:
    """The same figures side by side, the best of each row marked: dense vs MoE, format vs format, GPU vs GPU.

    Examples:

      moeplan compare mixtral-8x7b llama-3.1-70b --gpu h100

      moeplan compare qwen3-30b-a3b --quant bf16 --quant fp8 --quant Q4_K_M --gpu 4090

      moeplan compare deepseek-v3 --gpu h200 --gpu mi300x --num-gpus 8 --context 32k
    """
    from moeplan.deploy.deployment import EstimateRequest
    from moeplan.plans.compare import compare as run_compare
    from moeplan.plans.compare import compare_requests
    from moeplan.units import parse_tokens

    with handled_errors():
        check_format(fmt)
        base = EstimateRequest(
            model=models[0],
            num_gpus=num_gpus,
            kv_dtype=kv_dtype,
            state_dtype=state_dtype,
            context=parse_tokens(context),
            batch=batch,
            price_usd_per_hour=price,
            gpu_file=gpu_file,
        )
        requests = compare_requests(
            models, listed(gpu, "--gpu"), listed(quant, "--quant"), listed(engine, "--engine"), base
        )
        comparison = run_compare(requests)
    from moeplan.output.plain import compare_table

    def rich(console: "Console") -> None:
        from moeplan.output.rich_compare import print_compare

        print_compare(console, comparison)

    emit(json_out, fmt, comparison.to_json, lambda: compare_table(comparison), rich, "compare")


@app.command()
def recommend(
    model: ModelArg,
    context: ContextLoadOpt = None,
    batch: BatchOpt = 1,
    quant: Annotated[str, typer.Option("--quant", help="'any' tries several formats; or one scheme.")] = "any",
    min_bits: MinBitsOpt = None,
    max_gpus: Annotated[int, typer.Option("--max-gpus", help="At most this many GPUs.", **whole(1, MAX_GPUS))] = 32,
    budget: Annotated[
        float | None, typer.Option("--budget", help="Purchase budget, USD.", callback=number(0, 1e15, above=True))
    ] = None,
    min_tokens_per_s: Annotated[
        float | None,
        typer.Option("--min-tokens-per-s", help="Decode speed per sequence at least this.", callback=number(0, 1e9)),
    ] = None,
    sort: Annotated[str, typer.Option("--sort", help="cost ($ per million tokens), purchase, or speed.")] = "cost",
    top: TopOpt = 15,
    only_gpu: Annotated[
        list[str] | None, typer.Option("--gpu", help="Only these accelerators (repeat the option).")
    ] = None,
    kv_dtype: KvOpt = "auto",
    state_dtype: StateOpt = "auto",
    isl: IslOpt = None,
    osl: OslOpt = None,
    concurrency: ConcurrencyOpt = None,
    rate: RateOpt = None,
    gpu_file: GpuFileOpt = None,
    detail: DetailOpt = False,
    fmt: FormatOpt = "table",
    json_out: JsonOpt = False,
) -> None:
    """What to rent or buy: every GPU kind x count x format that fits, ranked (under a load with --concurrency).

    Examples:

      moeplan recommend deepseek-v3 --context 32k

      moeplan recommend qwen3-235b-a22b --quant Q4_K_M --sort purchase --budget 20000

      moeplan recommend gpt-oss-120b --min-tokens-per-s 100 --sort speed
    """
    from moeplan.deploy.deployment import DEFAULT_CONTEXT
    from moeplan.plans.recommend import recommend as run_recommend
    from moeplan.units import parse_tokens

    with handled_errors():
        check_format(fmt)
        if top < 1:
            raise InputError(f"--top must be at least 1, not {top}")
        asked = parse_tokens(context) if context else None
        load = serving_load(isl, osl, concurrency, rate, context=asked, batch=batch)
        ctx = asked or max(DEFAULT_CONTEXT, load.longest if load else 0)  # under a load, its longest request's
        with progress_bar("configurations") as tick:
            spec, candidates = run_recommend(
                model, ctx, batch, quant, max_gpus, budget, min_tokens_per_s,
                sort,  # type: ignore[arg-type]
                gpu_file, kv_dtype, gpus=tuple(listed(only_gpu, "--gpu")), state_dtype=state_dtype,
                traffic=load, min_bits=min_bits, progress=tick,
            )  # fmt: skip
    limit = spec.arch.max_context
    if limit and ctx > limit:
        typer.echo(f"warning: {ctx:,} tokens exceed {spec.name}'s trained context of {limit:,} "
                   "(max_position_embeddings); figures assume it runs anyway (RoPE scaling)", err=True)  # fmt: skip
    from moeplan.output.plain import recommend_table

    def rich(console: "Console") -> None:
        from moeplan.output.rich_tables import print_recommend
        from moeplan.plans.recommend import nothing_fits

        print_recommend(console, spec.name, candidates, sort, top, detail, lambda: nothing_fits(
            model, ctx, batch, quant, max_gpus, budget, min_tokens_per_s, listed(only_gpu, "--gpu")
        ), load)  # fmt: skip

    emit(json_out, fmt, lambda: [c.to_json() for c in candidates[:top]], lambda: recommend_table(candidates[:top]),
         rich, "recommend")  # fmt: skip


@app.command()
def gpus(
    gpu_file: GpuFileOpt = None, detail: DetailOpt = False, fmt: FormatOpt = "table", json_out: JsonOpt = False
) -> None:
    """The accelerator catalogue: usable memory, bandwidth, dense TFLOP/s, prices, aliases.

    Example:

      moeplan gpus --json
    """
    from moeplan.hardware.gpus import load_gpus

    with handled_errors():
        check_format(fmt)
        catalogue = list(load_gpus(gpu_file))
    from moeplan.output.plain import gpus_table
    from moeplan.records import to_dict

    def rich(console: "Console") -> None:
        from moeplan.output.rich_tables import print_gpus

        print_gpus(console, catalogue, detail)

    emit(json_out, fmt, lambda: [to_dict(g) for g in catalogue], lambda: gpus_table(catalogue), rich, "gpus")


app.command()(calibrate)
app.command()(serve)


@app.command()
def offload(
    model: ModelArg,
    gpu: GpuOpt = None,
    gpu_memory: GpuMemoryOpt = None,
    gpu_bandwidth: GpuBandwidthOpt = None,
    gpu_tflops: GpuTflopsOpt = None,
    num_gpus: Annotated[int, typer.Option("--num-gpus", help="GPUs in the box.", **whole(1, 64))] = 1,
    ram: RamOpt = None,
    cpu: CpuOpt = None,
    ram_bandwidth: RamBwOpt = None,
    pcie: PcieOpt = "gen4",
    context: ContextOpt = "8k",
    batch: BatchOpt = 1,
    quant: QuantOpt = None,
    kv_dtype: Annotated[str, typer.Option("--kv-dtype", help="llama.cpp KV type: f16, q8_0, q4_0...")] = "f16",
    offload_experts: Annotated[
        str, typer.Option("--offload-experts", help="auto (fastest that fits) or N: experts of layers 0..N-1 in RAM.")
    ] = "auto",
    prompt: PromptOpt = None,
    engine: Annotated[
        str, typer.Option("--engine", help="llama.cpp, ik_llama.cpp (ik), or ktransformers (kt).")
    ] = "llama.cpp",
    backend: BackendOpt = "auto",
    ubatch: UbatchOpt = None,
    host_profile: Annotated[
        str | None,
        typer.Option("--host-profile", help="Calibrated host (file, or auto: `moeplan calibrate --device cpu`)."),
    ] = None,
    kt_prefill_threshold: KtThresholdOpt = None,
    rtr: RtrOpt = None,
    price: PriceOpt = None,
    gpu_file: GpuFileOpt = None,
    detail: DetailOpt = False,
    fmt: FormatOpt = "table",
    json_out: JsonOpt = False,
) -> None:
    """Plan a CPU+GPU box: which layers' experts go to RAM, VRAM and RAM used, speed, and the flags to run it.

    Examples:

      moeplan offload gpt-oss-120b --gpu 4090 --ram 64 --cpu 9950x

      moeplan offload qwen3-30b-a3b --gpu 3060 --ram 32 --cpu ddr4-3200x2 --context 32k

      moeplan offload deepseek-r1 --gpu 4090 --ram 512 --cpu epyc-9654 --quant Q2_K --json
    """
    from moeplan.plans.offload import OffloadRequest, plan_offload
    from moeplan.units import parse_tokens

    with handled_errors():
        check_format(fmt)
        if ram is None:
            raise InputError("offload needs --ram GIB (the system RAM installed)")
        request = OffloadRequest(
            model=model, gpu=gpu, gpu_memory_gib=gpu_memory, gpu_bandwidth_gb_s=gpu_bandwidth, gpu_tflops=gpu_tflops,
            num_gpus=num_gpus,
            ram_gib=ram, cpu=cpu, ram_bandwidth_gb_s=ram_bandwidth, pcie=pcie, context=parse_tokens(context),
            batch=batch, quant=quant, kv_dtype=kv_dtype, offload=offload_experts,
            prompt=parse_tokens(prompt, "--prompt") if prompt is not None else None, price_usd_per_hour=price,
            gpu_file=gpu_file, engine=engine, backend=backend, ubatch=ubatch, host_profile=host_profile,
            kt_prefill_threshold=kt_prefill_threshold, rtr=rtr,
        )  # fmt: skip
        result = plan_offload(request)
    from moeplan.output.plain import offload_table

    def rich(console: "Console") -> None:
        from moeplan.output.rich_tables import print_offload

        print_offload(console, result, detail)

    emit(json_out, fmt, result.to_json, lambda: offload_table(result), rich, "offload")


@app.command()
def cpus(detail: DetailOpt = False, fmt: FormatOpt = "table", json_out: JsonOpt = False) -> None:
    """Host platforms for expert offload: CPUs with memory channels, speed and bandwidth.

    Example:

      moeplan cpus --json
    """
    from moeplan.hardware.hosts import load_cpus

    with handled_errors():
        check_format(fmt)
        catalogue = list(load_cpus())
    from moeplan.output.plain import cpus_table
    from moeplan.records import to_dict

    def rich(console: "Console") -> None:
        from moeplan.output.rich_tables import print_cpus

        print_cpus(console, catalogue, detail)

    emit(json_out, fmt, lambda: [to_dict(c) for c in catalogue], lambda: cpus_table(catalogue), rich, "cpus")


@app.command()
def models(detail: DetailOpt = False, fmt: FormatOpt = "table", json_out: JsonOpt = False) -> None:
    """The model catalogue: id, total and active parameters, experts, top-k and source.

    Example:

      moeplan models --json
    """
    from moeplan.sources.catalog import catalog_rows

    with handled_errors():
        check_format(fmt)
        rows = catalog_rows()
    from moeplan.output.plain import models_table

    def rich(console: "Console") -> None:
        from moeplan.output.rich_tables import print_models

        print_models(console, rows, detail)

    emit(json_out, fmt, lambda: [r.to_json() for r in rows], lambda: models_table(rows), rich, "models")


@app.command()
def quants(json_out: JsonOpt = False) -> None:
    """Weight formats with their storage bits per weight (scales included), and llama.cpp's GGUF mixes.

    Example:

      moeplan quants --json
    """
    from moeplan.formats.gguf_mix import FTYPES
    from moeplan.formats.schemes import catalog_formats

    formats, mixes = catalog_formats(), sorted(FTYPES)
    if json_out:
        rows = [{"name": n, "bits_per_weight_4096": round(b, 4), "description": d} for n, b, d in formats]
        emit_json("quants", {"formats": rows, "gguf_mixes": mixes})
        return
    from moeplan.output.rich_tables import print_quants

    print_quants(stdout_console(), formats, mixes)


@app.command()
def spec(model: ModelArg) -> None:
    """Print a model's spec as YAML: the starting point for a spec of your own.

    Example:

      moeplan spec ./my-model/config.json > my-model.yaml
    """
    from moeplan.sources.catalog import resolve_model, spec_to_yaml

    with handled_errors():
        typer.echo(spec_to_yaml(resolve_model(model)), nl=False)


def main() -> None:
    """Console-script entry point: usage errors are one line too (typer would draw a box around them)."""
    # click's base exception, found through typer's public BadParameter (typer vendors click from 0.27 on)
    click_error: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    try:
        code = app(standalone_mode=False)
    except click_error as e:
        if type(e).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
            ctx = getattr(e, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            print(f"error: {getattr(e, 'format_message', e.__str__)()}{hint}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 2))
    except typer.Abort:  # pragma: no cover - interactive only
        sys.exit(1)
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
