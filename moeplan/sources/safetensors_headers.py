"""safetensors headers, read without touching the weights, with every size bounded.

A safetensors file is ``u64 little-endian N``, ``N`` bytes of JSON ``{name: {dtype, shape, data_offsets},
"__metadata__": {...}}``, then the tensor bytes.  Only the header is read: at most :data:`MAX_HEADER_BYTES`
(the format's own limit is 100 MB), and only when the file is long enough to hold it.  Every entry is
checked (known dtype, non-negative shape, offsets inside the data and equal to ``elements x dtype size``).
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moeplan.errors import SpecError
from moeplan.files import open_regular, read_text
from moeplan.records import Value

MAX_HEADER_BYTES = 100 * 1024 * 1024
MAX_INDEX_BYTES = 16 * 1024 * 1024
MAX_FILES = 4096

# Bits per element of each safetensors dtype.
DTYPE_BITS: dict[str, int] = {
    "F64": 64, "F32": 32, "F16": 16, "BF16": 16, "I64": 64, "I32": 32, "I16": 16, "I8": 8, "U64": 64,
    "U32": 32, "U16": 16, "U8": 8, "BOOL": 8, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "E8M0": 8,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "C64": 64,
}  # fmt: skip


@dataclass(frozen=True, repr=False, eq=False)
class TensorInfo(Value):
    """One stored tensor: its name, dtype, shape and bytes."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    file: str = ""

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


def parse_header(raw: bytes, data_len: int | None, where: str) -> list[TensorInfo]:
    """Tensors of a header's JSON bytes; ``data_len`` (bytes after the header) bounds the offsets if known."""
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SpecError(f"{where}: corrupt safetensors header ({e})") from None
    except RecursionError:
        raise SpecError(f"{where}: safetensors header nested too deeply") from None
    if not isinstance(header, dict):
        raise SpecError(f"{where}: safetensors header is not a JSON object")
    out = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        out.append(_entry(name, entry, data_len, where))
    return out


def _entry(name: str, entry: Any, data_len: int | None, where: str) -> TensorInfo:
    if not isinstance(entry, dict):
        raise SpecError(f"{where}: tensor '{name}' has no dtype/shape/data_offsets")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BITS:
        raise SpecError(f"{where}: tensor '{name}' has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and 0 <= d < 2**48 for d in shape):
        raise SpecError(f"{where}: tensor '{name}' has a bad shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) and o >= 0 for o in offsets)):
        raise SpecError(f"{where}: tensor '{name}' has bad data_offsets {offsets!r}")
    if offsets[1] < offsets[0]:
        raise SpecError(f"{where}: tensor '{name}' has bad data_offsets {offsets!r}")
    nbytes = offsets[1] - offsets[0]
    expected = math.ceil(math.prod(shape) * DTYPE_BITS[dtype] / 8)
    if nbytes != expected:
        raise SpecError(f"{where}: tensor '{name}' holds {nbytes} bytes, its shape and dtype need {expected}")
    if data_len is not None and offsets[1] > data_len:
        raise SpecError(f"{where}: tensor '{name}' lies beyond the end of the file (truncated?)")
    return TensorInfo(name, dtype, tuple(shape), nbytes)


def read_file(path: Path) -> list[TensorInfo]:
    """The tensors of one ``.safetensors`` file, from its header alone."""
    try:
        with open_regular(path, "a safetensors file") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) < 8:
                raise SpecError(f"{path}: too short to be a safetensors file")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES:
                raise SpecError(
                    f"{path}: not a safetensors file (its first 8 bytes declare a header of {n:,} bytes, "
                    "beyond the format's 100 MB limit)"
                )
            if n > size - 8:
                raise SpecError(
                    f"{path}: header length {n:,} is longer than the file ({size:,} bytes): "
                    "truncated, or not a safetensors file"
                )
            raw = f.read(n)
    except SpecError:
        raise
    except OSError as e:
        raise SpecError(f"{path}: cannot read it ({e.strerror or e})") from None
    tensors = parse_header(raw, size - 8 - n, str(path))
    return [TensorInfo(t.name, t.dtype, t.shape, t.nbytes, path.name) for t in tensors]


_SHARD = re.compile(r"^(?P<stem>.+)-(?P<i>\d+)-of-(?P<n>\d+)\.safetensors$")


def check_shards(folder: Path, names: list[str]) -> None:
    """Refuse a folder whose shard names (``model-00001-of-00004.safetensors``) announce more shards than it holds:
    a partial download would be sized as the whole model from the shards present."""
    groups: dict[tuple[str, str], set[int]] = {}
    for name in names:
        m = _SHARD.match(name)
        if m:
            groups.setdefault((m["stem"], m["n"]), set()).add(int(m["i"]))
    for (stem, total), have in groups.items():
        n = int(total)
        missing = [i for i in range(1, n + 1) if i not in have]
        if missing:
            first = f"{stem}-{missing[0]:0{len(total)}d}-of-{total}.safetensors"
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise SpecError(
                f"{folder}: holds {len(have)} of the {n} shards its file names announce ({first}{more} missing)",
                "finish the download, or give the config.json alone for the model's shapes",
            )


def read_folder(folder: Path) -> list[TensorInfo]:
    """Every tensor of a model folder: through ``model.safetensors.index.json`` if present, else ``*.safetensors``."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        text = read_text(index, MAX_INDEX_BYTES, "a safetensors index")
        try:
            data = json.loads(text)
            files = sorted(set(data["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            raise SpecError(f"{index}: not a safetensors index (needs a weight_map)") from None
        paths = [folder / str(f) for f in files]
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            raise SpecError(f"{index}: lists {missing[0]}, which is not in the folder ({len(missing)} missing)")
    else:
        paths = sorted(folder.glob("*.safetensors"))
        check_shards(folder, [p.name for p in paths])
    if len(paths) > MAX_FILES:
        raise SpecError(f"{folder}: {len(paths)} safetensors files is more than {MAX_FILES}")
    for p in paths:
        if p.resolve().parent != folder.resolve():
            raise SpecError(f"{p}: outside the model folder")
    out: list[TensorInfo] = []
    for p in paths:
        out += read_file(p)
    return out
