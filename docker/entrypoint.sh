#!/bin/sh
# Selects what this container runs: api (default), worker, bot or migrate.
# Anything else is executed as given, e.g. `docker compose run --rm api sh`.
set -eu

LITESTAR="litestar --app app.asgi:create_app"
role="${1:-api}"
[ "$#" -gt 0 ] && shift

case "$role" in
  api)
    # WEB_CONCURRENCY > 1 runs several processes in one container; Socket.IO long-polling
    # then needs sticky sessions that uvicorn cannot give, so prefer more replicas behind
    # Nginx (ip_hash) to more workers. FORWARDED_ALLOW_IPS is '*' because only Nginx can
    # reach the api on the compose network; narrow it where that does not hold.
    exec uvicorn app.asgi:create_asgi --factory \
      --host 0.0.0.0 --port "${PORT:-8000}" \
      --workers "${WEB_CONCURRENCY:-1}" \
      --proxy-headers --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-*}" \
      --timeout-graceful-shutdown "${GRACEFUL_SHUTDOWN_SECONDS:-20}" \
      --no-server-header \
      "$@"
    ;;
  worker)
    # shellcheck disable=SC2086 # LITESTAR is a command line split on purpose
    exec $LITESTAR workers run "$@"
    ;;
  bot)
    # shellcheck disable=SC2086
    exec $LITESTAR telegram poll "$@"
    ;;
  migrate)
    # shellcheck disable=SC2086
    exec $LITESTAR database upgrade --no-prompt "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
