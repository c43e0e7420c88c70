"""The other commands as rich tables: compare, recommend, offload, calibrate and the catalogues.

Computes nothing: every figure, and every mark such as "cheapest", comes from the result objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from moeplan.calibration.run import CalibrationRun
    from moeplan.deploy.results import Candidate, Comparison, OffloadResult
    from moeplan.hardware.gpus import GpuSpec
    from moeplan.hardware.hosts import CpuSpec
    from moeplan.sources.catalog import CatalogRow

from moeplan.output.formatting import fmt_count, fmt_gib, fmt_rate, fmt_usd, fmt_value


def print_models(console: Console, rows: list[CatalogRow]) -> None:
    table = Table(title=f"{len(rows)} models in the catalogue", title_justify="left")
    for col in ("id", "total", "active", "experts", "top-k"):
        table.add_column(col, justify="left" if col == "id" else "right", no_wrap=True)
    table.add_column("also known as", overflow="fold")
    for r in rows:
        table.add_row(
            r.id,
            fmt_count(r.total),
            fmt_count(r.active),
            str(r.num_experts) if r.num_experts else "dense",
            str(r.top_k) if r.top_k else "",
            ", ".join(r.aliases[:3]),
        )
    console.print(table)
    console.print("[dim]sources and published figures: moeplan models --json (or --format csv)[/dim]")


def print_quants(console: Console, formats: list[tuple[str, float, str]], mixes: list[str]) -> None:
    """``(name, bits per weight of a 4096 x 4096 matrix, description)`` per format, and the GGUF mixes."""
    table = Table(
        title="Weight formats (bits per weight of a 4096 x 4096 matrix, scales included)", title_justify="left"
    )
    table.add_column("format", no_wrap=True)
    table.add_column("bpw", justify="right")
    table.add_column("what is stored")
    for name, bpw, description in formats:
        table.add_row(name, f"{round(bpw, 4):.3f}", description)
    console.print(table)
    console.print("GGUF mixes (llama.cpp rules per tensor): " + ", ".join(mixes))
    console.print(
        "Publisher labels (UD-Q4_K_XL, Q4_K_XL, Q2_K_L, UD-IQ1_S, ...) are read as the mix they start from; a label "
        "without its .gguf gives its weights as the range of the files published under it"
    )
    console.print("Per class: --quant experts=mxfp4,attention=bf16 (or a base first: --quant fp8,experts=mxfp4)")


def print_compare(console: Console, comparison: Comparison) -> None:
    """The comparison table: one column per estimate, the winner of each row in green with a star."""
    results, rows = comparison.results, comparison.rows
    table = Table(title="Comparison (★ = best in the row)", title_justify="left")
    table.add_column("")
    for r in results:
        asked = r.request.model
        named = f" ({asked})" if r.spec.origin == "catalogue" and asked.lower() != r.spec.id else ""
        head = f"{r.spec.name}{named}\n{r.memory.scheme}, {r.memory.engine}"
        if r.fit is not None:
            head += f"\n{r.fit.num_gpus} x {r.fit.gpu}"
        table.add_column(head, justify="right")
    for row in rows:
        winners = row.winners
        cells = []
        for i, v in enumerate(row.values):
            text = fmt_value(v, row.unit)
            if i in winners:
                text = f"[bold green]★ {text}[/bold green]"
            elif row.eligible is not None and not row.eligible[i] and v is not None:
                text = f"[dim]({text})[/dim]"
            cells.append(text)
        table.add_row(row.label, *cells)
    console.print(table)
    req = results[0].request
    console.print(f"[dim]at {req.context:,} tokens x {req.batch} sequences; figures per column as `estimate`[/dim]")
    if any(r.fit is not None and not r.fit.fits for r in results):
        console.print("[dim](speed and cost in brackets: as if the deployment fitted, which it does not)[/dim]")
    for r in results:
        for note in r.assumptions:
            if note.startswith("warning:"):
                console.print(f"[yellow]{r.request.model}: {note}[/yellow]")


def print_recommend(console: Console, model: str, candidates: list[Candidate], sort: str, limit: int) -> None:
    """Ranked configurations with the plan's marks (cheapest per token, fastest)."""
    if not candidates:
        console.print(
            f"[bold red]nothing fits[/bold red] {model} under these limits: raise --budget, --max-gpus or lower "
            "--min-tokens-per-s, try --quant any, or a shorter --context"
        )
        return
    cheapest = next((c for c in candidates if "cheapest" in c.marks), None)
    fastest = next((c for c in candidates if "fastest" in c.marks), None)
    table = Table(
        title=f"{model}: {len(candidates)} configuration{'s' if len(candidates) != 1 else ''} fit"
        f"{'s' if len(candidates) == 1 else ''}; best {min(limit, len(candidates))} by {sort}",
        title_justify="left",
        expand=console.width < 120,
    )
    narrow = console.width < 120
    cols = ["#", "hardware", "format / engine", "GiB/GPU", "tok/s (band)", "$/h", "$/M out", "buy"]
    if narrow:
        cols.remove("$/h")
        cols.remove("GiB/GPU")
    for col in cols:
        left = col in ("hardware", "format / engine")
        width = {"hardware": 16, "format / engine": 9}.get(col)
        table.add_column(col, justify="left" if left else "right", overflow="fold", no_wrap=col == "#", min_width=width)
    shown = candidates[:limit]
    for extra in (cheapest, fastest):
        if extra is not None and extra not in shown:
            shown.append(extra)
    for c in shown:
        mark = ""
        if c is cheapest:
            mark += " [green]cheapest/token[/green]"
        if c is fastest:
            mark += " [cyan]fastest[/cyan]"
        lo, hi = c.tokens_per_s_range
        box = f" + {c.ram_gib:g} GiB RAM, {c.host}, --n-cpu-moe {c.experts_on_cpu_layers}" if c.ram_gib else ""
        cells = [
            str(candidates.index(c) + 1),
            f"{c.num_gpus} x {c.gpu.id}{box}{mark}",
            f"{c.quant} {c.engine}",
            f"{c.per_gpu_bytes / 2**30:,.0f}/{c.usable_bytes / 2**30:,.0f}",
            f"{fmt_rate(c.tokens_per_s)} ({fmt_rate(lo)}-{fmt_rate(hi)})",
            fmt_usd(c.usd_per_hour),
            fmt_usd(c.usd_per_million_output_tokens),
            fmt_usd(c.purchase_usd),
        ]
        if narrow:
            del cells[5]
            del cells[3]
        table.add_row(*cells)
    console.print(table)
    console.print(
        "[dim]prices: catalogue cloud price per GPU-hour (typical, else the middle of its range) and purchase "
        "price; override with --gpu-file. $/M out at the given batch. GPU + RAM boxes (llama.cpp, experts in RAM): "
        "GPU, RAM at the catalogue's dated $/GB and the CPU where its price is known; board and PSU not "
        "counted.[/dim]"
    )


