"""``compare`` as a rich table: one column per estimate, the best of each row starred; blocks of columns where
they do not all fit the terminal.

Computes nothing: every figure, and every row's winners, comes from the comparison.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from moeplan.output.formatting import fmt_value
from moeplan.output.terminal import first_fitting, fits, glyphs, headline, table_box

if TYPE_CHECKING:
    from moeplan.deploy.results import Comparison, EstimateResult


def _short_parts(results: list[EstimateResult]) -> list[list[str]]:
    """What tells the columns apart, per column: the model, format, engine or GPUs (``6 x mi300x``, one part),
    whichever differ; numbered where they still do not."""
    parts = [
        [r.spec.shown_id for r in results],
        [r.memory.scheme for r in results],
        [r.memory.engine for r in results],
        [r.fit.placement if r.fit else "no GPU" for r in results],
    ]
    differing = [p for p in parts if len(set(p)) > 1] or parts[:1]
    out = [[p[i] for p in differing] for i in range(len(results))]
    if len({tuple(x) for x in out}) < len(out):
        out = [[f"{i + 1}:", *x] for i, x in enumerate(out)]
    return out


def print_compare(console: Console, comparison: Comparison) -> None:
    """The comparison table: one column per estimate, the winner of each row in green with a star."""
    results, rows = comparison.results, comparison.rows
    star = glyphs(console).star
    short_parts = _short_parts(results)
    short = [" ".join(x) for x in short_parts]
    by_label = {row.label: row for row in rows}
    said = []
    picks = (("decode tokens/s per sequence", "fastest"), ("per million output tokens", "cheapest per token"),
             ("memory per GPU", "least memory per GPU"))  # fmt: skip
    for label, what in picks:
        row = by_label.get(label)
        if row is not None and len(row.winners) == 1:
            (i,) = row.winners
            said.append((what, short[i], fmt_value(row.values[i], row.unit)))
    # the column best in the most rows, where the picks above do not already name it
    wins = [sum(1 for row in rows if i in row.winners and len(row.winners) == 1) for i in range(len(results))]
    most = max(range(len(results)), key=lambda i: wins[i])
    if wins[most] > 1 and short[most] not in {who for _, who, _ in said}:
        said.append((f"best in {wins[most]} of {len(rows)} rows", short[most], ""))
    groups: dict[str, list[tuple[str, str]]] = {}
    for what, who, value in said:
        groups.setdefault(who, []).append((what, value))
    full = list(groups.items())
    brief = {" ".join(parts): parts[0] for parts in short_parts}

    def terse(what: str) -> str:  # "cheapest per token" -> "cheapest", "best in 8 of 16 rows" -> "best in 8 rows"
        return what.replace(" per token", "").replace(" per GPU", "").split(" of ")[0] + (
            " rows" if " of " in what else ""
        )

    if groups:
        headline(
            console,
            "; ".join(f"[bold]{who}[/bold]: " + ", ".join(f"{w} ({v})" if v else w for w, v in g) for who, g in full),
            "; ".join(f"[bold]{who}[/bold]: " + ", ".join(w for w, _ in g) for who, g in full),
            # each column by its first telling part alone (the model), where that still tells them apart
            *(["; ".join(f"[bold]{brief[who]}[/bold]: " + ", ".join(w for w, _ in g) for who, g in full),
               "; ".join(f"[bold]{brief[who]}[/bold]: " + ", ".join(terse(w) for w, _ in g) for who, g in full)]
              if len(set(brief.values())) == len(brief) else []),
            *(f"[bold]{who}[/bold]: " + ", ".join(w for w, _ in g) for who, g in full[:1]),
        )  # fmt: skip
    else:
        headline(console, f"{len(results)} deployments compared: no row has a single best")

    def table(full_heads: bool, cols: range | None = None) -> Table:
        cols = cols if cols is not None else range(len(results))
        span = f"column {cols.stop}" if len(cols) == 1 else f"columns {cols.start + 1}-{cols.stop}"
        part = f"; {span} of {len(results)}" if len(cols) < len(results) else ""  # a block's title: its columns
        title = f"{star} = best in the row{part}" if part else f"Comparison ({star} = best in the row)"
        t = Table(title=title, title_justify="left", box=table_box(console))
        t.add_column("", no_wrap=True)
        for i in cols:
            r = results[i]
            if full_heads:
                asked = r.request.model
                named = f" ({asked})" if r.spec.origin == "catalogue" and asked.lower() != r.spec.id else ""
                head = f"{r.spec.name}{named}\n{r.memory.scheme}, {r.memory.engine}"
                if r.fit is not None:
                    head += f"\n{r.fit.placement}"
            else:  # one part a line: a GPU count and kind stay together
                head = "\n".join(short_parts[i])
            t.add_column(head, justify="right", no_wrap=True)
        for row in rows:
            cells = []
            for i in cols:
                v = row.values[i]
                text = fmt_value(v, row.unit)
                if i in row.winners:
                    text = f"[bold green]{star} {text}[/bold green]"
                elif row.eligible is not None and not row.eligible[i] and v is not None:
                    text = f"[dim]({text})[/dim]"
                cells.append(text)
            t.add_row(row.label, *cells)
        return t

    best = first_fitting(console, lambda: table(True), lambda: table(False))
    if fits(console, best):
        console.print(best)
    else:  # too many columns for the terminal: consecutive blocks of as many as fit, each with the row labels
        start = 0
        while start < len(results):
            stop = len(results)
            while stop > start + 1 and not fits(console, table(False, range(start, stop))):
                stop -= 1
            console.print(table(False, range(start, stop)))
            start = stop
    req = results[0].request
    console.print(f"[dim]at {req.context:,} tokens x {req.batch:,} sequences; figures per column as `estimate`[/dim]")
    if any(r.fit is not None and not r.fit.fits for r in results):
        console.print("[dim](speed and cost in brackets: as if the deployment fitted, which it does not)[/dim]")
    bases = {
        f"{r.fit.gpu}: {r.cost.purchase_basis}": None
        for r in results
        if r.cost is not None and r.cost.purchase_usd is not None and r.cost.purchase_basis and r.fit is not None
    }
    if bases:
        console.print(f"[dim]to buy: {'; '.join(bases)}[/dim]")
    for r in results:
        for note in r.assumptions:
            if note.startswith("warning:"):
                console.print(f"[yellow]{r.request.model}: {note}[/yellow]")
