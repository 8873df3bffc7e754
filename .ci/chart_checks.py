"""What a cluster would enforce on the rendered charts, checked without a cluster.

Structure checks (schemas, kubernetes-validate, checkov) pass manifests that a cluster then
refuses or runs into the ground: a probe on a path the app does not serve, a Service or a
NetworkPolicy on a port nothing listens on, a selector that matches no pod, a label value
the API server rejects. These checks read the manifests the way the API server, the kubelet
and a NetworkPolicy implementation would:

- every label (key and value) and annotation (key, string value) is one the API accepts;
- every HTTP probe, prometheus.io/path and ServiceMonitor path is a GET route of the app
  (the routes come from the app's own router: `routes_of_the_app()`);
- every probe, Service targetPort, NetworkPolicy port and prometheus.io/port is the port the
  process in the container listens on (PORT for the app image, `--port` on a command line,
  the image's default otherwise), and every containerPort is that port;
- every Service and NetworkPolicy selects pods, every namespace selector selects a namespace;
- every connection the release needs (ingress controller or gateway -> api Service, app ->
  the database and Redis named in its URLs, the helm test pod -> api) is admitted by the
  NetworkPolicies at both ends, on the port the server listens on.

Pure standard library, so both the chart tools venv (.ci/helm_charts.py check) and the
project's venv (tests/deploy/test_helm.py) import it.

    .venv/bin/python .ci/chart_checks.py routes > routes.json   # the app's GET routes
"""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

Manifest = dict[str, Any]

# Kubernetes' own rules (apimachinery validation): qualified names and label values.
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
QUALIFIED_NAME = re.compile(rf"^({_DNS_SUBDOMAIN}/)?{_NAME}$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
MAX_ANNOTATIONS_BYTES = 256 * 1024

# Where a process listens when nothing on its command line or in its environment says so.
APP_DEFAULT_PORT = 8000  # docker/entrypoint.sh: uvicorn --port "${PORT:-8000}"
IMAGE_DEFAULT_PORTS = {"postgres": 5432, "redis": 6379}
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")

# Pods outside the charts that connect to them: the ingress controller (k8s/ingress-nginx-values.yaml).
INGRESS_CONTROLLER = {
    "namespace": "ingress-nginx",
    "labels": {
        "app.kubernetes.io/name": "ingress-nginx",
        "app.kubernetes.io/instance": "ingress-nginx",
        "app.kubernetes.io/component": "controller",
    },
}
# Labels of the namespaces the charts are installed into (k8s/namespace.yaml adds these).
NAMESPACE_LABELS = {"quintet": {"app.kubernetes.io/part-of": "quintet"}}


def label_problems(where: str, labels: Any) -> list[str]:
    problems: list[str] = []
    if labels is None:
        return problems
    if not isinstance(labels, dict):
        return [f"{where}: labels must be a map, got {labels!r}"]
    for key, value in labels.items():
        if not isinstance(key, str) or not _qualified_name_ok(key):
            problems.append(f"{where}: label key {key!r} is not a valid qualified name")
        if not isinstance(value, str):
            problems.append(f"{where}: label {key} has a non-string value {value!r}")
        elif len(value) > 63 or not LABEL_VALUE.match(value):
            problems.append(
                f"{where}: label {key}={value!r} is not a valid label value "
                "(at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends)"
            )
    return problems


def annotation_problems(where: str, annotations: Any) -> list[str]:
    problems: list[str] = []
    if annotations is None:
        return problems
    if not isinstance(annotations, dict):
        return [f"{where}: annotations must be a map, got {annotations!r}"]
    size = 0
    for key, value in annotations.items():
        if not isinstance(key, str) or not _qualified_name_ok(key):
            problems.append(f"{where}: annotation key {key!r} is not a valid qualified name")
        if not isinstance(value, str):
            problems.append(
                f"{where}: annotation {key} has a non-string value {value!r} (the API refuses it)"
            )
        else:
            size += len(str(key)) + len(value)
    if size > MAX_ANNOTATIONS_BYTES:
        problems.append(f"{where}: annotations total {size} bytes (limit {MAX_ANNOTATIONS_BYTES})")
    return problems


def _qualified_name_ok(key: str) -> bool:
    if not QUALIFIED_NAME.match(key):
        return False
    prefix, _, name = key.rpartition("/")
    return len(name) <= 63 and len(prefix) <= 253


# ---------------------------------------------------------------------------------------------
# The world the manifests describe: pods (from workload templates), services, policies.


@dataclass
class Pod:
    """A pod as its template describes it (one per workload, whatever the replica count)."""

    name: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, Any]
    spec: dict[str, Any]
    synthetic: bool = False

    @property
    def containers(self) -> list[dict[str, Any]]:
        return list(self.spec.get("containers") or [])

    def listening_ports(self) -> set[int]:
        ports = {listening_port(c) for c in self.containers}
        return {p for p in ports if p is not None}

    def resolve_port(self, port: Any) -> int | None:
        """A named or numbered container port of this pod, as a number (None: no such port)."""
        if isinstance(port, int):
            return port
        for container in self.containers:
            for declared in container.get("ports") or []:
                if declared.get("name") == port:
                    return int(declared["containerPort"])
        if isinstance(port, str) and port.isdigit():
            return int(port)
        return None