def print_gpus(console: Console, gpus: list[GpuSpec]) -> None:
    table = Table(title=f"{len(gpus)} accelerators", title_justify="left")
    for col in ("id", "name", "usable GiB", "GB/s", "bf16 TFLOP/s", "fp8", "$/GPU-h", "buy", "aliases"):
        table.add_column(col, justify="left" if col in ("id", "name", "aliases") else "right", overflow="fold")
    for g in gpus:
        fp8 = g.dense_tflops("fp8")
        table.add_row(
            g.id,
            g.name,
            f"{g.usable_memory_gib:,.1f}",
            f"{g.bandwidth_gb_s:,.0f}",
            f"{g.dense_tflops('bf16'):,.0f}" if g.dense_tflops("bf16") else "-",
            f"{fp8:,.0f}" if fp8 else "-",
            fmt_usd(g.cloud_usd_per_hour.expected) if g.cloud_usd_per_hour else "-",
            fmt_usd(g.purchase_usd.approx) if g.purchase_usd else "-",
            ", ".join(g.aliases[:3]),
        )
    console.print(table)


def print_calibration(console: Console, run: CalibrationRun, saved_to: str) -> None:
    """The calibration report: device, microbenchmarks, per-token-count table, fitted factors."""
    s, gpu, prof = run.shape, run.gpu, run.profile
    console.print(
        f"[bold]{run.device_name}[/bold] ({run.device}, {run.dtype})"
        + (f" = catalogue [bold]{gpu.id}[/bold]" if gpu else " (no catalogue entry: figures without peaks)")
    )
    console.print(
        f"layer: hidden {s.hidden}, {s.experts} experts of {s.expert_ffn}, top-{s.top_k}"
        + (f", shared {s.shared_ffn}" if s.shared_ffn else "")
        + f"; dispatch {run.dispatch}; output matches the reference (error {run.reference_error:.1e})"
    )
    peak_bw = f" of {gpu.bandwidth_gb_s:,.0f} ({run.copy_gb_s / gpu.bandwidth_gb_s:.0%})" if gpu else ""
    peak_tf = gpu.dense_tflops(run.dtype if run.dtype != "fp32" else "fp32") if gpu else None
    tf = f" of {peak_tf:,.0f} ({run.gemm_tflops / peak_tf:.0%})" if peak_tf else ""
    console.print(f"memory copy {run.copy_gb_s:,.1f} GB/s{peak_bw}; dense GEMM {run.gemm_tflops:,.2f} TFLOP/s{tf}")
    table = Table(title="MoE layer", title_justify="left")
    for col in ("tokens", "time", "± spread", "TFLOP/s", "GB/s", "of peak", "moeplan predicted", "error"):
        table.add_column(col, justify="right")
    for m in run.measurements:
        share = prof.moe_efficiency.get(m.tokens) if prof else None
        pred = m.predicted_seconds
        table.add_row(
            f"{m.tokens:,}",
            f"{m.seconds * 1e3:,.3f} ms",
            f"{m.seconds_spread * 1e3:,.3f}",
            f"{m.achieved_tflops:,.2f}",
            f"{m.achieved_gb_s:,.1f}",
            f"{share:.1%}" if share is not None else "-",
            f"{pred * 1e3:,.3f} ms" if pred else "-",
            f"{pred / m.seconds - 1:+.0%}" if pred else "-",
        )
    console.print(table)
    if run.weights_bytes_measured is not None:
        err = run.weights_bytes_measured / run.weights_bytes_predicted - 1
        console.print(
            f"layer weights: measured {run.weights_bytes_measured / 2**20:,.1f} MiB, moeplan "
            f"{run.weights_bytes_predicted / 2**20:,.1f} MiB ({err:+.1%})"
        )
    peaks = [
        (m.tokens, m.peak_memory_bytes, m.predicted_memory_bytes)
        for m in run.measurements
        if m.peak_memory_bytes is not None and m.predicted_memory_bytes
    ]
    for tokens, peak, predicted in peaks[-1:]:
        console.print(
            f"working memory at {tokens:,} tokens: measured {peak / 2**20:,.1f} MiB, predicted "
            f"{predicted / 2**20:,.1f} MiB ({peak / predicted - 1:+.0%})"
        )
    if prof is not None:
        bw = f"{prof.bandwidth_efficiency:.0%}" if prof.bandwidth_efficiency else "n/a"
        ce = f"{prof.compute_efficiency:.0%}" if prof.compute_efficiency else "n/a"
        console.print(f"fitted: bandwidth efficiency {bw}, compute efficiency (eta_max) {ce}")
    console.print(f"profile saved to {saved_to}" + ("" if gpu else " (not applied to estimates: no catalogue GPU)"))


