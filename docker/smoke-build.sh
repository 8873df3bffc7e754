#!/usr/bin/env bash
# `make image-smoke`: build the real docker/Dockerfile and run the image against this
# machine's PostgreSQL and Redis, where no image can be pulled (no registry access, as on the
# development and CI machines here). As root:
#
#   1. start Debian's dockerd (package docker.io) on a private socket, without bridge
#      networking or iptables (the sandbox has neither; builds and containers use the host
#      network), niced so a build does not starve the machine;
#   2. make a Debian base with debootstrap and `docker import` (cached, see below) and build
#      the image on it through the PYTHON_IMAGE build argument;
#   3. check the image (non-root, ffmpeg with MP3, production refuses default secrets), then
#      run it as migrate, api and worker with --network host --read-only --cap-drop ALL and
#      production settings (fresh random SECRET_KEY/ADMIN_API_KEY, COOKIE_SECURE=false for
#      plain http), and run scripts/smoke.py against the api: board register/login/post with
#      CSRF, a Socket.IO message over WebSocket, a WAV -> MP3 upload and download, ...
#
#   docker/smoke-build.sh              # everything (make image-smoke)
#   docker/smoke-build.sh --base-only  # only start the engine and make the cached base
#
# Exit status: 0 passed, 1 the image failed (build, checks or smoke), 77 skipped because this
# machine cannot run a Docker engine or make the base (the reason is printed): .ci/run fails
# on 1 and reports 77 as a skip.
#
# Cache (SMOKE_CACHE, /var/cache/quintet-image-smoke): the debootstrap base as a tarball
# keyed by a hash of what goes into it (suite, mirror, packages, extra CAs), and the engine's
# data root, so a warm run reuses the base image, the dependency layer and uv's download
# cache and only rebuilds the code layers. `rm -rf /var/cache/quintet-image-smoke` forgets it.
#
# The stand-in base carries Debian's python3 (3.13 on trixie) in /usr instead of the official
# image's 3.14 in /usr/local; the Dockerfile only says `python3`, and uv.lock covers both.
#
# Environment: SUITE (trixie), MIRROR, EXTRA_CA_DIR (/usr/local/share/ca-certificates: CAs
# of this machine to trust during the build, e.g. an HTTPS-intercepting egress proxy's),
# SMOKE_CACHE, SMOKE_PG (postgresql://postgres@127.0.0.1:5432: a server where the smoke may
# create its database), SMOKE_DB (quintet_image_smoke: dropped and created anew), SMOKE_REDIS_URL
# (redis://127.0.0.1:6379/11: this db is flushed), SMOKE_PORT (a free one), SMOKE_PYTHON (.venv's
# python, for scripts/smoke.py), SMOKE_BASE_TIMEOUT (1200: seconds debootstrap may take before
# the run is skipped), SMOKE_READY_SECONDS (300: how long the api may take to become
# ready on a busy machine), KEEP_ENGINE=1 to leave the engine running (DOCKER_HOST is printed).
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=${SUITE:-trixie}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
EXTRA_CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
SMOKE_CACHE=${SMOKE_CACHE:-/var/cache/quintet-image-smoke}
SMOKE_PG=${SMOKE_PG:-postgresql://postgres@127.0.0.1:5432}
SMOKE_DB=${SMOKE_DB:-quintet_image_smoke}
SMOKE_REDIS_URL=${SMOKE_REDIS_URL:-redis://127.0.0.1:6379/11}
# A free port of this machine unless given (the containers share the host's network).
SMOKE_PORT=${SMOKE_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
SMOKE_PYTHON=${SMOKE_PYTHON:-.venv/bin/python}
SMOKE_READY_SECONDS=${SMOKE_READY_SECONDS:-300}
BASE_PACKAGES=python3,python3-venv,ca-certificates
# Bump when the way the base is made changes, so every cache made the old way is replaced.
BASE_RECIPE=2
IMAGE=quintet:smoke
RUN_DIR=/run/quintet-image-smoke
SOCKET=$RUN_DIR/docker.sock
export DOCKER_HOST=unix://$SOCKET

base_only=0
if [ "${1:-}" = --base-only ]; then
  base_only=1
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--base-only]" >&2
  exit 2
fi
started=$(date +%s)
log() { printf '\n== [%4ss] %s\n' "$(($(date +%s) - started))" "$*"; }
skip() {
  echo "image-smoke SKIPPED: $*" >&2
  exit 77
}
fail() {
  echo "image-smoke FAILED: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || skip "needs root (dockerd, debootstrap)"
# Debian's docker.io client (20.10) builds with BuildKit on its own; a newer client found
# first on PATH would need the buildx plugin, which Debian does not ship with docker.io.
DOCKER=/usr/bin/docker
for tool in debootstrap dockerd "$DOCKER" psql redis-cli; do
  command -v "$tool" >/dev/null || skip "needs $tool (apt-get install docker.io debootstrap postgresql-client redis-tools)"
done
[ -x "$SMOKE_PYTHON" ] || fail "no $SMOKE_PYTHON for scripts/smoke.py (run make setup)"

mkdir -p "$SMOKE_CACHE" "$RUN_DIR"
# One run at a time on this machine: the engine, its data root and the smoke database are
# shared between runs.
exec 9>"$SMOKE_CACHE/lock"
flock -w 1800 9 || skip "another image smoke held $SMOKE_CACHE/lock for 30 minutes"

# --- engine ---------------------------------------------------------------------------------
log "docker engine on $SOCKET"
engine_pid=""
containers=()
cleanup() {
  status=$?
  for container in "${containers[@]}"; do
    if [ "$status" != 0 ]; then
      echo "--- last log lines of $container" >&2
      "$DOCKER" logs --tail 40 "$container" >&2 2>&1 || true
    fi
    "$DOCKER" rm -f "$container" >/dev/null 2>&1 || true
  done
  rm -f "$SMOKE_CACHE/run.env"  # this run's secrets
  if [ -n "$engine_pid" ] && [ "${KEEP_ENGINE:-0}" != 1 ]; then
    kill "$engine_pid" 2>/dev/null && wait "$engine_pid" 2>/dev/null || true
  fi
  exit "$status"
}
trap cleanup EXIT
if ! "$DOCKER" info >/dev/null 2>&1; then
  # nice 10: BuildKit and the containers inherit it, so the build yields to interactive work.
  nice -n 10 dockerd --host "$DOCKER_HOST" --bridge=none --iptables=false --ip6tables=false \
    --data-root "$SMOKE_CACHE/docker" --exec-root "$RUN_DIR/exec" \
    --pidfile "$RUN_DIR/dockerd.pid" >"$SMOKE_CACHE/dockerd.log" 2>&1 &
  engine_pid=$!
  for _ in $(seq 120); do
    "$DOCKER" info >/dev/null 2>&1 && break
    kill -0 "$engine_pid" 2>/dev/null || break
    sleep 1
  done
  if ! "$DOCKER" info >/dev/null 2>&1; then
    tail -n 20 "$SMOKE_CACHE/dockerd.log" >&2
    engine_pid=""
    skip "dockerd did not start on this machine (log: $SMOKE_CACHE/dockerd.log)"
  fi
fi
"$DOCKER" version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'

# --- base image -----------------------------------------------------------------------------
ca_files=()
if compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
  ca_files=("$EXTRA_CA_DIR"/*.crt)
fi
key=$(
  {
    echo "recipe=$BASE_RECIPE suite=$SUITE mirror=$MIRROR packages=$BASE_PACKAGES"
    [ ${#ca_files[@]} -eq 0 ] || cat "${ca_files[@]}"
  } | sha256sum | cut -c1-16
)
BASE_IMAGE=quintet-smoke-base:$key
tarball=$SMOKE_CACHE/base-$key.tar
log "base image $BASE_IMAGE"
if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  if [ ! -s "$tarball" ]; then
    rootfs=$SMOKE_CACHE/rootfs-$key
    rm -rf "$rootfs"
    if ! timeout "${SMOKE_BASE_TIMEOUT:-1200}" nice -n 10 debootstrap --variant=minbase --include="$BASE_PACKAGES" \
      "$SUITE" "$rootfs" "$MIRROR" >"$SMOKE_CACHE/debootstrap.log" 2>&1; then
      tail -n 20 "$SMOKE_CACHE/debootstrap.log" >&2
      rm -rf "$rootfs"
      skip "debootstrap of $SUITE from $MIRROR failed or took over ${SMOKE_BASE_TIMEOUT:-1200}s (log: $SMOKE_CACHE/debootstrap.log)"
    fi
    # Extra CAs of this machine go into the base, and SSL_CERT_FILE (set on import) makes uv
    # and pip use the system store, so the build reaches PyPI through such a proxy.
    if [ ${#ca_files[@]} -gt 0 ]; then
      cp "${ca_files[@]}" "$rootfs/usr/local/share/ca-certificates/"
      chroot "$rootfs" update-ca-certificates >/dev/null
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" --numeric-owner -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$rootfs"
  fi
  # Bases made from other inputs are stale now.
  find "$SMOKE_CACHE" -maxdepth 1 -name 'base-*.tar' ! -name "base-$key.tar" -delete
  bundle=/etc/ssl/certs/ca-certificates.crt
  "$DOCKER" import \
    --change "ENV SSL_CERT_FILE=$bundle PIP_CERT=$bundle REQUESTS_CA_BUNDLE=$bundle" \
    "$tarball" "$BASE_IMAGE" >/dev/null
fi
"$DOCKER" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$BASE_IMAGE"
if [ "$base_only" = 1 ]; then
  log "base ready"
  exit 0
fi

# --- build ----------------------------------------------------------------------------------
log "build $IMAGE from docker/Dockerfile"
DOCKER_BUILDKIT=1 "$DOCKER" build --network host --progress plain \
  --build-arg "PYTHON_IMAGE=$BASE_IMAGE" \
  -f docker/Dockerfile -t "$IMAGE" . >"$SMOKE_CACHE/build.log" 2>&1 ||
  { tail -n 40 "$SMOKE_CACHE/build.log" >&2; fail "docker build (log: $SMOKE_CACHE/build.log)"; }
grep -E '^#[0-9]+ (\[|CACHED|DONE)' "$SMOKE_CACHE/build.log" | grep -E '\[|CACHED' | tail -n 30 || true
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
base_size=$("$DOCKER" image inspect -f '{{.Size}}' "$BASE_IMAGE")
echo "image $IMAGE: $((size / 1000000)) MB (base $((base_size / 1000000)) MB)"
"$DOCKER" history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" | cut -c1-110 | head -n 12
# Old builds of the tag and superseded layers: keep the data root from growing run by run.
"$DOCKER" image prune -f >/dev/null
"$DOCKER" builder prune -f --keep-storage 6gb >/dev/null 2>&1 || true

# --- inside the image -----------------------------------------------------------------------
log "inside the image"
locked=(--network host --read-only --cap-drop ALL --security-opt no-new-privileges --tmpfs /tmp --init)
run() { "$DOCKER" run --rm "${locked[@]}" "$@"; }
[ "$(run --entrypoint id "$IMAGE" -u)" = 10001 ] || fail "the image does not run as uid 10001"
encoders=$(run --entrypoint ffmpeg "$IMAGE" -hide_banner -encoders 2>/dev/null) ||
  fail "ffmpeg does not run in the image"
grep -q libmp3lame <<<"$encoders" || fail "ffmpeg in the image cannot encode MP3"
if run -e PORT="$SMOKE_PORT" "$IMAGE" api >"$SMOKE_CACHE/refused.log" 2>&1; then
  fail "the api started in production with the default secrets"
fi
grep -q "refusing to start in production" "$SMOKE_CACHE/refused.log" ||
  { cat "$SMOKE_CACHE/refused.log" >&2; fail "the api did not say why it refused to start"; }
echo "ok: uid 10001, ffmpeg with libmp3lame, production refuses the default secrets"

# --- migrate, api and worker against this machine's PostgreSQL and Redis --------------------
log "database $SMOKE_DB and Redis $SMOKE_REDIS_URL"
psql "$SMOKE_PG/postgres" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $SMOKE_DB WITH (FORCE)" \
  -c "CREATE DATABASE $SMOKE_DB" || skip "PostgreSQL at $SMOKE_PG does not answer"
redis-cli -u "$SMOKE_REDIS_URL" flushdb >/dev/null || skip "Redis at $SMOKE_REDIS_URL does not answer"
secret() { head -c 36 /dev/urandom | base64 | tr '+/' '-_'; }
admin_key=$(secret)
env_file=$SMOKE_CACHE/run.env
(
  umask 077
  cat >"$env_file" <<EOF
APP_ENV=production
DATABASE_URL=${SMOKE_PG/postgresql:/postgresql+asyncpg:}/$SMOKE_DB
REDIS_URL=$SMOKE_REDIS_URL
SECRET_KEY=$(secret)
ADMIN_API_KEY=$admin_key
PUBLIC_BASE_URL=http://127.0.0.1:$SMOKE_PORT
COOKIE_SECURE=false
PORT=$SMOKE_PORT
TRIVIA_API_URL=http://127.0.0.1:9/api
LOG_LEVEL=INFO
EOF
)
app() { "$DOCKER" run "${locked[@]}" --env-file "$env_file" "$@"; }

log "migrate"
app --rm --name quintet-smoke-migrate "$IMAGE" migrate >"$SMOKE_CACHE/migrate.log" 2>&1 ||
  { tail -n 30 "$SMOKE_CACHE/migrate.log" >&2; fail "the migrate role"; }
echo "ok: migrations applied to $SMOKE_DB"

log "api and worker"
for role in api worker; do
  "$DOCKER" rm -f "quintet-smoke-$role" >/dev/null 2>&1 || true
  containers+=("quintet-smoke-$role")
  app -d --name "quintet-smoke-$role" "$IMAGE" "$role" >/dev/null
done
url=http://127.0.0.1:$SMOKE_PORT
deadline=$(($(date +%s) + SMOKE_READY_SECONDS))
until "$SMOKE_PYTHON" -c "import httpx, sys; sys.exit(httpx.get('$url/health/ready', timeout=5).status_code != 200)" 2>/dev/null; do
  for role in api worker; do
    [ "$("$DOCKER" inspect -f '{{.State.Running}}' "quintet-smoke-$role")" = true ] ||
      fail "the $role container exited"
  done
  [ "$(date +%s)" -lt "$deadline" ] || fail "the api was not ready after ${SMOKE_READY_SECONDS}s"
  sleep 2
done
echo "ok: api ready on $url"

log "scripts/smoke.py $url"
SMOKE_ADMIN_API_KEY=$admin_key "$SMOKE_PYTHON" scripts/smoke.py "$url" --timeout 60 ||
  fail "scripts/smoke.py against the image"
for role in api worker; do
  [ "$("$DOCKER" inspect -f '{{.State.Running}}' "quintet-smoke-$role")" = true ] ||
    fail "the $role container exited during the smoke"
done
# The worker consumes the queue of this Redis db: SAQ writes its worker_info there every few
# seconds while it runs (later on a busy machine, hence the wait).
deadline=$(($(date +%s) + SMOKE_READY_SECONDS))
until [ -n "$(redis-cli -u "$SMOKE_REDIS_URL" --scan --pattern 'saq:*worker_info:*')" ]; do
  [ "$("$DOCKER" inspect -f '{{.State.Running}}' quintet-smoke-worker)" = true ] ||
    fail "the worker container exited"
  [ "$(date +%s)" -lt "$deadline" ] ||
    fail "the worker never registered with the queue in $SMOKE_REDIS_URL"
  sleep 2
done
echo "ok: api and worker still running, the worker registered with the queue"

log "image-smoke passed in $(($(date +%s) - started))s; image $((size / 1000000)) MB"
