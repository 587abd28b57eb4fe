"""Per-language environment templates: loaded once, rendered structurally.

The original orchestrator replaced ``service_name`` in the YAML *text* with
the user's replId, so a crafted replId could add keys or whole documents.
Here the file is parsed first and placeholders are substituted inside the
parsed strings: whatever a value holds, it stays one string (or, for a string
that is exactly one placeholder, one value of the placeholder's own type).
Templates are checked at load time, so a typo in a placeholder fails the
manager's start instead of a user's request.

The original's own ``service.yaml`` (a Deployment, a Service and an Ingress
whose names, labels, host and S3 path say ``service_name``) is accepted as it
is: its documents are the manifests of every language, and every
``service_name`` inside a parsed string (or key) becomes the replId, which has
passed its DNS-label check first. A file with a ``languages`` mapping is
Corral's own form, per language.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from corral.errors import ValidationError
from corral.model import Resources
from corral.validation import check_argv, check_image, check_name, check_port

SHIPPED = Path(__file__).resolve().parent / "shipped_templates.yaml"
PLACEHOLDERS = frozenset(
    {"replId", "host", "namespace", "image", "port", "cpu", "memory", "command", "bind"}
)
# The address a service listens on: all interfaces inside a container (its
# ports are published), loopback on the manager's host (process runtime).
BIND_CONTAINER = "0.0.0.0"
BIND_HOST = "127.0.0.1"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", re.ASCII)
_FACTORS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


@dataclass(frozen=True)
class Fetch:
    """The init container that copies a project's files before it starts."""

    image: str
    command: tuple[str, ...]
    env: Mapping[str, str]


@dataclass(frozen=True)
class Template:
    language: str
    image: str
    port: int
    command: tuple[str, ...]
    cpu: float
    memory: str  # a Kubernetes quantity, as written
    fetch: Fetch | None
    manifests: tuple[Mapping[str, Any], ...]
    # The original's placeholder text ("service_name"); empty for Corral's {replId} form.
    literal: str = ""

    @property
    def resources(self) -> Resources:
        return Resources(cpu=self.cpu, memory_bytes=memory_bytes(self.memory))


def memory_bytes(quantity: str) -> int:
    match = _QUANTITY.fullmatch(quantity)
    if not match:
        raise ValueError(f"{quantity!r} is not a memory quantity (e.g. 512Mi)")
    number, unit = float(match.group(1)), match.group(2) or ""
    factor = 1024 ** ("KMGT".index(unit[0]) + 1) if unit.endswith("i") else _FACTORS[unit]
    return int(number * factor)


def cpu_quantity(cores: float) -> str:
    return f"{max(1, round(cores * 1000))}m"


