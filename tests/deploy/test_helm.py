"""The Helm charts as Kubernetes would receive them: rendered offline with Helm's own Go SDK
(helm-python-sdk in the tools venv that .ci/helm.sh creates), then read as manifests.

All renders happen in one subprocess per session; each test reads what it needs.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.support import IN_CI

ROOT = Path(__file__).resolve().parents[2]
TOOLS_PYTHON = ROOT / ".ci" / ".venv-helm" / "bin" / "python"
CHART_TOOL = ROOT / ".ci" / "helm_charts.py"


def _load_chart_checks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chart_checks", ROOT / ".ci" / "chart_checks.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["chart_checks"] = module
    spec.loader.exec_module(module)
    return module


chart_checks = _load_chart_checks()
SCENARIOS = [*chart_checks.SCENARIOS, "skaffold"]
PG_CIDR = "10.244.0.0/16"

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
    "default_upgrade": {"upgrade": True},
    "postgres_chart": {"chart": "helm/postgres"},
    "redis_chart": {"chart": "helm/redis"},
    "container_port_9000": {"values": {"api": {"containerPort": 9000}}},
    "secret_key_a": {"values": {"secrets": {"secretKey": SECRET_KEY, "adminApiKey": ADMIN_KEY}}},
    "secret_key_b": {
        "values": {"secrets": {"secretKey": SECRET_KEY + "-rotated", "adminApiKey": ADMIN_KEY}}
    },
    "redis_limit_1gi": {"values": {"redis": {"resources": {"limits": {"memory": "1Gi"}}}}},
    "redis_explicit_maxmemory": {"values": {"redis": {"maxmemory": "300mb"}}},
    "pull_secrets_global": {"values": {"global": {"imagePullSecrets": [{"name": "corp-pull"}]}}},
    "pull_secrets_postgres_chart": {
        "chart": "helm/postgres",
        "values": {"imagePullSecrets": [{"name": "corp-pull"}]},
    },
    "conventions": {
        "values": {
            "podLabels": {"team": "games"},
            "priorityClassName": "quintet-high",
            "extraEnv": [{"name": "TRIVIA_MAX_QUESTIONS", "value": "50"}],
            "extraEnvFrom": [{"configMapRef": {"name": "more-settings"}}],
            "extraVolumes": [{"name": "ca", "configMap": {"name": "corporate-ca"}}],
            "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corporate"}],
            "bot": {"enabled": True},
            "telegram": {"botToken": BOT_TOKEN},
        }
    },
    # The probe mutations the behavioural checks must catch (see MUTATIONS below).
    "probe_healthz": {
        "values": {"api": {"livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}}}}
    },
    "probe_port_typo": {
        "values": {"api": {"readinessProbe": {"httpGet": {"path": "/health/ready", "port": "htp"}}}}
    },
    "ingress_namespace_typo": {
        "values": {
            "networkPolicy": {
                "ingressNamespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "ingres-nginx"}
                }
            }
        }
    },
    "prometheus_port_pinned": {
        "values": {"api": {"containerPort": 9000, "podAnnotations": {"prometheus.io/port": "8000"}}}
    },
    "allowed_hosts_elsewhere": {"values": {"config": {"allowedHosts": ["quintet.example.org"]}}},
    "metrics_path_typo": {"values": {"api": {"podAnnotations": {"prometheus.io/path": "/metrix"}}}},
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
    # skaffold's old `image.tag: tag@digest`: the digest has its own value.
    "digest_in_tag": ({"image": {"tag": "1a2b3c4@sha256:" + "0" * 64}}, "tag"),
    "trust_every_proxy": ({"config": {"trustedProxies": ["*"]}}, "trustedProxies"),
    "cookie_secure_not_a_bool": ({"config": {"cookieSecure": "yes"}}, "cookieSecure"),
    "invalid_pod_label": ({"podLabels": {"team": "a@b"}}, "podLabels"),
    "secret_in_extra_env_list": (
        {"extraEnv": [{"name": "SECRET_KEY", "value": "0123456789abcdef0123456789abcdef"}]},
        "SECRET_KEY",
    ),
    "postgres_data_outside_its_volume": ({"postgres": {"dataDir": "/data"}}, "dataDir"),
    "production_without_a_host": (
        {"ingress": {"enabled": False}},
        "production needs config.publicBaseUrl or config.allowedHosts",
    ),
    "allowed_host_with_a_scheme": (
        {"config": {"allowedHosts": ["https://quintet.example.org"]}},
        "allowedHosts",
    ),
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
    cases += [{"name": f"scenario:{name}", "scenario": name} for name in SCENARIOS]
    separate = copy.deepcopy(chart_checks.SCENARIOS["separate_releases"])
    for release in separate[:2]:
        release.pop("values")  # the 0.1.0 policies: only the database's own release admitted
    cases += [{"name": "separate_releases_not_admitted", "scenario_releases": separate}]
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
        "quintet-migrate-install": "migrate",
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
        ("quintet-postgres", "/var/lib/postgresql"),
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
    # The bundled PostgreSQL is created by the release, so on install the migration is an
    # ordinary Job of the release: a post-install hook would never run under `helm install
    # --wait`, which waits for api pods that are not ready before the schema is migrated.
    installed = manifests(renders, "default")
    assert find(installed, "Job", "quintet-migrate") == []
    plain = one(installed, "Job", "quintet-migrate-install")
    assert "helm.sh/hook" not in (plain["metadata"].get("annotations") or {})
    assert plain["spec"]["template"]["spec"]["serviceAccountName"] == "quintet"
    upgraded = manifests(renders, "default_upgrade")
    assert find(upgraded, "Job", "quintet-migrate-install") == []
    hook = one(upgraded, "Job", "quintet-migrate")
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
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
        "postgres-0.2.0.tgz",
        "redis-0.2.0.tgz",
    ]


def api_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec = one(docs, "Deployment", "quintet-api")["spec"]["template"]["spec"]
    return dict(spec["containers"][0])


def config_map(docs: list[dict[str, Any]]) -> dict[str, str]:
    return dict(one(docs, "ConfigMap", "quintet")["data"])


@pytest.fixture(scope="session")
def app_routes() -> dict[str, list[str]]:
    """The app's routes from its own router (app.asgi.create_app)."""
    routes: dict[str, list[str]] = chart_checks.routes_of_the_app()
    assert "/health/ready" in routes
    return routes


