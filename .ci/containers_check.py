"""Behavioural checks of docker/ that hadolint and `compose config` cannot make, because
they need to know the project (run by .ci/containers.sh with the project's venv):

- every ``COPY`` source of docker/Dockerfile is in the build context: the file or folder
  exists and .dockerignore lets it in (a missing one fails only at ``docker build``);
- the names Nginx proxies to (``API_UPSTREAM`` and any literal ``server``/``proxy_pass``
  host in the template) are compose services on a network Nginx shares, at the port the
  service listens on;
- the path the image's health check asks (docker/healthcheck.py) is a route the app really
  serves, asked of the app's own router, and the compose Nginx health check asks a location
  the template answers.

    .venv/bin/python .ci/containers_check.py [--compose-json FILE]

FILE is ``docker compose config --format json`` (interpolated); without it
docker/compose.yaml is read as it is. Exit status 1 and one line per problem when any fails.
tests/deploy/test_containers_check.py proves that each check fails on a broken copy.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Layout:
    """Where the checked files are; a test points it at a mutated copy."""

    root: Path = REPO
    dockerfile: str = "docker/Dockerfile"
    dockerignore: str = ".dockerignore"
    template: str = "docker/nginx/templates/default.conf.template"
    healthcheck: str = "docker/healthcheck.py"
    compose: str = "docker/compose.yaml"

    def read(self, name: str) -> str:
        return (self.root / getattr(self, name)).read_text()


# --- COPY sources and .dockerignore -------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    instructions, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, rest = current.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def copy_sources(dockerfile: str) -> list[str]:
    """The build-context sources of every COPY/ADD (not those copied from a stage)."""
    sources = []
    for keyword, rest in dockerfile_instructions(dockerfile):
        if keyword not in ("COPY", "ADD"):
            continue
        words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        flags = [word for word in words if word.startswith("--")]
        if any(flag.startswith("--from=") for flag in flags):
            continue
        paths = [word for word in words if not word.startswith("--")]
        sources.extend(paths[:-1])
    return sources


def ignore_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over slash-separated paths (Go's filepath.Match
    plus ``**`` for any number of folders, as Docker's pattern matcher does)."""
    pattern = pattern.strip("/")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1].replace("[!", "[^"), end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        rules.append((include, ignore_pattern(line.lstrip("!").strip())))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker sends ``path`` (relative to the context) with the build context: the
    last rule that matches the path or one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for include, pattern in rules:
        if any(pattern.match(candidate) for candidate in candidates):
            included = include
    return included


def check_copy_sources(layout: Layout) -> list[str]:
    rules = ignore_rules(layout.read("dockerignore"))
    problems = []
    for source in copy_sources(layout.read("dockerfile")):
        matches = sorted(layout.root.glob(source)) if any(c in source for c in "*?[") else []
        paths = matches or [layout.root / source]
        files = []
        for path in paths:
            if path.is_dir():
                files += [p for p in path.rglob("*") if p.is_file()]
            elif path.is_file():
                files.append(path)
        if not files:
            problems.append(f"Dockerfile: COPY source {source!r} does not exist")
            continue
        sent = [f for f in files if in_context(f.relative_to(layout.root).as_posix(), rules)]
        if not sent:
            problems.append(
                f"Dockerfile: COPY source {source!r} is excluded from the build context "
                f"by {layout.dockerignore}"
            )
    return problems


# --- Nginx upstreams and compose services -------------------------------------------------


def compose_from_yaml(layout: Layout) -> dict[str, Any]:
    import yaml

    loaded: dict[str, Any] = yaml.safe_load(layout.read("compose"))
    return loaded


def service_networks(service: dict[str, Any]) -> set[str]:
    networks = service.get("networks") or ["default"]
    return set(networks)


