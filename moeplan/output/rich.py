"""Results -> rich tables and JSON text.  Computes nothing: every figure comes from the result objects."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from moeplan.deploy.plan import CONTEXT_SEARCH_LIMIT, EstimateResult
from moeplan.sources.catalog import CatalogRow

_KIND_LABELS = {
    "attention": "attention",
    "routed_experts": "routed experts",
    "shared_experts": "shared experts",
    "dense_mlp": "dense MLP",
    "router": "router",
    "embedding": "embedding",
    "lm_head": "output head",
    "norm": "norms",
    "other": "other",
}


def fmt_count(n: int) -> str:
    """46702792704 -> '46.70B'; 882874368 -> '882.9M'."""
    if n >= 10**9:
        return f"{n / 1e9:,.2f}B"
    if n >= 10**6:
        return f"{n / 1e6:,.1f}M"
    if n >= 10**3:
        return f"{n / 1e3:,.1f}K"
    return str(n)


def print_estimate(console: Console, result: EstimateResult) -> None:
    spec, p = result.spec, result.params
    arch = spec.arch
    kind = (
        f"MoE, {arch.moe.num_experts} experts, top-{arch.moe.top_k}"
        + (f", {arch.moe.num_shared_experts} shared" if arch.moe.num_shared_experts else "")
        if arch.moe
        else "dense"
    )
    asked = result.request.model
    alias = (
        f"  [dim]('{asked}' is an alias)[/dim]"
        if asked.lower() not in (spec.id, spec.origin) and spec.origin == "catalogue"
        else ""
    )
    console.print(f"[bold]{spec.name}[/bold]  ({spec.architecture}, {kind}, {arch.num_layers} layers){alias}")
    console.print(
        f"[bold]{fmt_count(p.total)}[/bold] parameters, [bold]{fmt_count(p.active)}[/bold] active per token "
        f"({p.active_share:.1%})"
    )
    _print_verdict(console, result)
    for note in result.assumptions:
        if note.startswith("warning:"):
            console.print(f"[yellow]{note}[/yellow]")
    table = Table(title="Parameters by kind", title_justify="left")
    table.add_column("kind")
    table.add_column("total", justify="right")
    table.add_column("active", justify="right")
    table.add_column("share of total", justify="right")
    for key, value in p.breakdown.items():
        if not value:
            continue
        table.add_row(_KIND_LABELS[key], fmt_count(value), fmt_count(p.active_breakdown[key]), f"{value / p.total:.1%}")
    table.add_section()
    table.add_row(
        "[bold]total[/bold]", f"[bold]{fmt_count(p.total)}[/bold]", f"[bold]{fmt_count(p.active)}[/bold]", "100.0%"
    )
    if p.mtp:
        table.add_row("[dim]MTP layers (outside total)[/dim]", f"[dim]{fmt_count(p.mtp)}[/dim]", "", "")
    if p.vision:
        table.add_row("[dim]vision tower (outside total)[/dim]", f"[dim]{fmt_count(p.vision)}[/dim]", "", "")
    console.print(table)
    if spec.published:
        pub = spec.published
        active = f", {pub.active_b:g}B active" if pub.active_b else ""
        if pub.active_b and pub.excludes:
            active += f" (without the {' and '.join(_KIND_LABELS[k] for k in pub.excludes)})"
        console.print(f"[dim]published: {pub.total_b:g}B total{active} ({pub.source})[/dim]")
    ck = spec.checkpoint
    if ck is not None:
        mix = ", ".join(f"{k} {v / max(1, sum(ck.dtypes.values())):.0%}" for k, v in sorted(ck.dtypes.items()))
        console.print(
            f"checkpoint: {ck.source}: {ck.tensor_count:,} tensors in {ck.files} file(s), "
            f"{fmt_gib(ck.total_bytes)} ({mix})" + (f"; native format {ck.native_format}" if ck.native_format else "")
        )
        for note in result.assumptions:
            if note.startswith(("the checkpoint", "weights memory: the checkpoint")):
                console.print(f"[yellow]note:[/yellow] {note}")
    _print_memory(console, result)
    _print_speed(console, result)


def fmt_rate(x: float) -> str:
    """Tokens per second with sensible precision."""
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"


def fmt_usd(x: float | None) -> str:
    """$27,500; $499; $2.49; $0.0349."""
    if x is None:
        return "n/a"
    return f"${x:,.0f}" if x >= 100 else f"${x:,.2f}" if x >= 0.1 else f"${x:,.4f}"


def speed_line(result: EstimateResult) -> str | None:
    """'~53 tok/s per sequence (40-67), 53 tok/s in total, $x/M output tokens' or None without a GPU."""
    perf, cost = result.performance, result.cost
    if perf is None:
        return None
    lo, hi = perf.decode_tokens_per_s_range
    out = f"~{fmt_rate(perf.decode_tokens_per_s)} tok/s per sequence ({fmt_rate(lo)}-{fmt_rate(hi)})"
    if result.request.batch > 1:
        out += f", {fmt_rate(perf.throughput_tokens_per_s)} tok/s in total"
    if cost is not None and cost.usd_per_million_output_tokens is not None:
        out += f", {fmt_usd(cost.usd_per_million_output_tokens)} per million output tokens"
    return out


def _print_speed(console: Console, result: EstimateResult) -> None:
    perf, cost, flops = result.performance, result.cost, result.flops
    if flops is not None:
        console.print(
            f"FLOPs per token: decode {flops.decode_per_token / 1e9:,.1f} G at {result.request.context:,} tokens "
            f"(attention scores {flops.decode_by_kind.get('attention_scores', 0) / 1e9:,.1f} G), "
            f"prefill {flops.prefill_per_token / 1e9:,.1f} G"
        )
    if perf is None:
        console.print("[dim]speed and cost need a GPU: add --gpu (or --gpu-memory/--gpu-bandwidth)[/dim]")
        return
    table = Table(title="Speed (expected, with the low-high band)", title_justify="left")
    table.add_column("figure")
    table.add_column("expected", justify="right")
    table.add_column("band", justify="right")
    lo, hi = perf.decode_tokens_per_s_range
    table.add_row("decode, tokens/s per sequence", fmt_rate(perf.decode_tokens_per_s), f"{fmt_rate(lo)}-{fmt_rate(hi)}")
    lo, hi = perf.throughput_tokens_per_s_range
    table.add_row(
        f"decode, tokens/s all {result.request.batch} sequences",
        fmt_rate(perf.throughput_tokens_per_s),
        f"{fmt_rate(lo)}-{fmt_rate(hi)}",
    )
    lo, hi = perf.prefill_tokens_per_s_range
    table.add_row("prefill, tokens/s", fmt_rate(perf.prefill_tokens_per_s), f"{fmt_rate(lo)}-{fmt_rate(hi)}")
    lo, hi = perf.time_to_first_token_s_range
    table.add_row(
        f"time to first token ({perf.prompt_tokens:,}-token prompt)",
        f"{perf.time_to_first_token_s:,.2f} s",
        f"{lo:,.2f}-{hi:,.2f} s",
    )
    if cost is not None:
        table.add_section()
        table.add_row("cost per hour", fmt_usd(cost.usd_per_hour), "")
        table.add_row("per million output tokens", fmt_usd(cost.usd_per_million_output_tokens), "")
        table.add_row("per million input tokens", fmt_usd(cost.usd_per_million_input_tokens), "")
        table.add_row("to buy the GPUs", fmt_usd(cost.purchase_usd), "")
    console.print(table)
    step = perf.step_seconds
    console.print(
        f"[dim]decode step {step['total'] * 1e3:,.2f} ms: memory {step['memory'] * 1e3:,.2f}, compute "
        f"{step['compute'] * 1e3:,.2f}, fixed {step['fixed'] * 1e3:,.2f}, communication "
        f"{step['communication'] * 1e3:,.2f} ms ({perf.bound}-bound); "
        + (f"calibrated: {perf.calibration}" if perf.calibration else "engine defaults, not calibrated")
        + "[/dim]"
    )
    if perf.by_batch:
        bt = Table(title="Decode speed vs batch", title_justify="left")
        for col in ("batch", "tok/s per sequence", "tok/s total", "", "bound", "fits"):
            bt.add_column(col, justify="right" if col else "left")
        top = max(r.throughput_tokens_per_s for r in perf.by_batch)
        for row in perf.by_batch:
            colour = "" if row.fits else "[dim]"
            end = "" if row.fits else "[/dim]"
            bt.add_row(
                f"{colour}{row.batch}{end}",
                f"{colour}{fmt_rate(row.tokens_per_s)}{end}",
                f"{colour}{fmt_rate(row.throughput_tokens_per_s)}{end}",
                _hbar(row.throughput_tokens_per_s, top, 24),
                f"{colour}{row.bound}{end}",
                "yes" if row.fits else "[red]no[/red]",
            )
        console.print(bt)


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


def fmt_gib(n: float) -> str:
    """Bytes -> GiB with two decimals."""
    return f"{n / 1024**3:,.2f} GiB"


_LIMITS = {
    "memory": "",
    "model": " (the model's trained limit)",
    "search": f" (moeplan searches up to {CONTEXT_SEARCH_LIMIT:,})",
}


def _print_verdict(console: Console, result: EstimateResult) -> None:
    fit, mem = result.fit, result.memory
    req = result.request
    where = f"{req.context:,} tokens x {req.batch}, {mem.scheme} weights, {mem.kv_dtype} KV, {mem.engine}"
    if fit is None:
        console.print(f"Memory for {where}: [bold]{fmt_gib(mem.per_gpu_bytes)}[/bold] on one GPU (no --gpu given)")
        return
    gpus = f"{fit.num_gpus} x {fit.gpu_name}"
    speed = speed_line(result)
    if speed is not None:
        where += f"; {speed}"
    if fit.fits:
        console.print(
            f"[bold green]FITS[/bold green] on {gpus} ({where}): {fmt_gib(mem.per_gpu_bytes)} of "
            f"{fmt_gib(mem.usable_bytes_per_gpu or 0)} per GPU, {fmt_gib(fit.headroom_bytes)} headroom; "
            f"longest context at batch {req.batch}: {fit.max_context:,} tokens{_LIMITS[fit.max_context_limit]}"
        )
    else:
        console.print(
            f"[bold red]DOES NOT FIT[/bold red] on {gpus} ({where}): {fmt_gib(mem.per_gpu_bytes)} needed of "
            f"{fmt_gib(mem.usable_bytes_per_gpu or 0)} per GPU, short by {fmt_gib(-fit.headroom_bytes)}; {fit.fewest}"
        )


def _bar(parts: list[tuple[str, float, str]], capacity: float, width: int = 50) -> str:
    """A stacked bar of ``parts`` (label, bytes, colour) against ``capacity``."""
    total = sum(p[1] for p in parts)
    scale = width / max(capacity, total, 1.0)
    out = ""
    for _, value, colour in parts:
        n = round(value * scale)
        out += f"[{colour}]" + "█" * n + f"[/{colour}]"
    used = sum(round(p[1] * scale) for p in parts)
    if capacity > total:
        out += "[dim]" + "░" * max(0, round(capacity * scale) - used) + "[/dim]"
    return out


def _print_memory(console: Console, result: EstimateResult) -> None:
    mem, fit = result.memory, result.fit
    table = Table(title="Memory per GPU (the largest)", title_justify="left")
    table.add_column("part")
    table.add_column("per GPU", justify="right")
    table.add_column("model / all GPUs", justify="right")
    for key, whole in mem.weights_by_kind.items():
        if whole:
            table.add_row(
                f"weights: {_KIND_LABELS.get(key, key)}",
                fmt_gib(mem.per_gpu_weights_by_kind.get(key, 0)),
                fmt_gib(whole),
            )
    table.add_row("KV cache", fmt_gib(mem.per_gpu_kv_cache_bytes), fmt_gib(mem.kv_cache_bytes))
    table.add_row("activations", fmt_gib(mem.per_gpu_activation_bytes), fmt_gib(mem.activation_bytes))
    table.add_row("overhead and engine reserve", fmt_gib(mem.per_gpu_overhead_bytes), fmt_gib(mem.overhead_bytes))
    table.caption = "model / all GPUs: weights counted once; KV, activations and overhead summed over the GPUs"
    table.add_section()
    table.add_row("[bold]total[/bold]", f"[bold]{fmt_gib(mem.per_gpu_bytes)}[/bold]", fmt_gib(mem.total_bytes))
    if mem.usable_bytes_per_gpu:
        table.add_row("usable GPU memory", fmt_gib(mem.usable_bytes_per_gpu), "")
    console.print(table)
    console.print(f"KV cache: {mem.kv_bytes_per_token:,} bytes per token ({mem.kv_dtype}, {mem.engine})")
    if mem.usable_bytes_per_gpu:
        parts = [
            ("weights", float(mem.per_gpu_weights_bytes), "blue"),
            ("KV", float(mem.per_gpu_kv_cache_bytes), "magenta"),
            ("activations", float(mem.per_gpu_activation_bytes), "yellow"),
            ("overhead", float(mem.per_gpu_overhead_bytes), "white"),
        ]
        console.print(
            _bar(parts, float(mem.usable_bytes_per_gpu)) + "  [blue]weights[/blue] [magenta]KV[/magenta] "
            "[yellow]activations[/yellow] overhead"
        )
    _plot_memory_vs_context(console, result)
    if fit is not None:
        layout = f"TP {fit.tp} x PP {fit.pp}" + (f", EP {fit.ep}" if fit.ep > 1 else "")
        console.print(f"[dim]layout: {layout}; largest batch at this context: {fit.max_batch:,}[/dim]")


def _hbar(value: float, top: float, width: int = 40) -> str:
    n = 0 if top <= 0 else round(width * min(value, top) / top)
    return "█" * n + "░" * (width - n)


def _plot_memory_vs_context(console: Console, result: EstimateResult) -> None:
    """Per-GPU memory as the context grows, against the usable memory (a bar per context)."""
    rows = result.memory_by_context
    usable = result.memory.usable_bytes_per_gpu
    if len(rows) < 2:
        return
    top = max(max(b for _, b in rows), usable or 0)
    console.print(f"memory per GPU vs context (batch {result.request.batch})" + (", | = usable" if usable else ""))
    width = max(9, *(len(f"{c:,}") for c, _ in rows))
    for context, nbytes in rows:
        bar = _hbar(nbytes, top)
        if usable:
            mark = round(40 * usable / top)
            bar = bar[:mark] + "|" + bar[mark + 1 :] if mark < 40 else bar + "|"
        colour = "red" if usable and nbytes > usable else "green" if usable else "blue"
        console.print(f"{context:>{width},} [{colour}]{bar}[/{colour}] {fmt_gib(nbytes)}")


def print_quants(console: Console, rows: list[dict[str, Any]], mixes: list[str]) -> None:
    table = Table(
        title="Weight formats (bits per weight of a 4096 x 4096 matrix, scales included)", title_justify="left"
    )
    table.add_column("format", no_wrap=True)
    table.add_column("bpw", justify="right")
    table.add_column("what is stored")
    for r in rows:
        table.add_row(r["name"], f"{r['bits_per_weight_4096']:.3f}", r["description"])
    console.print(table)
    console.print("GGUF mixes (llama.cpp rules per tensor): " + ", ".join(mixes))
    console.print("Per class: --quant experts=mxfp4,attention=bf16 (or a base first: --quant fp8,experts=mxfp4)")


def _fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "count":
        return fmt_count(int(value)) if value >= 1000 else f"{value:g}"
    if unit == "bytes":
        return fmt_gib(value)
    if unit == "kib":
        return f"{value / 1024:,.1f} KiB"
    if unit == "ratio":
        return f"{value:.3f}"
    if unit == "bool":
        return "yes" if value else "no"
    if unit == "flops":
        return f"{value / 1e9:,.1f} G"
    if unit == "rate":
        return fmt_rate(value)
    if unit == "s":
        return f"{value:,.2f} s"
    if unit == "usd":
        return fmt_usd(value)
    return f"{value:g}"


def print_compare(console: Console, results: list[EstimateResult], rows: list[Any]) -> None:
    """The comparison table: one column per estimate, the winner of each row in green with a star."""
    table = Table(title="Comparison (★ = best in the row)", title_justify="left")
    table.add_column("")
    for r in results:
        head = f"{r.spec.name}\n{r.memory.scheme}, {r.memory.engine}"
        if r.fit is not None:
            head += f"\n{r.fit.num_gpus} x {r.fit.gpu}"
        table.add_column(head, justify="right")
    for row in rows:
        winners = row.winners
        cells = []
        for i, v in enumerate(row.values):
            text = _fmt_value(v, row.unit)
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


def print_recommend(console: Console, model: str, candidates: list[Any], sort: str, limit: int) -> None:
    """Ranked configurations; the cheapest per token and the fastest are marked."""
    if not candidates:
        console.print(
            f"[bold red]nothing fits[/bold red] {model} under these limits: raise --budget, --max-gpus or lower "
            "--min-tokens-per-s, try --quant any, or a shorter --context"
        )
        return
    with_cost = [c for c in candidates if c.usd_per_million_output_tokens is not None]
    cheapest = min(with_cost, key=lambda c: c.usd_per_million_output_tokens) if with_cost else None
    fastest = max(candidates, key=lambda c: c.tokens_per_s)
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


def print_gpus(console: Console, gpus: list[Any]) -> None:
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


def print_calibration(console: Console, run: Any, saved_to: str) -> None:
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
    peaks = [m for m in run.measurements if m.peak_memory_bytes is not None and m.predicted_memory_bytes]
    for m in peaks[-1:]:
        err = m.peak_memory_bytes / m.predicted_memory_bytes - 1
        console.print(
            f"working memory at {m.tokens:,} tokens: measured {m.peak_memory_bytes / 2**20:,.1f} MiB, predicted "
            f"{m.predicted_memory_bytes / 2**20:,.1f} MiB ({err:+.0%})"
        )
    if prof is not None:
        bw = f"{prof.bandwidth_efficiency:.0%}" if prof.bandwidth_efficiency else "n/a"
        ce = f"{prof.compute_efficiency:.0%}" if prof.compute_efficiency else "n/a"
        console.print(f"fitted: bandwidth efficiency {bw}, compute efficiency (eta_max) {ce}")
    console.print(f"profile saved to {saved_to}" + ("" if gpu else " (not applied to estimates: no catalogue GPU)"))


def print_offload(console: Console, result: Any) -> None:
    """Offload plan: verdict, placement, memory on both sides, speed, trade-off table and command lines."""
    est, p, host = result.estimate, result.chosen, result.host
    spec = est.spec
    data = result.to_json()
    perf = data["performance"]
    console.print(
        f"[bold]{spec.name}[/bold] {result.quant} on {host.num_gpus} x {host.gpu.name} + {host.ram_gib:g} GiB RAM "
        f"({host.cpu.name}, {host.cpu.bandwidth_gb_s:,.0f} GB/s)"
    )
    where = f"{est.request.context:,} tokens x {est.request.batch}"
    if p.fits:
        lo, hi = perf["decode_tokens_per_s_range"]
        n = len(p.cpu_moe_layers)
        console.print(
            f"[bold green]FITS[/bold green] ({where}) with the experts of {n} of {spec.arch.num_moe_layers} MoE "
            f"layers in RAM (--n-cpu-moe {p.cpu_layers}): ~{fmt_rate(perf['decode_tokens_per_s'])} tok/s "
            f"({fmt_rate(lo)}-{fmt_rate(hi)}), prefill {fmt_rate(perf['prefill_tokens_per_s'])} tok/s "
            f"({p.prefill_path}), first token in {perf['time_to_first_token_s']:,.1f} s"
        )
    else:
        console.print(f"[bold red]DOES NOT FIT[/bold red] ({where}): " + "; ".join(result.shortfall()))
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
    parts = perf.get("step_seconds") or {}
    if parts:
        console.print(
            f"[dim]decode step: GPU {parts['gpu'] * 1e3:,.1f} ms + CPU {parts['cpu'] * 1e3:,.1f} ms (RAM "
            f"{parts['cpu_memory'] * 1e3:,.1f}, compute {parts['cpu_compute'] * 1e3:,.1f})[/dim]"
        )
    trade = Table(title="Context vs experts in RAM vs speed (best placement at each context)", title_justify="left")
    for col in ("context", "--n-cpu-moe", "VRAM / GPU", "RAM", "tok/s"):
        trade.add_column(col, justify="right")
    for row in data["tradeoff"]:
        tps = row["decode_tokens_per_s"]
        trade.add_row(
            f"{row['context']:,}", str(row["experts_on_cpu_layers"]), fmt_gib(row["vram_bytes_per_gpu"]),
            fmt_gib(row["ram_bytes"]), fmt_rate(tps) if tps else "[red]does not fit[/red]",
        )  # fmt: skip
    console.print(trade)
    for engine, cmd in data["commands"].items():
        console.print(f"[bold]{engine}[/bold]: {cmd}", soft_wrap=True)


def print_cpus(console: Console, cpus: list[Any]) -> None:
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


def print_explain(console: Console, result: EstimateResult) -> None:
    """Each headline figure with its formula, inputs and sources (``--explain``)."""
    spec, p, m, f = result.spec, result.params, result.memory, result.fit
    arch = spec.arch
    gib = 2**30
    console.rule("how each figure is computed")
    if arch.moe is not None:
        moe = arch.moe
        console.print(
            f"[bold]active parameters[/bold] = total - (experts - top-k) x per-expert x MoE layers = "
            f"{p.total:,} - ({moe.num_experts} - {moe.top_k}) x {p.per_expert:,} x {p.num_moe_layers} = {p.active:,}"
        )
    table = Table(title="weights = sum over tensors of the format's bytes (scales included)", title_justify="left")
    for col in ("class", "parameters", "format(s)", "bytes", "bits per weight"):
        table.add_column(col, justify="right" if col in ("parameters", "bytes", "bits per weight") else "left")
    for kind, nbytes in m.weights_by_kind.items():
        n = p.breakdown.get(kind, 0)  # type: ignore[call-overload]
        bpw = f"{nbytes * 8 / n:.3f}" if n else "-"
        table.add_row(_KIND_LABELS.get(kind, kind), f"{n:,}", ", ".join(m.formats_by_kind.get(kind, [])),
                      f"{nbytes:,}", bpw)  # fmt: skip
    console.print(table)
    att = arch.attention
    if att.mla is not None:
        per_layer = f"(kv_lora_rank {att.mla.kv_lora_rank} + rope {att.mla.qk_rope_head_dim}) elements"
    else:
        per_layer = f"{att.num_kv_heads} KV heads x ({att.head_dim} + {att.value_dim}) elements"
    console.print(
        f"[bold]KV cache per token[/bold] = layers x {per_layer} x {m.kv_dtype} bytes = {m.kv_bytes_per_token:,} B "
        f"({m.engine} semantics); x {result.request.context:,} tokens x {result.request.batch} = "
        f"{m.kv_cache_bytes / gib:,.2f} GiB"
    )
    console.print(
        f"[bold]memory per GPU[/bold] = weights {m.per_gpu_weights_bytes / gib:,.2f} + KV "
        f"{m.per_gpu_kv_cache_bytes / gib:,.2f} + activations {m.per_gpu_activation_bytes / gib:,.2f} + overhead "
        f"{m.per_gpu_overhead_bytes / gib:,.2f} = {m.per_gpu_bytes / gib:,.2f} GiB"
        + (f" against {m.usable_bytes_per_gpu / gib:,.2f} GiB usable" if m.usable_bytes_per_gpu else "")
    )
    if result.flops is not None:
        fl = result.flops
        scores = fl.decode_by_kind.get("attention_scores", 0)
        console.print(
            f"[bold]decode FLOPs per token[/bold] = 2 x matmul weights a token passes "
            f"{(fl.decode_per_token - scores) / 1e9:,.2f} G + attention scores {scores / 1e9:,.2f} G"
        )
    perf = result.performance
    if perf is not None and f is not None:
        s = perf.step_seconds
        console.print(
            f"[bold]decode step[/bold] = max(bytes read {perf.bytes_read_per_step_per_gpu / gib:,.2f} GiB per GPU / "
            f"bandwidth x efficiency = {s['memory'] * 1e3:,.2f} ms, FLOPs / compute = {s['compute'] * 1e3:,.2f} ms) + "
            f"fixed {s['fixed'] * 1e3:,.2f} ms + communication {s['communication'] * 1e3:,.2f} ms = "
            f"{s['total'] * 1e3:,.2f} ms -> {perf.decode_tokens_per_s:,.1f} tok/s"
        )
        if perf.distinct_experts_per_layer is not None and arch.moe is not None:
            console.print(
                f"  experts read per MoE layer at batch {result.request.batch}: E x (1 - (1 - k/E)^B) = "
                f"{perf.distinct_experts_per_layer:,.2f} of {arch.moe.num_experts}"
            )
        console.print(f"  efficiency factors: {perf.efficiency_source}")
    cost = result.cost
    if cost is not None and cost.usd_per_hour is not None and perf is not None:
        console.print(
            f"[bold]cost per million output tokens[/bold] = ${cost.usd_per_hour:,.2f}/hour / "
            f"({perf.throughput_tokens_per_s:,.1f} tok/s x 3600) x 1e6 = {fmt_usd(cost.usd_per_million_output_tokens)}"
            f"; price: {cost.price_source}"
        )
    console.print("[bold]sources and assumptions[/bold]")
    for line in result.assumptions:
        console.print(f"  - {line}", soft_wrap=True)
    if spec.published:
        console.print(f"  - published figures: {spec.published.source}", soft_wrap=True)
