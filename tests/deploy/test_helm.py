"""The Helm charts as Kubernetes would receive them: rendered offline with Helm's own Go SDK
(helm-python-sdk in the tools venv that .ci/helm.sh creates), then read as manifests.

All renders happen in one subprocess per session; each test reads what it needs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import IN_CI

ROOT = Path(__file__).resolve().parents[2]
TOOLS_PYTHON = ROOT / ".ci" / ".venv-helm" / "bin" / "python"
CHART_TOOL = ROOT / ".ci" / "helm_charts.py"

# The first test may create the tools venv (.ci/helm.sh setup): minutes on a fresh machine.
pytestmark = pytest.mark.timeout(900)

SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"
ADMIN_KEY = "test-admin-api-key-0123"
BOT_TOKEN = "424242:test-bot-token-abc"
DB_URL = "postgresql://quintet:db-url-password@db.example.org:5432/quintet"
REDIS_URL = "redis://:redis-url-password@redis.example.org:6379/0"

GOOD_CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "production": {"values_file": "helm/quintet/ci/production-values.yaml"},
    "gateway": {"values_file": "helm/quintet/ci/gateway-values.yaml"},
    "kind": {"values_file": "k8s/kind-values.yaml"},
    "three_replicas": {"values": {"api": {"replicaCount": 3}}},
    "autoscaling": {
        "values": {"api": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 5}}}
    },
    "every_secret_inline": {
        "values": {
            "secrets": {"secretKey": SECRET_KEY, "adminApiKey": ADMIN_KEY},
            "telegram": {"botToken": BOT_TOKEN},
            "postgres": {"enabled": False, "auth": {"password": "pg-password-xyz"}},
            "externalDatabase": {"url": DB_URL},
            "redis": {"enabled": False},
            "externalRedis": {"url": REDIS_URL},
        }
    },
    "bundled_passwords": {
        "values": {
            "postgres": {"auth": {"password": "bundled-pg-password"}},
            "redis": {"auth": {"password": "bundled-redis-password"}},
        }
    },
    "postgres_chart": {"chart": "helm/postgres"},
    "redis_chart": {"chart": "helm/redis"},
}

# Values the schema (or a template guard) must refuse, and a word the refusal must name.
BAD_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "zero_replicas": ({"api": {"replicaCount": 0}}, "replicaCount"),
    "root_allowed": ({"securityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
    "privilege_escalation": (
        {"securityContext": {"allowPrivilegeEscalation": True}},
        "allowPrivilegeEscalation",
    ),
    "unknown_pull_policy": ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    "unknown_top_level_key": ({"replicas": 3}, "replicas"),
    "short_secret_key": ({"secrets": {"secretKey": "short"}}, "secretKey"),
    "password_not_url_safe": ({"postgres": {"auth": {"password": "p@ss/word"}}}, "password"),
    "secret_in_extra_env": ({"config": {"extraEnv": {"SECRET_KEY": "oops"}}}, "SECRET_KEY"),
    "bad_body_size": ({"ingress": {"maxBodySize": "lots"}}, "maxBodySize"),
    "bad_log_level": ({"config": {"logLevel": "LOUD"}}, "logLevel"),
    "no_database_at_all": ({"postgres": {"enabled": False}}, "externalDatabase"),
    "inline_secret_with_existing_secret": (
        {"existingSecret": "mine", "secrets": {"secretKey": SECRET_KEY}},
        "existingSecret",
    ),
    "bad_subchart_value": ({"redis": {"persistence": {"size": "huge"}}}, "size"),
}


def ensure_tools() -> None:
    if TOOLS_PYTHON.exists():
        return
    setup = subprocess.run(
        ["bash", str(ROOT / ".ci" / "helm.sh"), "setup"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if setup.returncode != 0:
        message = f"the chart tools venv could not be made:\n{setup.stdout}\n{setup.stderr}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def chart_tool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOOLS_PYTHON), str(CHART_TOOL), *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="session")
def renders() -> dict[str, dict[str, Any]]:
    ensure_tools()
    deps = chart_tool("deps")
    assert deps.returncode == 0, deps.stderr
    cases = [{"name": name, **case} for name, case in GOOD_CASES.items()]
    cases += [{"name": name, "values": values} for name, (values, _) in BAD_CASES.items()]
    batch = chart_tool("batch", stdin=json.dumps(cases))
    assert batch.returncode == 0, batch.stderr
    return {
        case["name"]: result for case, result in zip(cases, json.loads(batch.stdout), strict=True)
    }


def manifests(renders: dict[str, dict[str, Any]], case: str) -> list[dict[str, Any]]:
    result = renders[case]
    assert result["ok"], result.get("error")
    return list(result["manifests"])


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, got {[d['metadata'] for d in found]}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Pod":
            specs.append((name, doc["spec"]))
        elif doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            specs.append((name, doc["spec"]["template"]["spec"]))
    return specs


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item for item in container.get("env") or []}


def test_default_install_runs_api_worker_and_migration_but_no_bot(renders: Any) -> None:
    docs = manifests(renders, "default")
    deployments = {d["metadata"]["name"] for d in find(docs, "Deployment")}
    assert deployments == {"quintet-api", "quintet-worker"}
    assert one(docs, "Deployment", "quintet-api")["spec"]["replicas"] == 1
    assert find(docs, "HorizontalPodAutoscaler") == []
    assert find(docs, "PodDisruptionBudget") == [], "a 1-replica PDB would block node drains"
    assert {d["metadata"]["name"] for d in find(docs, "StatefulSet")} == {
        "quintet-postgres",
        "quintet-redis",
    }
    commands = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["args"][0]
        for d in [*find(docs, "Deployment"), *find(docs, "Job")]
    }
    assert commands == {
        "quintet-api": "api",
        "quintet-worker": "worker",
        "quintet-migrate": "migrate",
    }


def test_replica_count_sets_replicas_and_turns_on_the_pdb_and_cookie_affinity(
    renders: Any,
) -> None:
    docs = manifests(renders, "three_replicas")
    assert one(docs, "Deployment", "quintet-api")["spec"]["replicas"] == 3
    assert find(docs, "HorizontalPodAutoscaler") == []
    assert one(docs, "PodDisruptionBudget", "quintet-api")["spec"]["minAvailable"] == 1
    annotations = one(docs, "Ingress", "quintet")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    single = one(manifests(renders, "default"), "Ingress", "quintet")["metadata"]["annotations"]
    assert "nginx.ingress.kubernetes.io/affinity" not in single


def test_autoscaling_hands_the_replica_count_to_the_hpa(renders: Any) -> None:
    docs = manifests(renders, "autoscaling")
    assert "replicas" not in one(docs, "Deployment", "quintet-api")["spec"]
    hpa = one(docs, "HorizontalPodAutoscaler", "quintet-api")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "quintet-api",
    }
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert find(docs, "PodDisruptionBudget", "quintet-api")
    ingress = one(docs, "Ingress", "quintet")["metadata"]["annotations"]
    assert ingress["nginx.ingress.kubernetes.io/affinity"] == "cookie"


def test_api_probes_use_the_health_routes(renders: Any) -> None:
    for case in ("default", "production"):
        api = one(manifests(renders, case), "Deployment", "quintet-api")
        container = api["spec"]["template"]["spec"]["containers"][0]
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["ports"][0]["containerPort"] == 8000


def test_database_and_redis_are_statefulsets_with_volumes_and_probes(renders: Any) -> None:
    docs = manifests(renders, "default")
    for name, mount in (
        ("quintet-postgres", "/var/lib/postgresql/data"),
        ("quintet-redis", "/data"),
    ):
        statefulset = one(docs, "StatefulSet", name)["spec"]
        claim = statefulset["volumeClaimTemplates"][0]
        assert claim["metadata"]["name"] == "data"
        assert claim["spec"]["resources"]["requests"]["storage"]
        container = statefulset["template"]["spec"]["containers"][0]
        assert container["image"].startswith("docker.io/library/")
        assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(container)
        assert {"name": "data", "mountPath": mount} in container["volumeMounts"]
        assert one(docs, "Service", name)["spec"]["ports"][0]["port"] in (5432, 6379)
        assert one(docs, "Secret", name)["data"]["password"]


@pytest.mark.parametrize("case", ["default", "production", "gateway", "kind", "postgres_chart"])
def test_no_container_can_run_as_root_or_write_outside_its_volumes(renders: Any, case: str) -> None:
    specs = pod_specs(manifests(renders, case))
    assert specs
    for name, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod.get("runAsUser", 1) != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, name
            assert security.get("runAsUser", 1) != 0, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert security["seccompProfile"]["type"] == "RuntimeDefault", name
            assert container["resources"]["limits"]["memory"], name
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts or "/data" in mounts, f"{name} has no writable directory"


@pytest.mark.parametrize("case", ["every_secret_inline", "bundled_passwords"])
def test_secret_values_appear_only_in_secrets(renders: Any, case: str) -> None:
    secrets = [
        SECRET_KEY,
        ADMIN_KEY,
        BOT_TOKEN,
        DB_URL,
        REDIS_URL,
        "db-url-password",
        "redis-url-password",
        "bundled-pg-password",
        "bundled-redis-password",
    ]
    docs = manifests(renders, case)
    for doc in docs:
        if doc["kind"] == "Secret":
            continue
        text = json.dumps(doc)
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{doc['kind']}/{doc['metadata']['name']} holds {leaked}"
    config = one(docs, "ConfigMap", "quintet")["data"]
    for key in ("SECRET_KEY", "ADMIN_API_KEY", "DATABASE_URL", "REDIS_URL", "TELEGRAM_BOT_TOKEN"):
        assert key not in config
    if case == "every_secret_inline":
        stored = one(docs, "Secret", "quintet")["data"]
        assert set(stored) >= {
            "SECRET_KEY",
            "ADMIN_API_KEY",
            "TELEGRAM_BOT_TOKEN",
            "DATABASE_URL",
            "REDIS_URL",
        }


def test_bundled_database_url_is_built_from_the_postgres_secret(renders: Any) -> None:
    api = one(manifests(renders, "default"), "Deployment", "quintet-api")
    env = env_of(api["spec"]["template"]["spec"]["containers"][0])
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "quintet-postgres",
        "key": "password",
    }
    assert env["DATABASE_URL"]["value"] == (
        "postgresql+asyncpg://quintet:$(POSTGRES_PASSWORD)@quintet-postgres:5432/quintet"
    )
    assert env["REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@quintet-redis:6379/0"
    names = list(env)
    assert names.index("POSTGRES_PASSWORD") < names.index("DATABASE_URL"), "$(VAR) needs order"


def test_bot_runs_only_when_a_token_is_configured(renders: Any) -> None:
    assert find(manifests(renders, "default"), "Deployment", "quintet-bot") == []
    inline = one(manifests(renders, "gateway"), "Deployment", "quintet-bot")
    assert inline["spec"]["replicas"] == 1
    assert inline["spec"]["strategy"]["type"] == "Recreate"
    from_secret = one(manifests(renders, "production"), "Deployment", "quintet-bot")
    env = env_of(from_secret["spec"]["template"]["spec"]["containers"][0])
    assert env["TELEGRAM_BOT_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "quintet-telegram"


def test_migration_job_is_a_hook_that_runs_before_upgrades(renders: Any) -> None:
    bundled = one(manifests(renders, "default"), "Job", "quintet-migrate")
    # The bundled PostgreSQL is created by the release, so the first migration follows install.
    assert bundled["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    external = one(manifests(renders, "production"), "Job", "quintet-migrate")
    assert external["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    spec = external["spec"]["template"]["spec"]
    # Before install the chart's ServiceAccount and ConfigMap do not exist yet.
    assert "serviceAccountName" not in spec
    assert [ref for ref in spec["containers"][0]["envFrom"] if "configMapRef" in ref] == []
    assert spec["restartPolicy"] == "Never"
    assert "topologySpreadConstraints" not in spec, "the api's spread rules are not the Job's"
    assert external["spec"]["backoffLimit"] >= 1


def test_ingress_routes_the_app_docs_and_socketio_with_websocket_timeouts(renders: Any) -> None:
    ingress = one(manifests(renders, "default"), "Ingress", "quintet")
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "25m"
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "quintet.localtest.me"
    paths = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    assert paths == {"/socket.io/": "quintet-api", "/docs/": "quintet-api", "/": "quintet-api"}


def test_http_route_replaces_the_ingress_behind_a_value(renders: Any) -> None:
    assert find(manifests(renders, "default"), "HTTPRoute") == []
    docs = manifests(renders, "gateway")
    assert find(docs, "Ingress") == []
    route = one(docs, "HTTPRoute", "quintet")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"][0]["name"] == "public-gateway"
    socketio, rest = route["spec"]["rules"]
    assert socketio["matches"][0]["path"] == {"type": "PathPrefix", "value": "/socket.io/"}
    assert socketio["timeouts"]["request"] == "0s"
    assert rest["backendRefs"] == [{"name": "quintet-api", "port": 80}]


def test_network_policies_admit_the_api_only_from_the_ingress_namespace(renders: Any) -> None:
    docs = manifests(renders, "default")
    api = one(docs, "NetworkPolicy", "quintet-api")["spec"]
    sources = api["ingress"][0]["from"]
    assert sources[0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    everything = one(docs, "NetworkPolicy", "quintet")["spec"]
    assert everything["ingress"] == []
    assert set(everything["policyTypes"]) == {"Ingress", "Egress"}
    database = one(docs, "NetworkPolicy", "quintet-postgres")["spec"]
    assert database["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/instance": "quintet"
    }


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_values_are_refused(renders: Any, case: str) -> None:
    result = renders[case]
    assert not result["ok"], f"{case} rendered although it should be refused"
    assert BAD_CASES[case][1] in result["error"]


def test_a_missing_subchart_fails_the_check_instead_of_vanishing(tmp_path: Path) -> None:
    ensure_tools()
    copy = tmp_path / "helm"
    shutil.copytree(ROOT / "helm", copy, ignore=shutil.ignore_patterns("charts"))
    missing = chart_tool("deps", "--check-only", "--chart", str(copy / "quintet"))
    assert missing.returncode == 1
    assert "postgres" in missing.stderr
    assert "missing" in missing.stderr
    render = chart_tool("render", "--chart", str(copy / "quintet"))
    assert render.returncode == 1
    built = chart_tool("deps", "--chart", str(copy / "quintet"))
    assert built.returncode == 0, built.stderr
    assert sorted(p.name for p in (copy / "quintet" / "charts").iterdir()) == [
        "postgres-0.1.0.tgz",
        "redis-0.1.0.tgz",
    ]
