"""What the application imports is what pyproject.toml declares; the production install (the
image's `uv sync`) leaves out the embedded run's Redis stand-in, and nothing on the path of a
process with REDIS_URL imports it; the browser libraries are vendored files with their version
and licence, served by the app itself."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from app.config import Settings

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VENDOR = REPO / "app" / "static" / "vendor"
EMBEDDED_ONLY = {"fakeredis", "lupa"}


def _name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def _imported_top_level_modules(root: Path) -> set[str]:
    modules: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"__future__", "app"}


def test_every_package_the_app_imports_is_a_declared_dependency() -> None:
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    declared |= {_name(r) for r in PYPROJECT["dependency-groups"]["embedded"]}
    distributions = importlib.metadata.packages_distributions()

    undeclared = {
        module: sorted({_name(d) for d in distributions.get(module, [module])})
        for module in _imported_top_level_modules(REPO / "app")
        if not {_name(d) for d in distributions.get(module, [module])} & declared
    }

    assert undeclared == {}


def _uv() -> str:
    uv = REPO / ".tools" / "bin" / "uv"
    found = str(uv) if uv.exists() else shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed (make setup installs it into .tools/)")
    return found


def _locked_packages(*flags: str) -> set[str]:
    exported = subprocess.run(
        [_uv(), "export", "--frozen", "--no-hashes", "--no-header", *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {_name(line) for line in exported.splitlines() if line and line[0].isalnum()}


def test_the_image_installs_the_locked_packages_without_the_embedded_stand_in() -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert "uv sync --locked --no-default-groups" in dockerfile

    production = _locked_packages("--no-default-groups")
    development = _locked_packages()

    assert production & EMBEDDED_ONLY == set()
    assert development >= EMBEDDED_ONLY
    assert {"litestar", "redis", "click", "rich", "pydantic"} <= production


# Any import of fakeredis (or its Lua runtime) fails, as in the image, which does not have them.
WITHOUT_FAKEREDIS = """
import importlib.abc, sys

class NoFakeRedis(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"fakeredis", "lupa"}:
            raise ImportError(f"{name} is not installed in the image")
        return None

sys.meta_path.insert(0, NoFakeRedis())

from litestar.testing import TestClient
from app.asgi import create_app
from tests.support import make_settings

with TestClient(create_app(make_settings())) as client:
    print(client.get("/health/ready").status_code, client.get("/board/login").status_code)
"""


def test_no_module_of_the_app_imports_the_stand_in_when_it_loads() -> None:
    """fakeredis is imported inside the functions of the embedded run only."""
    at_module_level = []
    for path in (REPO / "app").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            at_module_level += [
                f"{path.relative_to(REPO)}: {name}"
                for name in names
                if name.split(".")[0] in EMBEDDED_ONLY
            ]

    assert at_module_level == []


def test_a_process_with_redis_url_runs_without_fakeredis(migrated_database: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_FAKEREDIS],
        cwd=REPO,
        env={**os.environ, "TEST_REDIS_URL": migrated_database.redis_url or ""},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["200", "200"]


# The vendored file of each library that carries its version in its header.
VERSIONED_FILES = {
    "bootstrap": ("css/bootstrap.min.css", "js/bootstrap.bundle.min.js"),
    "swagger-ui": ("swagger-ui-bundle.js",),
    "socket.io": ("socket.io.min.js",),
}


@pytest.mark.parametrize("library", sorted(VERSIONED_FILES))
def test_each_vendored_library_records_its_version_and_licence(library: str) -> None:
    folder = VENDOR / library
    version = re.search(r"\d+\.\d+\.\d+", (folder / "VERSION").read_text().splitlines()[0])

    assert version, (folder / "VERSION").read_text()
    assert "Permission is hereby granted" in (folder / "LICENSE").read_text() or (
        "Apache License" in (folder / "LICENSE").read_text()
    )
    for name in VERSIONED_FILES[library]:
        assert version.group() in (folder / name).read_text(), name


def _vendor_urls(html: str) -> set[str]:
    return set(re.findall(r"""(/static/vendor/[^"'\s>]+)""", html))


async def test_pages_and_docs_load_their_vendored_files_from_the_app(
    client: httpx.AsyncClient,
) -> None:
    login = (await client.get("/board/login")).text
    docs = (await client.get("/docs/")).text
    urls = _vendor_urls(login) | _vendor_urls(docs)

    assert {
        "/static/vendor/bootstrap/css/bootstrap.min.css",
        "/static/vendor/bootstrap/js/bootstrap.bundle.min.js",
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui/swagger-ui-standalone-preset.js",
        "/static/vendor/swagger-ui/swagger-ui.css",
        "/static/vendor/swagger-ui/favicon-32x32.png",
    } <= urls
    for url in sorted(urls):
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.content == (REPO / "app" / url.removeprefix("/")).read_bytes(), url
