"""The ``kubernetes`` runtime: Corral places work on a cluster instead of reimplementing it.

Modules: ``cluster`` (the official client, in-cluster or kubeconfig, and the
calls that create, delete and list this worker's objects), ``watching`` (one
watch per namespace and kind, each on its own thread), ``logs`` (pod output
followed into the worker's ``LogStore``), ``adoption`` (what a restarted
worker finds, and the orphan sweep), ``attempts`` and ``runtime``
(``KubernetesRuntime``). The objects themselves are built by
``worker.runtimes.kubeobjects``; the blocking streams live in
``worker.runtimes.kubestreams``. These are the only modules that import
``kubernetes`` (an import-linter contract holds it).
"""

from __future__ import annotations

from worker.config import WorkerConfig
from worker.runtimes.kubernetes.cluster import ObjectRef, api_error
from worker.runtimes.kubernetes.runtime import KubernetesRuntime


def create(config: WorkerConfig) -> KubernetesRuntime:
    return KubernetesRuntime(config)


__all__ = ["KubernetesRuntime", "ObjectRef", "api_error", "create"]
