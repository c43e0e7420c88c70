"""Parsing of human sizes: token counts such as ``32k`` and ``1M``, and ranges of them such as ``512-2k``."""

from __future__ import annotations

import re

from moeplan.errors import InputError

TOKENS = 1 << 31
"""The bound of any token count (a model's max_context, a --context): no model is within 100x of it."""
MAX_TOKENS = TOKENS

_TOKENS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")


def parse_tokens(text: str, what: str = "--context") -> int:
    """``"32k"`` -> 32768, ``"128K"`` -> 131072, ``"1M"`` -> 1048576, ``"4096"`` -> 4096.

    k and M are binary (1024 and 1024^2), as context lengths are quoted (Llama 3.1's "128k" is 131,072).
    """
    m = _TOKENS.match(text)
    if not m:
        raise InputError(f"{what} '{text}' is not a token count", "write e.g. 4096, 32k or 1M")
    value = float(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2}[m.group(2).lower()]
    if value < 1 or value != int(value):
        raise InputError(f"{what} '{text}' must be a positive whole number of tokens")
    if value > MAX_TOKENS:
        raise InputError(f"{what} '{text}' is beyond any model", f"at most {MAX_TOKENS:,} tokens")
    return int(value)


def parse_length(text: str, what: str) -> tuple[int, int]:
    """A request length as the serving options take it: one count (``"1k"`` -> (1024, 1024)) or a range whose
    lengths a load generator draws uniformly, shortest first (``"819-1k"`` -> (819, 1024), as vLLM's and SGLang's
    random datasets draw them with a range ratio of 0.8)."""
    lo_text, sep, hi_text = text.strip().partition("-")
    if not sep:
        n = parse_tokens(text, what)
        return n, n
    if not lo_text.strip() or not hi_text.strip() or "-" in hi_text:  # 512-, -1k, 512-1k-2k
        raise InputError(f"{what} '{text}' is neither a token count nor a range", "write e.g. 1k, or 512-2k")
    lo, hi = parse_tokens(lo_text, what), parse_tokens(hi_text, what)
    if lo > hi:
        raise InputError(
            f"{what} '{text}' runs from longer to shorter", f"write the shorter first: {hi_text}-{lo_text}"
        )
    return lo, hi
