"""The other commands as rich tables: recommend, offload, calibrate and the catalogues (compare: rich_compare).

Computes nothing: every figure, and every mark such as "cheapest", comes from the result objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from moeplan.calibration.run import CalibrationRun
    from moeplan.deploy.deployment import Traffic
    from moeplan.deploy.offload import Placement
    from moeplan.deploy.results import Candidate, OffloadResult
    from moeplan.hardware.gpus import GpuSpec
    from moeplan.hardware.hosts import CpuSpec
    from moeplan.sources.catalog import CatalogRow

from moeplan.deploy.offload_commands import n_cpu_moe
from moeplan.output.formatting import fmt_buy, fmt_count, fmt_gib, fmt_load, fmt_plain, fmt_rate, fmt_usd
from moeplan.output.terminal import NARROW, first_fitting, headline, shell_lines, table_box


def _names_table(console: Console, rows: list[tuple[str, str, list[str]]], with_name: bool) -> Table:
    """id, name and aliases: the detail that the figures table leaves out at narrow widths (words wrap, ids not)."""
    table = Table(box=table_box(console, light=True), show_edge=False, pad_edge=False)
    table.add_column("id", no_wrap=True)
    if with_name:
        table.add_column("name")
    longest = max((len(a) for _, _, aliases in rows for a in aliases), default=8)
    table.add_column("also known as", min_width=min(longest, max(8, console.width // 2)))
    for id_, name, aliases in rows:
        table.add_row(id_, *([name] if with_name else []), ", ".join(aliases))
    return table


def print_models(console: Console, rows: list[CatalogRow], detail: bool = False) -> None:
    moe = sum(1 for r in rows if r.num_experts)
    headline(console, f"{len(rows)} models in the catalogue: {moe} MoE, {len(rows) - moe} dense")

    def figures(aliases: bool) -> Table:
        table = Table(box=table_box(console))
        for col in ("id", "total", "active", "experts", "top-k"):
            table.add_column(col, justify="left" if col == "id" else "right", no_wrap=True)
        if aliases:
            table.add_column("also known as", no_wrap=True)
        for r in rows:
            table.add_row(
                r.id,
                fmt_count(r.total),
                fmt_count(r.active),
                str(r.num_experts) if r.num_experts else "dense",
                str(r.top_k) if r.top_k else "",
                *([", ".join(r.aliases[:3])] if aliases else []),
            )
        return table

    if detail:
        table = first_fitting(console, lambda: figures(True), lambda: figures(False))
        console.print(table)
        if len(table.columns) == 5:
            console.print(_names_table(console, [(r.id, "", list(r.aliases)) for r in rows], with_name=False))
    else:
        console.print(figures(False))
    console.print(
        "[dim]"
        + ("" if detail else "aliases: --detail; ")
        + "sources and published figures: moeplan models --json (or --format csv)[/dim]"
    )


def print_quants(console: Console, formats: list[tuple[str, float, str]], mixes: list[str]) -> None:
    """``(name, bits per weight of a 4096 x 4096 matrix, description)`` per format, and the GGUF mixes."""
    headline(console, f"{len(formats)} weight formats and {len(mixes)} llama.cpp GGUF mixes")
    table = Table(
        title="Weight formats (bits per weight of a 4096 x 4096 matrix, scales included)",
        title_justify="left",
        box=table_box(console),
    )
    table.add_column("format", no_wrap=True)
    table.add_column("bpw", justify="right", no_wrap=True)
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


def print_recommend(
    console: Console, model: str, candidates: list[Candidate], sort: str, limit: int, detail: bool = False,
    remedy: Callable[[], str] = lambda: "raise --max-gpus, or a shorter --context", load: Traffic | None = None,
) -> None:  # fmt: skip
    """Ranked configurations with the plan's marks (cheapest per token, fastest); ``remedy()`` where none fits;
    ``load``: the serving load they are ranked under, named in the table's title."""
    if not candidates:
        console.print(f"[bold red]nothing fits[/bold red] {model} under these limits: {remedy()}")
        return
    cheapest = next((c for c in candidates if "cheapest" in c.marks), None)
    fastest = next((c for c in candidates if "fastest" in c.marks), None)
    best = candidates[0]

    def hardware(c: Candidate, full: bool, sep: str = " x ") -> str:
        if not c.ram_gib:
            return f"{c.num_gpus}{sep}{c.gpu.id}"
        if full:
            ram = fmt_plain(c.ram_gib)
            return f"{c.num_gpus} x {c.gpu.id} + {ram} GiB RAM, {c.host}, --n-cpu-moe {c.experts_on_cpu_layers}"
        return f"{c.num_gpus} x {c.gpu.id} + {fmt_plain(c.ram_gib)}G RAM"

    n = len(candidates)
    fit_word = f"{n} configuration{'s' if n != 1 else ''} fit{'s' if n == 1 else ''}"
    what = f"{hardware(best, False)} {best.quant} {best.engine}"
    if sort == "cost" and all(c.usd_per_million_output_tokens is None for c in candidates):
        # ranked by the tie-break, tokens/s: no price, or no cost at a load none keeps up with
        sort = ("speed (none has an hourly price)" if best.serves_load
                else "the load served (none keeps up, so none has a cost)")  # fmt: skip
    elif not best.serves_load:  # those that queue the load rank by the output tokens/s they serve of it
        sort = f"{sort}, then the load served"
    elif sort == "cost" and best.usd_per_million_output_tokens is None:  # serving it outranks a price
        sort = "the load served (those priced queue it; these have no catalogue price)"
    rate = fmt_rate(best.tokens_per_s)
    usd = "" if best.usd_per_million_output_tokens is None else f", {fmt_usd(best.usd_per_million_output_tokens)}/M out"
    if not best.serves_load:  # ranked first among configurations that all queue the load's clients
        none = f"[bold red]None of {n:,} configurations serves the load[/bold red]"
        headline(console, f"{none}: each queues its clients or cannot keep up (more GPUs: --max-gpus; or a lighter "
                 "load)", none)  # fmt: skip
    else:
        headline(
            console,
            f"Best by {sort} for {model}: [bold]{what}[/bold], ~{rate} tok/s{usd} ({fit_word})",
            f"Best by {sort} for {model}: [bold]{what}[/bold], ~{rate} tok/s{usd}",
            f"Best by {sort}: [bold]{what}[/bold], ~{rate} tok/s{usd}",
            f"Best by {sort}: [bold]{what}[/bold]",
        )
    load_text = f"{load.lengths_text()} at {fmt_load(load.concurrency, load.rate)}" if load is not None else ""
    shown = candidates[:limit]
    for extra in (cheapest, fastest):
        if extra is not None and extra not in shown:
            shown.append(extra)

    def table(cols: tuple[str, ...], full: bool) -> Table:
        t = Table(
            title=f"{model}: {fit_word}; best {min(limit, n)} by {sort}" + (f"; serving {load_text}" if load else ""),
            title_justify="left",
            box=table_box(console, light=console.width < NARROW),
            show_edge=console.width >= NARROW,
        )
        for col in cols:  # only the narrowest table's configuration wraps, at its spaces: never a number or an id
            wrap, left = col == "configuration", col in ("configuration", "hardware", "format / engine", "marks")
            t.add_column("tok/s/user" if col == "tok/s" and loaded else col, justify="left" if left else "right",
                         no_wrap=not wrap, min_width=longest if wrap else None)  # fmt: skip
        for c in shown:
            lo, hi = c.tokens_per_s_range
            queued = "" if c.serves_load else " (q)"
            fmt_engine = f"{c.quant}{'*' if 'lower-quality' in c.marks else ''} {c.engine}"
            marks = " ".join(
                m
                for m, is_it in (
                    ("[green]cheapest/token[/green]", c is cheapest),
                    ("[cyan]fastest[/cyan]", c is fastest),
                )
                if is_it
            )
            cells = {
                "#": str(candidates.index(c) + 1),
                "hardware": hardware(c, full, "x ") + queued,
                "format / engine": fmt_engine,
                "configuration": f"{hardware(c, False, 'x ')}{queued} {fmt_engine}",
                "GiB/GPU": f"{c.per_gpu_bytes / 2**30:,.0f}/{c.usable_bytes / 2**30:,.0f}",
                "tok/s": fmt_rate(c.tokens_per_s),
                "band": f"{fmt_rate(lo)}-{fmt_rate(hi)}",
                "$/h": fmt_usd(c.usd_per_hour),
                "$/M out": fmt_usd(c.usd_per_million_output_tokens),
                "buy": fmt_usd(c.purchase_usd),
                "marks": marks,
            }
            t.add_row(*(cells[col] for col in cols))
        return t

    full_cols = ("#", "hardware", "format / engine", "GiB/GPU", "tok/s", "band", "$/h", "$/M out", "buy", "marks")
    variants: list[tuple[str, ...]] = [full_cols]
    last = "$/M out" if sort == "purchase" else "buy"  # the column the ranking is by goes last
    for drop in ("marks", "$/h", "GiB/GPU", "band", last):
        variants.append(tuple(c for c in variants[-1] if c != drop))
    tried = variants if detail else variants[1:]  # by default the marks go below the table
    builders = [(lambda cols=cols, full=full: table(cols, full)) for full in (True, False) for cols in tried]
    narrowest = ("configuration", "tok/s", "buy" if sort == "purchase" else "$/M out")  # wraps rather than clips
    loaded = any(c.serving is not None for c in shown)  # under a load the speed is each user's
    longest = max((len(word) for c in shown for word in f"{hardware(c, False, 'x ')} {c.quant}* {c.engine}".split()),
                  default=1)  # fmt: skip
    chosen = first_fitting(console, *builders, lambda: table(narrowest, False))
    console.print(chosen)
    if "marks" not in [col.header for col in chosen.columns]:
        said = [
            f"{what} #{candidates.index(c) + 1} ({c.num_gpus} x {c.gpu.id} {c.quant})"
            for what, c in (("cheapest per token:", cheapest), ("fastest:", fastest))
            if c is not None
        ]
        console.print("; ".join(said))
    shown_cols = {str(col.header) for col in chosen.columns}
    if any(not c.serves_load for c in shown):
        console.print("(q): under the load its clients queue for a slot (the KV cache's room or the engine's cap), or "
                      "it cannot keep up; ranked after those that serve it", markup=False, highlight=False)  # fmt: skip
    for line in _quality_lines(shown, detail):
        console.print(line, markup=False, highlight=False)
    if "buy" in shown_cols and (sort == "purchase" or detail):
        console.print(f"[dim]{_buy_basis(shown)}[/dim]")
    left_out = [c for c in ("GiB/GPU", "band", "$/h", "$/M out", "buy") if c not in shown_cols]
    left_out += ["#"] if "configuration" in shown_cols else []
    if left_out:
        console.print(f"[dim]left out at this width: {', '.join(left_out)} (a wider terminal, or --format csv)[/dim]")
    console.print(
        "[dim]prices: catalogue cloud price per GPU-hour (typical, else the middle of its range) and purchase "
        "price; override with --gpu-file. $/M out at the given batch. GPU + RAM boxes (llama.cpp, experts in RAM): "
        "GPU, RAM at the catalogue's dated $/GB and the CPU where its price is known; board and PSU not "
        "counted.[/dim]"
        if detail
        else "[dim]prices: the catalogue's GPU-hour and purchase prices (--gpu-file to override); --detail for "
        "how they are counted[/dim]"
    )