# --- item 1: cookies and proxies on kind, secrets made at install time -------------------------


def test_kind_values_hold_no_secret_and_name_the_one_made_at_install(renders: Any) -> None:
    values = yaml.safe_load((ROOT / "k8s" / "kind-values.yaml").read_text())
    assert "secrets" not in values
    for sub in ("postgres", "redis"):
        assert "password" not in (values.get(sub, {}).get("auth") or {}), sub
    assert values["existingSecret"] == "quintet-kind"
    docs = manifests(renders, "kind")
    assert find(docs, "Secret", "quintet") == [], "the chart must not render the app's Secret"
    for deployment in find(docs, "Deployment"):
        refs = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert {"secretRef": {"name": "quintet-kind"}} in refs
    # The workflow and skaffold's kind profile both create exactly that Secret, randomly.
    script = (ROOT / "k8s" / "kind-secret.sh").read_text()
    assert "openssl rand" in script
    assert "SECRET_KEY" in script
    assert "ADMIN_API_KEY" in script
    workflow = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "sh k8s/kind-secret.sh quintet quintet-kind" in workflow
    assert "kind-only" not in workflow
    skaffold = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    kind = next(p for p in skaffold["profiles"] if p["name"] == "kind")
    # kind loads images by name:tag: no digest there.
    assert {
        "op": "remove",
        "path": "/deploy/helm/releases/0/setValueTemplates/image.digest",
    } in kind["patches"]
    hooks = [patch for patch in kind["patches"] if patch["path"] == "/deploy/helm/hooks"]
    assert hooks[0]["value"]["before"][0]["host"]["command"] == [
        "sh",
        "k8s/kind-secret.sh",
        "quintet",
        "quintet-kind",
    ]


