"""The cluster: the official client, configured once, and the calls that create, delete
and list what the runtime owns.

Every call asks for the raw response (``_preload_content=False``): the runtime
works on plain dicts, the same shapes ``kubeobjects`` builds. The client
blocks, so async callers go through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException

from worker.config import WorkerConfig
from worker.runtimes import kubeobjects as ko
from worker.runtimes.base import StartError

log = logging.getLogger(__name__)

CALL_TIMEOUT = 15.0

# kind -> (API class, suffix of its create_namespaced_* / delete_namespaced_* methods).
KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("AppsV1Api", "deployment"),
    "Service": ("CoreV1Api", "service"),
    "Ingress": ("NetworkingV1Api", "ingress"),
    "Job": ("BatchV1Api", "job"),
}


@dataclass(frozen=True, slots=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str


def worker_name(config: WorkerConfig) -> str:
    return ko.label_value(config.name or socket.gethostname())


def api_error(err: ApiException) -> str:
    """``403 Forbidden: deployments.apps is forbidden: ...`` from an API error."""
    detail = ""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        detail = str(json.loads(err.body or "{}").get("message", ""))
    return f"{err.status} {err.reason}: {detail}".rstrip(": ")


class Cluster:
    def __init__(self, config: WorkerConfig, worker: str) -> None:
        self._config = config
        self._worker = worker
        self._api: kclient.ApiClient | None = None

    def client(self) -> kclient.ApiClient:
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

    def api(self, name: str) -> Any:
        """One of the client's API groups (``CoreV1Api``, ...)."""
        return getattr(kclient, name)(self.client())

    def call(self, api: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One blocking call; returns the decoded JSON body (run it in a thread)."""
        kwargs.setdefault("_request_timeout", CALL_TIMEOUT)
        fn = getattr(self.api(api), method)
        resp = fn(*args, _preload_content=False, **kwargs)
        data = resp.data
        resp.release_conn()
        return json.loads(data) if data else {}

    async def acall(self, api: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.call, api, method, *args, **kwargs)

    def close(self) -> None:
        if self._api is not None:
            self._api.close()  # type: ignore[no-untyped-call]
            self._api = None

    # -- creating, deleting, listing -------------------------------------------

    async def create_all(self, objs: list[dict[str, Any]], key: str) -> None:
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
                await self.delete_all(created, 0)
                raise StartError(
                    f"creating {obj['kind']} {meta.get('name', '')}: {api_error(err)}"
                ) from err
            created.append(ObjectRef(obj["kind"], meta["namespace"], meta["name"]))

    async def _create(self, obj: dict[str, Any], key: str) -> None:
        api, suffix = KINDS[obj["kind"]]
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        try:
            await self.acall(api, f"create_namespaced_{suffix}", ns, obj)
        except ApiException as err:
            if err.status != 409:
                raise
            existing = await self.acall(api, f"read_namespaced_{suffix}", name, ns)
            if ko.attempt_key(existing) == key:
                return  # our own object from a start delivered twice
            raise

    async def _ensure_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        try:
            await self.acall("CoreV1Api", "create_namespace", body)
        except ApiException as err:
            if err.status != 409:
                raise

    async def delete_all(self, objs: list[ObjectRef], grace: float) -> None:
        for obj in objs:
            api, suffix = KINDS[obj.kind]
            try:
                await self.acall(
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

    async def exists(self, obj: ObjectRef) -> bool:
        """False when the API answers 404 for it; other API errors raise."""
        api, suffix = KINDS[obj.kind]
        try:
            await self.acall(api, f"read_namespaced_{suffix}", obj.name, obj.namespace)
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return True

    async def list_owned(self) -> list[dict[str, Any]]:
        """Every object of a supported kind labelled with this worker, in all namespaces."""
        selector = f"{ko.LABEL_TASK},{ko.LABEL_WORKER}={self._worker}"
        out: list[dict[str, Any]] = []
        for kind, (api, suffix) in KINDS.items():
            body = await self.acall(
                api, f"list_{suffix}_for_all_namespaces", label_selector=selector
            )
            for item in body.get("items") or []:
                item.setdefault("kind", kind)
                out.append(item)
        return out

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        body = await self.acall(
            "CoreV1Api", "list_namespaced_pod", namespace, label_selector=selector
        )
        return list(body.get("items") or [])
