"""``estimate`` as rich text: the verdict, parameters, memory with its bars and plot, speed, ``--explain``.
Computes nothing: every figure comes from the :class:`EstimateResult`."""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from moeplan.deploy.deployment import BATCH_OVERLAP_MIN_TOKENS, CONTEXT_SEARCH_LIMIT
from moeplan.deploy.results import NO_SPEED_NOTE, EstimateResult, PerformanceResult
from moeplan.output.formatting import (
    KIND_LABELS,
    fmt_count,
    fmt_gib,
    fmt_load,
    fmt_rate,
    fmt_seconds,
    fmt_usd,
    hbar,
    stacked_bar,
)
from moeplan.output.terminal import NARROW, first_fitting, glyphs, headline, table_box


def print_estimate(console: Console, result: EstimateResult, detail: bool = False) -> None:
    """The one-line verdict first; then a short summary, or with ``detail`` every table and plot."""
    spec, p = result.spec, result.params
    arch = spec.arch
    print_verdict_line(console, result)
    moe = arch.moe
    kind = (f"MoE, {moe.num_experts} experts, top-{moe.top_k}" + f" (with {moe.zero_experts} identity experts)"
            * bool(moe.zero_experts) + f", {moe.num_shared_experts} shared" * bool(moe.num_shared_experts)
            if moe else "dense")  # fmt: skip
    asked = result.request.model
    aliased = asked.lower() not in (spec.id, spec.origin) and spec.origin == "catalogue"
    alias = f"  [dim]('{asked}' is an alias)[/dim]" if aliased else ""
    console.print(f"[bold]{spec.name}[/bold]  ({spec.architecture}, {kind}, {arch.num_layers} layers){alias}")
    if spec.origin != "catalogue" and spec.notes and "family's defaults" in spec.notes:  # counts the file left out
        console.print(f"[yellow]{spec.notes}[/yellow]", markup=True, highlight=False)
    routing = f", {fmt_count(p.active_min)} to {fmt_count(p.active_max)} as routing varies" * (
        p.active_min != p.active_max
    )
    console.print(f"[bold]{fmt_count(p.total)}[/bold] parameters, [bold]{fmt_count(p.active)}[/bold] active per token "
                  f"({p.active_share:.1%}, embedding table included){routing}")  # fmt: skip
    _print_verdict(console, result)
    if result.serving is not None and result.request.traffic is not None:
        sv, t = result.serving, result.request.traffic
        load = fmt_load(t.concurrency, t.rate)
        state = "" if sv.stable else " [red](cannot keep up: the queue grows without bound)[/red]"
        ttft = f"{fmt_seconds(sv.ttft_s)} (p90 {fmt_seconds(sv.ttft_p90_s)})" if sv.stable else "∞"
        console.print(
            f"serving {t.lengths_text()} at {load}: TTFT {ttft}, "
            + ("no TPOT (one output token), " if t.osl == 1 else f"TPOT {sv.tpot_s * 1e3:.1f} ms, ")
            + f"{sv.output_tokens_per_s_per_gpu:,.0f} output tok/s per GPU, "
            f"{sv.decode_batch:,.0f} sequence{'' if round(sv.decode_batch) == 1 else 's'} decoding"
            + (
                f" ({_cap_label(result.request.max_running, result.memory.engine, sv.max_running)}: the other clients "
                "wait for a slot)"
                if sv.concurrency > sv.max_running and not sv.kv_limited
                else ""
            )
            + (
                f", ${result.serving_usd_per_million:.3g} per million output tokens"
                if result.serving_usd_per_million
                else ""
            )
            + state
            + (
                f"; the memory and speed below are at --batch {result.request.batch:,}"
                if round(sv.decode_batch) != result.request.batch
                else ""
            )
        )
    for note in result.assumptions:
        if note.startswith("warning:"):
            console.print(f"[yellow]{note}[/yellow]")
    if not detail:
        for note in result.assumptions:
            if note.startswith(("the checkpoint", "weights memory: the checkpoint")):
                console.print(f"[yellow]note:[/yellow] {note}")
        _print_memory_summary(console, result)
        _print_speed_summary(console, result)
        console.print("[dim]--detail: every table and plot; --explain: each figure's formula and sources[/dim]")
        return
    table = Table(title="Parameters by kind", title_justify="left", box=table_box(console))
    table.add_column("kind")
    table.add_column("total", justify="right")
    table.add_column("active", justify="right")
    table.add_column("share of total", justify="right")
    for key, value in p.breakdown.items():
        if not value:
            continue
        table.add_row(KIND_LABELS[key], fmt_count(value), fmt_count(p.active_breakdown[key]), f"{value / p.total:.1%}")
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
            active += f" (without the {' and '.join(KIND_LABELS[k] for k in pub.excludes)})"
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


