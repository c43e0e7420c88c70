"""Results as plain text: tables (headers + rows) for ``--format markdown`` and ``--format csv``, and ``--json``.

The same typed result objects feed the rich tables and the JSON; these functions only pick and format figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from moeplan.deploy.offload_commands import n_cpu_moe
from moeplan.errors import InputError

if TYPE_CHECKING:
    from moeplan.deploy.results import Candidate, Comparison, EstimateResult, FitResult, OffloadResult
    from moeplan.hardware.gpus import GpuSpec
    from moeplan.hardware.hosts import CpuSpec
    from moeplan.sources.catalog import CatalogRow


Table = tuple[list[str], list[list[str]]]
FORMATS = ("table", "markdown", "csv")


def _g(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _verdict(fit: FitResult) -> str:
    """``fits on 4 x a100-80gb-sxm`` or ``does not fit on 2 x a100-80gb-sxm; fewest that fit: 4``."""
    where = fit.placement
    return f"fits on {where}" if fit.fits else f"does not fit on {where}; {fit.fewest}"


def estimate_table(result: EstimateResult) -> Table:
    """Figure, value, unit: one row per headline figure of an estimate."""
    m, f, perf, cost = result.memory, result.fit, result.performance, result.cost
    gib = 2**30
    rows: list[list[Any]] = [["verdict", _verdict(f), ""]] if f else []
    rows += [
        ["model", result.spec.shown_id, ""],
        ["total parameters", result.params.total, "count"],
        ["active parameters", result.params.active, "count"],
        *(
            [
                ["active parameters, fewest", result.params.active_min, "count"],
                ["active parameters, most", result.params.active_max, "count"],
            ]
            if result.params.active_min != result.params.active_max
            else []
        ),
        ["context", result.request.context, "tokens"],
        ["batch", result.request.batch, "sequences"],
        ["weights format", m.scheme, ""],
        ["KV cache format", m.kv_dtype, ""],
        ["engine", m.engine, ""],
        ["weights, all GPUs", _g(m.weights_bytes / gib), "GiB"],
        ["weights per GPU", _g(m.per_gpu_weights_bytes / gib), "GiB"],
        *(
            [["weights of published files", f"{_g(r[0] / gib)}-{_g(r[1] / gib)}", "GiB"]]
            if (r := m.weights_range_bytes)
            else []
        ),
        ["KV cache per token", m.kv_bytes_per_token, "bytes"],
        ["KV cache, all GPUs", _g(m.kv_cache_bytes / gib), "GiB"],
        ["KV cache per GPU", _g(m.per_gpu_kv_cache_bytes / gib), "GiB"],
        *(
            [["recurrent state per sequence", _g(m.state_bytes_per_sequence / 2**20, 1), "MiB"]]
            if m.state_bytes
            else []
        ),
        ["memory per GPU", _g(m.per_gpu_bytes / gib), "GiB"],
    ]
    if f:
        rows += [
            ["GPU", f.gpu, ""],
            ["GPUs", f.num_gpus, "count"],
            ["fits", "yes" if f.fits else "no", ""],
            ["fewest GPUs that fit", "" if f.min_gpus is None else f.min_gpus, "count"],
            ["longest context at this batch", f.max_context, "tokens"],
        ]
    if result.flops:
        rows.append(["decode FLOPs per token", _g(result.flops.decode_per_token / 1e9), "GFLOP"])
    if perf:
        lo, hi = perf.decode_tokens_per_s_range
        rows += [
            ["decode tokens/s per sequence", _g(perf.decode_tokens_per_s, 1), "tokens/s"],
            ["decode tokens/s, low", _g(lo, 1), "tokens/s"],
            ["decode tokens/s, high", _g(hi, 1), "tokens/s"],
            ["decode tokens/s, all sequences", _g(perf.throughput_tokens_per_s, 1), "tokens/s"],
            ["prefill tokens/s", _g(perf.prefill_tokens_per_s, 0), "tokens/s"],
            ["prefill tokens/s, low", _g(perf.prefill_tokens_per_s_range[0], 0), "tokens/s"],
            ["prefill tokens/s, high", _g(perf.prefill_tokens_per_s_range[1], 0), "tokens/s"],
            ["time to first token", _g(perf.time_to_first_token_s), "s"],
            ["time to first token, low", _g(perf.time_to_first_token_s_range[0]), "s"],
            ["time to first token, high", _g(perf.time_to_first_token_s_range[1]), "s"],
        ]
        if perf.loaded_prefill_tokens_per_s_per_gpu is not None:
            rows.append(["prefill at full load per GPU", _g(perf.loaded_prefill_tokens_per_s_per_gpu, 0), "tokens/s"])
    sv, load = result.serving, result.request.traffic
    if sv is not None and load is not None:  # the steady state under the load (estimate --concurrency/--rate)
        rows += [
            ["serving: request rate", _g(sv.request_rate), "requests/s"],
            ["serving: time to first token", _g(sv.ttft_s) if sv.stable else "inf", "s"],
            ["serving: time per output token", _g(sv.tpot_s * 1e3, 1), "ms"],
            ["serving: output tokens/s per GPU", _g(sv.output_tokens_per_s_per_gpu, 0), "tokens/s"],
            ["serving: sequences decoding", _g(sv.decode_batch, 0), ""],
            ["serving: keeps up", "yes" if sv.stable else "no", ""],
        ]
    if cost:
        rows += [
            ["cost per hour", _g(cost.usd_per_hour), "USD"],
            ["cost per million output tokens", _g(cost.usd_per_million_output_tokens), "USD"],
            ["cost per million input tokens", _g(cost.usd_per_million_input_tokens), "USD"],
            ["purchase", _g(cost.purchase_usd, 0), "USD"],
        ]
    return ["figure", "value", "unit"], [[str(c) for c in r] for r in rows]


_UNITS = {"bytes": "GiB", "kib": "bytes", "flops": "GFLOP", "rate": "tokens/s", "s": "s", "usd": "USD"}


def _cell(v: float | None, unit: str) -> str:
    """A compare figure in the unit :data:`_UNITS` names (the same units as ``estimate --format``)."""
    if v is None:
        return ""
    if unit == "bool":
        return "yes" if v else "no"
    if unit == "bytes":
        return _g(v / 2**30)
    if unit == "flops":
        return _g(v / 1e9)
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.6g}" if unit == "ratio" else f"{v:.2f}"


def compare_table(comparison: Comparison) -> Table:
    """One row per figure, one column per estimate, and ``best``: the columns the plan found best in the row."""
    results, rows = comparison.results, comparison.rows
    columns = [f"{r.spec.shown_id} ({r.memory.scheme}, {r.memory.engine}, {r.fit.placement if r.fit else 'no GPU'})"
               for r in results]  # fmt: skip
    out = []
    for row in rows:
        unit = _UNITS.get(row.unit)
        best = "; ".join(columns[i] for i in sorted(row.winners))
        out.append([row.label + (f" ({unit})" if unit else ""), *(_cell(v, row.unit) for v in row.values), best])
    return ["figure", *columns, "best"], out


def recommend_table(candidates: Sequence[Candidate]) -> Table:
    headers = ["rank", "gpu", "num_gpus", "ram_gib", "host_cpu", "n_cpu_moe", "quant", "engine", "per_gpu_gib",
               "usable_gib", "tokens_per_s", "tokens_per_s_low", "tokens_per_s_high", "usd_per_hour",
               "usd_per_million_output_tokens", "purchase_usd", "purchase_basis", "quality", "expert_bits",
               "marks"]  # fmt: skip
    loaded = any(c.serving is not None for c in candidates)  # under a load: its TTFT, and whether it serves it
    headers += ["serves_load", "ttft_s"] if loaded else []
    rows = []
    for i, c in enumerate(candidates, 1):
        lo, hi = c.tokens_per_s_range
        box = [_g(c.ram_gib, 0), c.host or "", str(c.experts_on_cpu_layers or "")] if c.ram_gib else ["", "", ""]
        sv = c.serving
        load = [("yes" if c.serves_load else "no"), ("" if sv is None else _g(sv.ttft_s) if sv.stable else "inf")]
        rows.append([str(i), c.gpu.id, str(c.num_gpus), *box, c.quant, c.engine, _g(c.per_gpu_bytes / 2**30),
                     _g(c.usable_bytes / 2**30), _g(c.tokens_per_s, 1), _g(lo, 1), _g(hi, 1), _g(c.usd_per_hour),
                     _g(c.usd_per_million_output_tokens), _g(c.purchase_usd, 0), c.purchase_basis or "",
                     c.quality.label if c.quality else "", _g(c.expert_bits), " ".join(c.marks),
                     *(load if loaded else [])])  # fmt: skip
    return headers, rows


def models_table(rows: Sequence[CatalogRow]) -> Table:
    headers = ["id", "architecture", "total", "active", "num_experts", "top_k", "aliases", "source"]
    return headers, [[r.id, r.architecture, str(r.total), str(r.active), str(r.num_experts), str(r.top_k),
                      " ".join(r.aliases), r.source] for r in rows]  # fmt: skip


def gpus_table(gpus: Sequence[GpuSpec]) -> Table:
    headers = ["id", "name", "usable_memory_gib", "bandwidth_gb_s", "bf16_tflops", "fp8_tflops", "usd_per_hour",
               "purchase_usd", "purchase_basis"]  # fmt: skip
    rows = []
    for g in gpus:
        rows.append([g.id, g.name, _g(g.usable_memory_gib), _g(g.bandwidth_gb_s, 0), _g(g.dense_tflops("bf16"), 1),
                     _g(g.dense_tflops("fp8"), 1), _g(g.cloud_usd_per_hour.expected if g.cloud_usd_per_hour else None),
                     _g(g.buy_price[0] if g.buy_price else None, 0),
                     g.buy_price[1] if g.buy_price else ""])  # fmt: skip
    return headers, rows


def cpus_table(cpus: Sequence[CpuSpec]) -> Table:
    headers = ["id", "name", "memory_type", "memory_channels", "memory_mt_s", "bandwidth_gb_s", "cores", "fp32_gflops"]
    rows = [[c.id, c.name, c.memory_type, str(c.memory_channels or ""), str(c.memory_mt_s or ""),
             _g(c.bandwidth_gb_s, 1), str(c.cores), _g(c.fp32_gflops, 0)] for c in cpus]  # fmt: skip
    return headers, rows


def offload_table(result: OffloadResult) -> Table:
    headers, rows = estimate_table(result)
    p, perf = result.chosen, result.offload_performance
    keep = [r for r in rows if r[0] in ("model", "total parameters", "active parameters", "weights format")]
    keep.append(["engine", result.memory.engine, ""])
    n_flag = n_cpu_moe(result.memory.engine, result.spec.arch, p.cpu_layers)
    experts = (["experts on CPU (--n-cpu-moe)", str(n_flag[0]), n_flag[1]] if n_flag
               else ["experts on CPU", str(len(p.cpu_moe_layers)), "MoE layers"])  # fmt: skip
    keep += [
        experts,
        ["VRAM per GPU", _g(round(p.vram_bytes_per_gpu) / 2**30), "GiB"],
        ["RAM", _g(round(p.ram_bytes) / 2**30), "GiB"],
        ["fits", "yes" if p.fits else "no", ""],
        ["decode tokens/s", _g(perf.decode_tokens_per_s, 1), "tokens/s"],
        ["prefill tokens/s", _g(perf.prefill_tokens_per_s, 0), "tokens/s"],
        ["prefill path", perf.prefill_path, ""],
    ]
    keep += [[f"to fit ({i})", a.text, ""] for i, a in enumerate(result.advice, 1)]
    return headers, keep


def to_markdown(table: Table) -> str:
    headers, rows = table

    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    import csv
    import io

    headers, rows = table
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buf.getvalue()


def to_json_text(obj: Any) -> str:
    """``--json`` output: the result's JSON, indented, keys in the order the result gives them.  Strict JSON: a
    figure that came out infinite or NaN is an error naming it, never ``Infinity`` in the output."""
    import json

    try:
        return json.dumps(obj, indent=2, sort_keys=False, allow_nan=False)
    except ValueError:
        raise InputError(f"a figure is not finite: {_first_non_finite(obj) or 'unknown'}",
                         "check the numbers given; this is a bug if they are ordinary") from None  # fmt: skip


def _first_non_finite(obj: Any, path: str = "") -> str | None:
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return f"{path or 'the result'} = {obj}"
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list | tuple) else ()
    for k, v in items:
        found = _first_non_finite(v, f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None


def render_plain(table: Table, fmt: str) -> str:
    return to_markdown(table) if fmt == "markdown" else to_csv(table)
