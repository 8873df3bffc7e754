"""The fixed cost of a request: `GET /api/v1/users/me` with a Bearer token and
`GET /health/live`, each beside a bare Litestar app on the same uvicorn settings (one
process): a route running one asyncpg primary-key query, and a hello route.

wrk drives every route (32 connections, 2 threads, a Lua script for the Bearer header),
so the Python client is never the bottleneck; each row gives the server's CPU time per
request (from /proc) and wrk's own CPU.

    python -m tests.bench.http_paths [--seconds 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics

import httpx

from app.lib.db import upgrade_database
from tests.bench.harness import (
    BENCH_DATABASE_URL,
    WRK_HEADER,
    ServedProcess,
    WrkFigures,
    run_wrk,
    uvicorn_process,
)
from tests.support import make_settings

BENCH_ACCOUNT = {"phone": "+79160000001", "password": "bench password 1"}


def sign_up(server: ServedProcess) -> tuple[str, str]:
    """(user id, access token) of the benchmark's account, registered on the first run."""
    response = httpx.post(f"{server.url}/api/v1/auth/login", json=BENCH_ACCOUNT)
    if response.status_code == 401:
        response = httpx.post(
            f"{server.url}/api/v1/auth/register", json={**BENCH_ACCOUNT, "name": "Bench"}
        )
    response.raise_for_status()
    body = response.json()
    return body["user"]["id"], body["access_token"]


def measure(
    name: str, server: ServedProcess, path: str, seconds: float, runs: int, **kwargs: object
) -> list[WrkFigures]:
    run_wrk(name, server, path, seconds=1, **kwargs)  # type: ignore[arg-type]  # warm-up
    return [run_wrk(name, server, path, seconds=seconds, **kwargs) for _ in range(runs)]  # type: ignore[arg-type]


def median_row(figures: list[WrkFigures]) -> WrkFigures:
    return sorted(figures, key=lambda each: each.throughput)[len(figures) // 2]


def spread(figures: list[WrkFigures]) -> str:
    rates = [each.throughput for each in figures]
    cpu = [each.server_cpu_us for each in figures]
    return (
        f"req/s {min(rates):,.0f}-{max(rates):,.0f}, "
        f"CPU/request {min(cpu):,.0f}-{max(cpu):,.0f} us (n={len(figures)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    # Migrated, never reset: the database may hold the other benchmarks' seeded data.
    upgrade_database(make_settings(database_url=BENCH_DATABASE_URL))
    seconds, runs = args.seconds, args.runs
    results: dict[str, list[WrkFigures]] = {}
    with uvicorn_process("app.asgi:create_asgi", factory=True) as app:
        user_id, token = sign_up(app)
        bearer = {"Authorization": f"Bearer {token}"}
        results["app /api/v1/users/me"] = measure(
            "app GET /api/v1/users/me", app, "/api/v1/users/me", seconds, runs, headers=bearer
        )
        results["app /health/live"] = measure(
            "app GET /health/live", app, "/health/live", seconds, runs
        )
        idle_app_rss = app.rss_mb()
    env = {"BENCH_USER_ID": user_id}
    with uvicorn_process(
        "tests.bench._baselines:pk_query_app", env=env, ready_path="/hello"
    ) as bare:
        results["bare pk"] = measure(
            "bare Litestar, one asyncpg PK query", bare, "/user", seconds, runs
        )
    with uvicorn_process("tests.bench._baselines:hello_app", ready_path="/hello") as bare:
        results["bare hello"] = measure("bare Litestar hello", bare, "/hello", seconds, runs)

    print("\n### HTTP paths (median run of each; wrk -t2 -c32)\n")
    print(WRK_HEADER)
    for figures in results.values():
        print(median_row(figures).row())
    print()
    for key, figures in results.items():
        print(f"- {key}: {spread(figures)}")

    def ratio(app_key: str, base_key: str) -> str:
        app_rate = statistics.median(each.throughput for each in results[app_key])
        base_rate = statistics.median(each.throughput for each in results[base_key])
        app_cpu = statistics.median(each.server_cpu_us for each in results[app_key])
        base_cpu = statistics.median(each.server_cpu_us for each in results[base_key])
        return (
            f"{app_rate / base_rate:.2f}x the throughput, "
            f"{app_cpu / base_cpu:.2f}x the server CPU per request"
        )

    print(
        f"\n- `/api/v1/users/me` vs the bare PK query: {ratio('app /api/v1/users/me', 'bare pk')}"
    )
    print(f"- `/health/live` vs the bare hello: {ratio('app /health/live', 'bare hello')}")
    print(f"- app RSS after the runs: {idle_app_rss:.0f} MB")


if __name__ == "__main__":
    main()