@dataclass
class World:
    pods: list[Pod] = field(default_factory=list)
    services: list[Manifest] = field(default_factory=list)
    policies: list[Manifest] = field(default_factory=list)
    manifests: list[Manifest] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)

    def pods_in(self, namespace: str) -> list[Pod]:
        return [p for p in self.pods if p.namespace == namespace]

    def service(self, name: str, namespace: str) -> Manifest | None:
        for svc in self.services:
            meta = svc["metadata"]
            if meta["name"] == name and meta.get("namespace", namespace) == namespace:
                return svc
        return None


def build_world(manifests: Iterable[Manifest], default_namespace: str = "quintet") -> World:
    world = World()
    for doc in manifests:
        meta = doc.setdefault("metadata", {})
        meta.setdefault("namespace", default_namespace)
        world.manifests.append(doc)
        kind = doc.get("kind")
        namespace = meta["namespace"]
        world.namespaces.setdefault(namespace, _namespace_labels(namespace))
        if kind == "Pod":
            world.pods.append(
                Pod(
                    f"Pod/{meta['name']}",
                    namespace,
                    dict(meta.get("labels") or {}),
                    dict(meta.get("annotations") or {}),
                    doc.get("spec") or {},
                )
            )
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            template = doc["spec"]["template"]
            tmeta = template.get("metadata") or {}
            world.pods.append(
                Pod(
                    f"{kind}/{meta['name']}",
                    namespace,
                    dict(tmeta.get("labels") or {}),
                    dict(tmeta.get("annotations") or {}),
                    template.get("spec") or {},
                )
            )
        elif kind == "Service":
            world.services.append(doc)
        elif kind == "NetworkPolicy":
            world.policies.append(doc)
    controller = INGRESS_CONTROLLER
    world.pods.append(
        Pod(
            "ingress-nginx controller",
            str(controller["namespace"]),
            dict(controller["labels"]),  # type: ignore[arg-type]
            {},
            {},
            synthetic=True,
        )
    )
    world.namespaces.setdefault(
        str(controller["namespace"]), _namespace_labels(str(controller["namespace"]))
    )
    for doc in world.manifests:
        if doc.get("kind") == "HTTPRoute":
            for parent in doc["spec"].get("parentRefs") or []:
                namespace = parent.get("namespace") or doc["metadata"]["namespace"]
                world.namespaces.setdefault(namespace, _namespace_labels(namespace))
                world.pods.append(
                    Pod(
                        f"gateway {parent.get('name')} data plane",
                        namespace,
                        {"gateway.networking.k8s.io/gateway-name": str(parent.get("name"))},
                        {},
                        {},
                        synthetic=True,
                    )
                )
    return world


def _namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace, **NAMESPACE_LABELS.get(namespace, {})}


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions); an empty one matches everything."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def listening_port(container: dict[str, Any]) -> int | None:
    """The TCP port the container's process listens on."""
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    env = {e["name"]: e.get("value") for e in container.get("env") or [] if "name" in e}
    line = " ".join(words)
    if match := re.search(r"--port[= ]+(\d+)", line):
        return int(match[1])
    image = str(container.get("image", ""))
    for name, port in IMAGE_DEFAULT_PORTS.items():
        if re.search(rf"(^|/){name}[:@]", image):
            key = "PGPORT" if name == "postgres" else ""
            return int(env[key]) if key and env.get(key) else port
    if is_app_http(container):
        value = env.get("PORT")
        return int(value) if value and str(value).isdigit() else APP_DEFAULT_PORT
    return None


