"""Money: the price a deployment is costed at, and its cost per hour, per million tokens and to buy.

``usd_per_hour = GPUs x price per GPU-hour (+ GPUs x TDP x energy price)``; per million output tokens
``usd_per_hour / (throughput x 3600) x 1e6`` at the deployment's batch; per million input tokens the same with
the prefill rate.  8 x H200 at $3.50/GPU-hour decoding 2,000 tokens/s: $28/hour, $3.89 per million output tokens.
Prices are the catalogue's typical cloud price (or the middle of its range) unless ``--price`` gives one.
"""

from __future__ import annotations

from moeplan.deploy.deployment import Deployment, Price
from moeplan.deploy.results import CostResult
from moeplan.hardware.gpus import GpuSpec


def price_for(gpu: GpuSpec | None, usd_per_hour: float | None, energy_usd_per_kwh: float | None) -> Price:
    """The GPU-hour price: the user's, else the catalogue's (with its date and source), else none."""
    if usd_per_hour is not None:
        return Price(usd_per_hour, "--price", energy_usd_per_kwh)
    if gpu is not None and gpu.cloud_usd_per_hour is not None:
        c = gpu.cloud_usd_per_hour
        how = "typical" if c.typical is not None else "middle of"
        return Price(c.expected, f"{how} ${c.low:g}-{c.high:g}/GPU-h ({c.as_of}): {c.source}", energy_usd_per_kwh)
    return Price(None, None, energy_usd_per_kwh)


def usd_per_hour(d: Deployment, num_gpus: int) -> float | None:
    """GPUs x price (+ GPUs x TDP x energy price); None without a price."""
    price = d.price
    energy = energy_usd_per_hour(d, num_gpus)
    return None if price.usd_per_hour is None else num_gpus * price.usd_per_hour + (energy or 0.0)


def energy_usd_per_hour(d: Deployment, num_gpus: int) -> float | None:
    gpu, price = d.gpu, d.price
    if price.energy_usd_per_kwh is None or gpu is None or not gpu.tdp_w:
        return None
    return num_gpus * gpu.tdp_w / 1000 * price.energy_usd_per_kwh


def per_million(per_hour: float | None, tokens_per_s: float) -> float | None:
    """Dollars per million tokens at ``tokens_per_s``."""
    return None if per_hour is None else per_hour / (tokens_per_s * 3600) * 1e6


def purchase_usd(gpu: GpuSpec | None, num_gpus: int) -> float | None:
    price = gpu.buy_price if gpu is not None else None
    return num_gpus * price[0] if price else None


def cost_result(d: Deployment, throughput_tokens_per_s: float, prefill_tokens_per_s: float) -> CostResult:
    """The cost figures of ``d`` at its throughput and prefill rate."""
    n = d.layout.num_gpus
    per_hour = usd_per_hour(d, n)
    return CostResult(
        usd_per_hour=per_hour,
        usd_per_million_output_tokens=per_million(per_hour, throughput_tokens_per_s),
        usd_per_million_input_tokens=per_million(per_hour, prefill_tokens_per_s),
        purchase_usd=purchase_usd(d.gpu, n),
        energy_usd_per_hour=energy_usd_per_hour(d, n),
        price_source=d.price.source,
        purchase_basis=d.gpu.buy_price[1] if d.gpu is not None and d.gpu.buy_price else None,
    )