def test_kind_cookies_are_not_secure_and_only_the_ingress_pods_are_trusted(renders: Any) -> None:
    config = config_map(manifests(renders, "kind"))
    assert config["COOKIE_SECURE"] == "false"
    assert config["PUBLIC_BASE_URL"] == "http://quintet.localtest.me"
    assert config["TRUSTED_PROXIES"] == PG_CIDR
    assert "FORWARDED_ALLOW_IPS" not in config, "nothing reads it: uvicorn runs --no-proxy-headers"
    # The trusted range is the pod network kind hands out (the controller's pod addresses).
    cluster = yaml.safe_load((ROOT / "k8s" / "kind-config.yaml").read_text())
    assert cluster["networking"]["podSubnet"] == PG_CIDR


def test_by_default_no_proxy_is_trusted_and_the_app_chooses_secure_cookies(renders: Any) -> None:
    config = config_map(manifests(renders, "default"))
    assert "COOKIE_SECURE" not in config, "unset: the app follows PUBLIC_BASE_URL's scheme"
    assert config["TRUSTED_PROXIES"] == ""
    assert "FORWARDED_ALLOW_IPS" not in config, "nothing reads it: uvicorn runs --no-proxy-headers"


def test_ingress_nginx_does_not_pass_on_a_client_x_forwarded_for() -> None:
    values = yaml.safe_load((ROOT / "k8s" / "ingress-nginx-values.yaml").read_text())
    assert values["controller"]["config"]["use-forwarded-headers"] == "false"
    assert values["controller"]["config"]["compute-full-forwarded-for"] == "false"


# --- item 2: skaffold's tag@digest ------------------------------------------------------------


def test_skaffold_passes_tag_and_digest_apart_and_the_labels_stay_valid(
    renders: Any, app_routes: dict[str, list[str]]
) -> None:
    skaffold = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    templates = skaffold["deploy"]["helm"]["releases"][0]["setValueTemplates"]
    assert templates["image.tag"] == "{{.IMAGE_TAG_quintet}}"
    assert templates["image.digest"] == "{{.IMAGE_DIGEST_quintet}}"
    docs = manifests(renders, "scenario:skaffold")
    digest = "sha256:" + "0123456789abcdef" * 4
    assert api_container(docs)["image"] == f"ghcr.io/quintet/quintet:1a2b3c4-dirty@{digest}"
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/version"] in ("0.1.0", "18.6", "8.10")
    assert chart_checks.check(docs, app_routes) == []


# --- item 3: the published image ------------------------------------------------------------


def test_the_workflow_pushes_only_the_tested_image_after_the_kind_job() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["push"]["tags"] == ["v*"]
    jobs = workflow["jobs"]
    for name, job in jobs.items():
        if name != "publish":
            text = json.dumps(job)
            assert '"push": true' not in text, name
            assert "docker push" not in text, name
    publish = jobs["publish"]
    assert set(publish["needs"]) == {"image", "kind"}
    steps = json.dumps(publish["steps"])
    assert "docker load" in steps
    assert "docker push" in steps
    assert "build-push-action" not in steps, "a rebuild would push an image nobody tested"
    assert "appVersion" in steps, "a version tag must match the chart's appVersion"


# --- item 4 and 5: restarts on secret changes, PORT follows containerPort ----------------------


def test_a_changed_secret_rolls_the_pods(renders: Any) -> None:
    def checksums(case: str) -> dict[str, str]:
        docs = manifests(renders, case)
        return {
            name: one(docs, "Deployment", name)["spec"]["template"]["metadata"]["annotations"][
                "checksum/secret"
            ]
            for name in ("quintet-api", "quintet-worker")
        }

    before, after = checksums("secret_key_a"), checksums("secret_key_b")
    assert before["quintet-api"] == before["quintet-worker"]
    assert before["quintet-api"] != after["quintet-api"]


def test_container_port_moves_uvicorn_probes_service_policy_and_scrape_port(
    renders: Any, app_routes: dict[str, list[str]]
) -> None:
    docs = manifests(renders, "container_port_9000")
    container = api_container(docs)
    assert env_of(container)["PORT"]["value"] == "9000"
    assert container["ports"][0]["containerPort"] == 9000
    annotations = one(docs, "Deployment", "quintet-api")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert annotations["prometheus.io/port"] == "9000"
    assert chart_checks.check(docs, app_routes) == []


