"""Number formats and text bars shared by the renderings (plain functions: no rich, no result types)."""

from __future__ import annotations

KIND_LABELS = {
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


def fmt_plain(x: float | None) -> str:
    """A number the user gave, as written but with thousands separators and no exponent: 1e6 -> '1,000,000',
    0.5 -> '0.5', 96 -> '96'."""
    if x is None:
        return ""
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.6g}" if abs(x) < 1e6 else f"{x:,.1f}"


def fmt_load(concurrency: int | None, rate: float | None) -> str:
    """A serving load as the outputs name it: ``concurrency 64``, or ``3 requests/s`` (a rate as given)."""
    return f"concurrency {concurrency:,}" if concurrency is not None else f"{fmt_plain(rate)} requests/s"


def fmt_seconds(x: float) -> str:
    """A wait in the unit that keeps it readable: 0.22 s, 12.5 s, 8.3 min, 5.2 h, 21.5 days (1,856,425 s)."""
    if x < 60:
        return f"{x:.2f} s"
    if x < 3600:
        return f"{x / 60:.1f} min"
    if x < 48 * 3600:
        return f"{x / 3600:.1f} h"
    return f"{x / 86400:,.1f} days"


def fmt_rate(x: float) -> str:
    """Tokens per second with sensible precision."""
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"


def fmt_usd(x: float | None) -> str:
    """$27,500; $499; $2.49; $0.0349."""
    if x is None:
        return "n/a"
    return f"${x:,.0f}" if x >= 100 else f"${x:,.2f}" if x >= 0.1 else f"${x:,.4f}"


def fmt_buy(price: tuple[float, str] | None, full: bool = False) -> str:
    """A purchase price with its basis (:attr:`GpuSpec.buy_price`): ``$27.5k '26-05`` for a dated street price,
    ``~$8.0k`` for a list estimate; ``full``: ``$27,500 (street, 2026-05)``."""
    if price is None:
        return "-"
    usd, basis = price
    if full:
        return f"{fmt_usd(usd)} ({basis})"
    short = f"${usd / 1000:,.1f}k" if usd >= 1000 else fmt_usd(usd)
    if basis.startswith("street, "):
        month = basis.removeprefix("street, ")
        return f"{short} '{month[2:]}"
    return f"~{short}"


def fmt_gib(n: float) -> str:
    """Bytes -> GiB with two decimals."""
    return f"{n / 1024**3:,.2f} GiB"


def stacked_bar(
    parts: list[tuple[str, float, str]],
    capacity: float,
    width: int = 50,
    chars: tuple[str, ...] = ("█",),
    empty: str = "░",
) -> str:
    """A stacked bar of ``parts`` (label, bytes, colour) against ``capacity``; part i is drawn with ``chars[i]``."""
    total = sum(p[1] for p in parts)
    scale = width / max(capacity, total, 1.0)
    out = ""
    for i, (_, value, colour) in enumerate(parts):
        n = round(value * scale)
        out += f"[{colour}]" + chars[min(i, len(chars) - 1)] * n + f"[/{colour}]"
    used = sum(round(p[1] * scale) for p in parts)
    if capacity > total:
        out += "[dim]" + empty * max(0, round(capacity * scale) - used) + "[/dim]"
    return out


def hbar(value: float, top: float, width: int = 40, full: str = "█", empty: str = "░") -> str:
    n = 0 if top <= 0 else round(width * min(value, top) / top)
    return full * n + empty * (width - n)


def fmt_value(value: float | None, unit: str) -> str:
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
