"""Side-by-side estimates: models, formats or GPUs in columns, each row's winner marked.

Columns come from the lists given (models, ``--quant``, ``--gpu``, ``--engine``): each list has one entry
(shared by every column) or one per column.  Every column is a full :func:`moeplan.deploy.plan.estimate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from moeplan.deploy.deployment import EstimateRequest
from moeplan.deploy.results import Comparison, EstimateResult, Row
from moeplan.errors import InputError
from moeplan.plans.estimate import estimate


def _broadcast(name: str, values: Sequence[str | None], n: int) -> list[str | None]:
    if len(values) in (0, 1):
        return [values[0] if values else None] * n
    if len(values) != n:
        raise InputError(f"{len(values)} values of {name} for {n} columns", "give one, or one per column")
    return list(values)


def compare_requests(
    models: Sequence[str],
    gpus: Sequence[str | None],
    quants: Sequence[str | None],
    engines: Sequence[str | None],
    base: EstimateRequest,
) -> list[EstimateRequest]:
    """One request per column."""
    n = max(len(models), len(gpus), len(quants), len(engines), 1)
    if n < 2:
        raise InputError("compare needs two or more columns", "give two models, or several --quant or --gpu")
    if n > 8:
        raise InputError(f"{n} columns is too many to compare", "at most 8")
    cols = zip(
        _broadcast("MODEL", list(models), n),
        _broadcast("--gpu", list(gpus), n),
        _broadcast("--quant", list(quants), n),
        _broadcast("--engine", list(engines), n),
        strict=True,
    )
    out = []
    for model, gpu, quant, engine in cols:
        if model is None:
            raise InputError("compare needs a MODEL")
        out.append(replace(base, model=model, gpu=gpu, quant=quant, engine=engine or base.engine))
    _distinct(out)
    return out


def _distinct(requests: list[EstimateRequest]) -> None:
    """Two columns that name one deployment (an engine and its alias: Ollama runs llama.cpp) are refused: their
    figures would be the same."""
    from moeplan.deploy.engines import engine as named_engine

    seen: dict[tuple[object, ...], int] = {}
    for i, r in enumerate(requests, 1):
        eng = r.engine if r.engine.strip().lower() == "auto" else named_engine(r.engine).name
        key = (r.model, r.gpu, r.quant, eng)
        if key in seen:
            first = requests[seen[key] - 1].engine
            why = f" ({eng} for --engine {first} and {r.engine})" if first != r.engine else ""  # an alias
            raise InputError(f"columns {seen[key]} and {i} are the same deployment{why}",
                             "give each column its own model, --gpu, --quant or --engine")  # fmt: skip
        seen[key] = i


def compare(requests: Sequence[EstimateRequest]) -> Comparison:
    """Every column estimated through the one pipeline, and the rows that compare them."""
    results = [estimate(r) for r in requests]
    return Comparison(results, comparison_rows(results))


def _get(results: Sequence[EstimateResult], f: Callable[[EstimateResult], float | None]) -> list[float | None]:
    return [f(r) for r in results]


def comparison_rows(results: Sequence[EstimateResult]) -> list[Row]:
    """The figures people compare, with the direction that wins.

    Speed and cost rows are won only by deployments that fit; memory per GPU only between equal GPUs.
    """
    fits = [r.fit is None or r.fit.fits for r in results]
    same_gpu = len({r.fit.gpu if r.fit else None for r in results}) == 1
    rows = [
        Row("total parameters", _get(results, lambda r: float(r.params.total)), "count", None),
        Row("active parameters", _get(results, lambda r: float(r.params.active)), "count", None),
        Row("weights", _get(results, lambda r: float(r.memory.weights_bytes)), "bytes", "min"),
        Row(
            "bytes per parameter",
            _get(results, lambda r: r.memory.weights_bytes / r.params.total),
            "ratio",
            "min",
        ),
        Row("KV cache per token", _get(results, lambda r: float(r.memory.kv_bytes_per_token)), "kib", "min"),
        Row(
            "memory per GPU",
            _get(results, lambda r: float(r.memory.per_gpu_bytes)),
            "bytes",
            "min" if same_gpu else None,
        ),
        Row("GPUs", _get(results, lambda r: float(r.fit.num_gpus) if r.fit else None), "count", "min"),
        Row("fewest GPUs that fit", _get(results, lambda r: _min_gpus(r)), "count", "min"),
        Row("fits", _get(results, lambda r: float(r.fit.fits) if r.fit else None), "bool", "max"),
        Row(
            "decode FLOPs per token",
            _get(results, lambda r: r.flops.decode_per_token if r.flops else None),
            "flops",
            "min",
        ),
        Row(
            "decode tokens/s per sequence",
            _get(results, lambda r: r.performance.decode_tokens_per_s if r.performance else None),
            "rate",
            "max",
        ),
        Row(
            "decode tokens/s total",
            _get(results, lambda r: r.performance.throughput_tokens_per_s if r.performance else None),
            "rate",
            "max",
        ),
        Row(
            "time to first token",
            _get(results, lambda r: r.performance.time_to_first_token_s if r.performance else None),
            "s",
            "min",
        ),
        Row("cost per hour", _get(results, lambda r: r.cost.usd_per_hour if r.cost else None), "usd", "min"),
        Row(
            "per million output tokens",
            _get(results, lambda r: r.cost.usd_per_million_output_tokens if r.cost else None),
            "usd",
            "min",
        ),
        Row("to buy the GPUs", _get(results, lambda r: r.cost.purchase_usd if r.cost else None), "usd", "min"),
    ]
    speed_and_cost = {"decode tokens/s per sequence", "decode tokens/s total", "time to first token",
                      "cost per hour", "per million output tokens", "to buy the GPUs"}  # fmt: skip
    rows = [replace(r, eligible=fits) if r.label in speed_and_cost else r for r in rows]
    return [r for r in rows if any(v is not None for v in r.values)]


def _min_gpus(r: EstimateResult) -> float | None:
    if r.fit is None or r.fit.min_gpus is None:
        return None
    return float(r.fit.min_gpus)
