"""Test set-up: the helpers folder on the path, and no user state (cache, config, Hub token) leaking in."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees an empty cache and config folder, offline Hub settings and no MOEPLAN_* overrides."""
    root = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("MOEPLAN_CACHE", str(root / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / "config"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MOEPLAN_GPU_FILE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    from moeplan.hardware.gpus import load_gpus

    load_gpus.cache_clear()
    yield
    load_gpus.cache_clear()
