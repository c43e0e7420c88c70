"""The one facade the commands call: a request in, a result out; no printing, no exits.

``estimate`` resolves the model, counts its parameters and assembles the result object that every
rendering (rich table, ``--json``) reads.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from moeplan.catalog import load_catalog, resolve_model
from moeplan.params import ParamCounts, count_params
from moeplan.specs import ModelSpec


class EstimateRequest(BaseModel):
    """What the user asked for."""

    model_config = ConfigDict(frozen=True)

    model: str
    gpu: str | None = None


class EstimateResult(BaseModel):
    """One deployment's figures; ``to_json`` gives the public JSON contract."""

    model_config = ConfigDict(frozen=True)

    spec: ModelSpec
    params: ParamCounts
    gpu_name: str | None = None
    assumptions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        spec, p = self.spec, self.params
        breakdown: dict[str, int] = {k: v for k, v in p.breakdown.items()}
        if p.mtp:
            breakdown["mtp"] = p.mtp
        if p.vision:
            breakdown["vision"] = p.vision
        arch = spec.arch
        return {
            "model": {
                "id": spec.id,
                "name": spec.name,
                "architecture": spec.architecture,
                "hf_id": spec.hf_id,
                "origin": spec.origin,
                "moe": arch.moe is not None,
                "num_experts": arch.moe.num_experts if arch.moe else 0,
                "top_k": arch.moe.top_k if arch.moe else 0,
            },
            "params": {
                "total": p.total,
                "active": p.active,
                "active_share": p.active_share,
                "embedding": p.embedding,
                "lm_head": p.lm_head,
                "breakdown": breakdown,
                "active_breakdown": dict(p.active_breakdown),
                "outside_total": [k for k in ("mtp", "vision") if k in breakdown],
            },
            "assumptions": list(self.assumptions),
        }


def _assumptions(spec: ModelSpec, params: ParamCounts) -> tuple[str, ...]:
    out = [f"shapes: {spec.origin if spec.origin != 'catalogue' else 'catalogue spec ' + spec.id}"]
    if spec.sources:
        out.append(f"source: {spec.sources[0]}")
    if spec.arch.moe is not None:
        moe = spec.arch.moe
        out.append(
            f"active = total - ({moe.num_experts} - {moe.top_k}) idle experts x {params.per_expert:,} params"
            f" x {params.num_moe_layers} MoE layers"
        )
    if params.mtp:
        out.append(f"{params.mtp:,} multi-token-prediction params are outside the total")
    if params.vision:
        out.append(f"{params.vision:,} vision-tower params are outside the total")
    return tuple(out)


def estimate(request: EstimateRequest) -> EstimateResult:
    """Resolve the model and compute its figures."""
    spec = resolve_model(request.model)
    params = count_params(spec)
    gpu_name = None
    if request.gpu is not None:
        from moeplan.hardware import resolve_gpu

        gpu_name = resolve_gpu(request.gpu).name
    return EstimateResult(spec=spec, params=params, gpu_name=gpu_name, assumptions=_assumptions(spec, params))


class CatalogRow(BaseModel):
    """One line of ``moeplan models``."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    architecture: str
    total: int
    active: int
    num_experts: int
    top_k: int
    source: str

    def to_json(self) -> dict[str, Any]:
        return self.model_dump()


def catalog_rows() -> list[CatalogRow]:
    """Every catalogue model with its counts."""
    rows = []
    for spec in load_catalog():
        p = count_params(spec)
        moe = spec.arch.moe
        source = spec.published.source if spec.published else (spec.sources[0] if spec.sources else "")
        rows.append(
            CatalogRow(
                id=spec.id,
                name=spec.name,
                architecture=spec.architecture,
                total=p.total,
                active=p.active,
                num_experts=moe.num_experts if moe else 0,
                top_k=moe.top_k if moe else 0,
                source=source,
            )
        )
    return rows
