"""The environment orchestrator's own service.yaml, as it is, against the fake API server.

The file below is the shape its README tells users to copy (comments and
all): a Deployment with an init container copying s3://.../code/service_name/,
a runner on 3001/3000, a Service and an Ingress, every name saying
``service_name``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fakekube import FakeKube
from waiting import eventually

from corral.client import Client
from manager.config import ManagerConfig
from manager.server import serve as serve_manager
from worker.config import WorkerConfig
from worker.server import serve as serve_worker

NS = "corral-envs"
SERVICE_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: service_name  # Will be replaced with replId
  labels:
    app: service_name
spec:
  replicas: 1
  selector:
    matchLabels:
      app: service_name
  template:
    metadata:
      labels:
        app: service_name
    spec:
      volumes:
        - name: workspace-volume
          emptyDir: {}
      initContainers:
        - name: copy-s3-resources
          image: amazon/aws-cli
          command: ["/bin/sh", "-c"]
          args:
            - >
              aws s3 cp s3://YOUR-BUCKET/code/service_name/ /workspace/ --recursive &&
              echo "Resources copied from S3";
          env:
            - name: AWS_ACCESS_KEY_ID
              value: "YOUR_KEY"  # Use Kubernetes Secret in production
            - name: AWS_SECRET_ACCESS_KEY
              value: "YOUR_SECRET"  # Use Kubernetes Secret in production
          volumeMounts:
            - name: workspace-volume
              mountPath: /workspace
      containers:
        - name: runner
          image: your-dockerhub-username/runner:latest  # Replace with your Docker Hub image
          ports:
            - containerPort: 3001
            - containerPort: 3000
          volumeMounts:
            - name: workspace-volume
              mountPath: /workspace
---
apiVersion: v1
kind: Service
metadata:
  name: service_name
spec:
  selector:
    app: service_name
  ports:
    - protocol: TCP
      name: ws
      port: 3001
      targetPort: 3001
    - protocol: TCP
      name: user
      port: 3000
      targetPort: 3000
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: service_name
spec:
  ingressClassName: nginx
  rules:
  - host: service_name.yourdomain.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: service_name
            port:
              number: 3001
"""


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    server = FakeKube()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def http(fake: FakeKube, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    from gateway.server import serve as serve_gateway

    templates = tmp_path / "service.yaml"
    templates.write_text(SERVICE_YAML)
    config = ManagerConfig(
        listen="127.0.0.1:0",
        data_dir=tmp_path / "manager",
        heartbeat_interval=0.2,
        ttl=2.0,
        environments_runtime="kubernetes",
        environments_namespace=NS,
        environment_templates=templates,
        stop_grace=0.5,
    )
    manager = await serve_manager(config)
    target = f"127.0.0.1:{manager.port}"
    worker = await serve_worker(
        WorkerConfig(
            manager=target,
            listen="127.0.0.1:0",
            data_dir=tmp_path / "worker",
            runtimes=("kubernetes",),
            kubeconfig=str(fake.kubeconfig(tmp_path)),
        )
    )
    gateway = await serve_gateway(target, "127.0.0.1:0")
    try:
        async with Client(target) as client:
            await eventually(client.list_nodes)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{gateway.port}", timeout=60
        ) as client_http:
            yield client_http
    finally:
        await gateway.stop()
        await worker.stop()
        await manager.stop(0.5)


@pytest.mark.parametrize("language", ["nodejs", "python", "go"])
async def test_the_original_service_yaml_works_as_it_is(
    fake: FakeKube, http: httpx.AsyncClient, language: str
) -> None:
    reply = await http.post("/start", json={"replId": "user-project-123", "language": language})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"success": True, "podCreated": True}
    deployment = fake.get("deployments", NS, "user-project-123")
    service = fake.get("services", NS, "user-project-123")
    ingress = fake.get("ingresses", NS, "user-project-123")
    assert deployment is not None and service is not None and ingress is not None
    assert deployment["metadata"]["labels"]["app"] == "user-project-123"
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "user-project-123"}
    pod = deployment["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert "s3://YOUR-BUCKET/code/user-project-123/ /workspace/" in init["args"][0]
    (runner,) = pod["containers"]
    assert [p["containerPort"] for p in runner["ports"]] == [3001, 3000]
    assert service["spec"]["selector"] == {"app": "user-project-123"}
    assert [p["port"] for p in service["spec"]["ports"]] == [3001, 3000]
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "user-project-123.yourdomain.com"
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "user-project-123"
    assert "service_name" not in str([deployment, service, ingress])

    stop = await http.post("/stop", json={"replId": "user-project-123"})
    assert stop.status_code == 200 and stop.json()["success"] is True
    await eventually(lambda: fake.get("deployments", NS, "user-project-123") is None)


@pytest.mark.parametrize("repl_id", ["x\n- y", "a: b", "Upper", "x" * 64, "x/y"])
async def test_a_repl_id_is_a_value_never_yaml(
    fake: FakeKube, http: httpx.AsyncClient, repl_id: str
) -> None:
    reply = await http.post("/start", json={"replId": repl_id, "language": "nodejs"})
    assert reply.status_code == 400 and reply.json()["error"].startswith("replId:")
    assert not [c for c in fake.calls if c.verb == "create"]