def _quality_lines(shown: list[Candidate], detail: bool) -> list[str]:
    """The footnote of the ``*`` mark (rows ranked above a format of better quality); with ``detail``, each
    shown format's typical quality cost and its figure."""
    if not any("lower-quality" in c.marks for c in shown):
        return []
    lines = ["* loses more quality than a lower-ranked format (--detail; --min-bits 8)"]
    if detail:
        seen: dict[str, str] = {}
        for c in shown:
            if c.quality is not None and c.quant not in seen:
                seen[c.quant] = f"  {c.quant}: {c.quality.label}; {c.quality.note}"
        lines += list(seen.values())
    return lines


def _buy_basis(shown: list[Candidate]) -> str:
    """``buy: street prices of 2026-05 (mi300x, b200); list estimates (rtx-3090)``: what each price rests on."""
    groups: dict[str, list[str]] = {}
    for c in shown:
        basis = c.gpu.buy_price[1] if c.gpu.buy_price is not None and c.purchase_usd is not None else None
        if basis is not None and c.gpu.id not in groups.setdefault(basis, []):
            groups[basis].append(c.gpu.id)
    street = [f"{b.removeprefix('street, ')} ({', '.join(ids)})" for b, ids in groups.items() if b.startswith("street")]
    listed = [i for b, ids in groups.items() if not b.startswith("street") for i in ids]
    parts = ([f"street prices of {'; '.join(street)}"] if street else []) + (
        [f"list estimates ({', '.join(listed)})"] if listed else []
    )
    cpus = sorted({str(c.host) for c in shown if c.ram_gib and c.host})
    boxes = (
        f"; GPU + RAM boxes add RAM and their CPU ({', '.join(cpus) or 'none priced'}), other rows count the GPUs "
        "alone (no host server)"
        if any(c.ram_gib for c in shown)
        else "; the GPUs alone (no host server)"
    )
    return "buy: " + ("; ".join(parts) if parts else "no purchase price") + boxes