def is_app_http(container: dict[str, Any]) -> bool:
    """The app image started as the web server (docker/entrypoint.sh `api`)."""
    args = [str(a) for a in container.get("args") or []]
    return bool(args) and args[0] == "api" and not container.get("command")


# ---------------------------------------------------------------------------------------------
# The checks.


def route_served(path: str, routes: dict[str, list[str]], method: str = "GET") -> bool:
    for template, methods in routes.items():
        if method not in methods:
            continue
        pattern = re.sub(
            r"\{[^}:]+:path\}|\{[^}]+\}",
            lambda m: ".*" if ":path}" in m[0] else "[^/]+",
            re.escape(template).replace(r"\{", "{").replace(r"\}", "}"),
        )
        if re.fullmatch(pattern, path) or re.fullmatch(pattern, path.rstrip("/") or "/"):
            return True
    return False


def check_metadata(world: World) -> Iterator[str]:
    for doc in world.manifests:
        where = f"{doc['kind']}/{doc['metadata'].get('name')}"
        yield from label_problems(where, doc["metadata"].get("labels"))
        yield from annotation_problems(where, doc["metadata"].get("annotations"))
        spec = doc.get("spec") or {}
        template = spec.get("template") if isinstance(spec, dict) else None
        if isinstance(template, dict):
            tmeta = template.get("metadata") or {}
            yield from label_problems(f"{where} pod template", tmeta.get("labels"))
            yield from annotation_problems(f"{where} pod template", tmeta.get("annotations"))
        for claim in spec.get("volumeClaimTemplates") or [] if isinstance(spec, dict) else []:
            yield from label_problems(f"{where} volume claim", claim["metadata"].get("labels"))
        for selector in _selectors(doc):
            yield from label_problems(f"{where} selector", selector.get("matchLabels"))


def _selectors(doc: Manifest) -> Iterator[dict[str, Any]]:
    spec = doc.get("spec") or {}
    if not isinstance(spec, dict):
        return
    if doc["kind"] == "Service":
        yield {"matchLabels": spec.get("selector") or {}}
    elif isinstance(spec.get("selector"), dict):
        yield spec["selector"]
    if doc["kind"] == "NetworkPolicy":
        yield spec.get("podSelector") or {}
        for rule in (spec.get("ingress") or []) + (spec.get("egress") or []):
            for peer in (rule.get("from") or []) + (rule.get("to") or []):
                for key in ("podSelector", "namespaceSelector"):
                    if key in peer:
                        yield peer[key]


def check_pods(world: World, routes: dict[str, list[str]] | None) -> Iterator[str]:
    for pod in world.pods:
        if pod.synthetic:
            continue
        for container in pod.containers:
            where = f"{pod.name} container {container.get('name')}"
            listens = listening_port(container)
            for declared in container.get("ports") or []:
                if declared.get("protocol", "TCP") != "TCP" or listens is None:
                    continue
                if int(declared["containerPort"]) != listens:
                    yield (
                        f"{where}: declares containerPort {declared['containerPort']} "
                        f"({declared.get('name')}) but the process listens on {listens}"
                    )
            for probe_name in PROBES:
                probe = container.get(probe_name) or {}
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    if handler not in probe:
                        continue
                    target = probe[handler].get("port")
                    number = pod.resolve_port(target)
                    if number is None:
                        yield f"{where}: {probe_name} port {target!r} is no port of the container"
                    elif listens is not None and number != listens:
                        yield (
                            f"{where}: {probe_name} probes port {target!r} ({number}) "
                            f"but the process listens on {listens}"
                        )
                    path = probe[handler].get("path")
                    if (
                        handler == "httpGet"
                        and routes is not None
                        and is_app_http(container)
                        and not route_served(path or "/", routes)
                    ):
                        yield f"{where}: {probe_name} path {path!r} is not a GET route of the app"
            if routes is not None:
                yield from _check_scripted_requests(where, container, routes)
        if any(is_app_http(c) for c in pod.containers):
            yield from _check_prometheus_annotations(pod, routes)


