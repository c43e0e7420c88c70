"""moeplan: VRAM, speed and cost planner for Mixture-of-Experts language models.

The Python API is what the commands call::

    from moeplan import EstimateRequest, estimate

    result = estimate(EstimateRequest(model="mixtral-8x22b", gpu="a100"))
    result.fit.fits, result.memory.per_gpu_bytes, result.to_json()

Names are imported on first use (PEP 562), so ``import moeplan`` and the CLI's start-up stay light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from moeplan.version import __version__

_API = {
    "EstimateRequest": "moeplan.deploy.deployment",
    "Deployment": "moeplan.deploy.deployment",
    "resolve": "moeplan.deploy.resolve",
    "evaluate": "moeplan.deploy.evaluate",
    "headline": "moeplan.deploy.evaluate",
    "EstimateResult": "moeplan.deploy.results",
    "OffloadResult": "moeplan.deploy.results",
    "Candidate": "moeplan.deploy.results",
    "estimate": "moeplan.plans.estimate",
    "compare": "moeplan.plans.compare",
    "compare_requests": "moeplan.plans.compare",
    "recommend": "moeplan.plans.recommend",
    "OffloadRequest": "moeplan.plans.offload",
    "plan_offload": "moeplan.plans.offload",
    "resolve_model": "moeplan.sources.catalog",
    "load_catalog": "moeplan.sources.catalog",
    "resolve_gpu": "moeplan.hardware.gpus",
    "load_gpus": "moeplan.hardware.gpus",
    "count_params": "moeplan.model.params",
    "layers": "moeplan.model.layers",
    "MoeplanError": "moeplan.errors",
}
__all__ = [
    "Candidate",
    "Deployment",
    "EstimateRequest",
    "EstimateResult",
    "MoeplanError",
    "OffloadRequest",
    "OffloadResult",
    "__version__",
    "compare",
    "compare_requests",
    "count_params",
    "estimate",
    "evaluate",
    "headline",
    "layers",
    "load_catalog",
    "load_gpus",
    "plan_offload",
    "recommend",
    "resolve",
    "resolve_gpu",
    "resolve_model",
]

if TYPE_CHECKING:
    from moeplan.deploy.deployment import Deployment, EstimateRequest
    from moeplan.deploy.evaluate import evaluate, headline
    from moeplan.deploy.resolve import resolve
    from moeplan.deploy.results import Candidate, EstimateResult, OffloadResult
    from moeplan.errors import MoeplanError
    from moeplan.hardware.gpus import load_gpus, resolve_gpu
    from moeplan.model.layers import layers
    from moeplan.model.params import count_params
    from moeplan.plans.compare import compare, compare_requests
    from moeplan.plans.estimate import estimate
    from moeplan.plans.offload import OffloadRequest, plan_offload
    from moeplan.plans.recommend import recommend
    from moeplan.sources.catalog import load_catalog, resolve_model


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'moeplan' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