# --- item 6 and the behavioural checks: every scenario runs as a cluster would run it ----------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendered_scenarios_pass_the_behavioural_checks(
    renders: Any, app_routes: dict[str, list[str]], scenario: str
) -> None:
    assert chart_checks.check(manifests(renders, f"scenario:{scenario}"), app_routes) == []


def _drop_port_env(docs: list[dict[str, Any]]) -> None:
    container = api_container(docs)
    container["env"] = [e for e in container["env"] if e["name"] != "PORT"]
    spec = one(docs, "Deployment", "quintet-api")["spec"]["template"]["spec"]
    spec["containers"][0] = container


def _skaffold_style_label(docs: list[dict[str, Any]]) -> None:
    reference = "1a2b3c4-dirty@sha256:" + "0123456789abcdef" * 4
    one(docs, "Service", "quintet-api")["metadata"]["labels"]["app.kubernetes.io/version"] = (
        reference
    )


def _numeric_annotation(docs: list[dict[str, Any]]) -> None:
    template = one(docs, "Deployment", "quintet-api")["spec"]["template"]
    template["metadata"]["annotations"]["prometheus.io/port"] = 8000


def _service_target_port(docs: list[dict[str, Any]]) -> None:
    one(docs, "Service", "quintet-api")["spec"]["ports"][0]["targetPort"] = 9000


def _service_selector_typo(docs: list[dict[str, Any]]) -> None:
    one(docs, "Service", "quintet-postgres")["spec"]["selector"]["app.kubernetes.io/name"] = "pg"


def _redis_policy_port(docs: list[dict[str, Any]]) -> None:
    policy = one(docs, "NetworkPolicy", "quintet-redis")["spec"]
    policy["ingress"][0]["ports"] = [{"port": 6380, "protocol": "TCP"}]


def _helm_test_path(docs: list[dict[str, Any]]) -> None:
    container = one(docs, "Pod", "quintet-test-http")["spec"]["containers"][0]
    container["command"] = [
        c.replace("/health/ready", "/health/readyz") for c in container["command"]
    ]