def _check_scripted_requests(
    where: str, container: dict[str, Any], routes: dict[str, list[str]]
) -> Iterator[str]:
    """A check pod (the `helm test` one) that requests `base + path` for ("/path", ...) pairs."""
    script = " ".join(str(w) for w in container.get("command") or [])
    if "http://" not in script or "urlopen" not in script:
        return
    for path in re.findall(r'\(\s*"(/[^"\s]*)"\s*,', script):
        if not route_served(path, routes):
            yield f"{where}: requests {path!r}, which is not a GET route of the app"


def _check_prometheus_annotations(pod: Pod, routes: dict[str, list[str]] | None) -> Iterator[str]:
    annotations = pod.annotations
    if annotations.get("prometheus.io/scrape") != "true":
        return
    port = annotations.get("prometheus.io/port")
    if port is not None and str(port).isdigit() and int(port) not in pod.listening_ports():
        yield (
            f"{pod.name}: prometheus.io/port {port} is not the port the api listens on "
            f"({sorted(pod.listening_ports())})"
        )
    path = annotations.get("prometheus.io/path", "/metrics")
    if routes is not None and not route_served(str(path), routes):
        yield f"{pod.name}: prometheus.io/path {path!r} is not a GET route of the app"


def check_services(world: World) -> Iterator[str]:
    for svc in world.services:
        meta, spec = svc["metadata"], svc.get("spec") or {}
        where = f"Service/{meta['name']}"
        selector = spec.get("selector")
        if not selector:
            continue
        pods = [
            p
            for p in world.pods_in(meta["namespace"])
            if selector_matches({"matchLabels": selector}, p.labels)
        ]
        if not pods:
            yield f"{where}: its selector {selector} matches no pod"
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            for pod in pods:
                number = pod.resolve_port(target)
                if number is None:
                    yield f"{where}: targetPort {target!r} is no container port of {pod.name}"
                elif number not in pod.listening_ports():
                    yield (
                        f"{where}: targetPort {target!r} ({number}) of {pod.name} is not where "
                        f"it listens ({sorted(pod.listening_ports())})"
                    )


def check_service_monitors(world: World, routes: dict[str, list[str]] | None) -> Iterator[str]:
    """A prometheus-operator ServiceMonitor: selects a Service, scrapes a named port of it, on a
    path the app serves."""
    for monitor in (d for d in world.manifests if d["kind"] == "ServiceMonitor"):
        where = f"ServiceMonitor/{monitor['metadata']['name']}"
        spec = monitor["spec"]
        namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [
            monitor["metadata"]["namespace"]
        ]
        services = [
            s
            for s in world.services
            if s["metadata"]["namespace"] in namespaces
            and selector_matches(spec.get("selector"), s["metadata"].get("labels") or {})
        ]
        if not services:
            yield f"{where}: its selector matches no Service"
        for endpoint in spec.get("endpoints") or []:
            for svc in services:
                names = {p.get("name") for p in svc["spec"].get("ports") or []}
                if endpoint.get("port") not in names:
                    yield f"{where}: port {endpoint.get('port')!r} is no port name of Service/{svc['metadata']['name']}"
            path = endpoint.get("path", "/metrics")
            if routes is not None and not route_served(path, routes):
                yield f"{where}: path {path!r} is not a GET route of the app"


def _policy_types(policy: Manifest) -> set[str]:
    spec = policy["spec"]
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if "egress" in spec else set())


def _peer_pods(world: World, peer: dict[str, Any], policy_namespace: str) -> list[Pod] | None:
    """Pods a NetworkPolicyPeer selects; None for an ipBlock (addresses, not pods)."""
    if "ipBlock" in peer:
        return None
    if "namespaceSelector" in peer:
        namespaces = {
            ns
            for ns, labels in world.namespaces.items()
            if selector_matches(peer["namespaceSelector"], labels)
        }
    else:
        namespaces = {policy_namespace}
    return [
        p
        for p in world.pods
        if p.namespace in namespaces and selector_matches(peer.get("podSelector"), p.labels)
    ]


