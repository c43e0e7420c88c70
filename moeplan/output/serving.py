"""``moeplan serve`` rendered: the configurations table (rich, Markdown/CSV), the Pareto plot, and the JSON."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from moeplan.records import to_dict

if TYPE_CHECKING:
    from rich.console import Console

    from moeplan.plans.serve import ServeCandidate, ServeResult

Table = tuple[list[str], list[list[str]]]
PLOT_W, PLOT_H = 60, 14


def per_gpu_text(v: float) -> str:
    """Tokens/s a GPU as serve prints it: whole above 10 (``1,222``), two significant figures below (``6.3``,
    ``0.12``: a 405B model on L4s serves a fraction of a token a second per GPU, never ``0``)."""
    return f"{v:,.0f}" if v >= 10 else f"{v:.2g}"


def joules_text(j: float | None) -> str:
    """Joules per output token to three significant figures: ``0.312``, ``0.0121`` (a small model's rows differ
    in the third figure, which two decimals would print as ``0.01`` each); empty without a TDP."""
    return "" if j is None else f"{j:.3g}"


def _point(p: Any) -> dict[str, Any]:
    from moeplan.deploy.results import point_json

    return point_json(p)


MTP_ORIGINS = {"--mtp-accept": "--mtp-accept", "published": "the model's published figure",
               "default": "DeepSeek-V3's: none is published for this model"}  # fmt: skip
"""How serve names where its MTP acceptance comes from (:func:`~moeplan.deploy.deployment.mtp_acceptance`)."""


def mtp_of(result: ServeResult) -> tuple[int, float, str] | None:
    """With ``--mtp``: the drafts a step, their acceptance and whose figure it is (None without ``--mtp``)."""
    from moeplan.deploy.deployment import mtp_acceptance

    req = result.request
    if not req.mtp:
        return None
    accept, _, origin = mtp_acceptance(result.spec, req.mtp_accept)
    return req.mtp_drafts or result.spec.arch.mtp_layers, accept, MTP_ORIGINS[origin]


def serve_json(result: ServeResult, top: int) -> dict[str, Any]:
    """The request, the ranked configurations (each with its point and launch command) and the Pareto front."""
    t = result.request.traffic
    rows = []
    for c in result.candidates[:top]:
        rows.append({
            "gpu": c.gpu.id, "num_gpus": c.num_gpus, "tp": c.tp, "ep": c.ep, "pp": c.pp,
            "dp_attention": c.dp_attention, "eplb": c.eplb, "batch_overlap": c.batch_overlap,
            "disaggregated": c.disaggregated, "replicas": c.replicas,
            "prefill_gpu": c.prefill_gpu.id if c.prefill_gpu is not None else None,
            "prefill_gpus": c.prefill_gpus if c.disaggregated else None,
            "prefill_dp_attention": bool(c.prefill_dp) if c.disaggregated else None,
            "prefill_batch_overlap": c.prefill_overlap if c.disaggregated else None, "quant": c.quant,
            "engine": c.engine, "meets_targets": c.meets, "misses": list(c.misses), "point": _point(c.point),
            "usd_per_hour": c.usd_per_hour, "usd_per_million_output_tokens": c.usd_per_million_output_tokens,
            "usd_per_million_input_tokens": c.usd_per_million_input_tokens,
            "joules_per_output_token": c.joules_per_output_token, "command": c.command,
            "quality": c.quality.label if c.quality else None, "lower_quality": c.lower_quality,
        })  # fmt: skip
    return {
        "model": {"id": result.spec.id, "name": result.spec.name},
        "traffic": to_dict(t),
        "targets": {"ttft_s": result.request.ttft_s, "tpot_s": result.request.tpot_s, "e2e_s": result.request.e2e_s},
        "max_running": result.request.max_running,
        "sort": result.request.sort,
        "mtp": dict(zip(("drafts", "accept", "accept_from"), mtp, strict=True)) if (mtp := mtp_of(result)) else None,
        "configurations_tried": len(result.candidates),
        "configurations": rows,
        "pareto": [{"configuration": label, **_point(p)} for label, p in result.pareto],
    }


def serve_table(result: ServeResult, top: int) -> Table:
    headers = ["#", "configuration", "meets", "tok/s/GPU", "tok/s/user", "TTFT s", "TTFT p90 s", "TPOT ms",
               "E2E s", "$/M out", "J/token", "misses", "quality"]  # fmt: skip
    rows = []
    for i, c in enumerate(result.candidates[:top], 1):
        p = c.point
        rows.append([
            str(i), c.label, "yes" if c.meets else "no", per_gpu_text(p.output_tokens_per_s_per_gpu).replace(",", ""),
            f"{p.tokens_per_s_per_user:.1f}", f"{p.ttft_s:.3f}" if p.stable else "inf",
            f"{p.ttft_p90_s:.3f}" if p.stable else "inf", f"{p.tpot_s * 1e3:.1f}",
            f"{p.e2e_s:.2f}" if p.stable else "inf",
            f"{c.usd_per_million_output_tokens:.3f}" if c.usd_per_million_output_tokens is not None else "",
            joules_text(c.joules_per_output_token),
            "; ".join(c.misses),
            (c.quality.label if c.quality else "") + (" (lower-quality)" if c.lower_quality else ""),
        ])  # fmt: skip
    return headers, rows


def axis_ticks(top: float, count: int = 4) -> list[float]:
    """Round values from 0 to ``top`` for an axis: the smallest step of 1, 2, 2.5 or 5 x 10^k at least ``top /
    count``.  A front reaching 1,222 tok/s per GPU: 0, 500, 1,000; one reaching 166 tok/s per user: 0, 50, 100, 150."""
    if top <= 0:
        return [0.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return [i * step for i in range(int(top / step + 1e-9) + 1)]


def tick_label(v: float) -> str:
    """An axis value as the plot prints it: thousands separated, a fraction kept only below 10 (``2.5``)."""
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:g}"


def pareto_plot(result: ServeResult, width: int = PLOT_W + 2) -> list[str]:
    """A text scatter of the front: tokens/s per user across, output tokens/s per GPU up, each axis from 0 with
    round values marked, in ``width`` columns (the values, the axis and its arrow included; :data:`PLOT_W` plotted
    columns at most, 20 at least)."""
    if not result.pareto:
        return []
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    marks: dict[str, str] = {}  # each configuration on the front its letter, in the front's order
    for label, _ in result.pareto:
        marks.setdefault(label, letters[len(marks)] if len(marks) < len(letters) else "*")
    pts = [(p.tokens_per_s_per_user, p.output_tokens_per_s_per_gpu, marks[label]) for label, p in result.pareto]
    xmax, ymax = max(x for x, _, _ in pts), max(y for _, y, _ in pts)
    # the y axis's round values, each on the row its value falls in (a row keeps the first that lands on it)
    y_rows: dict[int, str] = {}
    for v in axis_ticks(ymax):
        y_rows.setdefault(PLOT_H - 1 - min(PLOT_H - 1, int(v / ymax * (PLOT_H - 1))), tick_label(v))
    gutter = max(len(s) for s in y_rows.values()) + 1
    w = max(20, min(PLOT_W, width - 2 - gutter))
    grid = [[" "] * w for _ in range(PLOT_H)]
    under: dict[str, set[str]] = {}  # a letter drawn over by another's point in the same cell: said in the legend
    for x, y, mark in pts:
        col = min(w - 1, int(x / xmax * (w - 1)))
        row = min(PLOT_H - 1, int(y / ymax * (PLOT_H - 1)))
        cell = grid[PLOT_H - 1 - row][col]
        if cell not in (" ", mark):
            under.setdefault(cell, set()).add(mark)
        grid[PLOT_H - 1 - row][col] = mark
    drawn = {c for r in grid for c in r}
    lines = [f"output tok/s per GPU (max {per_gpu_text(ymax)})"]
    lines += [f"{y_rows.get(i, ''):>{gutter - 1}} |" + "".join(r) for i, r in enumerate(grid)]
    lines.append(" " * gutter + "+" + "-" * w + ">")
    # the x axis's round values, each starting under its column, none running into the one before
    ticks, end = [" "] * (w + 2), -1
    for v in axis_ticks(xmax):
        s, col = tick_label(v), 1 + min(w - 1, int(v / xmax * (w - 1)))
        if col > end + 1 and col + len(s) <= w + 2:
            ticks[col : col + len(s)] = s
            end = col + len(s)
    lines.append((" " * gutter + "".join(ticks)).rstrip())
    lines.append(f"{'tok/s per user (max ' + per_gpu_text(xmax) + ')':>{gutter + w + 1}}")
    for label, mark in marks.items():  # the legend: which configuration each letter is, at which concurrencies
        conc = sorted({p.concurrency for name, p in result.pareto if name == label})
        at = f"{conc[0]:g}" if len(conc) == 1 else f"{conc[0]:g}-{conc[-1]:g}"
        hidden = "" if mark in drawn else f" (under {', '.join(sorted(under_of(mark, under, drawn)))})"
        lines.append(f"{mark} {label}, {at} client{'' if at == '1' else 's'}{hidden}")
    return lines


def under_of(mark: str, under: dict[str, set[str]], drawn: set[str]) -> set[str]:
    """The letters on the plot that lie over ``mark``'s points (``under``: each overwritten letter, the letters
    written on it): a letter itself drawn over is followed to the one that shows (F under G under H: H)."""
    shown: set[str] = set()
    todo, seen = [mark], {mark}
    while todo:
        for over in under.get(todo.pop(), set()) - seen:
            seen.add(over)
            (shown.add if over in drawn else todo.append)(over)
    return shown or {"another point"}


def row_figures(c: ServeCandidate, one: bool, e2e: bool) -> tuple[str, ...]:
    """A configuration's figures as serve's table shows them: output tok/s per GPU, tok/s per user, TTFT, TPOT, E2E
    (where ``e2e``: an --e2e target is judged on it), $/M.  A queue that grows without bound has no TTFT to give
    (``∞``), long waits read in whole seconds with separators; ``one`` output token has no TPOT or user speed."""
    p, usd = c.point, c.usd_per_million_output_tokens
    ttft = "∞" if not p.stable else f"{p.ttft_s:.2f}" if p.ttft_s < 100 else f"{p.ttft_s:,.0f}"
    return (per_gpu_text(p.output_tokens_per_s_per_gpu).replace(",", ""),
            "-" if one else f"{p.tokens_per_s_per_user:.1f}", ttft,
            "-" if one else f"{p.tpot_s * 1e3:.1f}", *((f"{p.e2e_s:.1f}" if p.stable else "∞",) if e2e else ()),
            f"{usd:.3f}" if usd is not None else "")  # fmt: skip


def engine_ties(
    candidates: tuple[ServeCandidate, ...] | list[ServeCandidate], top: int
) -> list[tuple[ServeCandidate, list[str]]]:
    """The first ``top`` configurations, each with the engines whose figures for it read the same, merged into one
    row (vLLM, SGLang and ATOM share one speed profile: at a load their memory does not limit, their rows differ
    only in the launch line): ``1x mi300x TP1 mxfp4-experts atom/vllm/sglang``."""
    out: list[tuple[ServeCandidate, list[str]]] = []
    seen: dict[tuple[object, ...], list[str]] = {}
    for c in candidates:
        key = (c.label.removesuffix(f" {c.engine}"), c.meets, c.point.stable, *row_figures(c, one=False, e2e=True))
        if key in seen:
            seen[key].append(c.engine)
        elif len(out) < top:
            seen[key] = [c.engine]
            out.append((c, seen[key]))
    return out


def print_serve(console: Console, result: ServeResult, top: int, detail: bool = False) -> None:
    from rich.table import Table as RichTable

    from moeplan.output.formatting import fmt_load, fmt_plain, fmt_seconds
    from moeplan.output.terminal import first_fitting, headline, shell_lines, table_box

    t, req = result.request.traffic, result.request
    load = fmt_load(t.concurrency, t.rate)
    load += f", {t.prefix_hit:.0%} of each prompt cached" if t.prefix_hit else ""
    if (mtp := mtp_of(result)) is not None:
        load += f", MTP {mtp[0]} draft{'s' if mtp[0] > 1 else ''} a step accepted at {mtp[1]:g} ({mtp[2]})"
    goals = [
        f"TTFT <= {req.ttft_s:g} s" if req.ttft_s else "",
        f"TPOT <= {req.tpot_s * 1e3:g} ms" if req.tpot_s else "",
        f"E2E <= {req.e2e_s:g} s" if req.e2e_s else "",
    ]
    meeting = [c for c in result.candidates if c.meets]
    tried = len(result.candidates)
    best: ServeCandidate | None = meeting[0] if meeting else None
    targeted = any(goals)
    shown_rows = engine_ties(result.candidates, top)
    best_label = best.label if best is not None else ""
    if (
        best is not None and shown_rows and shown_rows[0][0] is best and len(shown_rows[0][1]) > 1
    ):  # equal engines: name them all
        *first, last = shown_rows[0][1]
        best_label = f"{best.label.removesuffix(f' {best.engine}')} {', '.join(first)} or {last}"
    by_energy = req.sort == "energy"
    sides = [g for c in result.candidates for g in (c.gpu, c.prefill_gpu)] if by_energy else []
    unrated = sorted({g.id for g in sides if g is not None and not g.tdp_w})  # GPUs without a TDP: no energy figure
    if by_energy and best is not None and best.joules_per_output_token is None:  # none that qualifies has a TDP
        headline(console, f"No energy figure for what meets the targets: {', '.join(unrated)} ha"
                 f"{'s' if len(unrated) == 1 else 've'} no TDP (tdp_w in --gpu-file); the best by cost: "
                 f"[bold]{best_label}[/bold]", f"No energy figure (no TDP: {', '.join(unrated)}); by cost: "
                 f"[bold]{best_label}[/bold]")  # fmt: skip
    elif by_energy and best is not None and best.joules_per_output_token is not None:
        usd = best.usd_per_million_output_tokens
        figures = f", {joules_text(best.joules_per_output_token)} J/token"
        figures += f" (${usd:.3f}/M out)" if usd is not None else ""
        what = "that meets the targets" if targeted else "(no latency targets given)"
        headline(console, f"Least energy per token {what}: [bold]{best_label}[/bold]{figures}",
                 f"Least energy per token: [bold]{best_label}[/bold]{figures}",
                 f"Least energy per token {what}{figures}:\n  [bold]{best_label}[/bold]")  # fmt: skip
    elif best is not None and best.usd_per_million_output_tokens is None:  # no price for any that qualifies
        what = "that meets the targets" if targeted else "(no latency targets given)"
        headline(console, f"Most output per GPU {what}: [bold]{best_label}[/bold] (no price for these GPUs in the "
                 "catalogue; --gpu-file adds one)", f"Most output per GPU: [bold]{best_label}[/bold]")  # fmt: skip
    elif best is not None and not targeted:
        usd = best.usd_per_million_output_tokens
        price = f", ${usd:.3f}/M out" if usd is not None else ""
        if best.point.ttft_s > 60:  # cheapest because its clients mostly wait: say so, and how to bound it
            price += f", TTFT {fmt_seconds(best.point.ttft_s)} (--ttft to bound it)"
        headline(console, f"Cheapest: [bold]{best_label}[/bold]{price} (of {tried:,}; no latency targets given)",
                 f"Cheapest: [bold]{best_label}[/bold]{price}",
                 f"Cheapest (of {tried:,}; no latency targets given){price}:\n  [bold]{best_label}[/bold]")  # fmt: skip
    elif best is not None:
        usd = best.usd_per_million_output_tokens
        price = f", ${usd:.3f}/M out" if usd is not None else ""
        headline(
            console,
            f"Cheapest that meets the targets: [bold]{best_label}[/bold]{price} ({len(meeting):,} of {tried:,} do)",
            f"Cheapest that meets the targets: [bold]{best_label}[/bold]{price}",
            f"Cheapest that meets the targets ({len(meeting):,} of {tried:,} do){price}:\n  [bold]{best_label}[/bold]",
        )
    else:
        what = "meets the targets" if targeted else "keeps up with the load"
        headline(console, f"[bold red]None of {tried:,} configurations {what}[/bold red]")
    console.print(
        f"[bold]{result.spec.name}[/bold]: {t.lengths_text()}, {load}"
        + (
            f"; targets {', '.join(g for g in goals if g)}: {len(meeting):,} of {tried:,} configurations meet them"
            if targeted
            else f": {tried:,} configurations (no --ttft, --tpot or --e2e targets)"
        )
    )
    one_engine = len(set(result.request.engines)) == 1

    # a GPU without a price, not a row at +inf: name the kinds, which rank after every priced one
    kinds = {g.id for c in result.candidates[:top] if c.usd_per_hour is None
             for g in (c.gpu, c.prefill_gpu) if g is not None and g.cloud_usd_per_hour is None}  # fmt: skip
    unpriced = (f"; {', '.join(sorted(kinds))} without a catalogue price: after the priced, by output per GPU "
                "(--gpu-file adds a price)" if kinds and not by_energy else "")  # fmt: skip

    def table(compact: bool) -> RichTable:
        tb = RichTable(
            title=("Least energy per token first" if by_energy else "Cheapest first")
            + (", those meeting the targets on top" if targeted else "")
            + unpriced,
            title_justify="left",
            box=table_box(console, light=compact),
            show_edge=not compact,
            pad_edge=not compact,
            collapse_padding=compact,  # one space between columns where 80 must hold a split's label
            caption_justify="left",  # a caption wrapped over lines reads as prose, not centred fragments
        )
        tb.caption = "tok/s per GPU and per user; TTFT s; TPOT ms; " + ("E2E s; " if req.e2e_s else "")
        tb.caption += "$ per million output tokens" + ("; J/tok: joules per output token at the GPUs' TDP"
                                                         if by_energy else "")  # fmt: skip
        e2e = req.e2e_s is not None  # the figure the --e2e target is judged on
        # ranked by energy, the narrow table shows J/tok where the wide one adds it beside $/M
        money = ("J/tok",) if by_energy and compact else ("$/M", "J/tok") if by_energy else ("$/M",)
        heads = ("configuration", "GPU", "user", "TTFT", "TPOT", *(("E2E",) if e2e else ()), *money)
        rows = [c for c, _ in shown_rows]
        widest = max((len(f"{c.usd_per_million_output_tokens or 0:.3f}") for c in rows), default=4)
        for h in heads if compact else ("#", *heads):
            # numbers never shrink; in the compact table the configuration wraps at its spaces (never inside an id)
            wrap = compact and h == "configuration"
            tb.add_column(h, justify="left" if h == "configuration" else "right", no_wrap=not wrap,
                          min_width=widest if h == "$/M" else None)  # fmt: skip
        names = []
        for i, (c, engines) in enumerate(shown_rows, 1):
            name = c.label.removesuffix(f" {c.engine}") + ("*" if c.lower_quality else "")
            name += "" if one_engine else f" {'/'.join(engines)}"
            if compact:  # the split's sides by their initials, DP+EP as DEP: 80 columns hold a row on one line
                name = name.replace(" (decode ", " (d ").replace(" (prefill ", " (p ").replace(", decode ", ", d ")
                name = re.sub(r"\bDP(\d+)\+EP\1\b", r"DEP\1", name)
                names.append(name)
            why = "misses" if c.point.stable else "cannot keep up"
            label = name if c.meets else f"[dim]{name} ({'x' if compact else why})[/dim]"
            figures = row_figures(c, req.traffic.osl == 1, e2e)
            joules = joules_text(c.joules_per_output_token)
            if by_energy:
                figures = (*figures[:-1], joules) if compact else (*figures, joules)
            tb.add_row(*([] if compact else [str(i)]), label, *figures)
        if compact and any(not c.meets for c in rows):
            tb.caption += "; (x): misses the targets, or cannot keep up (TTFT ∞)"
        shown = " ".join(names)
        if " (p " in shown:
            tb.caption += "; p, d: the prefill and decode instances' layouts"
        elif " (d " in shown:
            tb.caption += "; d: the decode instances' layout"
        if "DEP" in shown:
            tb.caption += "; DEP: data-parallel attention, experts over the same ranks"
        if any(len(engines) > 1 for _, engines in shown_rows):
            tb.caption += "; a/b: engines with the same figures (one speed profile)"
        if any(c.lower_quality for c in rows):
            tb.caption += "; *: its format loses more quality than one ranked below it (--min-bits 8 keeps 8-bit)"
        return tb

    console.print(first_fitting(console, lambda: table(False), lambda: table(True)))
    shown_kinds = {c.gpu.id for c, _ in shown_rows}
    if by_energy and unrated:
        console.print(f"[dim]{', '.join(unrated)}: no TDP in the catalogue or --gpu-file (tdp_w), so no energy "
                      "figure; they rank after those with one[/dim]")  # fmt: skip
    for gid in sorted({c.gpu.id for c in result.candidates if c.usd_per_hour is None} - shown_kinds):
        if not result.request.gpus or by_energy:  # the caption names the kinds over the whole catalogue; by energy
            break  # a price changes no rank
        pick = max((c for c in result.candidates if c.gpu.id == gid),
                   key=lambda c: (c.meets, c.point.stable, c.point.output_tokens_per_s_per_gpu))  # fmt: skip
        console.print(f"[dim]{gid} has no catalogue price, so it ranks after the priced: its best here, {pick.label}, "
                      f"{pick.point.output_tokens_per_s_per_gpu:,.0f} tok/s per GPU"
                      f"{'' if pick.meets else ' (misses the targets)'} (--gpu-file adds a price)[/dim]")  # fmt: skip
    if best is not None:
        console.print("launch:")
        for line in shell_lines(best.command, console.width):
            console.print(line, markup=False, highlight=False, soft_wrap=not line.startswith("# "))
    elif t.rate and result.candidates and not any(c.point.stable for c in result.candidates):
        # every one queues the load: what the best output per GPU found says the load needs
        per_gpu = max(c.point.output_tokens_per_s_per_gpu for c in result.candidates)
        need = math.ceil(t.rate * t.osl / per_gpu)
        why = (f"at the most output per GPU found ({per_gpu:,.0f} tok/s) the load needs at least {need:,} GPUs; raise "
               f"--max-gpus to {need:,} or more" if need > req.max_gpus else  # else the layouts in reach fall short
               f"{need:,} GPUs at the most output per GPU found ({per_gpu:,.0f} tok/s) would, but no layout tried "
               f"reaches it; raise --max-gpus (to {2 * req.max_gpus:,}, say)")  # fmt: skip
        console.print(f"[yellow]none keeps up with {fmt_plain(t.rate)} requests/s within --max-gpus {req.max_gpus}"
                      f"[/yellow]: {why}")  # fmt: skip
    else:
        if targeted:
            console.print("[yellow]no configuration meets the targets[/yellow]; --format csv or --json say what each "
                          f"misses; more GPUs may (--max-gpus, now {req.max_gpus})")  # fmt: skip
        else:
            console.print("[yellow]no configuration keeps up with the load[/yellow]: more GPUs (--max-gpus), or a "
                          "lower --rate")  # fmt: skip
    if detail:
        console.print("")
        for line in pareto_plot(result, console.width):
            console.print(line, markup=False, highlight=False)
    split = any(c.disaggregated for c in result.candidates[:top]) or (
        detail and any("P:" in name for name, _ in result.pareto)
    )
    console.print(
        "[dim]serving model: continuous batching with chunked prefill in steady state (docs/methodology.md); "
        "$ at the catalogue's GPU-hour prices" + ("" if detail else "; --detail: the Pareto front")
        + ("; a split (xP:yD) deployment's TTFT (its prefill queue, the prefill, the KV cache's hand-off, the decode"
           " side's admission) is the least certain figure (docs/accuracy.md)" if split else "")
        + ("; splits pair GPU kinds of one vendor" if len({c.gpu.vendor for c in result.candidates}) > 1
           and result.spec.arch.moe is not None and len(result.request.gpus) > 1 else "")
        + "[/dim]"
    )  # fmt: skip