def substitute(value: Any, values: Mapping[str, Any]) -> Any:
    """Replace ``{name}`` inside every string of a parsed document (a new copy)."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return copy.deepcopy(values[whole.group(1)])
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), value)
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    if isinstance(value, dict):
        return {substitute(k, values): substitute(v, values) for k, v in value.items()}
    return value


def _placeholders(value: Any, where: str) -> None:
    """Fail on a placeholder the renderer does not know, naming where it is."""
    if isinstance(value, str):
        for name in _PLACEHOLDER.findall(value):
            if name not in PLACEHOLDERS:
                raise ValidationError(where, f"unknown placeholder {{{name}}}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _placeholders(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            _placeholders(v, f"{where}.{k}")


ORIGINAL_PLACEHOLDER = "service_name"


class EveryLanguage(Mapping[str, Template]):
    """One template for whatever language is asked (the original's service.yaml)."""

    def __init__(self, template: Template) -> None:
        self.template = template

    def __getitem__(self, language: str) -> Template:
        return replace(self.template, language=language)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def load_templates(path: Path | None = None) -> Mapping[str, Template]:
    """Read and check a templates file (the shipped one when ``path`` is None)."""
    source = path or SHIPPED
    try:
        docs = [d for d in yaml.safe_load_all(source.read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as err:
        raise ValidationError("environment_templates", f"cannot read {source}: {err}") from err
    if docs and all(isinstance(d, dict) and "kind" in d for d in docs):
        return EveryLanguage(_original(docs, source))
    doc = docs[0] if len(docs) == 1 else None
    if not isinstance(doc, dict) or not isinstance(doc.get("languages"), dict):
        raise ValidationError(
            "environment_templates",
            f"{source} has no `languages` mapping (nor is it Kubernetes objects, as service.yaml)",
        )
    fetch = _fetch(doc.get("fetch"))
    shared = doc.get("kubernetes") or []
    return {name: _template(name, entry, shared, fetch) for name, entry in doc["languages"].items()}


def _original(docs: list[dict[str, Any]], source: Path) -> Template:
    """The original's service.yaml: its runner's image and first port, its objects as they are."""
    deployment = next((d for d in docs if d.get("kind") == "Deployment"), None)
    if deployment is None:
        raise ValidationError("environment_templates", f"{source} has no Deployment")
    pod = deployment.get("spec", {}).get("template", {}).get("spec", {})
    containers = pod.get("containers") or []
    if not containers or not isinstance(containers[0], dict):
        raise ValidationError(
            "environment_templates", f"{source}: the Deployment has no containers"
        )
    runner = containers[0]
    ports = [p.get("containerPort") for p in runner.get("ports") or [] if isinstance(p, dict)]
    for i, doc in enumerate(docs):
        if not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
            raise ValidationError("environment_templates", f"{source}: object {i} has no name")
    return Template(
        language="",
        image=str(runner.get("image", "")),
        port=int(str(ports[0])) if ports and str(ports[0]).isdigit() else 0,
        command=tuple(str(a) for a in runner.get("command") or ()),
        cpu=0.5,
        memory="256Mi",
        fetch=None,
        manifests=tuple(docs),
        literal=ORIGINAL_PLACEHOLDER,
    )


def replace_literal(value: Any, literal: str, text: str) -> Any:
    """Every ``literal`` inside every string (and key) of a parsed document (a new copy)."""
    if isinstance(value, str):
        return value.replace(literal, text)
    if isinstance(value, list):
        return [replace_literal(v, literal, text) for v in value]
    if isinstance(value, dict):
        return {replace_literal(k, literal, text): replace_literal(v, literal, text)
                for k, v in value.items()}  # fmt: skip
    return value


def _fetch(entry: Any) -> Fetch | None:
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise ValidationError("fetch", "must be a mapping with image and command")
    command = tuple(str(a) for a in entry.get("command") or ())
    check_argv(command, "fetch.command", required=True)
    env = {str(k): str(v) for k, v in (entry.get("env") or {}).items()}
    return Fetch(check_image(str(entry.get("image", "")), "fetch.image"), command, env)


def _template(name: str, entry: Any, shared: Any, fetch: Fetch | None) -> Template:
    where = f"languages.{name}"
    check_name(str(name), where)
    if not isinstance(entry, dict):
        raise ValidationError(where, "must be a mapping")
    command = tuple(str(a) for a in entry.get("command") or ())
    check_argv(command, f"{where}.command", required=True)
    resources = entry.get("resources") or {}
    memory = str(resources.get("memory", "256Mi"))
    try:
        memory_bytes(memory)
    except ValueError as err:
        raise ValidationError(f"{where}.resources.memory", str(err)) from None
    manifests = entry.get("kubernetes", shared)
    if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
        raise ValidationError(f"{where}.kubernetes", "must be a list of objects")
    _placeholders(manifests, f"{where}.kubernetes")
    _placeholders(list(command), f"{where}.command")
    wants_fetch = bool(entry.get("fetch", False))
    if wants_fetch and fetch is None:
        raise ValidationError(f"{where}.fetch", "is true but the file has no `fetch` section")
    return Template(
        language=name,
        image=check_image(str(entry.get("image", "")), f"{where}.image"),
        port=check_port(int(entry.get("port", 0)), f"{where}.port"),
        command=command,
        cpu=float(resources.get("cpu", 0.5)),
        memory=memory,
        fetch=fetch if wants_fetch else None,
        manifests=tuple(manifests),
    )


def render_command(template: Template, port: int, *, bind: str = BIND_CONTAINER) -> tuple[str, ...]:
    values = {"port": port, "replId": "", "host": "", "namespace": "", "image": template.image}
    values |= {"cpu": cpu_quantity(template.cpu), "memory": template.memory, "command": []}
    values["bind"] = bind
    return tuple(str(substitute(a, values)) for a in template.command)


def render_manifests(
    template: Template, *, repl_id: str, host: str, namespace: str
) -> tuple[dict[str, Any], ...]:
    """The Kubernetes objects of one environment, as plain JSON-able dicts.

    ``repl_id`` must already be a checked DNS label; the caller validates it.
    """
    if template.literal:
        return tuple(replace_literal(m, template.literal, repl_id) for m in template.manifests)
    values: dict[str, Any] = {
        "replId": repl_id,
        "host": host,
        "namespace": namespace,
        "image": template.image,
        "port": template.port,
        "cpu": cpu_quantity(template.cpu),
        "memory": template.memory,
        "command": list(render_command(template, template.port)),
        "bind": BIND_CONTAINER,
    }
    objects = [substitute(m, values) for m in template.manifests]
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec")
        if isinstance(pod, dict):
            _stringify_env(pod)
            if template.fetch is not None:
                _add_fetch(pod, template.fetch, repl_id)
    return tuple(objects)


def _stringify_env(pod: dict[str, Any]) -> None:
    # "{port}" alone becomes a number, but Kubernetes wants env values as strings.
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for var in container.get("env") or []:
            if "value" in var:
                var["value"] = str(var["value"])


def _add_fetch(pod: dict[str, Any], fetch: Fetch, repl_id: str) -> None:
    """An init container filling a shared /workspace volume before the service starts."""
    mount = {"name": "workspace", "mountPath": "/workspace"}
    env = [{"name": k, "value": v} for k, v in sorted(fetch.env.items())]
    env.append({"name": "REPL_ID", "value": repl_id})
    init = {
        "name": "fetch-project",
        "image": fetch.image,
        "command": list(fetch.command),
        "env": env,
        "volumeMounts": [mount],
    }
    pod.setdefault("volumes", []).append({"name": "workspace", "emptyDir": {}})
    pod.setdefault("initContainers", []).append(init)
    for container in pod.get("containers", []):
        container.setdefault("volumeMounts", []).append(dict(mount))
        container.setdefault("workingDir", "/workspace")
