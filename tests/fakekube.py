"""A fake Kubernetes API server for tests: real paths, verbs, selectors, watches and pod logs.

No cluster runs in CI, so tests drive Corral's ``kubernetes`` runtime (through
the official client) against this small aiohttp app on 127.0.0.1. It serves
the objects Corral uses (batch/v1 jobs, v1 pods, apps/v1 deployments, v1
services, networking.k8s.io/v1 ingresses, v1 namespaces) with:

- create / get / list / delete, 404 and 409 as the API server answers them,
  names checked as DNS labels (422);
- label selectors (``k``, ``!k``, ``k=v``, ``k!=v``, ``k in (a,b)``, ``k notin (..)``);
- watches (``?watch=true``): newline-delimited JSON events on a chunked
  response, from a ``resourceVersion`` or starting with ADDED for what exists;
- ``pods/{name}/log`` with ``tailLines`` and ``follow``;
- tiny controllers: a Job gets a Pending pod, a Deployment a Running pod and an
  available replica (or a pod stuck on ``deployment_waiting_reason``), a pod
  that ends updates its Job's conditions, and deletion cascades to dependents
  unless the propagation policy orphans them (the API's default for Jobs).

Every request is recorded as a ``Call`` (RBAC verb, API group, resource,
namespace) so a test can compare the verbs used with ``deploy/kubernetes/rbac.yaml``.
Test helpers (``set_pod``, ``objects``, ...) are thread-safe: the server runs
its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

RESOURCES = {
    # resource: (group, kind, namespaced)
    "pods": ("", "Pod", True),
    "services": ("", "Service", True),
    "namespaces": ("", "Namespace", False),
    "jobs": ("batch", "Job", True),
    "deployments": ("apps", "Deployment", True),
    "ingresses": ("networking.k8s.io", "Ingress", True),
}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    verb: str  # the RBAC verb: get, list, watch, create, delete, ...
    group: str
    resource: str  # with the subresource: "pods/log"
    namespace: str
    query: dict[str, str]


@dataclass
class _Event:
    rv: int
    resource: str
    type: str
    obj: dict[str, Any]


class Selector:
    """A parsed label selector."""

    _TERM = re.compile(r"\s*([^,()]+?\s+(?:notin|in)\s*\([^)]*\)|[^,]+)\s*(?:,|$)")

    def __init__(self, text: str) -> None:
        self.terms: list[Callable[[dict[str, str]], bool]] = []
        for match in self._TERM.finditer(text or ""):
            term = match.group(1).strip()
            if term:
                self.terms.append(self._parse(term))

    @staticmethod
    def _parse(term: str) -> Callable[[dict[str, str]], bool]:
        set_match = re.match(r"^(\S+)\s+(in|notin)\s*\(([^)]*)\)$", term)
        if set_match:
            key, op, values = set_match.groups()
            allowed = {v.strip() for v in values.split(",")}
            if op == "in":
                return lambda labels: labels.get(key) in allowed
            return lambda labels: labels.get(key) not in allowed
        if "!=" in term:
            key, value = term.split("!=", 1)
            return lambda labels: labels.get(key.strip()) != value.strip()
        if "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            return lambda labels: labels.get(key.strip()) == value.strip()
        if term.startswith("!"):
            return lambda labels: term[1:] not in labels
        return lambda labels: term in labels

    def matches(self, obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(term(labels) for term in self.terms)


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.events: list[_Event] = []
        self.calls: list[Call] = []
        self.pod_logs: dict[tuple[str, str], bytearray] = {}
        self.rv = 100
        # Deployments' pods run and become available at once unless this names
        # a waiting reason (e.g. "ImagePullBackOff") to strand them with.
        self.deployment_waiting_reason = ""
        # (resource, verb) -> (code, message): make the next such calls fail.
        self.failures: dict[tuple[str, str], tuple[int, str]] = {}
        # Resources whose next watch answers 410 Gone (the client must list again).
        self.expire_once: set[str] = set()
        self.loop = asyncio.new_event_loop()
        self._tick: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    # ----- lifecycle -------------------------------------------------------

    def start(self) -> str:
        self._thread.start()
        self.port = self._run(self._start())
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _start(self) -> int:
        self._tick = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    def stop(self) -> None:
        async def shutdown() -> None:
            assert self._runner is not None
            await self._runner.cleanup()
            # Watches and followed logs whose client went away still wait for news.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        self._run(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def kubeconfig(self, directory: Path, namespace: str = "default") -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": "fake",
        }
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    # ----- test helpers (thread-safe) ---------------------------------------

    def list(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        async def snapshot() -> list[dict[str, Any]]:
            return [
                copy.deepcopy(o)
                for (res, ns, _), o in sorted(self.objects.items())
                if res == resource and (namespace is None or ns == namespace)
            ]

        return list(self._run(snapshot()))

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = [o for o in self.list(resource, namespace) if o["metadata"]["name"] == name]
        return found[0] if found else None

    def set_pod(
        self,
        namespace: str,
        name: str,
        phase: str,
        *,
        exit_code: int | None = None,
        reason: str = "",
        message: str = "",
        waiting_reason: str = "",
        pod_reason: str = "",
    ) -> None:
        """Move a pod (and, through the job controller, its Job)."""
        self._run(
            self._set_pod(
                namespace,
                name,
                phase,
                exit_code=exit_code,
                reason=reason,
                message=message,
                waiting_reason=waiting_reason,
                pod_reason=pod_reason,
            )
        )

    def write_log(self, namespace: str, pod: str, data: bytes) -> None:
        async def write() -> None:
            self.pod_logs.setdefault((namespace, pod), bytearray()).extend(data)
            await self._notify()

        self._run(write())

    def add_object(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object as if someone else had (kubectl, a previous worker)."""
        return dict(self._run(self._create(resource, obj["metadata"].get("namespace", ""), obj)))

    def delete_all(self, resource: str, namespace: str) -> None:
        """Delete as the TTL controller would (propagation Background)."""

        async def delete() -> None:
            for res, ns, name in [k for k in self.objects if k[:2] == (resource, namespace)]:
                await self._delete(res, ns, name, "Background")

        self._run(delete())

    def vanish(self, resource: str, namespace: str, name: str) -> None:
        """Remove an object without any watch event, as if deleted during a watch gap."""

        async def drop() -> None:
            self.objects.pop((resource, namespace, name))

        self._run(drop())

    def calls_to(self, verb: str, resource: str) -> list[Call]:
        return [c for c in self.calls if c.verb == verb and c.resource == resource]

    # ----- storage and controllers -----------------------------------------

    async def _notify(self) -> None:
        # Wake every waiter, then give later waiters a fresh event to wait on.
        assert self._tick is not None
        self._tick.set()
        self._tick = asyncio.Event()

    async def _changed(self, timeout: float) -> None:
        assert self._tick is not None
        tick = self._tick
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tick.wait(), timeout)

    async def _emit(self, resource: str, type_: str, obj: dict[str, Any]) -> None:
        self.events.append(_Event(self.rv, resource, type_, copy.deepcopy(obj)))
        await self._notify()

    def _bump(self, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    async def _create(self, resource: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        _, kind, namespaced = RESOURCES[resource]
        obj.setdefault("kind", kind)
        if namespaced:
            meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        obj.setdefault("status", {})
        self._bump(obj)
        self.objects[resource, namespace if namespaced else "", meta["name"]] = obj
        await self._emit(resource, "ADDED", obj)
        if resource == "jobs":
            await self._spawn_pod(obj, "Pending")
        elif resource == "deployments":
            await self._start_deployment(obj)
        return obj

    async def _update(self, resource: str, obj: dict[str, Any]) -> None:
        self._bump(obj)
        await self._emit(resource, "MODIFIED", obj)

    async def _spawn_pod(self, owner: dict[str, Any], phase: str) -> dict[str, Any]:
        template = owner["spec"]["template"]
        owner_meta = owner["metadata"]
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        if owner["kind"] == "Job":
            labels["job-name"] = owner_meta["name"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{owner_meta['name']}-{uuid.uuid4().hex[:5]}",
                "labels": labels,
                "ownerReferences": [
                    {"kind": owner["kind"], "name": owner_meta["name"], "uid": owner_meta["uid"]}
                ],
            },
            "spec": copy.deepcopy(template["spec"]),
            "status": {"phase": phase},
        }
        return await self._create("pods", owner_meta["namespace"], pod)

    async def _start_deployment(self, dep: dict[str, Any]) -> None:
        pod = await self._spawn_pod(dep, "Pending")
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if self.deployment_waiting_reason:
            await self._set_pod(ns, name, "Pending", waiting_reason=self.deployment_waiting_reason)
            return
        await self._set_pod(ns, name, "Running")
        dep["status"] = {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}
        await self._update("deployments", dep)

    async def _set_pod(
        self,
        namespace: str,
        name: str,
        phase: str,
        *,
        exit_code: int | None = None,
        reason: str = "",
        message: str = "",
        waiting_reason: str = "",
        pod_reason: str = "",
    ) -> None:
        pod = self.objects["pods", namespace, name]
        status: dict[str, Any] = {"phase": phase}
        if exit_code is not None:
            term = {
                "exitCode": exit_code,
                "reason": reason or ("Completed" if not exit_code else "Error"),
            }
            if message:
                term["message"] = message
            status["containerStatuses"] = [{"name": "task", "state": {"terminated": term}}]
        elif waiting_reason:
            waiting = {
                "reason": waiting_reason,
                "message": message or f"{waiting_reason} for image",
            }
            status["containerStatuses"] = [{"name": "task", "state": {"waiting": waiting}}]
        elif phase == "Running":
            status["containerStatuses"] = [{"name": "task", "state": {"running": {}}}]
        if pod_reason:
            status["reason"] = pod_reason
            status["message"] = message
        pod["status"] = status
        await self._update("pods", pod)
        if phase in ("Succeeded", "Failed"):
            await self._job_controller(pod)

    async def _job_controller(self, pod: dict[str, Any]) -> None:
        for owner in pod["metadata"].get("ownerReferences") or []:
            if owner["kind"] != "Job":
                continue
            job = self.objects.get(("jobs", pod["metadata"]["namespace"], owner["name"]))
            if job is None:
                continue
            if pod["status"]["phase"] == "Succeeded":
                cond = {"type": "Complete", "status": "True"}
                job["status"] = {"succeeded": 1, "conditions": [cond]}
            else:
                reason = pod["status"].get("reason") or "BackoffLimitExceeded"
                msg = (
                    "Job was active longer than specified deadline"
                    if reason == "DeadlineExceeded"
                    else "Job has reached the specified backoff limit"
                )
                cond = {"type": "Failed", "status": "True", "reason": reason, "message": msg}
                job["status"] = {"failed": 1, "conditions": [cond]}
            await self._update("jobs", job)

    async def _delete(
        self, resource: str, namespace: str, name: str, policy: str
    ) -> dict[str, Any]:
        obj = self.objects.pop((resource, namespace, name))
        self._bump(obj)
        await self._emit(resource, "DELETED", obj)
        # The API's default for Jobs (and for old clients) orphans the pods.
        cascade = policy in ("Background", "Foreground") or (not policy and resource != "jobs")
        if cascade:
            uid = obj["metadata"]["uid"]
            for (res, ns, dep_name), dep in list(self.objects.items()):
                owners = dep["metadata"].get("ownerReferences") or []
                if any(o.get("uid") == uid for o in owners):
                    await self._delete(res, ns, dep_name, "Background")
        return obj

    # ----- HTTP --------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts in (["version"], ["version", ""]):
            return web.json_response({"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake"})
        try:
            group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
        except IndexError:
            return _status(404, "NotFound", "the server could not find the requested resource")
        namespace, resource, name, sub = self._route(rest)
        if resource not in RESOURCES or RESOURCES[resource][0] != group:
            return _status(404, "NotFound", f"unknown resource {request.path}")
        query = dict(request.query)
        verb = self._verb(request.method, name, sub, query)
        self.calls.append(
            Call(
                request.method,
                request.path,
                verb,
                group,
                f"{resource}/{sub}" if sub else resource,
                namespace,
                query,
            )
        )
        failure = self.failures.get((resource, verb))
        if failure:
            return _status(failure[0], "Forbidden" if failure[0] == 403 else "Failure", failure[1])
        if sub == "log":
            return await self._log(request, namespace, name, query)
        if verb in ("list", "watch"):
            return await self._collection(request, resource, namespace, query)
        if verb == "create":
            return await self._post(request, resource, namespace)
        key = (resource, namespace if RESOURCES[resource][2] else "", name)
        if key not in self.objects:
            return _status(404, "NotFound", f'{resource} "{name}" not found')
        if verb == "get":
            return web.json_response(self.objects[key])
        if verb == "delete":
            policy = query.get("propagationPolicy", "")
            if request.can_read_body:
                body = await request.json()
                policy = (body or {}).get("propagationPolicy", policy)
            obj = await self._delete(resource, key[1], name, policy)
            return web.json_response(obj)
        return _status(405, "MethodNotAllowed", f"{request.method} is not supported")

    @staticmethod
    def _route(rest: list[str]) -> tuple[str, str, str, str]:
        """(namespace, resource, name, subresource) of a path below /api/v1 or /apis/g/v."""
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            rest_ns = rest[1]
            tail = [*rest[2:], "", ""]
            return rest_ns, tail[0], tail[1], tail[2]
        tail = [*rest, "", ""]
        return "", tail[0], tail[1], tail[2]

    @staticmethod
    def _verb(method: str, name: str, sub: str, query: dict[str, str]) -> str:
        if method == "GET":
            if name:
                return "get"
            return "watch" if query.get("watch") in ("true", "1", "True") else "list"
        return {
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection",
        }.get(method, method.lower())

    async def _post(self, request: web.Request, resource: str, namespace: str) -> web.Response:
        body = await request.json()
        name = (body.get("metadata") or {}).get("name", "")
        if not _DNS_LABEL.match(name or ""):
            return _status(422, "Invalid", f'{resource} "{name}" is invalid: metadata.name')
        key = (resource, namespace if RESOURCES[resource][2] else "", name)
        if key in self.objects:
            return _status(409, "AlreadyExists", f'{resource} "{name}" already exists')
        obj = await self._create(resource, namespace, body)
        return web.json_response(obj, status=201)

    def _matching(self, resource: str, namespace: str, selector: Selector) -> list[dict[str, Any]]:
        return [
            o
            for (res, ns, _), o in sorted(self.objects.items())
            if res == resource and (not namespace or ns == namespace) and selector.matches(o)
        ]

    async def _collection(
        self, request: web.Request, resource: str, namespace: str, query: dict[str, str]
    ) -> web.StreamResponse:
        selector = Selector(query.get("labelSelector", ""))
        if query.get("watch") not in ("true", "1", "True"):
            items = self._matching(resource, namespace, selector)
            return web.json_response(
                {
                    "kind": f"{RESOURCES[resource][1]}List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self.rv)},
                    "items": items,
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if resource in self.expire_once:
            self.expire_once.discard(resource)
            gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
            await resp.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            await resp.write_eof()
            return resp
        deadline = time.monotonic() + float(query.get("timeoutSeconds", "1800"))
        since = query.get("resourceVersion", "")
        if since:
            cursor = int(since)
        else:
            for obj in self._matching(resource, namespace, selector):
                await resp.write(json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n")
            cursor = self.rv
        try:
            while True:
                tick = self._tick
                assert tick is not None
                for event in [e for e in self.events if e.rv > cursor]:
                    cursor = event.rv
                    ns = event.obj["metadata"].get("namespace", "")
                    if (
                        event.resource == resource
                        and (not namespace or ns == namespace)
                        and selector.matches(event.obj)
                    ):
                        line = {"type": event.type, "object": event.obj}
                        await resp.write(json.dumps(line).encode() + b"\n")
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if tick is self._tick:  # nothing new since the scan
                    await self._changed(min(left, 1.0))
        except ConnectionResetError:
            return resp
        await resp.write_eof()
        return resp

    async def _log(
        self, request: web.Request, namespace: str, name: str, query: dict[str, str]
    ) -> web.StreamResponse:
        pod = self.objects.get(("pods", namespace, name))
        if pod is None:
            return _status(404, "NotFound", f'pods "{name}" not found')
        if pod["status"].get("phase") == "Pending":
            return _status(
                400, "BadRequest", f'container "task" in pod "{name}" is waiting to start'
            )
        data = bytes(self.pod_logs.get((namespace, name), b""))
        if "tailLines" in query:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-int(query["tailLines"]) :]) if int(query["tailLines"]) else b""
        if query.get("follow") not in ("true", "1", "True"):
            return web.Response(body=data, content_type="text/plain")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        sent = len(self.pod_logs.get((namespace, name), b""))
        await resp.write(data)
        try:
            while True:
                tick = self._tick
                buf = self.pod_logs.get((namespace, name), bytearray())
                if len(buf) > sent:
                    await resp.write(bytes(buf[sent:]))
                    sent = len(buf)
                current = self.objects.get(("pods", namespace, name))
                if current is None or current["status"].get("phase") in ("Succeeded", "Failed"):
                    break
                if tick is self._tick:
                    await self._changed(1.0)
        except ConnectionResetError:
            return resp
        await resp.write_eof()
        return resp
