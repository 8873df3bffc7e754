""".ci/containers_check.py passes on the repository and fails, naming the problem, on a copy
with each mistake it is there to catch (a missing or ignored COPY source, an nginx upstream
that is no compose service or the wrong port, a health check path the app does not serve)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "containers_check", REPO / ".ci/containers_check.py"
    )
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


checker = load_checker()


@pytest.fixture(scope="module")
def routes() -> set[str]:
    served: set[str] = checker.app_routes()
    return served


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The files the checks read (and the COPY sources), as in the repository."""
    for name in (
        "docker/Dockerfile",
        ".dockerignore",
        "docker/nginx/templates/default.conf.template",
        "docker/healthcheck.py",
        "docker/entrypoint.sh",
        "docker/compose.yaml",
        "pyproject.toml",
        "uv.lock",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def problems(root: Path, routes: set[str]) -> list[str]:
    layout = checker.Layout(root=root)
    found: list[str] = checker.check(layout, checker.compose_from_yaml(layout), routes)
    return found


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new))


def edit_compose(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = root / "docker/compose.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config))


def test_the_repository_passes(copy: Path, routes: set[str]) -> None:
    assert problems(REPO, routes) == []
    assert problems(copy, routes) == []  # and so does the unchanged copy


def test_the_app_serves_the_readiness_path(routes: set[str]) -> None:
    assert "/health/ready" in routes
    assert "/healthz" not in routes


def test_a_misspelt_copy_source_fails(copy: Path, routes: set[str]) -> None:
    edit(copy / "docker/Dockerfile", "COPY docker/healthcheck.py", "COPY docker/health-check.py")
    assert problems(copy, routes) == [
        "Dockerfile: COPY source 'docker/health-check.py' does not exist"
    ]


def test_a_new_copy_source_that_does_not_exist_fails(copy: Path, routes: set[str]) -> None:
    edit(
        copy / "docker/Dockerfile",
        "COPY app ./app\n",
        "COPY app ./app\nCOPY docker/gunicorn.conf.py /etc/quintet/\n",
    )
    assert problems(copy, routes) == [
        "Dockerfile: COPY source 'docker/gunicorn.conf.py' does not exist"
    ]


def test_a_copy_source_left_out_by_dockerignore_fails(copy: Path, routes: set[str]) -> None:
    edit(copy / ".dockerignore", "!docker/entrypoint.sh\n", "")
    assert problems(copy, routes) == [
        "Dockerfile: COPY source 'docker/entrypoint.sh' is excluded from the build context "
        "by .dockerignore"
    ]


def test_a_copy_from_another_stage_is_not_a_context_source(copy: Path, routes: set[str]) -> None:
    edit(
        copy / "docker/Dockerfile",
        "COPY --from=builder /opt/venv /opt/venv",
        "COPY --from=builder --chown=0:0 /opt/venv /opt/venv",
    )
    assert problems(copy, routes) == []


def test_an_nginx_upstream_that_is_not_a_compose_service_fails(
    copy: Path, routes: set[str]
) -> None:
    def typo(config: dict[str, Any]) -> None:
        config["services"]["nginx"]["environment"]["API_UPSTREAM"] = "quintet-api:8000"

    edit_compose(copy, typo)
    [problem] = problems(copy, routes)
    assert "proxies to 'quintet-api', which is not a compose service" in problem


def test_an_nginx_upstream_at_the_wrong_port_fails(copy: Path, routes: set[str]) -> None:
    def wrong_port(config: dict[str, Any]) -> None:
        config["services"]["nginx"]["environment"]["API_UPSTREAM"] = "api:9000"

    edit_compose(copy, wrong_port)
    assert problems(copy, routes) == [
        "nginx: API_UPSTREAM proxies to api:9000, but api listens on 8000"
    ]


def test_an_upstream_on_a_network_nginx_cannot_reach_fails(copy: Path, routes: set[str]) -> None:
    def backend_only(config: dict[str, Any]) -> None:
        config["services"]["api"]["networks"] = ["backend"]

    edit_compose(copy, backend_only)
    assert problems(copy, routes) == [
        "nginx: API_UPSTREAM proxies to 'api', which shares no network with it"
    ]


def test_a_literal_upstream_server_in_the_template_is_checked(copy: Path, routes: set[str]) -> None:
    edit(
        copy / "docker/nginx/templates/default.conf.template",
        "server_tokens off;",
        "upstream extra {\n    server worker-api:8000;\n}\nserver_tokens off;",
    )
    [problem] = problems(copy, routes)
    assert "the template proxies to 'worker-api', which is not a compose service" in problem


def test_a_health_check_path_the_app_does_not_serve_fails(copy: Path, routes: set[str]) -> None:
    edit(copy / "docker/healthcheck.py", "/health/ready", "/healthz")
    assert problems(copy, routes) == [
        "docker/healthcheck.py: asks /healthz, which the app does not serve"
    ]


def test_the_nginx_health_check_must_ask_a_location_nginx_answers(
    copy: Path, routes: set[str]
) -> None:
    edit(copy / "docker/compose.yaml", "http://127.0.0.1/nginx-health", "http://127.0.0.1/health")
    assert problems(copy, routes) == [
        "compose nginx healthcheck asks /health, no such location in nginx"
    ]
