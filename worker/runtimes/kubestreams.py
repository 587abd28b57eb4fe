"""Long Kubernetes streams (watches, followed pod logs), each in its own thread.

The official client blocks, so the ``kubernetes`` runtime runs every stream in
a daemon thread and gets its events through callbacks (it hands them to the
event loop). These threads never touch the runtime's state. They receive the
client's methods from ``worker.runtimes.kubernetes`` (the one module that
imports the client) and work on raw responses (``_preload_content=False``):
newline-delimited JSON events for watches, bytes for logs.

Any stream can be cut short from another thread (``shutdown``): closing the
socket wakes a thread blocked in ``recv``, so a worker stops in moments even
while a watch waits for news.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

# on_event(kind, "ADDED" | "MODIFIED" | "DELETED", object)
EventSink = Callable[[str, str, dict[str, Any]], None]
# on_relist(kind, namespace, names of the objects listed)
RelistSink = Callable[[str, str, set[str]], None]


class Stoppable:
    """A blocking HTTP stream in a thread that another thread can cut short."""

    def __init__(self) -> None:
        self._resp: Any = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    def _hold(self, resp: Any) -> bool:
        with self._lock:
            if self._stopped.is_set():
                resp.release_conn()
                return False
            self._resp = resp
            return True

    def shutdown(self) -> None:
        with self._lock:
            self._stopped.set()
            if self._resp is not None:
                # Wakes the thread blocked in recv (urllib3 >= 2.3).
                with contextlib.suppress(Exception):
                    self._resp.shutdown()


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class WatchThread(Stoppable):
    """List then watch one kind in one namespace; re-list when the watch expires.

    After a re-list (the watch was down: a deletion in the gap sent no event)
    ``on_relist`` gets the names listed, so the runtime can ask about the missing ones.
    """

    def __init__(
        self,
        *,
        open_list: Callable[..., Any],
        namespace: str,
        kind: str,
        selector: str,
        watch_seconds: int,
        call_timeout: float,
        on_event: EventSink,
        on_relist: RelistSink,
    ) -> None:
        super().__init__()
        self.namespace, self.kind = namespace, kind
        self._open = open_list
        self._selector = selector
        self._watch_seconds = watch_seconds
        self._call_timeout = call_timeout
        self._on_event = on_event
        self._on_relist = on_relist
        self._listed = False
        self.thread = threading.Thread(
            target=self._run, name=f"kube-watch-{namespace}-{kind}", daemon=True
        )

    def _run(self) -> None:
        version = ""
        backoff = 0.2
        while not self._stopped.is_set():
            try:
                if not version:
                    version = self._relist()
                version = self._watch(version)
                backoff = 0.2
            except Expired:
                version = ""
            except Exception as err:  # network, 5xx: retry with backoff
                if self._stopped.is_set():
                    return
                log.info("watch %s/%s: %s", self.namespace, self.kind, err)
                version = ""
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _relist(self) -> str:
        resp = self._open(
            self.namespace,
            label_selector=self._selector,
            _preload_content=False,
            _request_timeout=self._call_timeout,
        )
        body = json.loads(resp.data)
        resp.release_conn()
        items = body.get("items") or []
        for item in items:
            self._on_event(self.kind, "MODIFIED", item)
        if self._listed and self.kind != "Pod":
            names = {str(i["metadata"]["name"]) for i in items}
            self._on_relist(self.kind, self.namespace, names)
        self._listed = True
        return str(body.get("metadata", {}).get("resourceVersion", ""))

    def _watch(self, version: str) -> str:
        resp = self._open(
            self.namespace,
            label_selector=self._selector,
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_seconds,
            _preload_content=False,
            _request_timeout=(self._call_timeout, self._watch_seconds + self._call_timeout),
        )
        if not self._hold(resp):
            return version
        try:
            for line in lines(resp):
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        raise Expired
                    raise RuntimeError(str(obj.get("message", obj)))
                version = str(obj.get("metadata", {}).get("resourceVersion", version))
                if event.get("type") != "BOOKMARK":
                    self._on_event(self.kind, str(event.get("type")), obj)
        finally:
            resp.release_conn()
        return version


def lines(resp: Any) -> Iterator[bytes]:
    """The non-empty lines of a chunked response, as they arrive."""
    buffer = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from (line for line in complete if line.strip())
    if buffer.strip():
        yield buffer


class LogFollow(Stoppable):
    """Copies one pod's output (``follow=true``) through ``write`` while it runs."""

    def __init__(
        self,
        *,
        open_log: Callable[[], Any],
        pod: str,
        write: Callable[[bytes], None],
        done: Callable[[], None],
    ) -> None:
        super().__init__()
        self.pod = pod
        self._open = open_log
        self._write = write
        self._done = done
        self.thread = threading.Thread(target=self._run, name=f"kube-logs-{pod}", daemon=True)

    def _run(self) -> None:
        try:
            self._copy()
        except Exception as err:  # the pod vanished, the API went away: keep what we have
            if not self._stopped.is_set():
                log.info("following logs of %s: %s", self.pod, err)
        finally:
            self._done()

    def _copy(self) -> None:
        resp = self._open()
        if not self._hold(resp):
            return
        try:
            for chunk in resp.stream(amt=64 * 1024, decode_content=False):
                if chunk:
                    self._write(chunk)
        finally:
            resp.release_conn()