def print_verdict_line(console: Console, result: EstimateResult) -> None:
    """The answer in one line: fits or not, on what, memory per GPU against usable, and the decode speed."""
    fit, mem, perf, name = result.fit, result.memory, result.performance, result.spec.shown_id
    if fit is None:
        one = f"{mem.per_gpu_bytes / 2**30:,.2f} GiB"
        headline(
            console,
            f"[bold]{name}[/bold] {mem.scheme}: {one} on one GPU (add --gpu for fit, speed and cost)",
            f"[bold]{name}[/bold] {mem.scheme}: {one} on one GPU (add --gpu)",
            f"[bold]{name}[/bold]: {one} on one GPU",
        )
        return
    gib = 2**30
    used, usable = mem.per_gpu_bytes / gib, (mem.usable_bytes_per_gpu or 0) / gib
    where = fit.placement
    speed = f", ~{fmt_rate(perf.decode_tokens_per_s)} tok/s" if perf is not None else ""
    sv, at1 = result.serving, ""
    if sv is not None:  # under a load the verdict quotes each user's speed there, not batch 1's
        single = result.request.traffic is not None and result.request.traffic.osl == 1  # prefill only: no user speed
        speed = (", one output token a request (prefill only)" if sv.stable and single
                 else f", ~{fmt_rate(sv.tokens_per_s_per_user)} tok/s a user at the load" if sv.stable
                 else "; cannot keep up with the load")  # fmt: skip
        if sv.stable and sv.ttft_s > 60:  # each user decodes fast once admitted, after a long wait: say which
            speed += f" once admitted (TTFT {fmt_seconds(sv.ttft_s)})"
        at1 = " at batch 1"  # the memory is --batch's: the load's running batch fills the cache
    if fit.fits:
        word = "[bold green]FITS[/bold green]"
        headline(
            console,
            f"{word} [bold]{name}[/bold] {mem.scheme} on {where}: {used:,.2f} of {usable:,.2f} GiB per GPU{at1}{speed}",
            f"{word} [bold]{name}[/bold] {mem.scheme} on {where}: {used:,.1f}/{usable:,.1f} GiB/GPU{at1}{speed}",
            f"{word} [bold]{name}[/bold] on {where}: {used:,.1f}/{usable:,.1f} GiB/GPU{at1}{speed}",  # else it wraps
        )
    else:
        word = "[bold red]DOES NOT FIT[/bold red]"
        short = f"short by {-fit.headroom_bytes / gib:,.2f} GiB per GPU"
        headline(
            console,
            f"{word} [bold]{name}[/bold] {mem.scheme} on {where}: {used:,.2f} of {usable:,.2f} GiB per GPU; "
            f"{fit.fewest}",
            f"{word} [bold]{name}[/bold] {mem.scheme} on {where}: {short}; {fit.fewest}",
            f"{word} [bold]{name}[/bold] on {where}: {short}; {fit.fewest}",
            f"{word} [bold]{name}[/bold] on {where}: short {-fit.headroom_bytes / gib:,.1f} GiB/GPU; {fit.fewest}",
            *(
                [
                    f"{word} [bold]{name}[/bold] on {where}: short {-fit.headroom_bytes / gib:,.1f} GiB/GPU; "
                    f"fits on {fit.min_gpus}"
                ]
                if fit.min_gpus is not None
                else []
            ),
            f"{word} [bold]{name}[/bold] on {where}: {used:,.1f}/{usable:,.1f} GiB/GPU",
            f"{word} [bold]{name}[/bold] on {where}",
        )


