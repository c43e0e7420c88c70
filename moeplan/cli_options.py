"""What every command of the CLI shares: its options, declared once; one renderer switch; one error handler."""

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from moeplan.errors import InputError, MoeplanError

if TYPE_CHECKING:
    from rich.console import Console

    from moeplan.deploy.deployment import Traffic


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout, and nothing else.")]
DetailOpt = Annotated[
    bool, typer.Option("--detail", help="Every table and plot after the verdict (the default is a short summary).")
]
FormatOpt = Annotated[
    str, typer.Option("--format", help="table (default), markdown or csv, for reports and spreadsheets.")
]


def check_format(fmt: str) -> None:
    from moeplan.output.plain import FORMATS

    if fmt not in FORMATS:
        raise InputError(f"--format '{fmt}' is not one of {', '.join(FORMATS)}", "or use --json")


def _plain(table: object, fmt: str) -> None:
    from moeplan.output.plain import render_plain

    typer.echo(render_plain(table, fmt), nl=False)  # type: ignore[arg-type]


def emit(
    json_out: bool,
    fmt: str,
    as_json: Callable[[], object],
    as_table: Callable[[], object] | None,
    as_rich: "Callable[[Console], None]",
    command: str,
) -> None:
    """One result, three renderings: ``--json`` (inside the versioned envelope of
    :mod:`moeplan.output.json_schema`), ``--format markdown|csv``, or rich tables."""
    if json_out and fmt != "table":
        with handled_errors():
            raise InputError(f"--json and --format {fmt} ask for two outputs", "give one of them")
    if json_out:
        emit_json(command, as_json())
    elif fmt != "table" and as_table is not None:
        _plain(as_table(), fmt)
    else:
        as_rich(stdout_console())


def emit_json(command: str, data: object) -> None:
    """``data`` as ``command``'s ``--json`` output: enveloped, and strict JSON (a non-finite number is an error,
    never ``NaN`` or ``Infinity`` on stdout)."""
    from moeplan.output.json_schema import envelope
    from moeplan.output.plain import to_json_text

    with handled_errors():
        typer.echo(to_json_text(envelope(command, data)))


ModelArg = Annotated[
    str,
    typer.Argument(
        help="A catalogue id or alias (mixtral-8x22b), a config.json, a model folder, a .gguf file, "
        "hf:ORG/NAME[@REV], or a YAML spec.",
        metavar="MODEL",
        show_default=False,
    ),
]
GpuOpt = Annotated[
    str | None, typer.Option("--gpu", help="An accelerator from the catalogue (a100, h100, rtx-4090, mi300x, ...).")
]


def stdout_console() -> "Console":
    """Rich output on stdout; ASCII bars and borders where stdout cannot encode UTF-8."""
    from moeplan.output.terminal import make_console

    return make_console()


@contextlib.contextmanager
def handled_errors() -> Iterator[None]:
    """Turn a MoeplanError into one line on stderr and exit 1 (the traceback only with MOEPLAN_DEBUG=1)."""
    try:
        yield
    except MoeplanError as e:
        if os.environ.get("MOEPLAN_DEBUG") == "1":
            raise
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=1) from None


def number(low: float, high: float, *, above: bool = False) -> Callable[[float | None], float | None]:
    """An option callback that refuses what is not a finite number in ``[low, high]`` (``(low, high]`` with
    ``above``): ``inf`` and ``nan`` parse as floats, and ``nan`` passes every comparison, so a range alone lets it
    through to switch filters off or to print ``NaN`` in a table."""

    def check(value: float | None) -> float | None:
        if value is None:
            return None
        if not math.isfinite(value) or value < low or value > high or (above and value <= low):
            sign = ">" if above else ">="
            raise typer.BadParameter(f"{value} is not a finite number {sign} {low:g} and <= {high:g}")
        return value

    return check


def whole(low: int, high: int) -> dict[str, int]:
    """Bounds of a count option (typer's ``min``/``max``): ``--batch 2**63`` is refused, not priced."""
    return {"min": low, "max": high}


# The upper bounds are far beyond any machine (a million GiB of GPU memory, a million GPUs); they only stop
# numbers that overflow the arithmetic or are typing slips.
MAX_GPUS = 1_000_000
MAX_SEQUENCES = 10_000_000
MAX_MTP_DRAFTS = 8
"""The most draft tokens a step ``--mtp-drafts`` takes (engines run 1-4 through MTP layers; more is a slip)."""
MAX_RECV_INTERVAL = 1000
"""The largest ``--recv-interval``: SGLang counts a prefill step as 1,000 decode steps towards its next poll, so a
longer interval would stop it taking requests right after a prefill."""