def _fp16_only(g: GpuSpec) -> bool:
    """A GPU with fp16 tensor units and no bf16 ones (V100, T4): its bf16 column shows the fp16 figure, starred."""
    return "bf16" not in g.tflops and "fp16" in g.tflops


def derived_bf16(g: GpuSpec) -> str:
    """The bf16 peak estimates use where the catalogue publishes none (DGX Spark: its fp4 500 halved per halving of
    bits, ``~125``), or ``-`` where none can be derived."""
    from moeplan.deploy.kernels import derived_peak

    derived = derived_peak(g, "bf16")
    return f"~{derived[2]:,.0f}" if derived else "-"


def print_gpus(console: Console, gpus: list[GpuSpec], detail: bool = False) -> None:
    priced = sum(1 for g in gpus if g.cloud_usd_per_hour)
    headline(console, f"{len(gpus)} accelerators in the catalogue, {priced} with a cloud price")

    short = {"usable GiB": "GiB", "bf16 TFLOP/s": "bf16", "$/GPU-h": "$/h"}

    def table(cols: tuple[str, ...], brief: bool = False, full_buy: bool = False) -> Table:
        t = Table(box=table_box(console))
        if brief:  # the caption names the columns shown
            flops = "bf16 and fp8" if "fp8" in cols else "bf16"
            t.caption = f"GiB usable; {flops}: dense TFLOP/s (~: derived)" if "bf16 TFLOP/s" in cols else "GiB usable"
            t.caption += "; $/h: cloud price per GPU-hour" if "$/GPU-h" in cols else ""
            if "buy" in cols:
                t.caption += "; buy: street price and its month ('26-05), ~ a list estimate"
            t.caption += "; whole machine for Apple, DGX Spark, Strix Halo"
            if "bf16 TFLOP/s" in cols and any(_fp16_only(g) for g in gpus):
                t.caption += "; *: fp16 (no bf16 units: served in fp16)"
            dropped = [short.get(c, c) for c in ("fp8", "$/GPU-h", "buy") if c not in cols]
            t.caption += f"; {', '.join(dropped)}: a wider terminal" if dropped else ""
        for col in cols:
            head = short.get(col, col) if brief else col
            t.add_column(head, justify="left" if col in ("id", "name", "aliases") else "right", no_wrap=True)
        for g in gpus:
            fp8 = g.dense_tflops("fp8")
            cells = {
                "id": g.id,
                "name": g.name,
                "usable GiB": f"{g.usable_memory_gib:,.1f}",
                "GB/s": f"{g.bandwidth_gb_s:,.0f}",
                "bf16 TFLOP/s": (
                    f"{g.tflops['fp16']:,.0f}*"
                    if _fp16_only(g)
                    else f"{g.dense_tflops('bf16'):,.0f}"
                    if g.dense_tflops("bf16")
                    else derived_bf16(g)
                ),
                "fp8": f"{fp8:,.0f}" if fp8 else "-",
                "$/GPU-h": fmt_usd(g.cloud_usd_per_hour.expected) if g.cloud_usd_per_hour else "-",
                "buy": fmt_buy(g.buy_price, full=full_buy),
                "aliases": ", ".join(g.aliases[:3]),
            }
            t.add_row(*(cells[c] for c in cols))
        return t

    full = ("id", "name", "usable GiB", "GB/s", "bf16 TFLOP/s", "fp8", "$/GPU-h", "buy", "aliases")
    figures = ("id", "usable GiB", "GB/s", "bf16 TFLOP/s", "fp8", "$/GPU-h", "buy")
    chosen = first_fitting(
        console,
        *([lambda: table(full, full_buy=True), lambda: table(figures, full_buy=True)] if detail else []),
        lambda: table(figures),
        lambda: table(figures, brief=True),
        lambda: table(tuple(c for c in figures if c != "fp8"), brief=True),
        lambda: table(("id", "usable GiB", "GB/s", "bf16 TFLOP/s", "$/GPU-h"), brief=True),
        lambda: table(("id", "usable GiB", "GB/s", "bf16 TFLOP/s"), brief=True),
    )
    console.print(chosen)
    if detail and len(chosen.columns) < len(full):
        console.print(_names_table(console, [(g.id, g.name, list(g.aliases)) for g in gpus], with_name=True))
    elif not detail:
        console.print("[dim]names and aliases: --detail[/dim]")


