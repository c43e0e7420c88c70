"""``moeplan serve``: the command's options and flow (the model is :mod:`moeplan.deploy.serving`, the search
:mod:`moeplan.plans.serve`)."""

from __future__ import annotations

from typing import Annotated

import typer

from moeplan.cli_options import (
    MAX_GPUS,
    ConcurrencyOpt,
    DetailOpt,
    FormatOpt,
    GpuFileOpt,
    JsonOpt,
    MaxRunningOpt,
    MinBitsOpt,
    ModelArg,
    MtpAcceptOpt,
    MtpDraftsOpt,
    MtpOpt,
    RateOpt,
    RecvIntervalOpt,
    TopOpt,
    check_format,
    emit,
    handled_errors,
    listed,
    number,
    progress_bar,
    whole,
)


def serve(
    model: ModelArg,
    isl: Annotated[
        str, typer.Option("--isl", help="Prompt tokens per request (1k, 8k accepted; 512-2k: drawn uniformly).")
    ] = "1k",
    osl: Annotated[str, typer.Option("--osl", help="Output tokens per request (a range as for --isl).")] = "1k",
    concurrency: ConcurrencyOpt = None,
    rate: RateOpt = None,
    prefix_hit: Annotated[
        float, typer.Option("--prefix-hit", help="Share of prompt tokens cached (0-1).", callback=number(0, 0.999))
    ] = 0.0,
    ttft: Annotated[
        float | None,
        typer.Option("--ttft", help="Target time to first token, seconds.", callback=number(0, 1e6, above=True)),
    ] = None,
    tpot: Annotated[
        float | None,
        typer.Option("--tpot", help="Target time per output token, milliseconds.", callback=number(0, 1e7, above=True)),
    ] = None,
    e2e: Annotated[
        float | None,
        typer.Option("--e2e", help="Target end-to-end latency, seconds.", callback=number(0, 1e7, above=True)),
    ] = None,
    gpu: Annotated[list[str] | None, typer.Option("--gpu", help="Only these GPU kinds (repeat).")] = None,
    quant: Annotated[list[str] | None, typer.Option("--quant", help="Only these formats (repeat).")] = None,
    min_bits: MinBitsOpt = None,
    engine: Annotated[
        list[str] | None, typer.Option("--engine", help="vllm (default), sglang, tensorrt-llm, atom (repeat).")
    ] = None,
    max_gpus: Annotated[
        int, typer.Option("--max-gpus", help="The most GPUs one deployment may use.", **whole(1, MAX_GPUS))
    ] = 16,
    mtp: MtpOpt = False,
    mtp_accept: MtpAcceptOpt = None,
    mtp_drafts: MtpDraftsOpt = None,
    recv_interval: RecvIntervalOpt = 1,
    max_running: MaxRunningOpt = None,
    sort: Annotated[
        str, typer.Option("--sort", help="cost ($ per million output tokens) or energy (joules per output token).")
    ] = "cost",
    top: TopOpt = 10,
    gpu_file: GpuFileOpt = None,
    detail: DetailOpt = False,
    fmt: FormatOpt = "table",
    json_out: JsonOpt = False,
) -> None:
    """The cheapest deployments that serve a traffic load within latency targets, and the Pareto front.

    Examples:

      moeplan serve qwen3-30b-a3b --isl 1k --osl 1k --concurrency 64 --tpot 50 --ttft 1

      moeplan serve deepseek-v3 --isl 2k --osl 1k --rate 4 --gpu h200 --gpu b200 --gpu mi300x

      moeplan serve deepseek-r1 --isl 8k --osl 1k --concurrency 256 --gpu h100 --gpu h200 --engine sglang --max-gpus 32
      (prefill on one kind, decode on the other, among the splits tried)

      moeplan serve gpt-oss-120b --concurrency 32 --engine vllm --engine sglang --json

      moeplan serve qwen3-235b-a22b --concurrency 128 --tpot 50 --sort energy
    """
    from moeplan.deploy.deployment import Traffic
    from moeplan.plans.serve import ServeRequest, plan_serve
    from moeplan.units import parse_length

    with handled_errors():
        check_format(fmt)
        traffic = Traffic.of_lengths(parse_length(isl, "--isl"), parse_length(osl, "--osl"), concurrency, rate,
                                     prefix_hit)  # fmt: skip
        req = ServeRequest(
            model=model, traffic=traffic, ttft_s=ttft, tpot_s=tpot / 1e3 if tpot is not None else None, e2e_s=e2e,
            gpus=tuple(listed(gpu, "--gpu")), quants=tuple(listed(quant, "--quant")),
            engines=tuple(listed(engine, "--engine") or ("vllm",)),
            max_gpus=max_gpus,
            gpu_file=gpu_file, mtp=mtp, mtp_accept=mtp_accept, mtp_drafts=mtp_drafts, min_bits=min_bits,
            recv_interval=recv_interval, max_running=max_running, sort=sort,
        )  # fmt: skip
        with progress_bar("serving configurations") as tick:
            result = plan_serve(req, tick)
    from moeplan.output.serving import print_serve, serve_json, serve_table

    emit(json_out, fmt, lambda: serve_json(result, top), lambda: serve_table(result, top),
         lambda console: print_serve(console, result, top, detail), "serve")  # fmt: skip
