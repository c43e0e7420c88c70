"""A fake Hugging Face Hub served through ``huggingface_hub``'s own HTTP client (an httpx mock transport).

Repos are dicts ``filename -> bytes``; special repos answer as the real Hub does for gated, missing and
rate-limited requests (status codes and ``X-Error-Code`` headers).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


def http_client() -> Any:
    """The HTTP client module huggingface_hub speaks through: httpx2 from 2.0 on, httpx in 1.x."""
    from huggingface_hub.utils import _http

    return getattr(_http, "httpx2", None) or _http.httpx


class FakeHub:
    def __init__(self, repos: dict[str, dict[str, bytes]]) -> None:
        self.repos = repos
        self.gated: set[str] = set()
        self.rate_limited = False
        self.requests: list[str] = []

    def handle(self, request: Any) -> Any:
        http = http_client()

        self.requests.append(f"{request.method} {request.url.path}")
        if self.rate_limited:
            return http.Response(429, headers={"Retry-After": "0"}, text="rate limited", request=request)
        m = _RESOLVE.match(request.url.path)
        if m is None:
            return http.Response(404, headers={"X-Error-Code": "RepoNotFound"}, text="not found", request=request)
        repo, rev, name = m.group("repo"), m.group("rev"), m.group("file")
        if repo in self.gated:
            return http.Response(
                403, headers={"X-Error-Code": "GatedRepo", "X-Error-Message": "gated"}, text="gated", request=request
            )
        files = self.repos.get(repo)
        if files is None:
            return http.Response(
                401, headers={"X-Error-Code": "RepoNotFound", "X-Error-Message": "no repo"}, request=request
            )
        if rev not in ("main", COMMIT):
            return http.Response(404, headers={"X-Error-Code": "RevisionNotFound"}, request=request)
        if name not in files:
            return http.Response(
                404, headers={"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}, request=request
            )
        data = files[name]
        etag = hashlib.sha256(data).hexdigest()
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"', "Content-Length": str(len(data))}
        if request.method == "HEAD":
            return http.Response(200, headers=headers, request=request)
        rng = request.headers.get("range")
        if rng:
            start, _, end = rng.removeprefix("bytes=").partition("-")
            chunk = data[int(start) : int(end) + 1]
            return http.Response(206, headers={**headers, "Content-Length": str(len(chunk))}, content=chunk)
        return http.Response(200, headers=headers, content=data, request=request)


@contextmanager
def serving(hub: FakeHub) -> Iterator[FakeHub]:
    """Route every request huggingface_hub makes to ``hub``."""
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    previous = _http._GLOBAL_CLIENT_FACTORY
    hooks = {"request": [_http.hf_request_event_hook]}  # as huggingface_hub's own client: offline mode blocks

    http = http_client()

    def factory() -> Any:
        return http.Client(transport=http.MockTransport(hub.handle), follow_redirects=True, event_hooks=hooks)

    set_client_factory(factory)
    try:
        yield hub
    finally:
        set_client_factory(previous)