def print_calibration(console: Console, run: CalibrationRun, saved_to: str) -> None:
    """The calibration report: device, microbenchmarks, per-token-count table, fitted factors."""
    s, gpu, prof = run.shape, run.gpu, run.profile
    if prof is not None:
        bw = f"{prof.bandwidth_efficiency:.0%}" if prof.bandwidth_efficiency else "n/a"
        ce = f"{prof.compute_efficiency:.0%}" if prof.compute_efficiency else "n/a"
        headline(
            console,
            f"Calibrated [bold]{gpu.id if gpu else run.device}[/bold]: bandwidth efficiency {bw}, compute efficiency "
            f"{ce}",
            f"Calibrated [bold]{gpu.id if gpu else run.device}[/bold]: bandwidth {bw}, compute {ce}",
        )
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
    table = Table(title="MoE layer", title_justify="left", box=table_box(console))
    narrow = console.width < NARROW
    spread = "+/- spread" if console.options.ascii_only else "± spread"
    for col in ("tokens", "time", spread, "TFLOP/s", "GB/s", "of peak", "predicted" if narrow else "moeplan predicted",
                "error"):  # fmt: skip
        table.add_column(col, justify="right", no_wrap=True)
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
    console.print("profile saved to" + ("" if gpu else " (not applied to estimates: no catalogue GPU)") + ":")
    console.print(saved_to, markup=False, highlight=False, soft_wrap=True)


