"""The spine every service stands on: health, metrics, docs, request ids, configuration."""

from __future__ import annotations

import secrets

import httpx
import pytest

from app.asgi import create_asgi
from app.config import ConfigurationError, Settings
from tests.support import LiveServer, free_port, make_settings


async def test_ready_reports_database_and_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_ready_answers_503_when_redis_is_down(migrated_database: Settings) -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await http.get("/health/ready")
            live = await http.get("/health/live")
    finally:
        server.stop()
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("down")
    assert response.json()["checks"]["database"] == "ok"
    assert live.status_code == 200


async def test_ready_answers_503_when_the_database_is_down(migrated_database: Settings) -> None:
    settings = make_settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/test")
    server = LiveServer(create_asgi(settings), free_port()).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await http.get("/health/ready")
    finally:
        server.stop()
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("down")


async def test_swagger_ui_is_served_with_local_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs/")
    assert page.status_code == 200
    assert "cdn." not in page.text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    asset = await client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert asset.status_code == 200
    schema = await client.get("/docs/openapi.json")
    assert schema.json()["info"]["title"] == "Quintet"


async def test_pages_use_local_bootstrap(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in page.text
    css = await client.get("/static/vendor/bootstrap/css/bootstrap.min.css")
    assert css.status_code == 200
    assert "Bootstrap" in css.text[:300]


async def test_metrics_expose_request_counters(client: httpx.AsyncClient) -> None:
    await client.get("/health/live")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "quintet_requests_total" in metrics.text


async def test_request_id_is_echoed_when_given(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"x-request-id": "abc-123-def"})
    assert response.headers["x-request-id"] == "abc-123-def"


def test_production_refuses_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        Settings.from_env()
    monkeypatch.setenv("SECRET_KEY", secrets.token_hex(32))
    monkeypatch.setenv("ADMIN_API_KEY", secrets.token_hex(20))
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://quintet.example.org")
    assert Settings.from_env().env == "production"


def test_postgres_urls_get_the_async_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/app")
    assert Settings.from_env().database_url == "postgresql+asyncpg://u:p@db:5432/app"


async def test_metrics_are_not_served_through_a_proxy(client: httpx.AsyncClient) -> None:
    # The ingress and nginx add X-Forwarded-For; Prometheus calls the pod directly.
    proxied = await client.get("/metrics", headers={"x-forwarded-for": "203.0.113.7"})
    assert proxied.status_code == 404
    assert proxied.headers["content-type"].startswith("application/problem+json")
    assert "quintet_requests_total" not in proxied.text
