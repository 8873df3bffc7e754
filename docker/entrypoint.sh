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
    # Nginx (ip_hash) to more workers.
    # --no-proxy-headers: uvicorn must not take the client address or scheme from
    # X-Forwarded-* (with --forwarded-allow-ips '*' anyone who reaches the port could pick
    # their address and dodge the login rate limits). The app applies those headers itself,
    # only from the peers listed in TRUSTED_PROXIES (compose: the nginx network).
    # --timeout-keep-alive: an idle keep-alive connection must be closed by the proxy, never
    # by uvicorn under it (a request the proxy sends as uvicorn closes fails with a 502).
    # ingress-nginx keeps idle upstream connections for 60 s (upstream-keepalive-timeout);
    # uvicorn's default is 5 s. KEEP_ALIVE_SECONDS must stay above the proxy's.
    exec uvicorn app.asgi:create_asgi --factory \
      --host 0.0.0.0 --port "${PORT:-8000}" \
      --workers "${WEB_CONCURRENCY:-1}" \
      --no-proxy-headers \
      --timeout-keep-alive "${KEEP_ALIVE_SECONDS:-75}" \
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
