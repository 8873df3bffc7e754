#!/usr/bin/env bash
# Smoke build of docker/Dockerfile where no image can be pulled (no registry access, as on
# the development machines here): start a Docker engine without bridge networking, make a
# Debian base with debootstrap and `docker import`, build the image on it through the
# PYTHON_IMAGE build argument, then run each role's basics in it. Not run by CI (it needs
# root, the Debian mirror and a few minutes); run it by hand after changing the Dockerfile:
#
#   sudo docker/smoke-build.sh
#
# The stand-in base carries Debian's python3 (3.13 on trixie) instead of the official
# image's 3.14 in /usr/local; the Dockerfile only says `python3`, and uv.lock covers both.
# Environment: SUITE (trixie), MIRROR, SMOKE_DIR (/tmp/quintet-smoke), EXTRA_CA_DIR
# (/usr/local/share/ca-certificates: extra CAs to trust during the build), KEEP_ENGINE=1 to
# leave the engine running, SMOKE_DATABASE_URL / SMOKE_REDIS_URL to also start the api
# against PostgreSQL and Redis on this machine (host networking).
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=${SUITE:-trixie}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SMOKE_DIR=${SMOKE_DIR:-/tmp/quintet-smoke}
EXTRA_CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
BASE_IMAGE=quintet-smoke-base:$SUITE
IMAGE=quintet:smoke

log() { printf '\n== %s\n' "$*"; }
mkdir -p "$SMOKE_DIR"

# BuildKit through a Docker 23+ client needs the buildx plugin; Debian's docker.io 20.10
# client builds with BuildKit on its own, so use it when buildx is missing.
DOCKER=${DOCKER:-docker}
if ! "$DOCKER" buildx version >/dev/null 2>&1 && [ -x /usr/bin/docker ]; then
  DOCKER=/usr/bin/docker
fi

for tool in debootstrap dockerd docker; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install debootstrap docker.io)" >&2; exit 1; }
done

log "docker engine"
engine_pid=""
if ! "$DOCKER" info >/dev/null 2>&1; then
  # No bridge and no iptables: the sandbox has neither; builds and runs use the host network.
  dockerd --bridge=none --iptables=false --ip6tables=false \
    --data-root "$SMOKE_DIR/docker" --exec-root "$SMOKE_DIR/exec" \
    --pidfile "$SMOKE_DIR/dockerd.pid" >"$SMOKE_DIR/dockerd.log" 2>&1 &
  engine_pid=$!
  for _ in $(seq 60); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
  "$DOCKER" info >/dev/null
fi
stop_engine() {
  if [ -n "$engine_pid" ] && [ "${KEEP_ENGINE:-0}" != 1 ]; then
    kill "$engine_pid" && wait "$engine_pid" || true
  fi
}
trap stop_engine EXIT
"$DOCKER" version --format 'engine {{.Server.Version}}'

log "base image $BASE_IMAGE"
if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  rootfs="$SMOKE_DIR/rootfs-$SUITE"
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      "$SUITE" "$rootfs" "$MIRROR"
  fi
  # Extra CAs of this machine (an HTTPS-intercepting egress proxy, say) go into the base,
  # and SSL_CERT_FILE makes uv and pip use the system store, so the build reaches PyPI.
  change=()
  if compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
    cp "$EXTRA_CA_DIR"/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null
    bundle=/etc/ssl/certs/ca-certificates.crt
    change=(--change "ENV SSL_CERT_FILE=$bundle PIP_CERT=$bundle REQUESTS_CA_BUNDLE=$bundle")
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" --numeric-owner -c . | "$DOCKER" import "${change[@]}" - "$BASE_IMAGE"
fi
"$DOCKER" image ls "$BASE_IMAGE"

log "build $IMAGE"
DOCKER_BUILDKIT=1 "$DOCKER" build --network host \
  --build-arg "PYTHON_IMAGE=$BASE_IMAGE" \
  -f docker/Dockerfile -t "$IMAGE" .