def print_offload(console: Console, result: OffloadResult) -> None:
    """Offload plan: verdict, placement, memory on both sides, speed, trade-off table and command lines."""
    p, host, perf = result.chosen, result.host, result.offload_performance
    spec = result.spec
    assert host.gpu is not None
    console.print(
        f"[bold]{spec.name}[/bold] {result.quant} on {host.num_gpus} x {host.gpu.name} + {host.ram_gib:g} GiB RAM "
        f"({host.cpu.name}, {host.cpu.bandwidth_gb_s:,.0f} GB/s)"
    )
    where = f"{result.request.context:,} tokens x {result.request.batch}"
    if p.fits:
        lo, hi = perf.decode_tokens_per_s_range
        n = len(p.cpu_moe_layers)
        flag = f" (--n-cpu-moe {p.cpu_layers})" if result.memory.engine == "llama.cpp" else ""
        console.print(
            f"[bold green]FITS[/bold green] ({where}) with the experts of {n} of {spec.arch.num_moe_layers} MoE "
            f"layers in RAM{flag}: ~{fmt_rate(perf.decode_tokens_per_s)} tok/s "
            f"({fmt_rate(lo)}-{fmt_rate(hi)}), prefill {fmt_rate(perf.prefill_tokens_per_s)} tok/s "
            f"({p.prefill_path}), first token in {perf.time_to_first_token_s:,.1f} s"
        )
    else:
        shortfall = result.fit.shortfall if result.fit is not None and result.fit.shortfall else ()
        console.print(f"[bold red]DOES NOT FIT[/bold red] ({where}): " + "; ".join(shortfall))
    table = Table(title="Memory", title_justify="left")
    for col in ("", "used", "capacity", "holds"):
        table.add_column(col, justify="right" if col in ("used", "capacity") else "left")
    table.add_row(
        "VRAM per GPU", fmt_gib(p.vram_bytes_per_gpu), fmt_gib(p.vram_capacity_bytes),
        f"weights {fmt_gib(p.gpu_weights_bytes / host.num_gpus)}, KV {fmt_gib(p.kv_bytes / host.num_gpus)}, buffers",
    )  # fmt: skip
    table.add_row(
        "RAM", fmt_gib(p.ram_bytes), fmt_gib(p.ram_capacity_bytes),
        f"experts of {len(p.cpu_moe_layers)} layers {fmt_gib(p.cpu_expert_bytes)}, token embedding",
    )  # fmt: skip
    console.print(table)
    parts = perf.step_seconds
    if parts:
        console.print(
            f"[dim]decode step: GPU {parts['gpu'] * 1e3:,.1f} ms + CPU {parts['cpu'] * 1e3:,.1f} ms (RAM "
            f"{parts['cpu_memory'] * 1e3:,.1f}, compute {parts['cpu_compute'] * 1e3:,.1f})[/dim]"
        )
    trade = Table(title="Context vs experts in RAM vs speed (best placement at each context)", title_justify="left")
    for col in ("context", "--n-cpu-moe", "VRAM / GPU", "RAM", "tok/s"):
        trade.add_column(col, justify="right")
    for row in result.tradeoff:
        tps = row.decode_tokens_per_s
        trade.add_row(
            f"{row.context:,}", str(row.experts_on_cpu_layers), fmt_gib(row.vram_bytes_per_gpu),
            fmt_gib(row.ram_bytes), fmt_rate(tps) if tps else "[red]does not fit[/red]",
        )  # fmt: skip
    console.print(trade)
    for engine, cmd in result.commands.items():
        console.print(f"[bold]{engine}[/bold]: {cmd}", soft_wrap=True)


def print_cpus(console: Console, cpus: list[CpuSpec]) -> None:
    table = Table(title=f"{len(cpus)} host platforms", title_justify="left")
    for col in ("id", "name", "memory", "GB/s", "cores", "fp32 GFLOP/s", "aliases"):
        table.add_column(col, justify="right" if col in ("GB/s", "cores", "fp32 GFLOP/s") else "left")
    for c in cpus:
        mem = f"{c.memory_type}-{c.memory_mt_s}" if c.memory_mt_s else c.memory_type
        if c.memory_mt_s and c.memory_channels:
            mem += f" x{c.memory_channels}"
        table.add_row(c.id, c.name, mem, f"{c.bandwidth_gb_s:,.0f}", str(c.cores), f"{c.fp32_gflops:,.0f}",
                      ", ".join(c.aliases[:3]))  # fmt: skip
    console.print(table)
    console.print("[dim]or give a memory configuration: --cpu ddr5-5600x2 (type-speed x channels)[/dim]")
