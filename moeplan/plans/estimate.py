"""``moeplan estimate``: one request, resolved to one deployment and evaluated."""

from __future__ import annotations

from moeplan.deploy.deployment import EstimateRequest
from moeplan.deploy.evaluate import evaluate
from moeplan.deploy.resolve import resolve
from moeplan.deploy.results import EstimateResult


def estimate(request: EstimateRequest) -> EstimateResult:
    """Parameters, memory, fit, FLOPs, speed and cost of the deployment ``request`` describes."""
    return evaluate(resolve(request))
