"""Hybrid models: layers with a recurrent state (linear attention, state-space mixers) are never read as attention."""

from __future__ import annotations

from pathlib import Path

import pytest

from moeplan.errors import SpecError


@pytest.mark.parametrize(("arch_name", "extra"), [("qwen3next", {}), ("llama", {"llama.ssm.conv_kernel": 4})])
def test_a_gguf_with_recurrent_layers_is_refused_not_misread(
    tmp_path: Path, arch_name: str, extra: dict[str, int]
) -> None:
    """A qwen3next GGUF was once read as full attention in every layer: KV and context 4x wrong, silently."""
    pytest.importorskip("gguf")
    from gguf_fixtures import write_gguf
    from test_inputs import _tiny_moe

    from moeplan.sources.gguf_spec import spec_from_gguf

    path = write_gguf(tmp_path / "m.gguf", arch_name, _tiny_moe(), "Q8_0", extra_meta=extra)[0]
    with pytest.raises(SpecError, match="recurrent state") as e:
        spec_from_gguf(path)
    assert "config.json" in str(e.value)
