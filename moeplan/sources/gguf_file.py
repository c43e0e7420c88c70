"""GGUF files: metadata, tensor types and exact bytes, read with every size bounded; and a spec from them.

Layout (GGUF v2/v3, ``ggml/docs/gguf.md``): magic ``GGUF``, version u32, tensor count u64, metadata count u64,
metadata ``key: string, type: u32, value``, tensor infos ``name, n_dims: u32, ne[n_dims]: u64, type: u32,
offset: u64``, then the data, aligned to ``general.alignment`` (32).  A tensor of type t with ``ne[0]``
elements per row holds ``prod(ne) / block(t) x size(t)`` bytes (:mod:`moeplan.formats.ggml`).

Nothing but the header is read; counts, string lengths, array lengths and dimensions are checked against
fixed limits and against the bytes the file really has before anything is allocated, so a truncated or
hostile file fails fast with one message.  Split files (``-00001-of-00003.gguf``) are read part by part.
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from moeplan.errors import SpecError
from moeplan.files import open_regular
from moeplan.formats.ggml import GGML_TYPES
from moeplan.records import Value

MAGIC = b"GGUF"
MAX_TENSORS = 1_000_000
MAX_KV = 100_000
MAX_STRING = 64 * 1024 * 1024
MAX_DIMS = 4
KEEP_ARRAY = 4096  # longer arrays (token lists) keep only their length

# ggml type ids (ggml.h enum ggml_type; the gguf package's GGMLQuantizationType) -> (name, block, bytes).
GGML_IDS: dict[int, tuple[str, int, int]] = {
    **{i: (n, GGML_TYPES[n].block, GGML_TYPES[n].size) for i, n in [
        (0, "F32"), (1, "F16"), (2, "Q4_0"), (3, "Q4_1"), (6, "Q5_0"), (7, "Q5_1"), (8, "Q8_0"), (10, "Q2_K"),
        (11, "Q3_K"), (12, "Q4_K"), (13, "Q5_K"), (14, "Q6_K"), (16, "IQ2_XXS"), (17, "IQ2_XS"), (18, "IQ3_XXS"),
        (19, "IQ1_S"), (20, "IQ4_NL"), (21, "IQ3_S"), (22, "IQ2_S"), (23, "IQ4_XS"), (29, "IQ1_M"), (30, "BF16"),
        (34, "TQ1_0"), (35, "TQ2_0"), (39, "MXFP4"), (40, "NVFP4"), (41, "Q1_0"),
    ]},
    9: ("Q8_1", 32, 36), 15: ("Q8_K", 256, 292), 24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4),
    27: ("I64", 1, 8), 28: ("F64", 1, 8),
}  # fmt: skip

# llama.h enum llama_ftype -> the mix name moeplan uses.
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}  # fmt: skip

# GGUF metadata value types: id -> struct format (None: string / array).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_SPLIT = re.compile(r"^(?P<stem>.*)-(?P<i>\d{5})-of-(?P<n>\d{5})\.gguf$")


@dataclass(frozen=True, repr=False, eq=False)
class GgufTensor(Value):
    """One entry of a GGUF file's tensor table."""

    name: str
    shape: tuple[int, ...]
    """``ne``: ``ne[0]`` is the row length."""
    type_name: str
    nbytes: int
    offset: int
    file: str = ""


