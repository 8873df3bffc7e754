"""/metrics: the request metrics keep their names, labels (the route template, not the
path) and values, whatever middleware counts them."""

from __future__ import annotations

import re

import httpx

from tests.accounts.api import register


def sample(text: str, metric: str, **labels: str) -> float:
    """The value of one sample of the exposition, 0 when it is not there yet."""
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name != metric:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest.rsplit("}", 1)[0]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def metrics(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def test_requests_are_counted_by_method_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    alice = await register(client)
    labels = {
        "method": "GET",
        "path": "/api/v1/users/{user_id}",
        "status_code": "200",
        "app_name": "quintet",
    }
    before = await metrics(client)
    for _ in range(3):
        assert (
            await client.get(f"/api/v1/users/{alice.id}", headers=alice.headers)
        ).status_code == 200
    refused = await client.get(f"/api/v1/users/{alice.id}")  # no token
    assert refused.status_code == 401
    after = await metrics(client)

    total = "quintet_requests_total"
    assert sample(after, total, **labels) - sample(before, total, **labels) == 3
    duration = "quintet_request_duration_seconds_count"
    assert sample(after, duration, **labels) - sample(before, duration, **labels) == 3
    assert sample(after, "quintet_request_duration_seconds_sum", **labels) > 0
    in_progress = {**labels, "status_code": "200"}
    assert sample(after, "quintet_requests_in_progress", **in_progress) == 0
    # A request refused by the authentication middleware counts as what it answered.
    unauthorized = {**labels, "status_code": "401"}
    assert sample(after, total, **unauthorized) - sample(before, total, **unauthorized) == 1
    # Excluded: /metrics itself is never counted.
    assert 'path="/metrics"' not in after
