"""GGUF labels as publishers use them: a label names a family of files, not one file.

llama.cpp's default rules for a mix (:mod:`moeplan.formats.gguf_mix`) reproduce files made with them to 0.1%,
but the files published under a label differ: imatrix builds, older llama.cpp versions with other rules, and
"dynamic" quants (unsloth's ``UD-Q4_K_XL``, ``UD-IQ1_S``) that keep chosen tensors at more bits.  So a label given
without its file is a size *range*, planned at its middle published file: the default mix's size times the spread
of the published files carrying that label, measured over ``benchmarks/gguf_publisher_sizes.yaml`` by
``benchmarks/gguf_spread.py`` and stored in ``moeplan/data/gguf_label_spread.yaml`` (per label where several
files were found, else per family).

Publisher labels map onto the default mix they start from: ``UD-Q4_K_XL`` and ``Q4_K_XL`` -> ``Q4_K_M``;
``Q2_K_XL``/``Q2_K_L`` -> ``Q2_K``; ``Q3_K_XL`` -> ``Q3_K_M``; ``Q5_K_XL`` -> ``Q5_K_M``; ``Q6_K_XL`` -> ``Q6_K``;
``Q8_K_XL`` -> ``Q8_0``; ``UD-IQ1_S`` -> ``IQ1_S`` (the ``UD-`` prefix marks the dynamic variant's own spread).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moeplan.files import read_yaml
from moeplan.records import Value

_XL = {"Q2": "Q2_K", "Q3": "Q3_K_M", "Q4": "Q4_K_M", "Q5": "Q5_K_M", "Q6": "Q6_K", "Q8": "Q8_0"}


@dataclass(frozen=True, repr=False, eq=False)
class Spread(Value):
    """Published files of a label relative to the default mix's size: ``low``..``high`` (fractions)."""

    key: str
    low: float
    high: float
    files: int
    basis: str
    """``label`` (files of this label), ``family`` (its kind of label) or ``none`` (no published file)."""
    median: float = 0.0
    """The middle published file: the size an estimate plans with (UD-Q8_K_XL's files lie +9.7% to +10.8%)."""


def publisher_label(name: str) -> tuple[str, str, bool] | None:
    """(label as publishers write it, the default mix it starts from, dynamic) for a publisher label, or None.

    ``ud-q4_k_xl`` -> (``UD-Q4_K_XL``, ``Q4_K_M``, True); ``Q2_K_L`` -> (``Q2_K_L``, ``Q2_K``, False).
    """
    from moeplan.formats.gguf_mix import ftype_name

    label = name.strip().upper().replace("_UD_", "UD-")
    dynamic = label.startswith("UD-")
    core = label[3:] if dynamic else label
    m = re.fullmatch(r"(Q\d)_K_(XL|L)", core)
    if m and m.group(1) in _XL and not (m.group(2) == "L" and ftype_name(core)):
        return label, _XL[m.group(1)], dynamic or m.group(2) == "XL"
    mix = ftype_name(core)
    if dynamic and mix:
        return label, mix, True
    return None


def _family(mix: str, dynamic: bool) -> str:
    """``dynamic IQ``, ``dynamic K``, ``IQ`` or ``K`` (k-quants and legacy types)."""
    return ("dynamic " if dynamic else "") + ("IQ" if mix.startswith(("IQ", "TQ")) else "K")


def spread_key(mix: str, dynamic: bool) -> str:
    """The table's key for a label: ``UD Q4_K_M`` for the dynamic variant of Q4_K_M, ``Q4_K_M`` otherwise."""
    return f"UD {mix}" if dynamic else mix


def _data_file() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "gguf_label_spread.yaml"


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    data = read_yaml(_data_file())
    assert isinstance(data, dict)
    return data


def label_spread(mix: str, dynamic: bool = False) -> Spread:
    """How far published files of ``mix`` (``dynamic``: its UD variant) lie from the default rules' size."""
    if mix.upper() in ("F16", "BF16", "F32"):
        return Spread(mix, 0.0, 0.0, 0, "none")
    table = _table()
    key = spread_key(mix, dynamic)
    own = table["labels"].get(key)
    if own and own["files"] >= 2:
        return Spread(key, own["low"], own["high"], own["files"], "label", own.get("median", 0.0))
    fam = _family(mix, dynamic)
    f = table["families"][fam]
    if own:  # one file of the label: the family's spread, stretched to cover it, centred on that file
        low, high = min(f["low"], own["low"]), max(f["high"], own["high"])
        return Spread(fam, low, high, f["files"], "family", own.get("median", 0.0))
    return Spread(fam, f["low"], f["high"], f["files"], "family", f.get("median", 0.0))