def check_policies(world: World) -> Iterator[str]:
    for policy in world.policies:
        meta, spec = policy["metadata"], policy["spec"]
        where = f"NetworkPolicy/{meta['name']}"
        selected = [
            p
            for p in world.pods_in(meta["namespace"])
            if selector_matches(spec.get("podSelector"), p.labels)
        ]
        if not selected:
            yield f"{where}: its podSelector {spec.get('podSelector')} matches no pod"
        for direction, key in (("ingress", "from"), ("egress", "to")):
            for rule in spec.get(direction) or []:
                for peer in rule.get(key) or []:
                    if "namespaceSelector" in peer and not any(
                        selector_matches(peer["namespaceSelector"], labels)
                        for labels in world.namespaces.values()
                    ):
                        yield (
                            f"{where}: {direction} namespaceSelector {peer['namespaceSelector']} "
                            "matches no namespace"
                        )
                    pods = _peer_pods(world, peer, meta["namespace"])
                    if pods == []:
                        yield f"{where}: {direction} peer {peer} matches no pod"
                # The ports of an ingress rule are the selected pods' ports; of an egress rule
                # towards pods, those pods' ports.
                servers = selected
                if direction == "egress":
                    peers = [
                        _peer_pods(world, peer, meta["namespace"]) for peer in rule.get("to") or []
                    ]
                    if not peers or any(p is None for p in peers):
                        continue  # anywhere, or addresses: no pod to compare with
                    servers = [pod for group in peers for pod in group or [] if not pod.synthetic]
                for port in rule.get("ports") or []:
                    target = port.get("port")
                    if target is None:
                        continue
                    for pod in servers:
                        if pod.synthetic:
                            continue
                        number = pod.resolve_port(target)
                        if number is None or number not in pod.listening_ports():
                            yield (
                                f"{where}: {direction} port {target!r} is not where {pod.name} "
                                f"listens ({sorted(pod.listening_ports())})"
                            )


def allowed(world: World, client: Pod, server: Pod | None, port: int) -> list[str]:
    """Why the connection is refused ([] = admitted). server None: outside the cluster."""
    reasons = []
    if server is not None:
        ingress = [
            p
            for p in world.policies
            if p["metadata"]["namespace"] == server.namespace
            and "Ingress" in _policy_types(p)
            and selector_matches(p["spec"].get("podSelector"), server.labels)
        ]
        if ingress and not any(
            _rule_admits(world, rule, "from", policy, client, server, port)
            for policy in ingress
            for rule in policy["spec"].get("ingress") or []
        ):
            names = ", ".join(p["metadata"]["name"] for p in ingress)
            reasons.append(f"no ingress rule of {names} admits {client.name}")
    if not client.synthetic:
        egress = [
            p
            for p in world.policies
            if p["metadata"]["namespace"] == client.namespace
            and "Egress" in _policy_types(p)
            and selector_matches(p["spec"].get("podSelector"), client.labels)
        ]
        if egress and not any(
            _rule_admits(world, rule, "to", policy, server, server, port)
            for policy in egress
            for rule in policy["spec"].get("egress") or []
        ):
            names = ", ".join(p["metadata"]["name"] for p in egress)
            reasons.append(f"no egress rule of {names} lets {client.name} out on port {port}")
    return reasons


def _rule_admits(
    world: World,
    rule: dict[str, Any],
    key: str,
    policy: Manifest,
    peer_pod: Pod | None,
    server: Pod | None,
    port: int,
) -> bool:
    peers = rule.get(key)
    if peers:
        matched = False
        for peer in peers:
            pods = _peer_pods(world, peer, policy["metadata"]["namespace"])
            if pods is None:
                matched = matched or peer_pod is None  # an ipBlock: only outside addresses
            elif peer_pod is not None and any(p is peer_pod for p in pods):
                matched = True
        if not matched:
            return False
    ports = rule.get("ports")
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        target = entry.get("port")
        if target is None:
            return True
        number = server.resolve_port(target) if server is not None else None
        if number is None and isinstance(target, int):
            number = target
        if number is not None and number <= port <= int(entry.get("endPort", number)):
            return True
    return False


@dataclass
class Connection:
    client: Pod
    what: str
    host: str
    port: int
    namespace: str = ""  # where a bare service name is looked up (default: the client's)
    host_header: str | None = None  # the Host header of an HTTP request, when it is known


