"""The client's address, scheme and host as a trusted reverse proxy saw them.

Behind nginx or an ingress the direct peer is the proxy; it says who the client was in
``X-Forwarded-For``/``-Proto``/``-Host`` or in RFC 7239 ``Forwarded``. Anyone can send those
headers, so they are believed only when the direct peer is one of ``TRUSTED_PROXIES``, and
the chain is read from the right: the first address that is not a trusted proxy is the
client (entries to its left were written by the client itself and prove nothing). Uvicorn's
own ``--proxy-headers`` is turned off wherever the app is served, so this is the one place
that decides (uvicorn's middleware knows neither ``Forwarded`` nor ``X-Forwarded-Host``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# A host as it may appear in a Host header: a name or an IPv4 address, or an [IPv6] literal,
# with an optional port. Anything else in a forwarded host is ignored.
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_SCHEMES = {"http", "https"}


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


class TrustedProxies:
    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = parse_networks(entries)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: str | None) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self.networks)


def _ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not address:
        return None
    address = address.strip()
    if address.startswith("["):  # "[2001:db8::1]:4711" in Forwarded
        address = address[1:].split("]", 1)[0]
    elif address.count(":") == 1:  # "192.0.2.1:4711"
        address = address.split(":", 1)[0]
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _parse_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239: ``for=192.0.2.60;proto=https;host=example.com, for="[2001:db8::1]"``."""
    elements = []
    for element in value.split(","):
        pairs: dict[str, str] = {}
        for pair in element.split(";"):
            name, _, raw = pair.partition("=")
            if raw:
                pairs[name.strip().lower()] = raw.strip().strip('"')
        elements.append(pairs)
    return elements


class Hop:
    """What one proxy recorded about the hop before it."""

    def __init__(
        self, client: str | None, proto: str | None = None, host: str | None = None
    ) -> None:
        self.client = client
        self.proto = proto
        self.host = host


def _hops(headers: dict[str, str]) -> list[Hop]:
    """The hops the proxies recorded, leftmost (nearest the client) first."""
    if "forwarded" in headers:
        return [
            Hop(element.get("for"), element.get("proto"), element.get("host"))
            for element in _parse_forwarded(headers["forwarded"])
        ]
    clients = _split(headers.get("x-forwarded-for", ""))
    protos = _split(headers.get("x-forwarded-proto", ""))
    hosts = _split(headers.get("x-forwarded-host", ""))
    if not clients:
        # A proxy that only says the scheme or host it was reached by.
        return [Hop(None, protos[-1] if protos else None, hosts[-1] if hosts else None)]

    def aligned(values: Sequence[str], index: int) -> str | None:
        # One value per hop: the client hop's own; otherwise the nearest proxy's (last).
        if len(values) == len(clients):
            return values[index]
        return values[-1] if values else None

    return [
        Hop(client, aligned(protos, index), aligned(hosts, index))
        for index, client in enumerate(clients)
    ]


def client_hop(hops: list[Hop], trusted: TrustedProxies) -> Hop:
    """Walk from the right past the trusted proxies: the first other address is the client."""
    for hop in reversed(hops):
        if hop.client not in trusted:
            return hop
    return hops[0]


class ForwardedHeaders:
    """Rewrites a scope's client, scheme and Host from the proxy headers, only when the
    direct peer is a trusted proxy; with no trusted proxies configured it changes nothing."""

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self.trusted = TrustedProxies(trusted_proxies)

    def apply(self, scope: Scope) -> None:
        """For an HTTP or WebSocket scope (the caller checks the type)."""
        if self.trusted:
            peer = scope.get("client")
            if peer and peer[0] in self.trusted:
                self._apply(scope)

    def _apply(self, scope: Scope) -> None:
        raw_headers = scope.get("headers", [])
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw_headers
        }
        if not {"forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"} & set(
            headers
        ):
            return
        hop = client_hop(_hops(headers), self.trusted)
        client_ip = _ip(hop.client)
        if client_ip is not None:
            scope["client"] = (str(client_ip), 0)
        proto = (hop.proto or "").lower()
        if proto in _SCHEMES:
            websocket = scope["type"] == ScopeType.WEBSOCKET
            scope["scheme"] = proto.replace("http", "ws") if websocket else proto
        if hop.host and _HOST.match(hop.host):
            scope["headers"] = [
                *((name, value) for name, value in raw_headers if name.lower() != b"host"),
                (b"host", hop.host.encode("latin-1")),
            ]


class ForwardedHeadersMiddleware:
    """:class:`ForwardedHeaders` as an ASGI middleware of its own (the application applies
    it in :class:`app.lib.edge.EdgeMiddleware`)."""

    def __init__(self, app: ASGIApp, trusted_proxies: Iterable[str]) -> None:
        self.app = app
        self.forwarded = ForwardedHeaders(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            self.forwarded.apply(scope)
        await self.app(scope, receive, send)