def print_offload(console: Console, result: OffloadResult, detail: bool = False) -> None:
    """Offload plan: verdict, placement, memory on both sides, speed, trade-off table and command lines."""
    p, host, perf = result.chosen, result.host, result.offload_performance
    spec = result.spec
    assert host.gpu is not None
    box_ = f"{host.num_gpus} x {host.gpu.id} + {fmt_plain(host.ram_gib)} GiB RAM"
    if p.fits:
        n_flag = n_cpu_moe(result.memory.engine, spec.arch, p.cpu_layers)
        flag = f"--n-cpu-moe {n_flag[0]}" if n_flag else f"experts of {len(p.cpu_moe_layers)} MoE layers in RAM"
        rate = f"~{fmt_rate(perf.decode_tokens_per_s)} tok/s"
        word = "[bold green]FITS[/bold green]"
        headline(
            console,
            f"{word} [bold]{spec.shown_id}[/bold] {result.quant} on {box_}: {flag}, {rate}",
            f"{word} [bold]{spec.shown_id}[/bold] on {box_}: {flag}, {rate}",
            f"{word} [bold]{spec.shown_id}[/bold] on {box_}: {rate}",
        )
    else:
        word = "[bold red]DOES NOT FIT[/bold red]"
        short = _short_by(p)
        headline(
            console,
            f"{word} [bold]{spec.shown_id}[/bold] {result.quant} on {box_}: {short}",
            f"{word} [bold]{spec.shown_id}[/bold] on {box_}: {short}",
            f"{word} [bold]{spec.shown_id}[/bold] {result.quant} on {box_}",
            f"{word} [bold]{spec.shown_id}[/bold] on {box_}",
        )
    from moeplan.deploy.engines import ENGINES
    from moeplan.deploy.offload import ram_bytes_per_s

    eng = ENGINES[result.memory.engine]  # the bandwidth the plan reads at: the fabric's, or a socket's
    used = ram_bytes_per_s(host.cpu, eng.numa_local) / 1e9
    reads = f"; counted as {used:,.0f} under {eng.name}" if abs(used - host.cpu.bandwidth_gb_s) >= 1 else ""
    console.print(
        f"[bold]{spec.name}[/bold] {result.quant} on {host.num_gpus} x {host.gpu.name} + "
        f"{fmt_plain(host.ram_gib)} GiB RAM ({host.cpu.name}, {host.cpu.bandwidth_gb_s:,.0f} GB/s{reads})"
    )
    where = f"{result.request.context:,} tokens x {result.request.batch:,}"
    if p.fits:
        lo, hi = perf.decode_tokens_per_s_range
        n = len(p.cpu_moe_layers)
        n_flag = n_cpu_moe(result.memory.engine, spec.arch, p.cpu_layers)
        flag = f" (--n-cpu-moe {n_flag[0]})" if n_flag else ""
        console.print(
            f"{where}: the experts of {n} of {spec.arch.num_moe_layers} MoE "
            f"layers in RAM{flag}: ~{fmt_rate(perf.decode_tokens_per_s)} tok/s "
            f"({fmt_rate(lo)}-{fmt_rate(hi)}), prefill {fmt_rate(perf.prefill_tokens_per_s)} tok/s "
            f"({p.prefill_path}), first token in {perf.time_to_first_token_s:,.1f} s"
        )
        if result.prefill_hint:  # a setting the user moves
            console.print(f"[yellow]{result.prefill_hint}[/yellow]")
    else:
        shortfall = result.fit.shortfall if result.fit is not None and result.fit.shortfall else ()
        console.print(f"{where}: " + "; ".join(shortfall))
        for advice in result.advice:
            console.print(f"  - {advice.text}")
    for note in result.assumptions:
        if note.startswith("warning:"):  # beyond the trained context and the like, as estimate prints them
            console.print(f"[yellow]{note}[/yellow]")
    table = Table(title="Memory", title_justify="left", box=table_box(console))
    for col in ("", "used", "capacity", "holds"):
        table.add_column(col, justify="right" if col in ("used", "capacity") else "left", no_wrap=col != "holds")
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
    commands = list(result.commands.items())
    if not detail:
        for engine, cmd in commands[:1]:
            console.print(f"[bold]{engine}[/bold]:")
            for line in shell_lines(cmd, console.width):
                console.print(line, markup=False, highlight=False, soft_wrap=not line.startswith("# "))
        others = ", and the commands for the other engines" if len(commands) > 1 else ""
        console.print(f"[dim]--detail: speed by context{others}[/dim]")
        return
    trade = Table(title="Context vs experts in RAM vs speed", title_justify="left", box=table_box(console))
    llama = n_cpu_moe(result.memory.engine, spec.arch, 0) is not None  # KTransformers has no --n-cpu-moe
    for col in ("context", "--n-cpu-moe" if llama else "MoE layers in RAM", "VRAM / GPU", "RAM", "tok/s"):
        trade.add_column(col, justify="right", no_wrap=True)
    for row in result.tradeoff:
        tps = row.decode_tokens_per_s
        n_flag = n_cpu_moe(result.memory.engine, spec.arch, row.experts_on_cpu_layers)
        trade.add_row(
            f"{row.context:,}",
            str(n_flag[0] if n_flag else len(p.cpu_moe_layers)),
            fmt_gib(row.vram_bytes_per_gpu), fmt_gib(row.ram_bytes),
            fmt_rate(tps) if tps else "[red]does not fit[/red]",
        )  # fmt: skip
    console.print(trade)
    console.print("[dim](the best placement at each context)[/dim]")
    for engine, cmd in commands:
        console.print(f"[bold]{engine}[/bold]:")
        for line in shell_lines(cmd, console.width):
            console.print(line, markup=False, highlight=False, soft_wrap=not line.startswith("# "))


