"""Dated street prices in the GPU catalogue drive purchase costs and carry their date."""

from __future__ import annotations

import re

from moeplan.deploy.cost import purchase_usd
from moeplan.hardware.gpus import load_gpus, resolve_gpu


def test_street_price_beats_the_list_estimate_and_names_its_date() -> None:
    h100 = resolve_gpu("h100")
    assert h100.street_price_usd == 27_500
    assert h100.buy_price == (27_500, "street, 2026-05")
    assert purchase_usd(h100, 2) == 55_000


def test_every_street_price_has_a_month_and_a_source() -> None:
    priced = [g for g in load_gpus() if g.street_price_usd is not None]
    assert len(priced) >= 4
    for g in priced:
        assert g.street_price_date and re.fullmatch(r"\d{4}-\d{2}", g.street_price_date)
        assert g.street_price_source and "http" in g.street_price_source


def test_without_a_street_price_the_list_estimate_is_labelled() -> None:
    g = next(g for g in load_gpus() if g.street_price_usd is None and g.purchase_usd is not None)
    price = g.buy_price
    assert price is not None and price[1].startswith("list, ")
