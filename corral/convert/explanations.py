"""``ExplainTask`` answers <-> ``corral.explanations``."""

from __future__ import annotations

from corral.convert.nodes import node_status_from
from corral.convert.scalars import enum_to, state_from, state_to
from corral.convert.specs import resources_from, resources_to
from corral.explanations import Explanation, NodeFit, Reason
from corral.model import NodeId, TaskId
from corral.v1 import manager_pb2, types_pb2


def explanation_to(e: Explanation) -> manager_pb2.ExplainTaskResponse:
    return manager_pb2.ExplainTaskResponse(
        task_id=e.task_id,
        state=state_to(e.state),
        message=e.message,
        nodes=[
            manager_pb2.NodeFit(
                node_id=n.node_id,
                node_name=n.node_name,
                status=enum_to(types_pb2.NodeStatus, n.status, "NODE_STATUS_"),
                fits=n.fits,
                reasons=[
                    manager_pb2.UnfitReason(
                        kind=r.kind,
                        message=r.message,
                        label=r.label,
                        wanted=r.wanted,
                        actual=r.actual,
                    )
                    for r in n.reasons
                ],
                free=resources_to(n.free),
                capacity=resources_to(n.capacity),
            )
            for n in e.nodes
        ],
        chosen_node_id=e.chosen_node_id,
        chosen_node_name=e.chosen_node_name,
        summary=e.summary,
    )


def explanation_from(m: manager_pb2.ExplainTaskResponse) -> Explanation:
    return Explanation(
        task_id=TaskId(m.task_id),
        state=state_from(m.state),
        message=m.message,
        nodes=tuple(
            NodeFit(
                node_id=NodeId(n.node_id),
                node_name=n.node_name,
                status=node_status_from(n.status),
                reasons=tuple(
                    Reason(r.kind, r.message, r.label, r.wanted, r.actual) for r in n.reasons
                ),
                free=resources_from(n.free),
                capacity=resources_from(n.capacity),
            )
            for n in m.nodes
        ),
        chosen_node_id=m.chosen_node_id,
        chosen_node_name=m.chosen_node_name,
        summary=m.summary,
    )