def print_cpus(console: Console, cpus: list[CpuSpec], detail: bool = False) -> None:
    headline(console, f"{len(cpus)} host platforms for expert offload (or --cpu ddr5-5600x2: type-speed x channels)")

    def table(cols: tuple[str, ...]) -> Table:
        t = Table(box=table_box(console))
        for col in cols:
            t.add_column(col, justify="right" if col in ("GB/s", "cores", "fp32 GFLOP/s") else "left", no_wrap=True)
        for c in cpus:
            mem = f"{c.memory_type}-{c.memory_mt_s}" if c.memory_mt_s else c.memory_type
            if c.memory_mt_s and c.memory_channels:
                mem += f" x{c.memory_channels}"
            cells = {"id": c.id, "name": c.name, "memory": mem, "GB/s": f"{c.bandwidth_gb_s:,.0f}",
                     "cores": str(c.cores), "fp32 GFLOP/s": f"{c.fp32_gflops:,.0f}",
                     "aliases": ", ".join(c.aliases[:3])}  # fmt: skip
            t.add_row(*(cells[col] for col in cols))
        return t

    full = ("id", "name", "memory", "GB/s", "cores", "fp32 GFLOP/s", "aliases")
    figures = ("id", "memory", "GB/s", "cores", "fp32 GFLOP/s")
    chosen = first_fitting(console, *([lambda: table(full)] if detail else []), lambda: table(figures))
    console.print(chosen)
    if detail and len(chosen.columns) < len(full):
        console.print(_names_table(console, [(c.id, c.name, list(c.aliases)) for c in cpus], with_name=True))
    elif not detail:
        console.print("[dim]names and aliases: --detail[/dim]")


def _short_by(p: Placement) -> str:
    """What a placement that does not fit lacks, shortest first: ``RAM short 53.3 GiB``, ``VRAM short 2.1 GiB``."""
    parts = []
    if p.ram_bytes > p.ram_capacity_bytes:
        parts.append(f"RAM short {fmt_gib(p.ram_bytes - p.ram_capacity_bytes)}")
    if p.vram_bytes_per_gpu > p.vram_capacity_bytes:
        parts.append(f"VRAM short {fmt_gib(p.vram_bytes_per_gpu - p.vram_capacity_bytes)}")
    return ", ".join(parts) or "does not fit"
