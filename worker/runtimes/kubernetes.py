"""The ``kubernetes`` runtime: Corral places work on a cluster instead of reimplementing it.

A task without manifests becomes a ``batch/v1`` Job (``kubeobjects.job_manifest``);
a task with manifests (an environment: Deployment + Service + Ingress) has each
object created, labelled with its attempt. Stop deletes them all with
propagation ``Background``.

State comes from WATCHES, one per namespace and kind (Jobs, Pods, Deployments)
selected by the ``corral.task-id`` and ``corral.worker`` labels, never from
polling each object. The official client blocks, so each watch runs in its own
thread (``kubestreams``) and hands events to the loop with ``call_soon_threadsafe``; the
loop alone touches the attempts. Short calls go through ``asyncio.to_thread``.
Every call asks for the raw response (``_preload_content=False``): the runtime
works on plain dicts, the same shapes ``kubeobjects`` builds.

Logs are followed from the pod while it runs and appended to the worker's
``LogStore``, so they survive the pod (and the Job's TTL); ``logs()`` reads the
file. A finished attempt reports its exit only once the copy has drained.

Orphans: ``adopt()`` (at worker start) registers every object labelled with this
worker's name; the manager's Reconcile then stops the attempts it no longer
owns, which deletes their objects. Beyond that, a periodic sweep deletes
labelled objects of this worker whose attempt the runtime does not know (left
by a failed delete, or by a worker that died between create and register).
The sweep starts with ``adopt()``, so a worker never sweeps before it has
adopted what it owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException

from corral.model import TaskId, TaskSpec
from worker.config import WorkerConfig
from worker.logfiles import LogStore, read_log
from worker.runtimes import kubeobjects as ko
from worker.runtimes.base import Adopted, Assignment, AttemptRef, Exit, Started, StartError
from worker.runtimes.kubestreams import LogFollow, WatchThread

log = logging.getLogger(__name__)

CALL_TIMEOUT = 15.0
# Server-side watch length; the thread re-watches from the last resourceVersion.
WATCH_SECONDS = 60
LOG_DRAIN_TIMEOUT = 5.0
# A followed pod may print nothing for a long time; the stream is cut on close anyway.
FOLLOW_READ_TIMEOUT = 24 * 3600.0

# kind -> (API class, suffix of its create_namespaced_* / delete_namespaced_* methods).
KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("AppsV1Api", "deployment"),
    "Service": ("CoreV1Api", "service"),
    "Ingress": ("NetworkingV1Api", "ingress"),
    "Job": ("BatchV1Api", "job"),
}
WATCHED = ("Job", "Pod", "Deployment")
_WATCH_API = {"Job": "BatchV1Api", "Pod": "CoreV1Api", "Deployment": "AppsV1Api"}


@dataclass(frozen=True, slots=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str


@dataclass(eq=False)
class _Attempt:
    ref: AttemptRef
    spec: TaskSpec | None
    objects: list[ObjectRef]
    is_job: bool
    done: asyncio.Future[Exit]
    available: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    stuck: str = ""
    concluding: bool = False
    # Set once every object exists (adopted attempts: at once).
    created: bool = False
    pod_exit: ko.PodOutcome | None = None
    logged_pods: set[str] = field(default_factory=set)
    copier: asyncio.Future[None] | None = None

    @property
    def namespace(self) -> str:
        return self.objects[0].namespace


def _worker_name(config: WorkerConfig) -> str:
    return ko.label_value(config.name or socket.gethostname())


def api_error(err: ApiException) -> str:
    """``403 Forbidden: deployments.apps is forbidden: ...`` from an API error."""
    detail = ""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        detail = str(json.loads(err.body or "{}").get("message", ""))
    return f"{err.status} {err.reason}: {detail}".rstrip(": ")


class KubernetesRuntime:
    name = "kubernetes"

    def __init__(
        self,
        config: WorkerConfig,
        *,
        sweep_interval: float = 60.0,
        sweep_grace: float = 30.0,
        ready_timeout: float = 30.0,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self._config = config
        self._worker = _worker_name(config)
        self._logs = LogStore(config.data_dir / "logs", config.log_max_bytes)
        self._sweep_interval = sweep_interval
        self._sweep_grace = sweep_grace
        self._ready_timeout = ready_timeout
        self._watch_seconds = watch_seconds
        self._api: kclient.ApiClient | None = None
        self._attempts: dict[str, _Attempt] = {}  # by label key (kubeobjects.attempt_key)
        self._watches: dict[tuple[str, str], WatchThread] = {}
        self._follows: set[LogFollow] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = threading.Event()

    # ----- client -----------------------------------------------------------

    def _client(self) -> kclient.ApiClient:
        """In-cluster config inside a pod, the kubeconfig otherwise (loaded once)."""
        if self._api is None:
            path = self._config.kubeconfig or os.environ.get("KUBECONFIG", "")
            if not path and os.environ.get("KUBERNETES_SERVICE_HOST"):
                cfg = kclient.Configuration()
                kconfig.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
                self._api = kclient.ApiClient(cfg)
            else:
                self._api = kconfig.new_client_from_config(  # type: ignore[no-untyped-call]
                    config_file=path or None, persist_config=False
                )
        return self._api

    def _call(self, api: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One blocking call; returns the decoded JSON body (run it in a thread)."""
        kwargs.setdefault("_request_timeout", CALL_TIMEOUT)
        fn = getattr(getattr(kclient, api)(self._client()), method)
        resp = fn(*args, _preload_content=False, **kwargs)
        data = resp.data
        resp.release_conn()
        return json.loads(data) if data else {}

    async def _acall(self, api: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._call, api, method, *args, **kwargs)

    # ----- Runtime protocol -------------------------------------------------

    async def available(self) -> bool:
        try:
            await self._acall("VersionApi", "get_code")
        except Exception as err:  # no config, no route, refused, 401...: not offered
            log.info("kubernetes unavailable: %s", err)
            return False
        return True

    async def start(self, assignment: Assignment) -> Started:
        self._loop = asyncio.get_running_loop()
        ref, spec = assignment.ref, assignment.spec
        key = ko.attempt_key(
            {"metadata": {"labels": ko.attempt_labels(ref.task_id, ref.generation, "")}}
        )
        assert key is not None
        if key in self._attempts:  # at-least-once delivery: already started
            return Started(message="already started")
        namespace = (spec.kubernetes.namespace if spec.kubernetes else "") or self._config.namespace
        manifests = spec.kubernetes.manifests if spec.kubernetes else ()
        if manifests:
            objs = [
                ko.label_manifest(
                    m,
                    task_id=ref.task_id,
                    generation=ref.generation,
                    worker=self._worker,
                    namespace=namespace,
                )
                for m in manifests
            ]
        else:
            objs = [
                ko.job_manifest(
                    spec,
                    task_id=ref.task_id,
                    generation=ref.generation,
                    worker=self._worker,
                    namespace=namespace,
                )
            ]
        for obj in objs:
            kind = obj.get("kind", "")
            if kind != "Namespace" and kind not in KINDS:
                raise StartError(f"kind {kind!r} is not supported (one of {', '.join(KINDS)})")
        planned = [
            ObjectRef(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"])
            for o in objs
            if o["kind"] != "Namespace"
        ]
        if not planned:
            raise StartError("the task's manifests hold no Deployment, Service, Ingress or Job")
        self._logs.create(ref.task_id, ref.generation)
        # Registered (and watched) before the first create, so that no event is missed.
        attempt = _Attempt(
            ref, spec, planned, not manifests, asyncio.get_running_loop().create_future()
        )
        self._attempts[key] = attempt
        for ns in {o.namespace for o in planned}:
            self._ensure_watches(ns)
        try:
            await self._create_all(objs, key)
        except StartError:
            del self._attempts[key]
            raise
        attempt.created = True
        if manifests:
            return await self._await_available(attempt)
        return Started(message=f"job {planned[0].namespace}/{planned[0].name} created")

    async def wait(self, ref: AttemptRef) -> Exit:
        attempt = self._find(ref)
        if attempt is None:
            return Exit(None, "unknown attempt", succeeded=False)
        result = await asyncio.shield(attempt.done)
        if attempt.copier is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(LOG_DRAIN_TIMEOUT):
                    await asyncio.shield(attempt.copier)
        return result

    async def stop(self, ref: AttemptRef, grace: float) -> None:
        attempt = self._find(ref)
        if attempt is None:
            return
        attempt.stopping = True
        await self._delete_all(attempt.objects, grace)
        self._finish(attempt, Exit(None, "stopped", succeeded=False))

    async def logs(
        self, ref: AttemptRef, *, tail: int = 0, follow: bool = False
    ) -> AsyncIterator[bytes]:
        attempt = self._find(ref)
        path = self._logs.path(ref.task_id, ref.generation)

        def done() -> bool:
            return attempt is None or (
                attempt.done.done() and (attempt.copier is None or attempt.copier.done())
            )

        async for chunk in read_log(path, tail=tail, follow=follow, done=done):
            yield chunk

    async def adopt(self) -> list[Adopted]:
        """Register this worker's labelled objects; start the orphan sweep."""
        self._loop = asyncio.get_running_loop()
        found = await self._list_owned()
        groups: dict[str, list[dict[str, Any]]] = {}
        for obj in found:
            key = ko.attempt_key(obj)
            if key is not None and key not in self._attempts:
                groups.setdefault(key, []).append(obj)
        out = [self._adopt_group(key, objs) for key, objs in groups.items()]
        for ns in {o.namespace for a in self._attempts.values() for o in a.objects}:
            self._ensure_watches(ns)
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_loop())
        return out

    async def exec(self, ref: AttemptRef, argv: tuple[str, ...], timeout: float) -> int:
        # Pods have their own probes; Corral health checks do not reach into a cluster.
        log.warning("exec health checks are not supported on kubernetes (%s)", ref.key)
        return 127

    async def usage(self) -> tuple[float, int]:
        # What runs on the cluster does not load this node.
        return (0.0, 0)

    async def close(self) -> None:
        self._closed.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for pending in list(self._background):
            pending.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        threads: list[threading.Thread] = []
        for watch in self._watches.values():
            watch.shutdown()
            threads.append(watch.thread)
        for follow in list(self._follows):
            follow.shutdown()
            threads.append(follow.thread)
        await asyncio.to_thread(_join_all, threads, 5.0)
        self._watches.clear()
        if self._api is not None:
            self._api.close()  # type: ignore[no-untyped-call]
            self._api = None

    # ----- creating and deleting --------------------------------------------

    async def _create_all(self, objs: list[dict[str, Any]], key: str) -> None:
        """Create each object in order; on a failure delete those created and raise."""
        created: list[ObjectRef] = []
        for obj in objs:
            meta = obj["metadata"]
            try:
                if obj["kind"] == "Namespace":
                    await self._ensure_namespace(meta["name"])
                    continue
                await self._create(obj, key)
            except ApiException as err:
                await self._delete_all(created, 0)
                raise StartError(
                    f"creating {obj['kind']} {meta.get('name', '')}: {api_error(err)}"
                ) from err
            created.append(ObjectRef(obj["kind"], meta["namespace"], meta["name"]))

    async def _create(self, obj: dict[str, Any], key: str) -> None:
        api, suffix = KINDS[obj["kind"]]
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        try:
            await self._acall(api, f"create_namespaced_{suffix}", ns, obj)
        except ApiException as err:
            if err.status != 409:
                raise
            existing = await self._acall(api, f"read_namespaced_{suffix}", name, ns)
            if ko.attempt_key(existing) == key:
                return  # our own object from a start delivered twice
            raise

    async def _ensure_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        try:
            await self._acall("CoreV1Api", "create_namespace", body)
        except ApiException as err:
            if err.status != 409:
                raise

    async def _delete_all(self, objs: list[ObjectRef], grace: float) -> None:
        for obj in objs:
            api, suffix = KINDS[obj.kind]
            try:
                await self._acall(
                    api,
                    f"delete_namespaced_{suffix}",
                    obj.name,
                    obj.namespace,
                    propagation_policy="Background",
                    grace_period_seconds=max(0, int(grace)),
                )
            except ApiException as err:
                if err.status != 404:
                    log.warning("deleting %s %s: %s", obj.kind, obj.name, api_error(err))

    async def _await_available(self, attempt: _Attempt) -> Started:
        """An environment runs once its Deployment has an available replica.

        A pod stuck on its image fails the start (the caller sees the reason);
        a slow one returns after ``ready_timeout`` with the attempt still
        followed by the watches.
        """
        if not any(o.kind == "Deployment" for o in attempt.objects):
            return Started(message="created")
        ready = asyncio.create_task(attempt.available.wait())
        waiters: set[asyncio.Future[Any]] = {ready, attempt.done}
        try:
            await asyncio.wait(waiters, timeout=self._ready_timeout, return_when="FIRST_COMPLETED")
        finally:
            ready.cancel()
        if attempt.done.done():
            exit_ = attempt.done.result()
            raise StartError(exit_.message or "the environment ended while starting")
        if attempt.available.is_set():
            return Started(message="available")
        return Started(message="created; not yet available")

    # ----- watches ----------------------------------------------------------

    def _ensure_watches(self, namespace: str) -> None:
        for kind in WATCHED:
            if (namespace, kind) not in self._watches:
                api = getattr(kclient, _WATCH_API[kind])(self._client())
                watch = WatchThread(
                    open_list=getattr(api, f"list_namespaced_{kind.lower()}"),
                    namespace=namespace,
                    kind=kind,
                    selector=f"{ko.LABEL_TASK},{ko.LABEL_WORKER}={self._worker}",
                    watch_seconds=self._watch_seconds,
                    call_timeout=CALL_TIMEOUT,
                    on_event=self._deliver,
                    on_relist=self._deliver_relist,
                )
                self._watches[namespace, kind] = watch
                watch.thread.start()

    def _deliver(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """Called in a watch thread: hand the event to the loop."""
        if self._loop is not None and not self._closed.is_set():
            with contextlib.suppress(RuntimeError):  # loop closed under us
                self._loop.call_soon_threadsafe(self._on_event, kind, event, obj)

    def _deliver_relist(self, kind: str, namespace: str, names: set[str]) -> None:
        if self._loop is not None and not self._closed.is_set():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._on_relist, kind, namespace, names)

    def _on_relist(self, kind: str, namespace: str, names: set[str]) -> None:
        """After a watch gap: objects missing from the new list may have been deleted."""
        for attempt in list(self._attempts.values()):
            if attempt.done.done() or attempt.stopping or not attempt.created:
                continue
            for obj in attempt.objects:
                if obj.kind == kind and obj.namespace == namespace and obj.name not in names:
                    task = asyncio.ensure_future(self._confirm_deleted(attempt, obj))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)

    async def _confirm_deleted(self, attempt: _Attempt, obj: ObjectRef) -> None:
        # The list may have been taken just before the object was created: ask for it.
        api, suffix = KINDS[obj.kind]
        try:
            await self._acall(api, f"read_namespaced_{suffix}", obj.name, obj.namespace)
        except ApiException as err:
            if err.status == 404 and not attempt.stopping:
                self._finish(attempt, Exit(None, f"{obj.kind} {obj.name} deleted outside Corral"))
        except OSError:
            return

    def _on_event(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        key = ko.attempt_key(obj)
        attempt = self._attempts.get(key) if key else None
        if attempt is None or attempt.done.done():
            return
        if kind == "Pod":
            self._on_pod(attempt, event, obj)
        elif kind == "Job":
            self._on_job(attempt, event, obj)
        elif kind == "Deployment":
            if event == "DELETED":
                if not attempt.stopping:
                    self._finish(attempt, Exit(None, "deployment deleted outside Corral"))
            elif ko.deployment_available(obj):
                attempt.available.set()

    def _on_pod(self, attempt: _Attempt, event: str, pod: dict[str, Any]) -> None:
        outcome = ko.pod_outcome(pod)
        name = pod["metadata"]["name"]
        if event != "DELETED" and outcome.phase in ("Running", "Succeeded", "Failed"):
            self._follow_logs(attempt, name)
        if outcome.ended:
            attempt.pod_exit = outcome
        if outcome.stuck and not attempt.stuck:
            attempt.stuck = outcome.describe()
            if attempt.is_job or not attempt.available.is_set():
                # The pod will never start by itself: fail the attempt and clean up.
                attempt.stopping = True
                cleanup = asyncio.ensure_future(self._delete_all(attempt.objects, 0))
                self._background.add(cleanup)
                cleanup.add_done_callback(self._background.discard)
                self._finish(attempt, Exit(None, attempt.stuck, succeeded=False))

    def _on_job(self, attempt: _Attempt, event: str, job: dict[str, Any]) -> None:
        if event == "DELETED":
            if not attempt.stopping:
                self._finish(attempt, Exit(None, "job deleted outside Corral", succeeded=False))
            return
        outcome = ko.job_outcome(job)
        if outcome is None or attempt.concluding:
            return
        attempt.concluding = True
        task = asyncio.ensure_future(self._conclude(attempt, outcome))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _conclude(self, attempt: _Attempt, outcome: ko.JobOutcome) -> None:
        """Report a finished Job with its pod's reason (OOMKilled, exit code) and output.

        The Pod and Job watches are separate streams, so the Job's end can
        arrive before the pod's last states: then the pods are listed once, for
        the reason and to copy the output of a pod whose Running state was missed.
        """
        pod = attempt.pod_exit
        if pod is None or not attempt.logged_pods:
            labels = ko.attempt_labels(attempt.ref.task_id, attempt.ref.generation, self._worker)
            selector = ",".join(f"{k}={v}" for k, v in labels.items())
            with contextlib.suppress(ApiException, OSError):
                body = await self._acall(
                    "CoreV1Api", "list_namespaced_pod", attempt.namespace, label_selector=selector
                )
                for item in body.get("items") or []:
                    seen = ko.pod_outcome(item)
                    if seen.phase != "Pending":
                        self._follow_logs(attempt, item["metadata"]["name"])
                    if pod is None and seen.ended:
                        pod = seen
        if outcome.succeeded:
            self._finish(attempt, Exit(0, "completed"))
            return
        parts = [outcome.reason, outcome.message]
        if pod is not None and pod.reason and pod.reason not in parts:
            parts.insert(0, pod.describe())
        self._finish(
            attempt,
            Exit(
                pod.exit_code if pod else None,
                ": ".join(p for p in parts if p) or "failed",
                oom_killed=bool(pod and pod.reason == "OOMKilled"),
                succeeded=False,
            ),
        )

    def _finish(self, attempt: _Attempt, exit_: Exit) -> None:
        if not attempt.done.done():
            attempt.done.set_result(exit_)

    # ----- logs -------------------------------------------------------------

    def _follow_logs(self, attempt: _Attempt, pod: str) -> None:
        """Stream one pod's output into the attempt's log file, once per pod."""
        if pod in attempt.logged_pods or self._loop is None:
            return
        attempt.logged_pods.add(pod)
        loop = self._loop
        api: Any = kclient.CoreV1Api(self._client())
        namespace = attempt.namespace
        path = self._logs.path(attempt.ref.task_id, attempt.ref.generation)
        finished: asyncio.Future[None] = loop.create_future()

        def open_log() -> Any:
            return api.read_namespaced_pod_log(
                pod,
                namespace,
                follow=True,
                _preload_content=False,
                _request_timeout=(CALL_TIMEOUT, FOLLOW_READ_TIMEOUT),
            )

        def done() -> None:  # in the follow's thread
            with contextlib.suppress(RuntimeError):  # loop closed under us
                loop.call_soon_threadsafe(_resolve, finished)

        follow = LogFollow(
            open_log=open_log,
            pod=pod,
            write=lambda chunk: self._logs.append(path, chunk),
            done=done,
        )
        self._follows.add(follow)
        finished.add_done_callback(lambda _: self._follows.discard(follow))
        previous = attempt.copier
        attempt.copier = finished
        if previous is None or previous.done():
            follow.thread.start()
        else:  # the next pod of a Deployment: keep its lines after the first's
            previous.add_done_callback(lambda _: follow.thread.start())

    # ----- adoption and orphans ---------------------------------------------

    async def _list_owned(self) -> list[dict[str, Any]]:
        selector = f"{ko.LABEL_TASK},{ko.LABEL_WORKER}={self._worker}"
        out: list[dict[str, Any]] = []
        for kind, (api, suffix) in KINDS.items():
            body = await self._acall(
                api, f"list_{suffix}_for_all_namespaces", label_selector=selector
            )
            for item in body.get("items") or []:
                item.setdefault("kind", kind)
                out.append(item)
        return out

    def _adopt_group(self, key: str, objs: list[dict[str, Any]]) -> Adopted:
        meta = objs[0]["metadata"]
        task_id = TaskId(str((meta.get("annotations") or {}).get(ko.ANNOTATION_TASK, "")))
        ref = AttemptRef(task_id, int(meta["labels"][ko.LABEL_GENERATION]))
        refs = [
            ObjectRef(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs
        ]
        jobs = [o for o in objs if o["kind"] == "Job"]
        loop = asyncio.get_running_loop()
        attempt = _Attempt(ref, None, refs, bool(jobs), loop.create_future(), created=True)
        self._attempts[key] = attempt
        self._logs.create(ref.task_id, ref.generation)
        outcome = ko.job_outcome(jobs[0]) if jobs else None
        if outcome is not None:
            exit_ = Exit(0 if outcome.succeeded else None, outcome.reason or "completed")
            exit_ = Exit(exit_.exit_code, exit_.message, succeeded=outcome.succeeded)
            self._finish(attempt, exit_)
            return Adopted(ref, None, exit_)
        if any(ko.deployment_available(o) for o in objs if o["kind"] == "Deployment"):
            attempt.available.set()
        return Adopted(ref, None)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except (ApiException, OSError) as err:
                log.warning("kubernetes orphan sweep failed: %s", err)

    async def sweep(self) -> list[ObjectRef]:
        """Delete this worker's labelled objects whose attempt it does not know."""
        now = time.time()
        orphans: list[ObjectRef] = []
        for obj in await self._list_owned():
            key = ko.attempt_key(obj)
            if key in self._attempts:
                continue
            meta = obj["metadata"]
            created = _timestamp(meta.get("creationTimestamp"))
            if created is not None and now - created < self._sweep_grace:
                continue  # possibly a start in flight
            orphans.append(ObjectRef(obj["kind"], meta["namespace"], meta["name"]))
        if orphans:
            log.info("deleting %d orphaned kubernetes objects", len(orphans))
            await self._delete_all(orphans, 0)
        return orphans

    def _find(self, ref: AttemptRef) -> _Attempt | None:
        return self._attempts.get(f"{ko.label_value(ref.task_id)}.{ref.generation}")


def _join_all(threads: list[threading.Thread], timeout: float) -> None:
    """Join every thread within one shared deadline (they were all told to stop)."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        if thread.is_alive() or thread.ident is not None:
            thread.join(max(0.0, deadline - time.monotonic()))


def _timestamp(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    return None


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def create(config: WorkerConfig) -> KubernetesRuntime:
    return KubernetesRuntime(config)


__all__ = ["KubernetesRuntime", "ObjectRef", "api_error", "create"]