Mutation = tuple[str, Callable[[list[dict[str, Any]]], None] | None, str]
MUTATIONS: dict[str, Mutation] = {
    "probe path /healthz": ("probe_healthz", None, "livenessProbe path '/healthz' is not a GET"),
    "probe port name typo": ("probe_port_typo", None, "readinessProbe port 'htp' is no port"),
    "containerPort 9000 without PORT (0.1.0)": (
        "container_port_9000",
        _drop_port_env,
        "declares containerPort 9000 (http) but the process listens on 8000",
    ),
    "probe on 9000 while uvicorn listens on 8000": (
        "container_port_9000",
        _drop_port_env,
        "readinessProbe probes port 'http' (9000) but the process listens on 8000",
    ),
    "pinned prometheus.io/port": (
        "prometheus_port_pinned",
        None,
        "prometheus.io/port 8000 is not the port the api listens on",
    ),
    "metrics path typo": ("metrics_path_typo", None, "prometheus.io/path '/metrix' is not"),
    "namespace typo in the api policy": (
        "ingress_namespace_typo",
        None,
        "namespaceSelector {'matchLabels': {'kubernetes.io/metadata.name': 'ingres-nginx'}} "
        "matches no namespace",
    ),
    "ingress controller cut off": (
        "ingress_namespace_typo",
        None,
        "no ingress rule of quintet, quintet-api admits ingress-nginx controller",
    ),
    "separate database release admits only itself (0.1.0)": (
        "separate_releases_not_admitted",
        None,
        "Deployment/quintet-api -> db-postgres:5432 (DATABASE_URL): refused",
    ),
    "separate redis release admits only itself (0.1.0)": (
        "separate_releases_not_admitted",
        None,
        "Deployment/quintet-worker -> cache-redis:6379 (REDIS_URL): refused",
    ),
    "tag@digest in a label (skaffold on 0.1.0)": (
        "default",
        _skaffold_style_label,
        "label app.kubernetes.io/version='1a2b3c4-dirty@sha256",
    ),
    "annotation that is not a string": (
        "default",
        _numeric_annotation,
        "annotation prometheus.io/port has a non-string value 8000",
    ),
    "Service targetPort nothing listens on": (
        "default",
        _service_target_port,
        "Service/quintet-api: targetPort 9000 (9000) of Deployment/quintet-api is not where",
    ),
    "helm test requests a path the app does not serve": (
        "default",
        _helm_test_path,
        "Pod/quintet-test-http container http: requests '/health/readyz'",
    ),
    "ALLOWED_HOSTS without the Ingress host": (
        "allowed_hosts_elsewhere",
        None,
        "(Ingress /): the app refuses the Host 'quintet.localtest.me'",
    ),
    "ALLOWED_HOSTS without the Service name the helm test calls": (
        "allowed_hosts_elsewhere",
        None,
        "(http check): the app refuses the Host 'quintet-api'",
    ),
    "Service selector typo": (
        "default",
        _service_selector_typo,
        "Service/quintet-postgres: its selector",
    ),
    "NetworkPolicy port nothing listens on": (
        "default",
        _redis_policy_port,
        "NetworkPolicy/quintet-redis: ingress port 6380 is not where StatefulSet/quintet-redis",
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_behavioural_check_fails_on_its_mutation(
    renders: Any, app_routes: dict[str, list[str]], mutation: str
) -> None:
    case, edit, expected = MUTATIONS[mutation]
    docs = copy.deepcopy(manifests(renders, case))
    if edit is not None:
        edit(docs)
    problems = chart_checks.check(docs, app_routes)
    assert any(expected in problem for problem in problems), problems


def test_the_check_command_runs_every_scenario(
    app_routes: dict[str, list[str]], tmp_path: Path
) -> None:
    ensure_tools()
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps(app_routes))
    result = chart_tool("check", "--routes", str(routes))
    assert result.returncode == 0, result.stderr
    for scenario in SCENARIOS:
        assert f"{scenario}: " in result.stdout
        assert re.search(rf"^{scenario}: \d+ manifests, 0 problems$", result.stdout, re.M)


# --- item 8: Redis memory, PostgreSQL 18, pull secrets, versions as in compose -----------------


def _redis_command(docs: list[dict[str, Any]]) -> str:
    container = one(docs, "StatefulSet", "quintet-redis")["spec"]["template"]["spec"]["containers"]
    return " ".join(container[0]["command"])


def test_redis_refuses_writes_below_its_memory_limit_instead_of_being_killed(
    renders: Any,
) -> None:
    assert "--maxmemory 429496729 --maxmemory-policy noeviction" in _redis_command(
        manifests(renders, "default")
    ), "80 % of the 512Mi limit"
    assert "--maxmemory 858993459 " in _redis_command(manifests(renders, "redis_limit_1gi"))
    assert "--maxmemory 300mb " in _redis_command(manifests(renders, "redis_explicit_maxmemory"))


def test_postgres_18_keeps_its_data_on_the_volume_and_has_shared_memory(renders: Any) -> None:
    spec = one(manifests(renders, "default"), "StatefulSet", "quintet-postgres")["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    pgdata = env_of(container)["PGDATA"]["value"]
    data_mount = next(m for m in container["volumeMounts"] if m["name"] == "data")
    assert pgdata == "/var/lib/postgresql/18/docker"
    assert pgdata.startswith(data_mount["mountPath"] + "/"), "PGDATA must be on the volume"
    assert data_mount["mountPath"] == "/var/lib/postgresql", "the 18 images' VOLUME"
    assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "256Mi"}


def test_chart_images_are_the_versions_compose_runs(renders: Any) -> None:
    compose = (ROOT / "docker" / "compose.yaml").read_text()
    docs = manifests(renders, "default")
    for name, image in (("quintet-postgres", "postgres"), ("quintet-redis", "redis")):
        tag = re.search(rf"\b{image}:([\w.-]+)\}}", compose)
        assert tag, f"no {image} image in docker/compose.yaml"
        container = one(docs, "StatefulSet", name)["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == f"docker.io/library/{image}:{tag[1]}"


def test_image_pull_secrets_reach_every_pod_of_every_chart(renders: Any) -> None:
    specs = pod_specs(manifests(renders, "pull_secrets_global"))
    assert len(specs) >= 6
    for name, spec in specs:
        assert {"name": "corp-pull"} in spec.get("imagePullSecrets", []), name
    for name, spec in pod_specs(manifests(renders, "pull_secrets_postgres_chart")):
        assert spec["imagePullSecrets"] == [{"name": "corp-pull"}], name


# --- chart conventions ----------------------------------------------------------------------


def test_extra_env_volumes_labels_and_priority_reach_every_app_pod(renders: Any) -> None:
    docs = manifests(renders, "conventions")
    app_pods = [
        (name, spec)
        for name, spec in pod_specs(docs)
        if name.split("/")[1]
        in ("quintet-api", "quintet-worker", "quintet-bot", "quintet-migrate-install")
    ]
    assert len(app_pods) == 4
    templates = {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    }
    for name, spec in app_pods:
        assert templates[name]["metadata"]["labels"]["team"] == "games", name
        assert spec["priorityClassName"] == "quintet-high", name
        assert {"name": "ca", "configMap": {"name": "corporate-ca"}} in spec["volumes"], name
        container = spec["containers"][0]
        assert env_of(container)["TRIVIA_MAX_QUESTIONS"]["value"] == "50", name
        assert {"configMapRef": {"name": "more-settings"}} in container["envFrom"], name
        assert {"name": "ca", "mountPath": "/etc/ssl/corporate"} in container["volumeMounts"]


def test_service_monitor_is_optional_and_scrapes_the_api(renders: Any) -> None:
    assert find(manifests(renders, "default"), "ServiceMonitor") == []
    docs = manifests(renders, "gateway")
    monitor = one(docs, "ServiceMonitor", "quintet-api")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    service = one(docs, "Service", "quintet-api")
    assert chart_checks.selector_matches(monitor["spec"]["selector"], service["metadata"]["labels"])


def test_chart_readmes_are_generated_from_the_values_comments(tmp_path: Path) -> None:
    ensure_tools()
    tool = ROOT / ".ci" / "chart_docs.py"
    ok = subprocess.run(
        [str(TOOLS_PYTHON), str(tool), "--check"], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    readme = (ROOT / "helm" / "redis" / "README.md").read_text()
    assert '| maxmemoryPolicy | string | `"noeviction"` | Evict nothing:' in readme
    # A description changed in values.yaml but not regenerated: the check fails.
    (tmp_path / ".ci").mkdir()
    shutil.copy(tool, tmp_path / ".ci" / "chart_docs.py")
    shutil.copytree(ROOT / "helm", tmp_path / "helm", ignore=shutil.ignore_patterns("charts"))
    values = tmp_path / "helm" / "redis" / "values.yaml"
    values.write_text(values.read_text().replace("# -- Evict nothing:", "# -- Evict all:"))
    stale = subprocess.run(
        [str(TOOLS_PYTHON), str(tmp_path / ".ci" / "chart_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert stale.returncode == 1
    assert "helm/redis/README.md" in stale.stderr


def test_postgres_password_secret_is_kept_by_lookup_not_rerandomised() -> None:
    # `helm template | kubectl apply` cannot look the cluster up: the docs say to install
    # with helm (lookup keeps the password) or to pass existingSecret.
    template = (ROOT / "helm" / "postgres" / "templates" / "secret.yaml").read_text()
    assert 'lookup "v1" "Secret"' in template
    docs = (ROOT / "docs" / "kubernetes.md").read_text()
    assert "re-randomises" in docs or "new random password" in docs


def test_secret_data_decodes(renders: Any) -> None:
    stored = one(manifests(renders, "every_secret_inline"), "Secret", "quintet")["data"]
    assert base64.b64decode(stored["SECRET_KEY"]).decode() == SECRET_KEY


def test_allowed_hosts_name_every_host_clients_use(renders: Any) -> None:
    hosts = config_map(manifests(renders, "default"))["ALLOWED_HOSTS"].split(",")
    # The Ingress host, the Service names (helm test: http://quintet-api:80) and port-forward.
    assert hosts[0] == "quintet.localtest.me"
    assert {"quintet-api", "quintet-api.quintet.svc.cluster.local", "localhost"} <= set(hosts)
    gateway = config_map(manifests(renders, "gateway"))["ALLOWED_HOSTS"].split(",")
    assert gateway[0] == "quintet.example.org"
    explicit = config_map(manifests(renders, "allowed_hosts_elsewhere"))["ALLOWED_HOSTS"]
    assert explicit == "quintet.example.org"