def needed_connections(world: World) -> Iterator[Connection]:
    """The connections the release needs, read from the manifests themselves."""
    for doc in world.manifests:
        if doc["kind"] == "Ingress":
            controller = next(p for p in world.pods if p.name == "ingress-nginx controller")
            for rule in doc["spec"].get("rules") or []:
                for path in (rule.get("http") or {}).get("paths") or []:
                    backend = path["backend"]["service"]
                    port = backend["port"].get("number") or backend["port"].get("name")
                    yield Connection(
                        controller,
                        f"Ingress {path['path']}",
                        backend["name"],
                        port,
                        doc["metadata"]["namespace"],
                        rule.get("host"),
                    )
        if doc["kind"] == "HTTPRoute":
            gateways = [p for p in world.pods if p.name.startswith("gateway ")]
            for rule in doc["spec"].get("rules") or []:
                for ref in rule.get("backendRefs") or []:
                    for gateway in gateways:
                        for hostname in doc["spec"].get("hostnames") or [None]:
                            yield Connection(
                                gateway,
                                "HTTPRoute",
                                ref["name"],
                                ref["port"],
                                ref.get("namespace") or doc["metadata"]["namespace"],
                                hostname,
                            )
    for pod in world.pods:
        for container in pod.containers:
            env = environment(world, pod, container)
            for variable in ("DATABASE_URL", "REDIS_URL"):
                url = env.get(variable)
                if not url:
                    continue
                parts = urlsplit(re.sub(r"\$\([A-Z_]+\)", "x", str(url)))
                default = 5432 if variable == "DATABASE_URL" else 6379
                yield Connection(pod, variable, parts.hostname or "", parts.port or default)
            script = " ".join(str(w) for w in container.get("command") or [])
            for host, port in re.findall(r"http://([a-z0-9.-]+):(\d+)", script):
                yield Connection(pod, "http check", host, int(port), host_header=host)