@dataclass(frozen=True, repr=False, eq=False)
class GgufFile(Value):
    """A parsed GGUF header: version, metadata and tensor table (no tensor data is read)."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: list[GgufTensor]


class _Reader:
    """Bounded reads from a file of known size."""

    def __init__(self, f: BinaryIO, size: int, where: str) -> None:
        self.f, self.size, self.where, self.pos = f, size, where, 0

    def fail(self, what: str) -> SpecError:
        return SpecError(f"{self.where}: {what}")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.size:
            raise self.fail(f"ends early: needs {n:,} bytes at offset {self.pos:,} of {self.size:,} (truncated?)")
        data = self.f.read(n)
        if len(data) != n:
            raise self.fail("ends early (truncated?)")
        self.pos += n
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        if n > MAX_STRING:
            raise self.fail(f"a string of {n:,} bytes is beyond any real GGUF file")
        return self.take(n).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        n = self.unpack("<Q")
        if n > MAX_STRING or self.pos + n > self.size:
            raise self.fail(f"a string of {n:,} bytes does not fit the file")
        self.f.seek(n, 1)
        self.pos += n

    def value(self, vtype: int, depth: int = 0) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            if depth > 1:
                raise self.fail("arrays nested too deeply")
            itype, count = self.unpack("<I"), self.unpack("<Q")
            width = struct.calcsize(_SCALARS[itype]) if itype in _SCALARS else 8
            if itype not in _SCALARS and itype not in (8, 9):
                raise self.fail(f"unknown array item type {itype}")
            if count * width > self.size - self.pos:
                raise self.fail(f"an array of {count:,} items does not fit the file")
            if count > KEEP_ARRAY:
                for _ in range(count):  # bounded above: every item takes at least one byte of the file
                    if itype == 8:
                        self.skip_string()
                    elif itype == 9:
                        self.value(9, depth + 1)
                    else:
                        self.f.seek(width, 1)
                        self.pos += width
                return {"length": count}
            return [self.value(itype, depth + 1) for _ in range(count)]
        raise self.fail(f"unknown metadata value type {vtype}")


def read_gguf(path: Path) -> GgufFile:
    """One GGUF file's metadata and tensor table."""
    where = str(path)
    try:
        with open_regular(path, "a GGUF file") as f:
            size = os.fstat(f.fileno()).st_size
            r = _Reader(f, size, where)
            if r.take(4) != MAGIC:
                raise r.fail("not a GGUF file (wrong magic)")
            version = r.unpack("<I")
            if version not in (2, 3):
                raise r.fail(f"GGUF version {version} is not supported (2 and 3 are)")
            n_tensors, n_kv = r.unpack("<Q"), r.unpack("<Q")
            if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
                raise r.fail(f"claims {n_tensors:,} tensors and {n_kv:,} metadata keys: corrupt")
            meta: dict[str, Any] = {}
            for _ in range(n_kv):
                key = r.string()
                meta[key] = r.value(r.unpack("<I"))
            infos = []
            for _ in range(n_tensors):
                name = r.string()
                n_dims = r.unpack("<I")
                if not 1 <= n_dims <= MAX_DIMS:
                    raise r.fail(f"tensor '{name}' has {n_dims} dimensions")
                shape = tuple(r.unpack("<Q") for _ in range(n_dims))
                type_id, offset = r.unpack("<I"), r.unpack("<Q")
                infos.append((name, shape, type_id, offset))
            header_end = r.pos
    except SpecError:
        raise
    except OSError as e:
        raise SpecError(f"{where}: cannot read it ({e.strerror or e})") from None
    align = meta.get("general.alignment", 32)
    if not isinstance(align, int) or align <= 0 or align & (align - 1):
        raise SpecError(f"{where}: general.alignment {align!r} is not a power of two")
    data_start = -(-header_end // align) * align
    tensors = []
    for name, shape, type_id, offset in infos:
        if type_id not in GGML_IDS:
            raise SpecError(f"{where}: tensor '{name}' has unknown ggml type {type_id}")
        tname, block, tsize = GGML_IDS[type_id]
        elements = math.prod(shape)
        if elements > 1 << 44 or shape[0] % block:
            raise SpecError(f"{where}: tensor '{name}' has an impossible shape {list(shape)} for {tname}")
        nbytes = elements // block * tsize
        if data_start + offset + nbytes > size:
            raise SpecError(f"{where}: tensor '{name}' lies beyond the end of the file (truncated?)")
        tensors.append(GgufTensor(name, shape, tname, nbytes, offset, path.name))
    return GgufFile(path, version, meta, tensors)


def model_stem(path: Path) -> str:
    """The file name without ``.gguf`` and a split file's ``-0000i-of-0000n`` part: the parts of one model share it."""
    m = _SPLIT.match(path.name)
    return m.group("stem") if m else path.stem


def split_parts(path: Path) -> list[Path]:
    """All parts of a split GGUF given any one of them (or just ``path``)."""
    m = _SPLIT.match(path.name)
    if not m:
        return [path]
    n = int(m.group("n"))
    parts = [path.with_name(f"{m.group('stem')}-{i:05d}-of-{n:05d}.gguf") for i in range(1, n + 1)]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise SpecError(f"{path}: split GGUF is missing {missing[0]} ({len(missing)} of {n} parts missing)")
    return parts


def read_model(path: Path) -> tuple[dict[str, Any], list[GgufTensor], int]:
    """Metadata (of the first part), every tensor of every part, and the number of parts."""
    parts = split_parts(path)
    files = [read_gguf(p) for p in parts]
    tensors = [t for f in files for t in f.tensors]
    return files[0].metadata, tensors, len(parts)
