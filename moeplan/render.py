"""Results -> rich tables and JSON text.  Computes nothing: every figure comes from the result objects."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from moeplan.plan import CatalogRow, EstimateResult

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


def to_json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)


def print_estimate(console: Console, result: EstimateResult) -> None:
    spec, p = result.spec, result.params
    arch = spec.arch
    kind = (
        f"MoE, {arch.moe.num_experts} experts, top-{arch.moe.top_k}"
        + (f", {arch.moe.num_shared_experts} shared" if arch.moe.num_shared_experts else "")
        if arch.moe
        else "dense"
    )
    console.print(f"[bold]{spec.name}[/bold]  ({spec.architecture}, {kind}, {arch.num_layers} layers)")
    console.print(
        f"[bold]{fmt_count(p.total)}[/bold] parameters, [bold]{fmt_count(p.active)}[/bold] active per token "
        f"({p.active_share:.1%})"
    )
    if result.gpu_name:
        console.print(f"GPU: {result.gpu_name}")
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
        console.print(f"[dim]published: {pub.total_b:g}B total{active} ({pub.source})[/dim]")


def print_models(console: Console, rows: list[CatalogRow]) -> None:
    table = Table(title=f"{len(rows)} models in the catalogue", title_justify="left")
    for col in ("id", "architecture", "total", "active", "experts", "top-k"):
        table.add_column(col, justify="left" if col in ("id", "architecture") else "right", no_wrap=True)
    table.add_column("source", overflow="fold")
    for r in rows:
        table.add_row(
            r.id,
            r.architecture,
            fmt_count(r.total),
            fmt_count(r.active),
            str(r.num_experts) if r.num_experts else "dense",
            str(r.top_k) if r.top_k else "",
            r.source.split(" ")[0],
        )
    console.print(table)