"$DOCKER" image ls "$IMAGE"
"$DOCKER" history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" | cut -c1-120

log "inside the image"
run() { "$DOCKER" run --rm --network host "$@"; }
test "$(run --entrypoint id "$IMAGE" -u)" = 10001
encoders=$(run --entrypoint ffmpeg "$IMAGE" -hide_banner -encoders 2>/dev/null)
grep -q libmp3lame <<<"$encoders"
run "$IMAGE" python3 -c 'import app.asgi, uvicorn, saq, socketio, pydub, asyncpg; print("imports ok")'
run -e APP_ENV=test -e DATABASE_URL=sqlite+aiosqlite:////tmp/quintet.db "$IMAGE" litestar --app app.asgi:create_app --help >/dev/null
# The image defaults to production, which must refuse the development secrets.
if run "$IMAGE" api >"$SMOKE_DIR/refused.log" 2>&1; then
  echo "the api started in production with default secrets" >&2
  exit 1
fi
grep -q "refusing to start in production" "$SMOKE_DIR/refused.log"
echo "ok: non-root, ffmpeg with MP3, imports, CLI, production refuses default secrets"

if [ -n "${SMOKE_DATABASE_URL:-}" ] && [ -n "${SMOKE_REDIS_URL:-}" ]; then
  log "api against $SMOKE_DATABASE_URL"
  port=${SMOKE_PORT:-18765}
  env=(-e APP_ENV=test -e "DATABASE_URL=$SMOKE_DATABASE_URL" -e "REDIS_URL=$SMOKE_REDIS_URL" -e "PORT=$port")
  run "${env[@]}" "$IMAGE" migrate
  container=$("$DOCKER" run -d --rm --network host --read-only --tmpfs /tmp "${env[@]}" "$IMAGE" api)
  for _ in $(seq 60); do
    [ "$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$container")" = healthy ] && break
    sleep 2
  done
  "$DOCKER" inspect -f 'health: {{.State.Health.Status}}' "$container"
  python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$port/health/ready').read().decode())"
  # WAV in, MP3 out through the image's ffmpeg, as a read-only non-root container.
  python3 - "$port" <<'PY'
import io, json, math, struct, sys, urllib.error, urllib.request, uuid, wave

base = f"http://127.0.0.1:{sys.argv[1]}"
try:
    request = urllib.request.Request(
        f"{base}/api/v1/audio/users", data=b'{"name": "smoke"}',
        headers={"Content-Type": "application/json"},
    )
    user = json.load(urllib.request.urlopen(request))
except urllib.error.HTTPError as exc:
    if exc.code == 404:
        print("audio: no audio API in this build, skipped")
        sys.exit(0)
    raise
samples = io.BytesIO()
with wave.open(samples, "wb") as wav:
    wav.setnchannels(1)
    wav.setsampwidth(2)
    wav.setframerate(44100)
    wav.writeframes(b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 44100))) for i in range(44100)
    ))
boundary = uuid.uuid4().hex
parts = [
    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, value in (("user_id", user["id"]), ("token", user["token"]))
]
parts.append(
    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="tone.wav"\r\n'
    f"Content-Type: audio/wav\r\n\r\n".encode() + samples.getvalue() + b"\r\n"
)
body = b"".join(parts) + f"--{boundary}--\r\n".encode()
request = urllib.request.Request(
    f"{base}/api/v1/audio/records", data=body,
    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
)
record = json.load(urllib.request.urlopen(request))
mp3 = urllib.request.urlopen(record["url"]).read()
assert mp3[:3] == b"ID3" or mp3[0] == 0xFF, mp3[:8]
print(f"audio: 1 s WAV ({len(samples.getvalue())} bytes) -> MP3 ({len(mp3)} bytes)")
PY
  "$DOCKER" stop "$container" >/dev/null
fi
