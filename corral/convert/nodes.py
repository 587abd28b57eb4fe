"""Nodes and their live stats."""

from __future__ import annotations

from corral.convert.scalars import (
    enum_from,
    enum_to,
    time_from,
    timestamp,
)
from corral.convert.specs import resources_from, resources_to
from corral.model import (
    Node,
    NodeId,
    NodeStats,
    NodeStatus,
)
from corral.v1 import types_pb2


def stats_from(m: types_pb2.NodeStats) -> NodeStats:
    return NodeStats(
        cpu_percent=m.cpu_percent,
        memory_used_bytes=m.memory_used_bytes,
        memory_total_bytes=m.memory_total_bytes,
        disk_used_bytes=m.disk_used_bytes,
        disk_total_bytes=m.disk_total_bytes,
        load1=m.load1,
        load5=m.load5,
        load15=m.load15,
        task_count=m.task_count,
        container_memory_bytes=m.container_memory_bytes,
        container_cpu=m.container_cpu,
    )


def stats_to(s: NodeStats) -> types_pb2.NodeStats:
    return types_pb2.NodeStats(
        cpu_percent=s.cpu_percent,
        memory_used_bytes=s.memory_used_bytes,
        memory_total_bytes=s.memory_total_bytes,
        disk_used_bytes=s.disk_used_bytes,
        disk_total_bytes=s.disk_total_bytes,
        load1=s.load1,
        load5=s.load5,
        load15=s.load15,
        task_count=s.task_count,
        container_memory_bytes=s.container_memory_bytes,
        container_cpu=s.container_cpu,
    )


def node_status_from(number: int) -> NodeStatus:
    return enum_from(types_pb2.NodeStatus, number, NodeStatus, "NODE_STATUS_", NodeStatus.READY)


def node_from(m: types_pb2.Node) -> Node:
    return Node(
        id=NodeId(m.id),
        name=m.name,
        address=m.address,
        labels=dict(m.labels),
        capacity=resources_from(m.capacity),
        allocated=resources_from(m.allocated),
        stats=stats_from(m.stats),
        runtimes=tuple(m.runtimes),
        status=node_status_from(m.status),
        last_heartbeat=time_from(m.last_heartbeat),
        registered_at=time_from(m.registered_at),
        task_count=m.task_count,
    )


def node_to(n: Node) -> types_pb2.Node:
    return types_pb2.Node(
        id=n.id,
        name=n.name,
        address=n.address,
        labels=dict(n.labels),
        capacity=resources_to(n.capacity),
        allocated=resources_to(n.allocated),
        stats=stats_to(n.stats),
        runtimes=list(n.runtimes),
        status=enum_to(types_pb2.NodeStatus, n.status, "NODE_STATUS_"),
        last_heartbeat=timestamp(n.last_heartbeat),
        registered_at=timestamp(n.registered_at),
        task_count=n.task_count,
    )