def environment(world: World, pod: Pod, container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as far as the manifests tell: envFrom ConfigMaps and Secrets
    of the render, then env values."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key not in source:
                continue
            for doc in world.manifests:
                meta = doc["metadata"]
                if doc["kind"] != kind or meta["name"] != source[key].get("name"):
                    continue
                if meta.get("namespace", pod.namespace) != pod.namespace:
                    continue
                data = dict(doc.get("data") or {})
                if kind == "Secret":
                    data = {k: base64.b64decode(v).decode() for k, v in data.items()}
                    data.update(doc.get("stringData") or {})
                env.update({k: str(v) for k, v in data.items()})
    for item in container.get("env") or []:
        if "name" in item and "value" in item:
            env[item["name"]] = str(item["value"])
    return env


def _service_for(world: World, host: str, namespace: str) -> Manifest | None:
    name, _, rest = host.partition(".")
    target_namespace = rest.split(".")[0] if rest and rest.split(".")[0] != "svc" else namespace
    if rest and not re.fullmatch(r"[a-z0-9-]+(\.svc(\.cluster\.local)?)?", rest):
        return None  # a name outside the cluster (db.example.org)
    return world.service(name, target_namespace)


def host_allowed(host: str, allowed_hosts: str) -> bool:
    """The app's ALLOWED_HOSTS matching: a name exactly, or *.name for its subdomains."""
    host = host.lower().split(":")[0]
    for entry in (h.strip().lower() for h in allowed_hosts.split(",") if h.strip()):
        if entry == host or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


def check_connections(world: World) -> Iterator[str]:
    for connection in needed_connections(world):
        client = connection.client
        namespace = connection.namespace or client.namespace
        service = _service_for(world, connection.host, namespace)
        label = f"{client.name} -> {connection.host}:{connection.port} ({connection.what})"
        if service is None:
            if re.fullmatch(r"[a-z0-9-]+", connection.host):
                yield f"{label}: no Service {connection.host} in namespace {namespace}"
                continue
            for reason in allowed(world, client, None, int(connection.port)):
                yield f"{label}: {reason}"
            continue
        spec = service["spec"]
        service_port = next(
            (
                p
                for p in spec.get("ports") or []
                if p.get("port") == connection.port or p.get("name") == connection.port
            ),
            None,
        )
        if service_port is None:
            yield f"{label}: Service {service['metadata']['name']} has no port {connection.port}"
            continue
        servers = [
            p
            for p in world.pods_in(service["metadata"]["namespace"])
            if selector_matches({"matchLabels": spec.get("selector") or {}}, p.labels)
        ]
        if not servers:
            yield f"{label}: Service {service['metadata']['name']} selects no pod"
        for server in servers:
            number = server.resolve_port(service_port.get("targetPort", service_port["port"]))
            if number is None:
                continue  # reported by check_services
            if connection.host_header is not None:
                for container in server.containers:
                    if not is_app_http(container):
                        continue
                    hosts = environment(world, server, container).get("ALLOWED_HOSTS")
                    if hosts and not host_allowed(connection.host_header, hosts):
                        yield (
                            f"{label}: the app refuses the Host {connection.host_header!r} "
                            f"(ALLOWED_HOSTS={hosts})"
                        )
            for reason in allowed(world, client, server, number):
                yield f"{label}: refused on the way to {server.name}:{number}: {reason}"


def check(manifests: Iterable[Manifest], routes: dict[str, list[str]] | None) -> list[str]:
    """Every problem found, as sentences; [] when a cluster would run these manifests."""
    world = build_world(json.loads(json.dumps(list(manifests))))
    problems: list[str] = []
    for checker in (
        check_metadata(world),
        check_pods(world, routes),
        check_services(world),
        check_service_monitors(world, routes),
        check_policies(world),
        check_connections(world),
    ):
        for problem in checker:
            if problem not in problems:
                problems.append(problem)
    return problems


# ---------------------------------------------------------------------------------------------
# The value sets `.ci/helm_charts.py check` renders: each is one or more releases installed
# side by side (a "world").

SEPARATE_DB_URL = "postgresql://quintet:pw@db-postgres:5432/quintet"
SEPARATE_REDIS_URL = "redis://:pw@cache-redis:6379/0"
SCENARIOS: dict[str, list[dict[str, Any]]] = {
    "default": [{}],
    "kind": [{"values_file": "k8s/kind-values.yaml"}],
    "kind_upgrade": [{"values_file": "k8s/kind-values.yaml", "upgrade": True}],
    "production": [{"values_file": "helm/quintet/ci/production-values.yaml"}],
    "gateway": [{"values_file": "helm/quintet/ci/gateway-values.yaml"}],
    "api_container_port_9000": [{"values": {"api": {"containerPort": 9000}}}],
    "redis_port_6380": [{"values": {"redis": {"service": {"port": 6380}}}}],
    # PostgreSQL and Redis installed as their own releases next to the app's release.
    "separate_releases": [
        {
            "chart": "helm/postgres",
            "release": "db",
            "values": {
                "networkPolicy": {"allowedPodLabels": {"app.kubernetes.io/instance": "quintet"}}
            },
        },
        {
            "chart": "helm/redis",
            "release": "cache",
            "values": {
                "networkPolicy": {"allowedPodLabels": {"app.kubernetes.io/instance": "quintet"}}
            },
        },
        {
            "values": {
                "postgres": {"enabled": False},
                "externalDatabase": {"url": SEPARATE_DB_URL},
                "redis": {"enabled": False},
                "externalRedis": {"url": SEPARATE_REDIS_URL},
            }
        },
    ],
    # ... and in a namespace of their own.
    "separate_namespace": [
        {
            "chart": "helm/postgres",
            "release": "db",
            "namespace": "data",
            "values": {
                "networkPolicy": {
                    "allowedPodLabels": {"app.kubernetes.io/name": "quintet"},
                    "allowedNamespaceLabels": {"kubernetes.io/metadata.name": "quintet"},
                }
            },
        },
        {
            "values": {
                "postgres": {"enabled": False},
                "externalDatabase": {
                    "url": "postgresql://quintet:pw@db-postgres.data.svc.cluster.local:5432/quintet"
                },
            }
        },
    ],
}


def routes_of_the_app() -> dict[str, list[str]]:
    """path template -> HTTP methods, from the app's own router (needs the project's venv)."""
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    from app.asgi import create_app
    from tests.support import make_settings

    app = create_app(make_settings())
    return {path: sorted(methods) for path, methods in app.route_handler_method_map.items()}


if __name__ == "__main__":
    if sys.argv[1:] != ["routes"]:
        sys.exit("usage: .venv/bin/python .ci/chart_checks.py routes")
    json.dump(routes_of_the_app(), sys.stdout, indent=1, sort_keys=True)
