"""Memory a calibration can use on its device: free host RAM (``/proc/meminfo``) or free GPU memory, and how the
devices report running out of it."""

from __future__ import annotations

import re
from pathlib import Path


def available_memory_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` (None elsewhere)."""
    try:
        m = re.search(r"^MemAvailable:\s*(\d+)\s*kB", meminfo.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(m.group(1)) * 1024 if m else None


FREE_SHARE = 0.8
"""Share of the free memory a calibration allocation may take (the rest for the allocator, activations, others)."""


def too_big(need: int, free: int | None) -> bool:
    """Whether ``need`` bytes exceed :data:`FREE_SHARE` of ``free`` (never, where free memory cannot be read)."""
    return free is not None and need > FREE_SHARE * free


def free_bytes(device: str) -> int | None:
    """Memory free for the layer's weights on ``device`` (host RAM for the CPU), if it can be read."""
    if device == "cpu":
        return available_memory_bytes()
    if device == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[0])
    return None


def is_oom(e: BaseException) -> bool:
    """A device's out-of-memory error: CUDA's ``OutOfMemoryError``, or the CPU allocator's "can't allocate
    memory" RuntimeError."""
    text = str(e).lower()
    return "out of memory" in text or "can't allocate memory" in text or type(e).__name__ == "OutOfMemoryError"
