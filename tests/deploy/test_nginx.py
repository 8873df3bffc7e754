"""The Nginx front of docker/compose.yaml, for real: the project's template rendered the way
the official nginx image renders it (envsubst of the variables compose sets), checked with
`nginx -t`, then run with Debian's nginx in front of the live test server, and requests
made through it.

Addresses: Nginx listens on 127.0.0.1; a client connecting from 127.0.0.1 is an ordinary
client, one connecting from TRUSTED_PEER (127.0.0.2, also loopback) plays the TLS terminator
that NGINX_TRUSTED_UPSTREAM names.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.config import Settings
from tests.support import IN_CI, READY_SECONDS, LiveServer, free_port, post_form

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "docker" / "nginx" / "templates" / "default.conf.template"
COMPOSE_FILE = REPO / "docker" / "compose.yaml"
ENV_EXAMPLE = REPO / "docker" / ".env.example"
TEMPLATE_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
TRUSTED_PEER = "127.0.0.2"
# Nothing answers DNS there; upstreams given as addresses need no lookup.
NO_RESOLVER = "127.0.0.1:9 valid=1s ipv6=off"


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None
    )
    if found is None:
        message = "nginx is not installed (apt-get install nginx-light)"
        if IN_CI:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return found


def render_template(variables: dict[str, str]) -> str:
    """What the image's 20-envsubst-on-templates.sh does: replace the variables that are set,
    leave everything else (nginx's own $variables) alone."""

    def substitute(match: re.Match[str]) -> str:
        return variables.get(match.group(1), match.group(0))

    return TEMPLATE_VARIABLE.sub(substitute, TEMPLATE.read_text())


@dataclass
class Nginx:
    url: str
    process: subprocess.Popen[bytes]
    prefix: Path

    @property
    def access_log(self) -> str:
        return (self.prefix / "stdout.log").read_text()


def write_nginx_config(
    prefix: Path,
    upstream: str,
    port: int,
    max_upload_bytes: int,
    resolver: str = NO_RESOLVER,
    trusted_upstream: str = f"{TRUSTED_PEER}/32",
) -> Path:
    """The stock nginx.conf's role, with every writable path inside ``prefix`` so the test
    needs no root and leaves nothing behind."""
    for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / folder).mkdir(parents=True, exist_ok=True)
    site = prefix / "quintet.conf"
    site.write_text(
        render_template(
            {
                "API_UPSTREAM": upstream,
                "NGINX_LISTEN_PORT": f"127.0.0.1:{port}",
                "MAX_UPLOAD_BYTES": str(max_upload_bytes),
                "NGINX_RESOLVER": resolver,
                "NGINX_TRUSTED_UPSTREAM": trusted_upstream,
            }
        )
    )
    mime_types = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else ""
    # As root the workers would drop to "nobody" and could not use the temp folders here.
    user = "user root;" if os.geteuid() == 0 else ""
    main = prefix / "nginx.conf"
    main.write_text(
        f"""
{user}
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    {mime_types}
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""
    )
    return main


def nginx_command(config: Path, *args: str) -> list[str]:
    prefix = config.parent
    return [
        nginx_binary(),
        "-c",
        str(config),
        "-p",
        f"{prefix}/",
        "-e",
        f"{prefix}/error.log",
        *args,
    ]


def start_nginx(
    prefix: Path, upstream: str, max_upload_bytes: int, resolver: str = NO_RESOLVER
) -> Nginx:
    port = free_port()
    config = write_nginx_config(prefix, upstream, port, max_upload_bytes, resolver)
    stdout = (prefix / "stdout.log").open("wb")
    process = subprocess.Popen(nginx_command(config), stdout=stdout, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if process.poll() is not None:
            errors = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
            raise RuntimeError(f"nginx exited with {process.returncode}: {errors}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("nginx did not start listening") from None
            time.sleep(0.05)
    return Nginx(url=f"http://127.0.0.1:{port}", process=process, prefix=prefix)


def stop_nginx(nginx: Nginx) -> None:
    nginx.process.send_signal(signal.SIGQUIT)  # graceful shutdown
    try:
        nginx.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        nginx.process.kill()
        nginx.process.wait(timeout=5)


@pytest.fixture(scope="module")
def nginx(
    live_server: LiveServer, migrated_database: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Nginx]:
    # The live server runs with exactly these settings; compose gives Nginx the app's limit.
    settings = migrated_database
    proxy = start_nginx(
        tmp_path_factory.mktemp("nginx"), f"127.0.0.1:{live_server.port}", settings.max_upload_bytes
    )
    yield proxy
    stop_nginx(proxy)


@pytest.fixture
async def through_nginx(nginx: Nginx) -> Any:
    async with httpx.AsyncClient(base_url=nginx.url, timeout=30) as http:
        yield http


def compose() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return services


def compose_default(value: str) -> str:
    """The default of a ``${NAME:-default}`` compose value."""
    match = re.fullmatch(r"\$\{[A-Z_]+:-([^}]*)\}", value)
    assert match, f"{value!r} is not a ${{NAME:-default}} reference"
    return match.group(1)


# --- the configuration --------------------------------------------------------------------


def test_rendered_config_passes_nginx_t(tmp_path: Path) -> None:
    config = write_nginx_config(tmp_path, "127.0.0.1:9", free_port(), 20 * 1024 * 1024)
    result = subprocess.run(
        nginx_command(config, "-t"), capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    assert "test is successful" in result.stderr


def test_compose_sets_every_variable_the_template_uses() -> None:
    used = set(TEMPLATE_VARIABLE.findall(TEMPLATE.read_text()))
    nginx_environment = compose()["services"]["nginx"]["environment"]
    assert used == {
        "API_UPSTREAM",
        "NGINX_LISTEN_PORT",
        "MAX_UPLOAD_BYTES",
        "NGINX_RESOLVER",
        "NGINX_TRUSTED_UPSTREAM",
    }
    assert used <= set(nginx_environment)
    assert nginx_environment["API_UPSTREAM"] == "api:8000"
    # Docker's embedded DNS, looked up again at least every 10 s.
    assert nginx_environment["NGINX_RESOLVER"].startswith("127.0.0.11 valid=10s")
    # By default nobody outside the container is believed.
    assert compose_default(nginx_environment["NGINX_TRUSTED_UPSTREAM"]) == "127.0.0.1/32"


def test_the_app_trusts_forwarded_headers_from_the_nginx_network_only() -> None:
    config = compose()
    subnet = config["networks"]["frontend"]["ipam"]["config"][0]["subnet"]
    environment = config["services"]["api"]["environment"]
    assert environment["TRUSTED_PROXIES"] == subnet
    assert "frontend" in config["services"]["nginx"]["networks"]
    assert "frontend" not in config["services"]["postgres"]["networks"]


def test_upload_limit_is_the_same_for_nginx_the_app_and_the_example_env() -> None:
    services = compose()["services"]
    app_default = Settings().max_upload_bytes
    assert int(compose_default(services["nginx"]["environment"]["MAX_UPLOAD_BYTES"])) == app_default
    assert int(compose_default(services["api"]["environment"]["MAX_UPLOAD_BYTES"])) == app_default
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert int(example["MAX_UPLOAD_BYTES"]) == app_default


# --- requests through Nginx ---------------------------------------------------------------


async def test_readiness_answers_through_nginx(through_nginx: httpx.AsyncClient) -> None:
    response = await through_nginx.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_nginx_answers_its_own_health_location(through_nginx: httpx.AsyncClient) -> None:
    response = await through_nginx.get("/nginx-health")
    assert response.status_code == 200
    assert response.text == "ok\n"


async def test_swagger_ui_and_a_gzipped_openapi_document_through_nginx(
    through_nginx: httpx.AsyncClient,
) -> None:
    docs = await through_nginx.get("/docs/")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()

    spec = await through_nginx.get("/docs/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert spec.status_code == 200
    assert spec.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in spec.headers["vary"]
    assert "/health/ready" in spec.json()["paths"]


async def test_board_owner_registers_and_posts_a_message_through_nginx(
    through_nginx: httpx.AsyncClient,
) -> None:
    owner = {
        "username": "owner",
        "password": "correct horse battery",
        "password_confirm": "correct horse battery",
    }
    registered = await post_form(through_nginx, "/board/register", owner)
    assert registered.status_code == 303
    assert registered.headers["location"] == "/board/messages"

    posted = await post_form(through_nginx, "/board/messages/new", {"text": "через nginx"})
    assert posted.status_code == 303
    listing = await through_nginx.get("/board/messages")
    assert listing.status_code == 200
    assert "через nginx" in listing.text


async def test_a_sane_request_id_passes_through_once(through_nginx: httpx.AsyncClient) -> None:
    response = await through_nginx.get("/health/live", headers={"X-Request-ID": "client-id-0001"})
    assert response.status_code == 200
    assert response.headers.get_list("x-request-id") == ["client-id-0001"]


async def test_without_a_request_id_nginx_makes_one_that_the_app_and_the_log_share(
    through_nginx: httpx.AsyncClient, nginx: Nginx
) -> None:
    response = await through_nginx.get("/", headers={"X-Request-ID": "bad id!"})
    assert response.status_code == 200
    [request_id] = response.headers.get_list("x-request-id")
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    await asyncio.sleep(0.2)  # the access log line is written after the response
    assert f"request_id={request_id}" in nginx.access_log


async def echo_headers(scope: Any, receive: Any, send: Any) -> None:
    """An upstream that answers with the request headers it got, to see what Nginx sends."""
    if scope["type"] != "http":
        return
    headers = {name.decode(): value.decode() for name, value in scope["headers"]}
    body = json.dumps(headers).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def through_echo(
    tmp_path: Path, headers: dict[str, str], source: str = "127.0.0.1"
) -> tuple[dict[str, str], Nginx]:
    """The headers the upstream got for a request made from ``source`` through Nginx."""
    echo = LiveServer(echo_headers, free_port()).start()
    proxy = start_nginx(tmp_path, f"127.0.0.1:{echo.port}", 1024)
    transport = httpx.AsyncHTTPTransport(local_address=source)
    try:
        async with httpx.AsyncClient(base_url=proxy.url, timeout=10, transport=transport) as http:
            response = await http.get("/anything", headers=headers)
    finally:
        stop_nginx(proxy)
        echo.stop()
    assert response.status_code == 200, response.text
    seen: dict[str, str] = response.json()
    return seen, proxy


async def test_nginx_overwrites_a_clients_forwarded_headers_and_keeps_host_and_port(
    tmp_path: Path,
) -> None:
    seen, proxy = await through_echo(
        tmp_path,
        {
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Real-IP": "203.0.113.9",
            "X-Request-ID": "echo-check-0001",
        },
    )
    port = proxy.url.rsplit(":", 1)[1]
    # The app believes these from Nginx, so a client must not be able to choose them.
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["host"] == f"127.0.0.1:{port}"
    assert seen["x-forwarded-host"] == f"127.0.0.1:{port}"
    assert seen["x-request-id"] == "echo-check-0001"
    # Plain requests ask for no upgrade; only a WebSocket request does.
    assert seen.get("connection", "") == ""
    assert "upgrade" not in seen


async def test_https_from_the_trusted_tls_terminator_reaches_the_app(tmp_path: Path) -> None:
    # What a TLS terminator in front of Nginx sends: the client it saw, and https.
    seen, _ = await through_echo(
        tmp_path,
        {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"},
        source=TRUSTED_PEER,
    )
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-for"] == "198.51.100.7"
    assert seen["x-real-ip"] == "198.51.100.7"


async def test_the_trusted_terminator_without_headers_is_itself_the_client(
    tmp_path: Path,
) -> None:
    seen, _ = await through_echo(tmp_path, {}, source=TRUSTED_PEER)
    assert seen["x-forwarded-for"] == TRUSTED_PEER
    assert seen["x-forwarded-proto"] == "http"


async def test_what_a_client_put_in_x_forwarded_for_is_not_passed_on_as_trusted(
    tmp_path: Path,
) -> None:
    # The client sent "X-Forwarded-For: 203.0.113.66" to the TLS terminator, which appended
    # the address it really saw: only that one is the client.
    seen, proxy = await through_echo(
        tmp_path,
        {"X-Forwarded-For": "203.0.113.66, 198.51.100.7", "X-Forwarded-Proto": "https"},
        source=TRUSTED_PEER,
    )
    assert seen["x-forwarded-for"] == "198.51.100.7"
    assert "203.0.113.66" not in json.dumps(seen)
    # The log names the client and, for NGINX_TRUSTED_UPSTREAM, the peer that connected.
    assert proxy.access_log.startswith("198.51.100.7 ")
    assert f"peer={TRUSTED_PEER}" in proxy.access_log


async def test_a_client_cannot_claim_to_be_the_trusted_terminator(tmp_path: Path) -> None:
    seen, _ = await through_echo(
        tmp_path,
        {"X-Forwarded-For": f"198.51.100.7, {TRUSTED_PEER}", "X-Forwarded-Proto": "https"},
    )
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"


class FakeDns:
    """A DNS server on 127.0.0.1 that answers every A question with ``address`` (1 s TTL)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stopped.is_set():
            try:
                query, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            end = query.index(b"\0", 12) + 5  # the question: name, type, class
            qtype = struct.unpack("!H", query[end - 4 : end - 2])[0]
            answers = 1 if qtype == 1 else 0
            header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, answers, 0, 0)
            answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(self.address)
            self.sock.sendto(header + query[12:end] + answer * answers, peer)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.sock.close()