def _print_memory_summary(console: Console, result: EstimateResult) -> None:
    """Memory per GPU by part, in one short table (the weights as one row; --detail splits them)."""
    mem = result.memory
    g = glyphs(console)
    table = Table(box=table_box(console, light=True), show_edge=False, pad_edge=False)
    table.add_column("memory per GPU")
    table.add_column("GiB", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    top = max(float(mem.per_gpu_bytes), float(mem.usable_bytes_per_gpu or 0), 1.0)
    width = max(8, min(30, console.width - 40))
    rows = [
        ("weights", mem.per_gpu_weights_bytes),
        ("KV cache", mem.per_gpu_kv_cache_bytes),
        *([("recurrent state", mem.per_gpu_state_bytes)] if mem.state_bytes else []),
        ("activations", mem.per_gpu_activation_bytes),
        ("overhead and engine reserve", mem.per_gpu_overhead_bytes),
    ]
    for label, nbytes in rows:
        table.add_row(label, f"{nbytes / 2**30:,.2f}", hbar(nbytes, top, width, g.full, " ").rstrip())
    usable = mem.usable_bytes_per_gpu
    total = "[bold]total[/bold]" + (f" of {usable / 2**30:,.2f} usable" if usable else "")
    bar = hbar(mem.per_gpu_bytes, top, width, g.full, g.empty) if usable else ""
    table.add_row(total, f"[bold]{mem.per_gpu_bytes / 2**30:,.2f}[/bold]", bar)
    console.print(table)


def _no_speed(result: EstimateResult) -> str:
    """Why an estimate has no speed: no GPU, or a custom GPU whose bandwidth or compute was not given."""
    if any(a.startswith(NO_SPEED_NOTE) for a in result.assumptions):
        asked = (("--gpu-bandwidth", result.request.gpu_bandwidth_gb_s), ("--gpu-tflops", result.request.gpu_tflops))
        missing = [flag for flag, given in asked if given is None]
        return f"speed and cost need the custom GPU's {' and '.join(missing) or '--gpu-bandwidth and --gpu-tflops'} too"
    return "speed and cost need a GPU: add --gpu (or --gpu-memory, --gpu-bandwidth, --gpu-tflops)"


def _speed_rows(perf: PerformanceResult, batch: int, short: bool) -> list[tuple[str, str, str]]:
    """(figure, expected, band) rows of the speed table: decode per sequence, in total (only above batch 1 in the
    short table), prefill and time to first token."""
    unit = "tok/s" if short else "tokens/s"

    def band(value: float, rng: tuple[float, float]) -> tuple[str, str]:
        return fmt_rate(value), f"{fmt_rate(rng[0])}-{fmt_rate(rng[1])}"

    rows = [(f"decode, {unit} per sequence", *band(perf.decode_tokens_per_s, perf.decode_tokens_per_s_range))]
    if batch > 1 or not short:
        label = f"decode, {unit} all {batch:,} sequences" if batch > 1 else f"decode, {unit} (one sequence)"
        rows.append((label, *band(perf.throughput_tokens_per_s, perf.throughput_tokens_per_s_range)))
    rows.append((f"prefill, {unit}", *band(perf.prefill_tokens_per_s, perf.prefill_tokens_per_s_range)))
    loaded, loaded_range = perf.loaded_prefill_tokens_per_s_per_gpu, perf.loaded_prefill_tokens_per_s_per_gpu_range
    if not short and loaded is not None and loaded_range is not None:
        rows.append(("prefill at full load, tok/s/GPU", *band(loaded, loaded_range)))
    lo, hi = perf.time_to_first_token_s_range
    first = "first token" if short else "time to first token"
    rows.append((f"{first} ({perf.prompt_tokens:,}-token prompt)", f"{perf.time_to_first_token_s:,.2f} s",
                 f"{lo:,.2f}-{hi:,.2f} s"))  # fmt: skip
    return rows


def _as_if(result: EstimateResult) -> str:
    """What the speed and cost figures describe where that is not the deployment as asked: not fitting, or under a
    load (whose serving figures are the verdict's) at batch 1."""
    return (
        " as if it fitted" if result.fit is not None and not result.fit.fits else " at batch 1" * bool(result.serving)
    )


def _print_speed_summary(console: Console, result: EstimateResult) -> None:
    perf, cost = result.performance, result.cost
    if perf is None:
        console.print(f"[dim]{_no_speed(result)}[/dim]")
        return
    table = Table(box=table_box(console, light=True), show_edge=False, pad_edge=False)
    unfit = _as_if(result)
    table.add_column(f"speed{unfit}")
    table.add_column("expected", justify="right", no_wrap=True)
    table.add_column("band", justify="right", no_wrap=True)
    for figure in _speed_rows(perf, result.request.batch, short=True):
        table.add_row(*figure)
    console.print(table)
    if cost is not None:
        console.print(
            f"cost{unfit}: {fmt_usd(cost.usd_per_hour)} per hour, {fmt_usd(cost.usd_per_million_output_tokens)} per "
            f"million output tokens, {fmt_usd(cost.usd_per_million_input_tokens)} per million input; "
            f"to buy: {fmt_usd(cost.purchase_usd)}"
        )
    how = f"calibrated: {perf.calibration}" if perf.calibration else "engine defaults, not calibrated"
    console.print(f"[dim]{perf.bound}-bound; {how}[/dim]")


def _print_speed(console: Console, result: EstimateResult) -> None:
    perf, cost, flops = result.performance, result.cost, result.flops
    if flops is not None:
        console.print(
            f"FLOPs per token: decode {flops.decode_per_token / 1e9:,.1f} G at {result.request.context:,} tokens "
            f"(attention scores {flops.decode_by_kind.get('attention_scores', 0) / 1e9:,.1f} G), "
            f"prefill {flops.prefill_per_token / 1e9:,.1f} G"
        )
    if perf is None:
        console.print(f"[dim]{_no_speed(result)}[/dim]")
        return
    unfit = _as_if(result)
    title = f"Speed{unfit} (expected, with the low-high band)"
    table = Table(title=title, title_justify="left", box=table_box(console))
    table.add_column("figure")
    table.add_column("expected", justify="right")
    table.add_column("band", justify="right")
    for figure in _speed_rows(perf, result.request.batch, short=False):
        table.add_row(*figure)
    if cost is not None:
        table.add_section()
        table.add_row("cost per hour", fmt_usd(cost.usd_per_hour), "")
        table.add_row("per million output tokens", fmt_usd(cost.usd_per_million_output_tokens), "")
        table.add_row("per million input tokens", fmt_usd(cost.usd_per_million_input_tokens), "")
        basis = f" ({cost.purchase_basis})" if cost.purchase_usd is not None and cost.purchase_basis else ""
        table.add_row("to buy the GPUs", fmt_usd(cost.purchase_usd) + basis, "")
    console.print(table)
    step = perf.step_seconds
    console.print(
        f"[dim]decode step {step['total'] * 1e3:,.2f} ms: memory {step['memory'] * 1e3:,.2f}, compute "
        f"{step['compute'] * 1e3:,.2f}, fixed {step['fixed'] * 1e3:,.2f}, communication "
        f"{step['communication'] * 1e3:,.2f} ms"
        + (
            f" ({step['communication_exposed'] * 1e3:,.2f} exposed)"
            if step["communication_exposed"] < step["communication"]
            else ""
        )
        + f" ({perf.bound}-bound); "
        + (f"calibrated: {perf.calibration}" if perf.calibration else "engine defaults, not calibrated")
        + "[/dim]"
    )
    if perf.by_batch:
        bt = Table(title="Decode speed vs batch", title_justify="left", box=table_box(console))
        narrow = console.width < NARROW
        for col in ("batch", "tok/s per seq" if narrow else "tok/s per sequence", "tok/s total", "", "bound", "fits"):
            bt.add_column(col, justify="right" if col else "left", no_wrap=True)
        g = glyphs(console)
        bar_w = max(6, min(24, console.width - 62))  # the other five columns and the borders take 62
        top = max(r.throughput_tokens_per_s for r in perf.by_batch)
        for row in perf.by_batch:
            colour = "" if row.fits else "[dim]"
            end = "" if row.fits else "[/dim]"
            bt.add_row(
                f"{colour}{row.batch}{end}",
                f"{colour}{fmt_rate(row.tokens_per_s)}{end}",
                f"{colour}{fmt_rate(row.throughput_tokens_per_s)}{end}",
                hbar(row.throughput_tokens_per_s, top, bar_w, g.full, g.empty),
                f"{colour}{row.bound}{end}",
                "yes" if row.fits else "[red]no[/red]",
            )
        console.print(bt)


_LIMITS = {
    "memory": "",
    "model": " (the model's trained limit)",
    "search": f" (moeplan searches up to {CONTEXT_SEARCH_LIMIT:,})",
}


def _print_verdict(console: Console, result: EstimateResult) -> None:
    """The rest of the verdict: the GPU's name, the layout and the settings, the headroom and the limits."""
    fit, mem = result.fit, result.memory
    req = result.request
    where = f"{req.context:,} tokens x {req.batch:,}, {mem.scheme} weights, {mem.kv_dtype} KV, {mem.engine}"
    if fit is None:
        console.print(f"Memory for {where}: [bold]{fmt_gib(mem.per_gpu_bytes)}[/bold] on one GPU (no --gpu given)")
        return
    layout = f"TP {fit.tp} x PP {fit.pp}" + (f", EP {fit.ep}" if fit.ep > 1 else "")
    layout += ", attention data-parallel" if fit.dp_attention else ""
    if result.mtp_drafts:
        layout += f", MTP {result.mtp_drafts} draft{'s' if result.mtp_drafts > 1 else ''} at {result.mtp_accept:g}"
    gpus = f"{fit.num_gpus} x {fit.gpu_name} ({layout})"
    if fit.fits:
        console.print(
            f"on {gpus}, {where}: {fmt_gib(fit.headroom_bytes)} headroom per GPU; longest context at batch "
            f"{req.batch}: {fit.max_context:,} tokens{_LIMITS[fit.max_context_limit]}; largest batch at this "
            f"context: {fit.max_batch:,}"
        )
    else:
        speed = "; speed and cost as if it fitted" if result.performance is not None else ""
        console.print(
            f"on {gpus}, {where}: {fmt_gib(mem.per_gpu_bytes)} needed of {fmt_gib(mem.usable_bytes_per_gpu or 0)} "
            f"per GPU, short by {fmt_gib(-fit.headroom_bytes)}; {fit.fewest}{speed}"
        )


def _print_memory(console: Console, result: EstimateResult) -> None:
    mem = result.memory
    table = Table(title="Memory per GPU (the largest)", title_justify="left", box=table_box(console))
    table.add_column("part")
    table.add_column("per GPU", justify="right")
    table.add_column("model / all GPUs", justify="right")
    for key, whole in mem.weights_by_kind.items():
        if whole:
            table.add_row(
                f"weights: {KIND_LABELS.get(key, key)}",
                fmt_gib(mem.per_gpu_weights_by_kind.get(key, 0)),
                fmt_gib(whole),
            )
    table.add_row("KV cache", fmt_gib(mem.per_gpu_kv_cache_bytes), fmt_gib(mem.kv_cache_bytes))
    if mem.state_bytes:
        table.add_row("recurrent state", fmt_gib(mem.per_gpu_state_bytes), fmt_gib(mem.state_bytes))
    table.add_row("activations", fmt_gib(mem.per_gpu_activation_bytes), fmt_gib(mem.activation_bytes))
    table.add_row("overhead and engine reserve", fmt_gib(mem.per_gpu_overhead_bytes), fmt_gib(mem.overhead_bytes))
    table.caption = "model / all GPUs: weights counted once; KV, activations and overhead summed over the GPUs"
    table.add_section()
    table.add_row("[bold]total[/bold]", f"[bold]{fmt_gib(mem.per_gpu_bytes)}[/bold]", fmt_gib(mem.total_bytes))
    if mem.usable_bytes_per_gpu:
        table.add_row("usable GPU memory", fmt_gib(mem.usable_bytes_per_gpu), "")
    console.print(table)
    if mem.weights_range_bytes:
        lo, hi = mem.weights_range_bytes
        console.print(
            f"weights: {mem.scheme} is a label, not a file: its published files hold {lo / 2**30:,.2f}-"
            f"{hi / 2**30:,.2f} GiB (planned at {mem.weights_bytes / 2**30:,.2f}; give the .gguf for the exact figure)"
        )
    console.print(f"KV cache: {mem.kv_bytes_per_token:,} bytes per token ({mem.kv_dtype}, {mem.engine})")
    if mem.state_bytes_per_sequence:
        console.print(
            f"recurrent state: {mem.state_bytes_per_sequence / 2**20:,.1f} MiB per sequence whatever the context "
            f"({mem.state_dtype}, convolution state {mem.conv_state_dtype}; --state-dtype to change)"
        )
    if mem.usable_bytes_per_gpu:
        parts = [
            ("weights", float(mem.per_gpu_weights_bytes), "blue"),
            ("KV", float(mem.per_gpu_kv_cache_bytes), "magenta"),
            ("activations", float(mem.per_gpu_activation_bytes), "yellow"),
            ("overhead", float(mem.per_gpu_overhead_bytes), "white"),
        ]
        g = glyphs(console)
        legend = (
            "[blue]weights[/blue] [magenta]KV[/magenta] [yellow]activations[/yellow] overhead"
            if g.parts[0] == g.parts[-1]
            else " ".join(f"{c} {label}" for c, (label, _, _) in zip(g.parts, parts, strict=True))
        )
        bar_width = max(10, min(50, console.width - cell_len(Text.from_markup(legend).plain) - 3))
        console.print(stacked_bar(parts, float(mem.usable_bytes_per_gpu), bar_width, g.parts, g.empty) + "  " + legend)
    _plot_memory_vs_context(console, result)


def _plot_memory_vs_context(console: Console, result: EstimateResult) -> None:
    """Per-GPU memory as the context grows, against the usable memory (a bar per context)."""
    rows = result.memory_by_context
    usable = result.memory.usable_bytes_per_gpu
    if len(rows) < 2:
        return
    top = max(max(b for _, b in rows), usable or 0)
    console.print(f"memory per GPU vs context (batch {result.request.batch})" + (", | = usable" if usable else ""))
    width = max(9, *(len(f"{c:,}") for c, _ in rows))
    g = glyphs(console)
    bar_w = max(10, min(40, console.width - width - 16))
    for context, nbytes in rows:
        bar = hbar(nbytes, top, bar_w, g.full, g.empty)
        if usable:
            mark = round(bar_w * usable / top)
            bar = bar[:mark] + "|" + bar[mark + 1 :] if mark < bar_w else bar + "|"
        colour = "red" if usable and nbytes > usable else "green" if usable else "blue"
        console.print(f"{context:>{width},} [{colour}]{bar}[/{colour}] {fmt_gib(nbytes)}")


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
            f"{p.total:,} - ({moe.num_experts} - {moe.expected_picks:g}) x {p.per_expert:,} x {p.num_moe_layers} "
            f"= {p.active:,}"
        )
        if moe.zero_experts:
            console.print(
                f"  top-{moe.top_k} over {moe.num_experts} experts + {moe.zero_experts} identity experts: "
                f"{moe.expected_picks:g} real experts on average; {p.active_min:,} to {p.active_max:,} per token"
            )

    def weights_table(exact: bool) -> Table:
        table = Table(
            title="weights = sum over tensors of the format's bytes (scales included)",
            title_justify="left",
            box=table_box(console),
        )
        for col in ("class", "parameters", "format(s)", "bytes" if exact else "GiB", "bits per weight"):
            table.add_column(
                col, justify="left" if col in ("class", "format(s)") else "right", no_wrap=col != "format(s)"
            )
        for kind, nbytes in m.weights_by_kind.items():
            n = p.breakdown.get(kind, 0)  # type: ignore[call-overload]
            bpw = f"{nbytes * 8 / n:.3f}" if n else "-"
            size = f"{nbytes:,}" if exact else f"{nbytes / gib:,.2f}"
            table.add_row(KIND_LABELS.get(kind, kind), f"{n:,}" if exact else fmt_count(n),
                          ", ".join(m.formats_by_kind.get(kind, [])), size, bpw)  # fmt: skip
        return table

    table = first_fitting(console, lambda: weights_table(True), lambda: weights_table(False))
    console.print(table)
    att = arch.attention
    if att.mla is not None:
        per_layer = f"(kv_lora_rank {att.mla.kv_lora_rank} + rope {att.mla.qk_rope_head_dim}) elements"
    else:
        per_layer = f"{att.num_kv_heads} KV heads x ({att.head_dim} + {att.value_dim}) elements"
    req, fit = result.request, result.fit
    windowed = any(c in (att.layer_pattern or "") for c in "SC")  # sliding or chunked layers hold a window
    layers_word = "full-attention layers" if windowed else "layers"
    plain = m.kv_bytes_per_token * req.context * req.batch
    ratio = m.kv_cache_bytes / plain if plain else 1.0
    # the cache is copied on TP ranks only where they outnumber the KV heads (MLA's latent: on every rank)
    replicated = (fit is not None and fit.tp > 1 and not fit.dp_attention
                  and (att.mla is not None or fit.tp > att.num_kv_heads))  # fmt: skip
    how = ""
    if ratio > 1.05:
        how = f" x {ratio:,.1f} ({'copies on the TP ranks' if replicated else 'as the engine allocates'})"
    elif ratio < 0.95:
        how = " less what windowed layers drop"
    console.print(
        f"[bold]KV cache per token[/bold] = {layers_word} x {per_layer} x {m.kv_dtype} bytes = "
        f"{m.kv_bytes_per_token:,} B ({m.engine} semantics); x {req.context:,} tokens x {req.batch:,}{how} = "
        f"{m.kv_cache_bytes / gib:,.2f} GiB"
    )
    ranks = fit.tp if fit is not None and fit.dp_attention else 1
    busiest = -(-req.batch // ranks)
    own = f" (the {busiest:,} sequence{'' if busiest == 1 else 's'} of the busiest rank)" if ranks > 1 else ""
    console.print(
        f"[bold]memory per GPU[/bold]{own} = weights {m.per_gpu_weights_bytes / gib:,.2f} + KV "
        f"{m.per_gpu_kv_cache_bytes / gib:,.2f}"
        + (f" + states {m.per_gpu_state_bytes / gib:,.2f}" if m.per_gpu_state_bytes else "")
        + f" + activations {m.per_gpu_activation_bytes / gib:,.2f} + overhead "
        f"{m.per_gpu_overhead_bytes / gib:,.2f} = {m.per_gpu_bytes / gib:,.2f} GiB"
        + (f" against {m.usable_bytes_per_gpu / gib:,.2f} GiB usable" if m.usable_bytes_per_gpu else "")
    )
    if m.weights_range_bytes:
        lo, hi = m.weights_range_bytes
        console.print(
            f"[bold]weights of published {m.scheme} files[/bold] = {lo / gib:,.2f}-{hi / gib:,.2f} GiB (the "
            f"default rules give {m.weights_bytes / gib:,.2f}; a .gguf file gives the exact figure)"
        )
    if result.flops is not None:
        fl = result.flops
        scores = fl.decode_by_kind.get("attention_scores", 0)
        mm = fl.decode_per_token - scores  # 2 FLOPs a weight: a multiply and an add
        console.print(
            f"[bold]decode FLOPs per token[/bold] = 2 x {mm / 2e9:,.2f} G matmul weights a token passes = "
            f"{mm / 1e9:,.2f} G + attention scores {scores / 1e9:,.2f} G = {fl.decode_per_token / 1e9:,.2f} G"
        )
    perf = result.performance
    if perf is not None and f is not None:
        s, where = perf.step_seconds, f"a TP rank over the {f.pp} stages a token passes" if f.pp > 1 else "per GPU"
        console.print(
            f"[bold]decode step[/bold] = max(bytes read {perf.bytes_read_per_step_per_gpu / gib:,.2f} GiB {where} / "
            f"bandwidth x efficiency = {s['memory'] * 1e3:,.2f} ms, FLOPs / compute = {s['compute'] * 1e3:,.2f} ms) + "
            f"fixed {s['fixed'] * 1e3:,.2f} ms + communication {s['communication'] * 1e3:,.2f} ms"
            + (
                (
                    f" ({s['communication_exposed'] * 1e3:,.2f} of it exposed: two micro-batches, max(comm / 2, comm "
                    "- work / 2), work the larger of memory and compute)"
                    if s["communication_exposed"] < s["communication"]
                    else f" (all of it: a step under {BATCH_OVERLAP_MIN_TOKENS[0]} tokens a rank is not split into "
                    "micro-batches)"
                )
                if result.request.batch_overlap
                else ""
            )
            + f" = {s['total'] * 1e3:,.2f} ms"
            + (f" x {perf.decode_tokens_per_s * s['total']:,.2f} tokens a step (MTP)" if result.mtp_drafts else "")
            + f" -> {perf.decode_tokens_per_s:,.1f} tok/s"
        )
        if perf.distinct_experts_per_layer is not None and arch.moe is not None:
            console.print(
                f"  experts read per MoE layer at batch {result.request.batch}: E x (1 - (1 - k/E)^B) = "
                f"{perf.distinct_experts_per_layer:,.2f} of {arch.moe.num_experts}"
            )
        console.print(f"  efficiency factors: {perf.efficiency_source}")
        console.print(
            f"[bold]prefill[/bold] = chunks of the engine's batched tokens, each max(weights / bandwidth, FLOPs / "
            f"compute) + fixed + communication, never under the host's eager-pass floor -> "
            f"{perf.prefill_tokens_per_s:,.0f} tok/s (one prompt's chunks on one rank); [bold]time to first "
            f"token[/bold] = prefill + one decode step = {perf.time_to_first_token_s:,.2f} s"
        )
        if perf.loaded_prefill_tokens_per_s_per_gpu is not None:
            console.print(
                "[bold]prefill at full load[/bold] = prompt / (GPUs x max(prompt x seconds a token in a full pass of "
                "every rank's batched tokens, the pass's host floor x prompt / pass tokens)) -> "
                f"{perf.loaded_prefill_tokens_per_s_per_gpu:,.0f} tok/s a GPU"
            )
    sv, load = result.serving, result.request.traffic
    if sv is not None and load is not None:
        clients = f"{load.concurrency} clients" if load.concurrency is not None else fmt_load(None, load.rate)
        console.print(
            f"[bold]serving[/bold] ({clients}, {load.lengths_text()}) = the steady state of TPOT = decode step at "
            f"the running batch / (1 - the others' prefill share), TTFT = prefill queue (mean-value or M/G/1) + "
            f"prefill + a decode step, rate = clients / (TTFT + (O - 1) x TPOT): {sv.decode_batch:,.0f} decoding, "
            f"TPOT {sv.tpot_s * 1e3:,.1f} ms, TTFT {f'{sv.ttft_s:,.2f} s' if sv.stable else 'unbounded'}, "
            f"{sv.request_rate:,.3g} requests/s (docs/methodology.md, serving)"
        )
    cost = result.cost
    if cost is not None and cost.usd_per_hour is not None and perf is not None:
        console.print(
            f"[bold]cost per million output tokens[/bold] = ${cost.usd_per_hour:,.2f}/hour / "
            f"({perf.throughput_tokens_per_s:,.1f} tok/s x 3600) x 1e6 = {fmt_usd(cost.usd_per_million_output_tokens)}"
            f"; price: {cost.price_source}"
        )
    console.print("[bold]sources and assumptions[/bold]")
    for line in result.assumptions:
        console.print(f"  - {line}")
    if spec.published:
        console.print(f"  - published figures: {spec.published.source}")


def _cap_label(asked: int | None, engine: str, running: int) -> str:
    """Whose cap holds the running requests: ``--max-running 100 (104 over the ranks)`` or ``vllm's default 256``."""
    if asked is None:
        return f"{engine}'s default cap {running:,}"
    return f"--max-running {asked:,}" + (f" ({running:,} over the ranks)" if running != asked else "")
