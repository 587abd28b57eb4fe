"""``KubernetesRuntime``: start, follow, stop and adopt the objects of each attempt.

A task without manifests becomes a ``batch/v1`` Job (``kubeobjects.job_manifest``);
a task with manifests (an environment: Deployment + Service + Ingress) has each
object created, labelled with its attempt. Stop deletes them all with
propagation ``Background``. State comes from the watches (``watching``), and
this module turns their events into each attempt's exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from kubernetes.client.exceptions import ApiException

from worker.config import WorkerConfig
from worker.logfiles import LogStore
from worker.runtimes import kubeobjects as ko
from worker.runtimes.base import Adopted, Assignment, AttemptRef, Exit, Started, StartError
from worker.runtimes.kubernetes import adoption
from worker.runtimes.kubernetes.attempts import KubeAttempt
from worker.runtimes.kubernetes.cluster import KINDS, Cluster, ObjectRef, worker_name
from worker.runtimes.kubernetes.logs import PodLogs
from worker.runtimes.kubernetes.watching import WATCH_SECONDS, Watches

log = logging.getLogger(__name__)


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
        self._worker = worker_name(config)
        self._cluster = Cluster(config, self._worker)
        self._logs = PodLogs(
            self._cluster, LogStore(config.data_dir / "logs", config.log_max_bytes)
        )
        self._watches = Watches(
            self._cluster,
            self._worker,
            watch_seconds=watch_seconds,
            on_event=self._on_event,
            on_relist=self._on_relist,
        )
        self._sweep_interval = sweep_interval
        self._sweep_grace = sweep_grace
        self._ready_timeout = ready_timeout
        self._attempts: dict[str, KubeAttempt] = {}  # by label key (kubeobjects.attempt_key)
        self._sweeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Future[None]] = set()

    # ----- Runtime protocol -------------------------------------------------

    async def available(self) -> bool:
        try:
            await self._cluster.acall("VersionApi", "get_code")
        except Exception as err:  # no config, no route, refused, 401...: not offered
            log.info("kubernetes unavailable: %s", err)
            return False
        return True

    async def start(self, assignment: Assignment) -> Started:
        self._watches.loop = asyncio.get_running_loop()
        ref, spec = assignment.ref, assignment.spec
        key = ko.attempt_key(
            {"metadata": {"labels": ko.attempt_labels(ref.task_id, ref.generation, "")}}
        )
        assert key is not None
        if key in self._attempts:  # at-least-once delivery: already started
            return Started(message="already started")
        namespace = (spec.kubernetes.namespace if spec.kubernetes else "") or self._config.namespace
        manifests = spec.kubernetes.manifests if spec.kubernetes else ()
        task_id, generation, worker = ref.task_id, ref.generation, self._worker
        if manifests:
            objs = [
                ko.label_manifest(
                    m, task_id=task_id, generation=generation, worker=worker, namespace=namespace
                )
                for m in manifests
            ]
        else:
            objs = [
                ko.job_manifest(
                    spec, task_id=task_id, generation=generation, worker=worker, namespace=namespace
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
        self._logs.store.create(ref.task_id, ref.generation)
        # Registered (and watched) before the first create, so that no event is missed.
        done = asyncio.get_running_loop().create_future()
        attempt = KubeAttempt(ref, spec, planned, not manifests, done)
        self._attempts[key] = attempt
        for ns in {o.namespace for o in planned}:
            self._watches.ensure(ns)
        try:
            await self._cluster.create_all(objs, key)
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
        await self._logs.drained(attempt)
        return result

    async def stop(self, ref: AttemptRef, grace: float) -> None:
        attempt = self._find(ref)
        if attempt is None:
            return
        attempt.stopping = True
        await self._cluster.delete_all(attempt.objects, grace)
        attempt.finish(Exit(None, "stopped", succeeded=False))

    async def logs(
        self, ref: AttemptRef, *, tail: int = 0, follow: bool = False
    ) -> AsyncIterator[bytes]:
        async for chunk in self._logs.read(ref, self._find(ref), tail=tail, follow=follow):
            yield chunk

    async def adopt(self) -> list[Adopted]:
        """Register this worker's labelled objects; start the orphan sweep."""
        self._watches.loop = asyncio.get_running_loop()
        found = await self._cluster.list_owned()
        out: list[Adopted] = []
        for key, objs in adoption.groups(found, self._attempts).items():
            attempt, adopted = adoption.adopt_group(objs)
            self._attempts[key] = attempt
            self._logs.store.create(attempt.ref.task_id, attempt.ref.generation)
            out.append(adopted)
        for ns in {o.namespace for a in self._attempts.values() for o in a.objects}:
            self._watches.ensure(ns)
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
        self._watches.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for pending in list(self._background):
            pending.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        threads = self._watches.shutdown() + self._logs.shutdown()
        await asyncio.to_thread(_join_all, threads, 5.0)
        self._cluster.close()

    async def sweep(self) -> list[ObjectRef]:
        """Delete this worker's labelled objects whose attempt it does not know."""
        found = await self._cluster.list_owned()
        orphans = adoption.orphans(found, self._attempts, now=time.time(), grace=self._sweep_grace)
        if orphans:
            log.info("deleting %d orphaned kubernetes objects", len(orphans))
            await self._cluster.delete_all(orphans, 0)
        return orphans

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except (ApiException, OSError) as err:
                log.warning("kubernetes orphan sweep failed: %s", err)

    async def _await_available(self, attempt: KubeAttempt) -> Started:
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

    def _find(self, ref: AttemptRef) -> KubeAttempt | None:
        return self._attempts.get(f"{ko.label_value(ref.task_id)}.{ref.generation}")

    def _in_background(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ----- what the watches saw ---------------------------------------------

    def _on_relist(self, kind: str, namespace: str, names: set[str]) -> None:
        """After a watch gap: objects missing from the new list may have been deleted."""
        for attempt in list(self._attempts.values()):
            if attempt.done.done() or attempt.stopping or not attempt.created:
                continue
            for obj in attempt.objects:
                if obj.kind == kind and obj.namespace == namespace and obj.name not in names:
                    self._in_background(self._confirm_deleted(attempt, obj))

    async def _confirm_deleted(self, attempt: KubeAttempt, obj: ObjectRef) -> None:
        # The list may have been taken just before the object was created: ask for it.
        try:
            gone = not await self._cluster.exists(obj)
        except (ApiException, OSError):
            return
        if gone and not attempt.stopping:
            attempt.finish(Exit(None, f"{obj.kind} {obj.name} deleted outside Corral"))

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
                    attempt.finish(Exit(None, "deployment deleted outside Corral"))
            elif ko.deployment_available(obj):
                attempt.available.set()

    def _on_pod(self, attempt: KubeAttempt, event: str, pod: dict[str, Any]) -> None:
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
                self._in_background(self._cluster.delete_all(attempt.objects, 0))
                attempt.finish(Exit(None, attempt.stuck, succeeded=False))

    def _on_job(self, attempt: KubeAttempt, event: str, job: dict[str, Any]) -> None:
        if event == "DELETED":
            if not attempt.stopping:
                attempt.finish(Exit(None, "job deleted outside Corral", succeeded=False))
            return
        outcome = ko.job_outcome(job)
        if outcome is None or attempt.concluding:
            return
        attempt.concluding = True
        self._in_background(self._conclude(attempt, outcome))

    async def _conclude(self, attempt: KubeAttempt, outcome: ko.JobOutcome) -> None:
        """Report a finished Job with its pod's reason (OOMKilled, exit code) and output.

        The Pod and Job watches are separate streams, so the Job's end can
        arrive before the pod's last states: then the pods are listed once, for
        the reason and to copy the output of a pod whose Running state was missed.
        """
        pod = attempt.pod_exit
        if pod is None or not attempt.logged_pods:
            labels = ko.attempt_labels(attempt.ref.task_id, attempt.ref.generation, self._worker)
            selector = ",".join(f"{k}={v}" for k, v in labels.items())
            try:
                items = await self._cluster.list_pods(attempt.namespace, selector)
            except (ApiException, OSError):
                items = []
            for item in items:
                seen = ko.pod_outcome(item)
                if seen.phase != "Pending":
                    self._follow_logs(attempt, item["metadata"]["name"])
                if pod is None and seen.ended:
                    pod = seen
        if outcome.succeeded:
            attempt.finish(Exit(0, "completed"))
            return
        parts = [outcome.reason, outcome.message]
        if pod is not None and pod.reason and pod.reason not in parts:
            parts.insert(0, pod.describe())
        attempt.finish(
            Exit(
                pod.exit_code if pod else None,
                ": ".join(p for p in parts if p) or "failed",
                oom_killed=bool(pod and pod.reason == "OOMKilled"),
                succeeded=False,
            )
        )

    def _follow_logs(self, attempt: KubeAttempt, pod: str) -> None:
        if self._watches.loop is not None:
            self._logs.follow(self._watches.loop, attempt, pod)


def _join_all(threads: list[threading.Thread], timeout: float) -> None:
    """Join every thread within one shared deadline (they were all told to stop)."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        if thread.is_alive() or thread.ident is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
