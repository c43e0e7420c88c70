"""``hf:ORG/NAME[@REVISION]``: a model's shapes and real tensors from the Hugging Face Hub, without its weights.

Through ``huggingface_hub`` (imported only here): ``config.json`` and, where present,
``hf_quant_config.json`` are downloaded (or taken from the local HF cache); the safetensors headers are read
with ``get_safetensors_metadata`` (HTTP range requests, no weights).  The headers are kept in moeplan's cache
by commit, so ``HF_HUB_OFFLINE=1`` with a warm cache works offline.  ``HF_TOKEN`` and the login are used by
``huggingface_hub`` itself.  Each failure becomes one message with its remedy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from moeplan.errors import MoeplanError, SpecError
from moeplan.model.spec import ModelSpec
from moeplan.sources.safetensors_headers import TensorInfo, _entry

T = TypeVar("T")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


class HubError(MoeplanError):
    """The Hub refused or could not be reached."""


def parse_hub_id(text: str) -> tuple[str, str | None]:
    """``hf:ORG/NAME@REV`` -> (``ORG/NAME``, ``REV`` or None)."""
    body = text.removeprefix("hf:").strip()
    repo, _, rev = body.partition("@")
    if not _REPO.match(repo) or ".." in repo:
        raise HubError(f"'{text}' is not a Hub model id", "write hf:ORG/NAME or hf:ORG/NAME@REVISION")
    return repo, (rev or None)


@contextmanager
def hub_errors(repo: str, revision: str | None) -> Iterator[None]:
    """Turn ``huggingface_hub`` and network exceptions into one-line HubErrors with a remedy."""
    from huggingface_hub import errors as e

    url = f"https://huggingface.co/{repo}"
    try:
        yield
    except e.GatedRepoError:
        raise HubError(
            f"hf:{repo} is gated", f"accept its licence at {url}, then log in (`hf auth login` or HF_TOKEN)"
        ) from None
    except e.RepositoryNotFoundError:
        raise HubError(
            f"hf:{repo} does not exist or is private", "check the name; for a private repo log in or set HF_TOKEN"
        ) from None
    except e.RevisionNotFoundError:
        raise HubError(f"hf:{repo} has no revision '{revision}'", f"see the branches and tags at {url}") from None
    except e.LocalEntryNotFoundError as err:
        cause = _root_cause(err)
        if cause is not None:
            raise cause from None
        raise HubError(
            f"hf:{repo} is not in the local cache and the Hub cannot be reached (offline?)",
            "connect once to fill the cache, unset HF_HUB_OFFLINE, or pass a local model folder",
        ) from None
    except e.OfflineModeIsEnabled:
        raise HubError(
            f"hf:{repo}: HF_HUB_OFFLINE is set and the cache lacks it", "unset HF_HUB_OFFLINE or use a local path"
        ) from None
    except e.HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status == 429:
            raise HubError("the Hugging Face Hub is rate-limiting requests", "wait a minute, or log in") from None
        if status in (401, 403):
            raise HubError(f"hf:{repo}: access denied ({status})", "log in or set HF_TOKEN with access") from None
        raise HubError(f"hf:{repo}: the Hub answered {status or 'an error'}", "try again later") from None
    except MoeplanError:
        raise
    except Exception as err:
        if _is_network(err):
            raise _unreachable() from None
        raise


def _unreachable() -> HubError:
    """No answer from the Hub: with ``HF_HUB_OFFLINE`` set the cache is all there is, so say that it lacks the
    model (telling the user to set the variable they have set would mislead); otherwise the network."""
    if _offline():
        return HubError(
            "HF_HUB_OFFLINE is set and the local Hugging Face cache lacks this model",
            "unset HF_HUB_OFFLINE and connect once to fill the cache, or pass a local model folder",
        )
    return HubError(
        "cannot reach the Hugging Face Hub (no network?)",
        "check the connection; a model read once before is used from the cache with HF_HUB_OFFLINE=1",
    )


def _root_cause(err: BaseException) -> HubError | None:
    """A precise HubError for what made huggingface_hub fall back to its (empty) cache, if it says."""
    from huggingface_hub import errors as e

    seen: BaseException | None = err.__cause__ or err.__context__
    while seen is not None:
        if isinstance(seen, e.HfHubHTTPError):
            status = getattr(getattr(seen, "response", None), "status_code", None)
            if status == 429:
                return HubError("the Hugging Face Hub is rate-limiting requests", "wait a minute, or log in")
            if status in (401, 403):
                return HubError(f"access denied ({status})", "log in or set HF_TOKEN with access")
        if _is_network(seen):
            return _unreachable()
        seen = seen.__cause__ or seen.__context__
    return None


def _is_network(err: BaseException) -> bool:
    mod = type(err).__module__ or ""
    return isinstance(err, (ConnectionError, TimeoutError)) or mod.startswith(("httpx", "httpcore", "requests"))


def _check_reachable(timeout: float = 5.0) -> None:
    """Fail in seconds, not after huggingface_hub's half-minute of retries, when the Hub cannot be reached."""
    from huggingface_hub import constants, get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as err:
        if _is_network(err):
            raise _unreachable() from None
        raise


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _download(repo: str, filename: str, revision: str | None) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo, filename, revision=revision))


