"""Parameter accounting: golden counts from the reference implementation, and the physics as properties."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from moeplan.model.params import count_params
from moeplan.model.spec import ArchSpec, AttentionSpec, MlpSpec, ModelSpec, MoeSpec
from moeplan.sources.config_adapters import spec_from_config

DATA = Path(__file__).parent / "data"
GOLDEN = yaml.safe_load((DATA / "reference_param_counts.yaml").read_text())
_BUCKETS = {"embed": "embedding", "routed_expert": "routed_experts", "shared_expert": "shared_experts"}


@pytest.mark.parametrize("entry", GOLDEN, ids=[g["hf_id"] for g in GOLDEN])
def test_counts_equal_reference_golden(entry: dict[str, Any]) -> None:
    config = json.loads((DATA / "hf_configs" / Path(entry["config_file"]).name).read_text())
    counts = count_params(spec_from_config(config))
    assert counts.total == entry["total"]
    assert counts.active == entry["active"]
    assert counts.embedding == entry["embedding"]
    assert counts.lm_head == entry["lm_head"]
    expected = {_BUCKETS.get(k, k): v for k, v in entry["buckets"].items()}
    assert {k: v for k, v in counts.breakdown.items() if v} == expected


def test_deepseek_v3_mtp_module_is_counted_apart() -> None:
    config = json.loads((DATA / "hf_configs" / "deepseek-ai__DeepSeek-V3.json").read_text())
    counts = count_params(spec_from_config(config))
    # The technical report: 671B main model + the MTP module, 685B on the Hub with its own embedding and head.
    hub_total = counts.total + counts.mtp + counts.embedding + counts.lm_head
    assert abs(hub_total / 1e9 - 685) < 1.0
    assert counts.mtp not in counts.breakdown.values()


# ---- properties -------------------------------------------------------------------------------------


@st.composite
def archs(draw: st.DrawFn, moe: bool | None = None) -> ArchSpec:
    heads_kv = draw(st.sampled_from([1, 2, 4, 8]))
    heads = heads_kv * draw(st.integers(1, 8))
    layers = draw(st.integers(1, 64))
    is_moe = draw(st.booleans()) if moe is None else moe
    moe_spec = None
    mlp = None
    if is_moe:
        experts = draw(st.integers(1, 256))
        shared = draw(st.integers(0, 2))
        dense = draw(st.lists(st.integers(0, layers - 1), max_size=min(3, layers - 1), unique=True))
        moe_spec = MoeSpec(
            num_experts=experts,
            top_k=draw(st.integers(1, experts)),
            expert_intermediate_size=draw(st.integers(1, 8192)),
            num_shared_experts=shared,
            shared_intermediate_size=draw(st.integers(1, 8192)) if shared else None,
            expert_bias=draw(st.booleans()),
            dense_layers=tuple(sorted(dense)),
        )
        if dense:
            mlp = MlpSpec(intermediate_size=draw(st.integers(1, 30000)))
    else:
        mlp = MlpSpec(intermediate_size=draw(st.integers(1, 30000)), gated=draw(st.booleans()))
    return ArchSpec(
        vocab_size=draw(st.integers(1, 300_000)),
        hidden_size=draw(st.integers(1, 16384)),
        num_layers=layers,
        tie_embeddings=draw(st.booleans()),
        attention=AttentionSpec(
            num_heads=heads,
            num_kv_heads=heads_kv,
            head_dim=draw(st.sampled_from([32, 64, 128, 256])),
            qkv_bias=draw(st.booleans()),
        ),
        mlp=mlp,
        moe=moe_spec,
    )


def _spec(arch: ArchSpec) -> ModelSpec:
    return ModelSpec(id="t", name="t", architecture="test", arch=arch)


@settings(max_examples=300, deadline=None)
@given(archs())
def test_active_never_exceeds_total_and_parts_add_up(arch: ArchSpec) -> None:
    c = count_params(_spec(arch))
    assert 0 < c.active <= c.total
    assert sum(c.breakdown.values()) == c.total
    assert sum(c.active_breakdown.values()) == c.active
    assert all(v >= 0 for v in c.active_breakdown.values())
    # Only routed experts differ between total and active.
    for kind, value in c.breakdown.items():
        if kind != "routed_experts":
            assert c.active_breakdown[kind] == value


@settings(max_examples=200, deadline=None)
@given(archs(moe=False))
def test_dense_models_are_fully_active(arch: ArchSpec) -> None:
    c = count_params(_spec(arch))
    assert c.active == c.total


@settings(max_examples=200, deadline=None)
@given(archs(moe=True))
def test_active_grows_with_top_k_and_total_with_experts(arch: ArchSpec) -> None:
    assert arch.moe is not None
    base = count_params(_spec(arch))
    if arch.moe.top_k < arch.moe.num_experts:
        more_k = dataclasses.replace(arch, moe=dataclasses.replace(arch.moe, top_k=arch.moe.top_k + 1))
        assert count_params(_spec(more_k)).active > base.active
        assert count_params(_spec(more_k)).total == base.total
    more_e = dataclasses.replace(arch, moe=dataclasses.replace(arch.moe, num_experts=arch.moe.num_experts + 1))
    bigger = count_params(_spec(more_e))
    assert bigger.total > base.total
    # One more expert a token does not use: only the router grows (one row of h per MoE layer).
    assert bigger.active - base.active == arch.hidden_size * arch.num_moe_layers


def test_top_k_equal_to_experts_makes_everything_active() -> None:
    arch = ArchSpec(
        vocab_size=1000,
        hidden_size=64,
        num_layers=2,
        attention=AttentionSpec(num_heads=4, num_kv_heads=4, head_dim=16),
        moe=MoeSpec(num_experts=4, top_k=4, expert_intermediate_size=32),
    )
    c = count_params(_spec(arch))
    assert c.active == c.total
