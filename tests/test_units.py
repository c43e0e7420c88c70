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


def test_numbers_the_user_gave_print_without_an_exponent() -> None:
    """--ram 1000000 prints '1,000,000 GiB RAM', --rate 0.5 '0.5 requests/s', never '1e+06'."""
    from moeplan.output.formatting import fmt_plain

    assert fmt_plain(1e6) == "1,000,000" and fmt_plain(96) == "96" and fmt_plain(0.5) == "0.5"
    assert fmt_plain(2.5e6 + 0.25) == "2,500,000.2" and fmt_plain(None) == ""


def test_long_waits_read_in_a_unit_that_keeps_them_readable() -> None:
    from moeplan.output.formatting import fmt_seconds

    assert [fmt_seconds(x) for x in (0.22, 12.5, 500, 18_700, 1_856_425)] == [
        "0.22 s", "12.50 s", "8.3 min", "5.2 h", "21.5 days"]  # fmt: skip
