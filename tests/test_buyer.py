"""Advice a buyer can act on: the quality cost of each format, --min-bits, and dated purchase prices."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from moeplan.cli import app
from moeplan.formats.quality import LABELS, Quality, config_quality, format_quality, outranks_better, table
from moeplan.hardware.gpus import load_gpus, resolve_gpu
from moeplan.output.formatting import fmt_buy
from moeplan.plans.recommend import mark, recommend
from moeplan.sources.catalog import resolve_model

runner = CliRunner()


def run(*args: str, width: int = 120) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": str(width), "NO_COLOR": "1"})
    return result.exit_code, result.stdout


def test_every_quality_row_has_a_label_figure_and_dated_source() -> None:
    rows = table()
    assert len(rows) >= 40
    for name, q in rows:
        assert q.label in LABELS, name
        assert q.note and re.search(r"\d", q.note), name  # a figure, not only a word
        assert "https://" in q.source and re.search(r"20\d\d", q.source), name


@pytest.mark.parametrize(
    ("name", "label"),
    [("fp8", "near-lossless"), ("awq-int4", "small loss"), ("Q8_0", "near-lossless"), ("Q6_K", "near-lossless"),
     ("Q4_K_M", "small loss"), ("Q3_K_M", "noticeable loss"), ("Q2_K", "large loss"), ("IQ1_S", "large loss"),
     ("UD-Q2_K_XL", "large loss"), ("nvfp4", "small loss"), ("mxfp4", "noticeable loss"), ("nf4", "small loss")],
)  # fmt: skip
def test_format_labels(name: str, label: str) -> None:
    q = format_quality(name)
    assert q is not None and q.label == label


def test_the_checkpoints_own_format_is_the_reference() -> None:
    assert config_quality(resolve_model("deepseek-v3"), "fp8-block128") == config_quality(
        resolve_model("gpt-oss-120b"), "MXFP4_MOE"
    )
    q = config_quality(resolve_model("gpt-oss-120b"), "mxfp4-experts")
    assert q is not None and q.label == "as published" and q.rank == 0
    other = config_quality(resolve_model("qwen3-235b-a22b"), "MXFP4_MOE")
    assert other is not None and other.label == "noticeable loss"


def _quality(label: str) -> Quality:
    return Quality(label, "x", "y")


def test_marks_appear_exactly_when_a_worse_format_outranks_a_better_one() -> None:
    _, cands = recommend("qwen3-30b-a3b", gpus=("h100-sxm",), hybrid=False)
    assert {c.quant for c in cands} >= {"awq-int4", "fp8"}
    for i, c in enumerate(cands):
        assert c.quality is not None
        below = [d.quality.rank for d in cands[i + 1 :] if d.quality is not None]
        assert ("lower-quality" in c.marks) == any(r < c.quality.rank for r in below), (i, c.quant)
    # synthetic orders: a best-first list of near-lossless then int4 has no mark; the reverse marks the int4 row
    base = cands[0]
    good, worse = _quality("near-lossless"), _quality("small loss")
    assert outranks_better([good, worse]) == [False, False]
    assert outranks_better([worse, good]) == [True, False]
    assert outranks_better([worse, None, worse, good]) == [True, False, True, False]
    assert outranks_better([worse, worse]) == [False, False]
    ranked = [replace(base, quality=worse), replace(base, quality=good)]
    assert "lower-quality" in mark(ranked)[0].marks


def test_min_bits_keeps_only_wide_enough_experts() -> None:
    _, every = recommend("qwen3-30b-a3b", gpus=("rtx-4090", "h100-sxm"))
    assert any(c.expert_bits is not None and c.expert_bits < 8 for c in every)
    _, wide = recommend("qwen3-30b-a3b", gpus=("rtx-4090", "h100-sxm"), min_bits=8)
    assert wide and all(c.expert_bits is not None and c.expert_bits >= 8 for c in wide)
    assert {c.quant for c in wide} <= {"bf16", "fp8", "Q8_0"}
    assert not any("lower-quality" in c.marks for c in wide)  # nothing below 8 bits is left to outrank fp8


def test_min_bits_option() -> None:
    code, out = run("recommend", "qwen3-30b-a3b", "--gpu", "h100", "--min-bits", "8", "--json")
    assert code == 0
    rows = json.loads(out)["candidates"]
    assert rows and all(r["quality"]["expert_bits_per_weight"] >= 8 for r in rows)
    code, out = run("recommend", "qwen3-30b-a3b", "--gpu", "h100", "--quant", "Q4_K_M", "--min-bits", "8")
    assert code != 0
    code, _ = run("recommend", "qwen3-30b-a3b", "--min-bits", "0")
    assert code != 0
    code, out = run("serve", "qwen3-30b-a3b", "--concurrency", "8", "--gpu", "h100", "--min-bits", "8", "--json")
    assert code == 0
    assert {c["quant"] for c in json.loads(out)["configurations"]} <= {"bf16", "fp8"}


def test_recommend_text_marks_rows_and_explains_the_mark_in_80_columns() -> None:
    code, out = run("recommend", "qwen3-30b-a3b", "--gpu", "h100", "--gpu", "rtx-4090", width=80)
    assert code == 0
    assert re.search(r"awq-int4\* vllm", out)
    footnote = [line for line in out.splitlines() if line.startswith("* ")]
    assert len(footnote) == 1 and len(footnote[0]) <= 80
    code, out = run("recommend", "qwen3-30b-a3b", "--gpu", "h100", "--min-bits", "8", width=80)
    assert "*" not in out.replace("**", "")


def test_recommend_json_carries_quality_and_purchase_basis() -> None:
    code, out = run("recommend", "qwen3-30b-a3b", "--gpu", "h100", "--json")
    assert code == 0
    for row in json.loads(out)["candidates"]:
        q = row["quality"]
        assert q["label"] in LABELS and q["source"] and q["note"]
        assert q["ranked_above_better_quality"] == ("lower-quality" in row["marks"])
        assert row["cost"]["purchase_basis"] == "street, 2026-05"


def test_street_prices_cover_the_gpus_people_buy() -> None:
    priced = {g.id for g in load_gpus() if g.street_price_usd is not None}
    wanted = {"h200-sxm", "rtx-3090", "rtx-4090", "rtx-5090", "rtx-pro-6000-blackwell", "rtx-6000-ada",
              "dgx-spark", "ryzen-ai-max-395", "apple-m3-ultra", "gb200"}  # fmt: skip
    assert wanted <= priced
    for g in load_gpus():
        if g.street_price_usd is not None:
            assert g.street_price_date and re.fullmatch(r"20\d\d-\d\d", g.street_price_date), g.id
            assert g.street_price_source and "http" in g.street_price_source, g.id
        if g.street_price_usd is not None and g.unified_memory:
            assert "whole machine" in (g.street_price_source or ""), g.id


def test_the_price_date_is_shown_wherever_a_price_is() -> None:
    h100 = resolve_gpu("h100")
    assert fmt_buy(h100.buy_price) == "$27.5k '26-05"
    assert fmt_buy(h100.buy_price, full=True) == "$27,500 (street, 2026-05)"
    assert fmt_buy((8000.0, "list, 2024-2026")) == "~$8.0k"
    code, out = run("gpus", width=80)
    assert code == 0 and re.search(r"h100-sxm .*\$27\.5k '26-05", out)
    code, out = run("gpus", "--detail", width=160)
    assert re.search(r"h100-sxm .*\$27,500 \(street, 2026-05\)", out)
    code, out = run("gpus", "--format", "csv")
    assert '27500,"street, 2026-05"' in out or "27500,street, 2026-05" in out
    code, out = run("recommend", "qwen3-30b-a3b", "--gpu", "h100", "--gpu", "l40s", "--sort", "purchase", width=80)
    assert code == 0 and "street prices of 2026-05 (h100-sxm)" in out and "list estimates (l40s)" in out
    code, out = run("compare", "qwen3-30b-a3b", "--gpu", "h100", "--gpu", "4090", "--quant", "fp8", width=80)
    assert code == 0 and "to buy: h100-sxm: street, 2026-05; rtx-4090: street, 2026-05" in out


def test_recommend_does_not_claim_a_cost_ranking_without_prices() -> None:
    """One GPU with the experts in RAM has no hourly price: the ranking is by speed and says so, no 'n/a/M'."""
    res = CliRunner().invoke(app, ["recommend", "deepseek-v3", "--max-gpus", "1"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "Best by speed (none has an hourly price)" in text and "n/a/M" not in text and "by cost" not in text


def test_nothing_fits_names_the_limits_given_and_the_fewest_gpus_that_hold_the_model() -> None:
    """recommend with nothing in reach names what binds: --max-gpus with the fewest of each GPU asked for that hold
    the model (the estimate's own count), and --budget or --min-tokens-per-s only where they were given."""
    from moeplan.deploy.deployment import EstimateRequest
    from moeplan.deploy.resolve import resolve

    out = CliRunner().invoke(app, ["recommend", "deepseek-v3", "--gpu", "h100", "--max-gpus", "2"]).output
    # the fewest in any format recommend searches (its AWQ 4-bit experts), not only in the checkpoint's own fp8
    fewest = resolve(EstimateRequest(model="deepseek-v3", gpu="h100", quant="awq-int4")).min_gpus
    own = resolve(EstimateRequest(model="deepseek-v3", gpu="h100")).min_gpus
    text = " ".join(out.split())
    assert f"raise --max-gpus (fewest that hold it: {fewest} h100-sxm in awq-int4)" in text and fewest < own
    out = CliRunner().invoke(app, ["recommend", "deepseek-v3", "--gpu", "h100", "--max-gpus", "2", "--quant",
                                   "fp8-block128"]).output  # fmt: skip
    assert f"(fewest that hold it: {own} h100-sxm in fp8-block128)" in " ".join(out.split())
    assert "--budget" not in text and "--min-tokens-per-s" not in text
    out = CliRunner().invoke(app, ["recommend", "deepseek-v3", "--gpu", "h100", "--max-gpus", "2", "--budget",
                                   "1000"]).output  # fmt: skip
    assert "raise --budget" in " ".join(out.split())
