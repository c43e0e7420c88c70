"""The development measurements hold, and docs/accuracy.md is what benchmarks/accuracy.py writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from moeplan.plans.accuracy import Check, check, load_records

ROOT = Path(__file__).resolve().parent.parent
DEV = load_records(ROOT / "benchmarks/measurements.yaml")
TOLERANCE = {"weights": 0.02, "gguf_size": 0.03, "kv_tokens": 0.01, "kv_total": 0.01}


@pytest.mark.parametrize("record", DEV, ids=[str(r["id"]) for r in DEV])
def test_development_measurements(record: dict[str, object]) -> None:
    c: Check = check(record)  # type: ignore[arg-type]
    if c.kind in TOLERANCE:
        assert abs(c.error) <= TOLERANCE[c.kind], (c.id, c.error)
    else:
        assert c.ok, (c.id, c.measured, c.low, c.predicted, c.high)


def test_accuracy_doc_is_current() -> None:
    spec = importlib.util.spec_from_file_location("accuracy", ROOT / "benchmarks/accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs/accuracy.md").read_text() == module.render(), "run python benchmarks/accuracy.py"


def test_every_serving_band_holds_its_own_expected_value() -> None:
    """Under a closed loop the pessimistic scenario can wait less for its first token (slower decode steps send
    prompts to the prefill less often): a serving band is the span of the three scenarios, never inverted, so the
    expected value always lies inside it (32 disaggregated TTFT bands were inverted before)."""
    import yaml

    from moeplan.plans.accuracy import serving_checks, serving_skip

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    checks = [c for name in ("disaggregated_measurements.yaml", "serving_measurements.yaml")
              for r in yaml.safe_load((root / name).read_text()) if not serving_skip(r)
              for c in serving_checks(r)]  # fmt: skip
    assert len(checks) > 700
    assert all(c.low is not None and c.high is not None and c.low <= c.predicted <= c.high for c in checks)


def test_a_run_of_varying_lengths_is_scored_at_its_mean_lengths() -> None:
    """benchmark_serving's random dataset draws each length from [ratio x L, L]: a 1,024/1,024 run at ratio 0.8
    sends 922/922 tokens on average, and the serving model must be fed those, not the upper end."""
    from moeplan.plans.accuracy import lengths, mean_length

    varied = {"isl": 1024, "osl": 8192, "range_ratio": 0.8}
    assert (mean_length(varied, "isl"), mean_length(varied, "osl")) == (922, 7373)
    assert lengths(varied) == "1,024/8,192 (mean 922/7,373)"
    for fixed in ({"isl": 1024, "osl": 1024, "range_ratio": 1.0}, {"isl": 1024, "osl": 1024, "range_ratio": None}):
        assert mean_length(fixed, "isl") == 1024 and lengths(fixed) == "1,024/1,024"