GpuMemoryOpt = Annotated[
    float | None,
    typer.Option(
        "--gpu-memory",
        help="GPU memory in GiB, for an accelerator not in the catalogue.",
        callback=number(0, 1e6, above=True),
    ),
]
GpuBandwidthOpt = Annotated[
    float | None, typer.Option("--gpu-bandwidth", help="Memory bandwidth in GB/s.", callback=number(0, 1e7, above=True))
]
GpuTflopsOpt = Annotated[
    float | None, typer.Option("--gpu-tflops", help="Dense bf16 TFLOP/s.", callback=number(0, 1e7, above=True))
]
NumGpusOpt = Annotated[
    int | None,
    typer.Option("--num-gpus", help="How many GPUs; without it, the fewest that fit.", **whole(1, MAX_GPUS)),
]
TpOpt = Annotated[int | None, typer.Option("--tp", help="Tensor-parallel size.", **whole(1, MAX_GPUS))]
EpOpt = Annotated[
    int | None, typer.Option("--ep", help="Expert-parallel size (within the TP group).", **whole(1, MAX_GPUS))
]
PpOpt = Annotated[int | None, typer.Option("--pp", help="Pipeline-parallel size.", **whole(1, MAX_GPUS))]
QuantOpt = Annotated[
    str | None,
    typer.Option(
        "--quant",
        help="Weight format (bf16, fp8, gptq-int4, awq-int4, nf4, mxfp4, nvfp4, Q4_K_M, ...) or per class: "
        "experts=mxfp4,attention=bf16. Default: the checkpoint's own (offload: llama.cpp's usual GGUF mix, or under "
        "KTransformers an fp8 or int4 checkpoint as stored).",
    ),
]
KvOpt = Annotated[
    str, typer.Option("--kv-dtype", help="KV cache format: auto (bf16; f16 under llama.cpp), fp8, q8_0, q4_0, ...")
]
StateOpt = Annotated[
    str,
    typer.Option(
        "--state-dtype",
        help="Recurrent state of linear-attention/SSM layers: auto (the engine's rule: llama.cpp fp32; vLLM the "
        "checkpoint's mamba_ssm_dtype, else the model's), fp32, bf16.",
    ),
]
ContextOpt = Annotated[str, typer.Option("--context", help="Tokens per sequence (prompt + output): 4096, 32k, 1M.")]
ContextLoadOpt = Annotated[
    str | None,
    typer.Option(
        "--context",
        help="Tokens per sequence (prompt + output): 4096, 32k, 1M; default 8k, or under a "
        "load --isl + --osl where that is longer.",
        show_default=False,
    ),
]
BatchOpt = Annotated[int, typer.Option("--batch", help="Concurrent sequences.", **whole(1, MAX_SEQUENCES))]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="vllm, sglang, tensorrt-llm, atom (AMD Instinct), llama.cpp (ollama), ik_llama.cpp (ik), mlx, "
        "transformers, or auto (llama.cpp for GGUF and Apple/SoC, else vllm).",
    ),
]
NoFaOpt = Annotated[
    bool, typer.Option("--no-flash-attention", help="llama.cpp without flash attention (compute buffer grows).")
]
MtpOpt = Annotated[
    bool,
    typer.Option("--mtp", help="Serve with the multi-token-prediction layers: their memory, and drafts they verify."),
]
OffloadOpt = Annotated[
    str | None,
    typer.Option("--offload-experts", help="auto or N: keep routed experts of the first N layers in RAM (llama.cpp)."),
]
RamOpt = Annotated[
    float | None, typer.Option("--ram", help="System RAM installed, GiB.", callback=number(0, 1e6, above=True))
]
CpuOpt = Annotated[
    str | None, typer.Option("--cpu", help="Host CPU (`moeplan cpus`) or memory config such as ddr5-5600x2.")
]
MtpAcceptOpt = Annotated[
    float | None,
    typer.Option(
        "--mtp-accept",
        help="With --mtp: acceptance of each draft token (default: the model's published figure, else 0.85).",
        callback=number(0, 0.999),
    ),
]
MtpDraftsOpt = Annotated[
    int | None,
    typer.Option(
        "--mtp-drafts",
        help="With --mtp: draft tokens per step (default: one per MTP layer; engines reuse the last for more).",
        **whole(1, MAX_MTP_DRAFTS),
    ),
]
MinBitsOpt = Annotated[
    float | None,
    typer.Option(
        "--min-bits",
        help="Only formats whose routed experts keep at least this many bits per weight (8: fp8, Q8_0 and up).",
        callback=number(0, 64, above=True),
    ),
]
EplbOpt = Annotated[
    bool, typer.Option("--eplb", help="With --ep: redundant experts balance the ranks (12.5% more expert memory).")
]
DpAttentionOpt = Annotated[
    bool,
    typer.Option(
        "--dp-attention",
        help="Attention data-parallel over the TP group, experts spread over it (SGLang --enable-dp-attention, "
        "vLLM --data-parallel-size with expert parallelism).",
    ),
]
BatchOverlapOpt = Annotated[
    bool,
    typer.Option(
        "--batch-overlap",
        help="With --dp-attention: two micro-batches a step, one's expert all-to-all under the other's compute "
        "(SGLang --enable-two-batch-overlap, vLLM --enable-dbo).",
    ),
]
IslOpt = Annotated[
    str | None, typer.Option("--isl", help="Serving: prompt tokens per request (with --concurrency/--rate; 1k).")
]
OslOpt = Annotated[str | None, typer.Option("--osl", help="Serving: output tokens per request (1k).")]


