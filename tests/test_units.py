"""Token-count parsing."""

from __future__ import annotations

import pytest

from moeplan.errors import InputError
from moeplan.units import parse_tokens


@pytest.mark.parametrize(("text", "tokens"), [
    ("4096", 4096), ("32k", 32768), ("128K", 131072), ("1M", 1048576), (" 8k ", 8192), ("1.5k", 1536),
])  # fmt: skip
def test_sizes(text: str, tokens: int) -> None:
    assert parse_tokens(text) == tokens


@pytest.mark.parametrize("text", ["0", "-1", "abc", "1.3", "32g", "", "k"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(InputError):
        parse_tokens(text)


def test_contexts_beyond_any_model_are_refused() -> None:
    assert parse_tokens("2048M") == 1 << 31
    with pytest.raises(InputError, match="beyond any model"):
        parse_tokens("100000000000")