def _maybe(fn: Callable[[], T]) -> T | None:
    """``fn()``, or None when the file is simply not in the repo."""
    from huggingface_hub import errors as e

    try:
        return fn()
    except (e.EntryNotFoundError, e.RemoteEntryNotFoundError, e.LocalEntryNotFoundError):
        return None


def _headers_cache(repo: str, commit: str) -> Path:
    from moeplan.cache import cache_root

    return cache_root() / "hub" / repo.replace("/", "--") / f"{commit}.json"


def _remote_tensors(repo: str, revision: str | None) -> list[TensorInfo]:
    from huggingface_hub import get_safetensors_metadata

    meta = get_safetensors_metadata(repo, revision=revision)
    out: list[TensorInfo] = []
    for filename, fmeta in meta.files_metadata.items():
        for name, t in fmeta.tensors.items():
            entry = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": list(t.data_offsets)}
            info = _entry(name, entry, None, f"hf:{repo}/{filename}")
            out.append(TensorInfo(info.name, info.dtype, info.shape, info.nbytes, filename))
    return out


def _tensors(repo: str, revision: str | None, commit: str) -> tuple[list[TensorInfo] | None, str | None]:
    """The checkpoint's tensors (from moeplan's cache, else the Hub), and a notice when there are none."""
    from huggingface_hub import errors as e

    cache = _headers_cache(repo, commit)
    if cache.is_file():
        try:
            rows = json.loads(cache.read_text(encoding="utf-8"))
            return [TensorInfo(r[0], r[1], tuple(r[2]), int(r[3]), r[4]) for r in rows], None
        except (OSError, ValueError, IndexError, TypeError):
            pass
    if _offline():
        return None, "offline and no safetensors headers cached: counts from config.json only"
    try:
        tensors = _remote_tensors(repo, revision)
    except e.NotASafetensorsRepoError:
        return None, "the repo has no safetensors files: counts from config.json only"
    except e.SafetensorsParsingError as err:
        raise SpecError(f"hf:{repo}: a safetensors header is corrupt ({err})") from None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        rows = [[t.name, t.dtype, list(t.shape), t.nbytes, t.file] for t in tensors]
        cache.write_text(json.dumps(rows), encoding="utf-8")
    except OSError:
        pass
    return tensors, None


def spec_from_hub(text: str) -> ModelSpec:
    """The spec of ``hf:ORG/NAME[@REV]``, with its checkpoint's tensors when the Hub (or cache) has them."""
    from huggingface_hub.utils import logging as hub_logging

    from moeplan.sources.checkpoint import with_checkpoint
    from moeplan.sources.config_adapters import spec_from_config
    from moeplan.sources.config_fields import read_config_file

    hub_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # retry warnings would bury our message
    repo, revision = parse_hub_id(text)
    if not _offline():
        _check_reachable()
    with hub_errors(repo, revision):
        try:
            config_path = _download(repo, "config.json", revision)
        except Exception as err:
            from huggingface_hub import errors as e

            if isinstance(err, e.RemoteEntryNotFoundError):
                raise HubError(
                    f"hf:{repo} has no config.json (a GGUF-only repo?)", "download the .gguf file and pass its path"
                ) from None
            raise
        commit = config_path.parent.name
        hf_quant_path = _maybe(lambda: _download(repo, "hf_quant_config.json", revision))
        config = read_config_file(config_path)
        hf_quant = read_config_file(hf_quant_path) if hf_quant_path else None
        label = f"hf:{repo}" + (f"@{revision}" if revision else "")
        spec = spec_from_config(config, where=label, model_id=repo.split("/")[1], name=repo)
        spec = replace(spec, hf_id=repo, sources=(f"https://huggingface.co/{repo}",))
        tensors, notice = _tensors(repo, revision, commit)
    if tensors is None:
        return replace(spec, notes=notice)
    return with_checkpoint(spec, tensors, config, f"{label} (safetensors headers, commit {commit[:12]})", hf_quant)