def serving_load(
    isl: str | None,
    osl: str | None,
    concurrency: int | None,
    rate: float | None,
    recv_interval: int = 1,
    max_running: int | None = None,
    context: int | None = None,
    batch: int = 1,
) -> "Traffic | None":
    """The serving load of ``--isl --osl --concurrency|--rate`` (lengths 1k by default), or None without one;
    lengths (or a scheduler poll interval) given without a load are refused rather than ignored, and so are
    requests longer than ``context`` (``--context``): the engine launched with it would refuse them, and the
    estimate would size its memory for one length and serve another."""
    from moeplan.deploy.deployment import Traffic
    from moeplan.units import parse_length

    if concurrency is None and rate is None:
        if isl is not None or osl is not None:
            raise InputError("--isl and --osl describe a serving load", "add --concurrency C or --rate R")
        if recv_interval != 1:
            raise InputError("--recv-interval changes serving latency under a load", "add --concurrency C or --rate R")
        if max_running is not None:
            raise InputError("--max-running caps the requests running under a load", "add --concurrency C or --rate R")
        return None
    if batch != 1:  # the load sets the running batch: a second batch would size memory for one and serve another
        raise InputError(f"--batch {batch:,} and a serving load (--concurrency/--rate) both set the running "
                         "sequences", "drop --batch: the load's steady state sets the batch")  # fmt: skip
    load = Traffic.of_lengths(parse_length(isl or "1k", "--isl"), parse_length(osl or "1k", "--osl"), concurrency, rate)
    if context is not None and load.longest > context:
        need = load.longest
        raise InputError(f"requests of {need:,} tokens (--isl + --osl) exceed --context {context:,}",
                         f"give --context {need:,} or more")  # fmt: skip
    return load


ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        help="Serving load: requests in flight (closed loop); or --rate.",
        **whole(1, MAX_SEQUENCES),
    ),
]
TopOpt = Annotated[int, typer.Option("--top", help="Rows to show.", **whole(1, 100_000))]
RecvIntervalOpt = Annotated[
    int,
    typer.Option(
        "--recv-interval",
        help="Serving with SGLang: decode steps between polls for new requests (--scheduler-recv-interval; 1).",
        **whole(1, MAX_RECV_INTERVAL),
    ),
]
KtThresholdOpt = Annotated[
    int | None,
    typer.Option(
        "--kt-prefill-threshold",
        help="KTransformers: prefill passes of at least this many tokens run layer by layer on the GPU, smaller "
        "ones with their experts on the CPU (--kt-gpu-prefill-token-threshold; 400).",
        **whole(1, 1 << 24),
    ),
]
RtrOpt = Annotated[
    bool | None,
    typer.Option(
        "--rtr/--no-rtr",
        help="ik_llama.cpp: repack the RAM experts at load (-rtr: faster CPU kernels, never streamed to the GPU); "
        "default: where the CPU computes prefill.",
    ),
]
MaxRunningOpt = Annotated[
    int | None,
    typer.Option(
        "--max-running",
        help="Serving: requests one instance runs at once (vLLM/ATOM --max-num-seqs, SGLang --max-running-requests, "
        "TensorRT-LLM max_batch_size, llama.cpp --parallel); default: the engine's own (vLLM 1,024 a rank, "
        "TensorRT-LLM 2,048 a rank, ATOM 512, llama-server 4; SGLang's KV cache room).",
        **whole(1, MAX_SEQUENCES),
    ),
]
RateOpt = Annotated[
    float | None,
    typer.Option("--rate", help="Serving load: requests per second (open loop).", callback=number(0, 1e7, above=True)),
]
BackendOpt = Annotated[
    str,
    typer.Option("--backend", help="llama.cpp's GPU backend: cuda, rocm, vulkan, metal, sycl, or auto (by vendor)."),
]
UbatchOpt = Annotated[
    int | None,
    typer.Option(
        "--ubatch",
        **whole(1, 10_000_000),
        help="Tokens per prefill pass: llama.cpp -ub (default 512; RAM experts stream to the GPU from 32 tokens, "
        "under ik_llama.cpp from 32 x experts / active), KTransformers --chunked-prefill-size (16384), "
        "vLLM/SGLang max-num-batched-tokens (8192; vLLM 2048 under 70 GiB and on A100).",
    ),
]
RamBwOpt = Annotated[
    float | None,
    typer.Option(
        "--ram-bandwidth", help="RAM bandwidth, GB/s (instead of --cpu).", callback=number(0, 1e6, above=True)
    ),
]
PcieOpt = Annotated[str, typer.Option("--pcie", help="PCIe generation of the GPU slot: gen3, gen4, gen5.")]
PromptOpt = Annotated[
    str | None,
    typer.Option("--prompt", help="Prompt tokens for prefill and time to first token (default: context - 512)."),
]
SkewOpt = Annotated[
    float,
    typer.Option(
        "--routing-skew", help="Zipf exponent of expert popularity; 0 = uniform routing.", callback=number(0, 4)
    ),
]
PriceOpt = Annotated[
    float | None,
    typer.Option("--price", help="USD per GPU-hour, overriding the catalogue's.", callback=number(0, 1e6, above=True)),
]
EnergyOpt = Annotated[
    float | None,
    typer.Option("--energy-price", help="USD per kWh: adds GPUs x TDP to the hourly cost.", callback=number(0, 1e4)),
]
GpuFileOpt = Annotated[
    str | None, typer.Option("--gpu-file", help="YAML adding or overriding GPUs (default ~/.config/moeplan/gpus.yaml).")
]
CalibrationOpt = Annotated[
    str | None, typer.Option("--calibration", help="Profile from `moeplan calibrate` (default: the stored one).")
]