def service_port(service: dict[str, Any], dockerfile: str) -> str:
    """The port the service's process listens on: its PORT, else the image's ENV PORT."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    if environment.get("PORT"):
        return str(environment["PORT"])
    for keyword, rest in dockerfile_instructions(dockerfile):
        if keyword == "ENV":
            found = re.search(r"(?:^|\s)PORT=(\d+)", rest)
            if found:
                return found.group(1)
    return "8000"


def check_nginx_upstreams(layout: Layout, compose: dict[str, Any]) -> list[str]:
    services = compose.get("services", {})
    nginx = services.get("nginx")
    if nginx is None:
        return ["compose: there is no nginx service"]
    template = layout.read("template")
    environment = nginx.get("environment") or {}
    targets = []
    for variable in sorted(set(re.findall(r"\$\{(\w+_UPSTREAM)\}", template))):
        if variable == "NGINX_TRUSTED_UPSTREAM":
            continue  # an address to believe, not one to proxy to
        value = environment.get(variable)
        if not value:
            targets.append((f"{variable} (unset in compose)", ""))
        else:
            targets.append((variable, str(value)))
    upstream_blocks = set(re.findall(r"^\s*upstream\s+(\S+)\s*\{", template, re.M))
    literal = re.findall(r"^\s*server\s+([A-Za-z][\w.-]*(?::\d+)?)", template, re.M)
    literal += [
        host
        for host in re.findall(r"proxy_pass\s+https?://([A-Za-z][\w.-]*(?::\d+)?)", template)
        if host.split(":")[0] not in upstream_blocks
    ]
    targets += [("the template", host) for host in literal]
    problems = []
    for where, target in targets:
        if not target:
            problems.append(f"nginx: {where}")
            continue
        host, _, port = target.partition(":")
        service = services.get(host)
        if service is None:
            problems.append(
                f"nginx: {where} proxies to {host!r}, which is not a compose service "
                f"({', '.join(sorted(services))})"
            )
            continue
        if not service_networks(service) & service_networks(nginx):
            problems.append(f"nginx: {where} proxies to {host!r}, which shares no network with it")
        listens = service_port(service, layout.read("dockerfile"))
        if port and port != listens:
            problems.append(
                f"nginx: {where} proxies to {host}:{port}, but {host} listens on {listens}"
            )
    return problems


# --- health check paths -------------------------------------------------------------------


def app_routes() -> set[str]:
    """The paths the app's router serves, with the development settings (no database or
    Redis is contacted to build the app)."""
    sys.path.insert(0, str(REPO))
    from app.asgi import create_app
    from app.config import Settings

    return {route.path for route in create_app(Settings()).routes}


def check_health_paths(
    layout: Layout, compose: dict[str, Any], routes: Iterable[str] | None = None
) -> list[str]:
    problems = []
    served = set(app_routes() if routes is None else routes)
    paths = sorted(set(re.findall(r"(/health[\w/.-]*)", layout.read("healthcheck"))))
    if not paths:
        problems.append(f"{layout.healthcheck}: no /health path found")
    for path in paths:
        if path not in served:
            problems.append(f"{layout.healthcheck}: asks {path}, which the app does not serve")
    nginx = compose.get("services", {}).get("nginx", {})
    test = (nginx.get("healthcheck") or {}).get("test") or []
    text = " ".join(test) if isinstance(test, list) else str(test)
    locations = set(re.findall(r"location\s+=?\s*(/[\w/.-]*)", layout.read("template")))
    for path in re.findall(r"https?://[^/\s\"']+(/[\w/.-]*)", text):
        if path not in locations:
            problems.append(f"compose nginx healthcheck asks {path}, no such location in nginx")
    return problems


def check(
    layout: Layout, compose: dict[str, Any], routes: Iterable[str] | None = None
) -> list[str]:
    return [
        *check_copy_sources(layout),
        *check_nginx_upstreams(layout, compose),
        *check_health_paths(layout, compose, routes),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compose-json", type=Path, help="docker compose config --format json")
    args = parser.parse_args(argv)
    layout = Layout()
    compose = (
        json.loads(args.compose_json.read_text())
        if args.compose_json
        else compose_from_yaml(layout)
    )
    problems = check(layout, compose)
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        return 1
    print(
        "ok: COPY sources in the build context, nginx upstreams are compose services at their "
        "ports, health check paths are served"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