def answer_with_name(name: str, host: str, port: int = 0) -> ThreadingHTTPServer:
    class Name(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = name.encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Name)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def test_nginx_follows_the_api_to_its_new_address_without_a_restart(
    tmp_path: Path,
) -> None:
    """`docker compose up -d --build` gives the api a new address: Nginx must look the name
    up again instead of sending every request to the old one until it is restarted."""
    old = answer_with_name("old api", "127.0.0.2")
    port = old.server_address[1]
    new = answer_with_name("new api", "127.0.0.3", port)
    dns = FakeDns("127.0.0.2")
    proxy = start_nginx(
        tmp_path, f"api.quintet.test:{port}", 1024, f"127.0.0.1:{dns.port} valid=1s ipv6=off"
    )
    answers = []
    try:
        async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as http:
            assert (await http.get("/")).text == "old api"
            dns.address = "127.0.0.3"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                answers.append((await http.get("/")).text)
                if answers[-1] == "new api":
                    break
                await asyncio.sleep(0.5)
    finally:
        stop_nginx(proxy)
        dns.stop()
        for server in (old, new):
            server.shutdown()
            server.server_close()
    assert answers[-1] == "new api", answers[-5:]


async def echo_websocket(scope: Any, receive: Any, send: Any) -> None:
    """An upstream that echoes WebSocket text frames, prefixed with the path it was asked."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": f"{scope['path']} {message.get('text')}"})


async def test_websocket_upgrade_through_nginx_carries_frames_both_ways(tmp_path: Path) -> None:
    from websockets.asyncio.client import connect

    echo = LiveServer(echo_websocket, free_port()).start()
    proxy = start_nginx(tmp_path, f"127.0.0.1:{echo.port}", 1024)
    ws_url = proxy.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    try:
        async with connect(ws_url, open_timeout=10) as websocket:
            for text in ("first", "second"):
                await websocket.send(text)
                assert await asyncio.wait_for(websocket.recv(), 10) == f"/socket.io/ {text}"
    finally:
        stop_nginx(proxy)
        echo.stop()


async def test_an_upload_over_the_limit_is_refused_by_nginx_with_problem_json(
    through_nginx: httpx.AsyncClient, migrated_database: Settings
) -> None:
    limit = migrated_database.max_upload_bytes
    response = await through_nginx.post(
        "/api/v1/audio/records",
        content=b"\0" * (limit + 1),
        headers={"Content-Type": "application/octet-stream", "X-Request-ID": "too-large-0001"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    assert str(limit) in response.json()["detail"]
    assert response.headers["x-request-id"] == "too-large-0001"


async def test_an_upload_at_the_limit_reaches_the_app(
    through_nginx: httpx.AsyncClient, migrated_database: Settings
) -> None:
    limit = migrated_database.max_upload_bytes
    response = await through_nginx.post(
        "/api/v1/audio/records",
        content=b"\0" * limit,
        headers={"Content-Type": "application/octet-stream"},
    )
    # Whatever the app makes of raw bytes, it is the app answering, not Nginx's limit.
    assert response.status_code != 413
    assert response.status_code < 500


async def test_unreachable_api_gives_a_502_problem(tmp_path: Path) -> None:
    closed_port = free_port()  # nothing listens there
    proxy = start_nginx(tmp_path, f"127.0.0.1:{closed_port}", 1024)
    try:
        async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as http:
            response = await http.get("/health/ready", headers={"X-Request-ID": "no-upstream-1"})
    finally:
        stop_nginx(proxy)
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 502
    assert response.headers["x-request-id"] == "no-upstream-1"


async def test_metrics_are_not_published_at_the_edge(through_nginx: httpx.AsyncClient) -> None:
    assert (await through_nginx.get("/metrics")).status_code == 404


# --- Socket.IO over WebSocket through Nginx -----------------------------------------------


async def register(http: httpx.AsyncClient, phone: str, name: str) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/auth/register",
        json={"phone": phone, "password": "correct horse battery", "name": name},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_socketio_websocket_through_nginx_delivers_a_new_message(
    through_nginx: httpx.AsyncClient, live_server: LiveServer, nginx: Nginx
) -> None:
    import socketio

    alice = await register(through_nginx, "+79161234567", "Alice")
    bob = await register(through_nginx, "+79161234568", "Bob")
    chat = await through_nginx.post(
        "/api/v1/chats",
        json={"type": "direct", "member_id": bob["user"]["id"]},
        headers={"Authorization": f"Bearer {alice['access_token']}"},
    )
    assert chat.status_code in (200, 201), chat.text

    received: asyncio.Queue[Any] = asyncio.Queue()
    client = socketio.AsyncClient(reconnection=False)
    client.on("message:new", received.put_nowait)
    await client.connect(
        nginx.url,
        transports=["websocket"],
        auth={"token": bob["access_token"]},
        wait_timeout=10,
    )
    try:
        assert client.transport() == "websocket"
        sent = await through_nginx.post(
            f"/api/v1/chats/{chat.json()['id']}/messages",
            json={"type": "text", "text": "через nginx по WebSocket"},
            headers={"Authorization": f"Bearer {alice['access_token']}"},
        )
        assert sent.status_code == 201, sent.text
        event = await asyncio.wait_for(received.get(), timeout=10)
    finally:
        await client.disconnect()
    message = event.get("message", event)
    assert message["text"] == "через nginx по WebSocket"
    assert message["sender_id"] == alice["user"]["id"]