def listed(values: list[str] | None, option: str) -> list[str]:
    """A repeatable option's values, each of which may also be a comma-separated list: ``--gpu h100,h200`` is
    ``--gpu h100 --gpu h200`` (no GPU id, format or engine name has a comma); a format's per-class overrides stay
    with it (``--quant nvfp4,experts=awq-int4,fp8`` is two formats, the first with its experts in AWQ).  An empty
    item (``--gpu ,`` or ``--gpu h200,``) is refused: it would otherwise leave the whole catalogue, or less than was
    meant."""
    out = []
    for x in values or ():
        items = [v.strip() for v in x.split(",")]
        if not all(items):
            raise InputError(
                f"{option} '{x}' has an empty item", "give names separated by commas, or repeat the option"
            )
        if option == "--quant":  # per-class overrides (experts=nvfp4) join the format before them: one scheme
            merged: list[str] = []
            for i in items:
                if "=" in i and merged:
                    merged[-1] += f",{i}"
                else:
                    merged.append(i)
            items = merged
        out += items
    return out


MultiGpuOpt = Annotated[list[str] | None, typer.Option("--gpu", help="Accelerator; repeat for one per column.")]
MultiQuantOpt = Annotated[list[str] | None, typer.Option("--quant", help="Weight format; repeat for one per column.")]
MultiEngineOpt = Annotated[list[str] | None, typer.Option("--engine", help="Engine; repeat for one per column.")]


@contextlib.contextmanager
def progress_bar(what: str) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on stderr, shown on a terminal only, for a search; yields ``tick(done, total)``."""
    from rich.console import Console
    from rich.progress import Progress

    err = Console(stderr=True)
    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(what, total=1)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield tick
