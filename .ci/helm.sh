#!/usr/bin/env bash
# Offline checks of everything that deploys Quintet: the Helm charts, the rendered Kubernetes
# manifests, the Dockerfile and the GitHub workflows. No cluster, no Docker, no network
# beyond PyPI (and apt for shellcheck). Fails on the first problem.
#
#   bash .ci/helm.sh          every check (a minute or so once the tools venv exists)
#   bash .ci/helm.sh setup    only create the tools venv (.ci/.venv-helm) and vendor the subcharts
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.ci/.venv-helm
REQUIREMENTS=.ci/requirements-helm.txt
KUBE_VERSION=1.37.0
PY="$VENV/bin/python"

log() { printf '\n== helm: %s\n' "$*"; }

log "tools venv ($VENV)"
if [ ! -x "$PY" ] || ! cmp -s "$REQUIREMENTS" "$VENV/.requirements"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  # (the grep drops pip's notes about this machine's unused local index entries)
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  cp "$REQUIREMENTS" "$VENV/.requirements"
fi
"$PY" -c 'import helm_python; print("helm SDK", helm_python.helm_sdk_version())'

log "subcharts (file:// dependencies, vendored into helm/quintet/charts)"
"$PY" .ci/helm_charts.py deps

if [ "${1:-}" = "setup" ]; then
  exit 0
fi

if ! command -v shellcheck >/dev/null; then
  log "shellcheck (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends shellcheck >/dev/null
fi

log "helm lint --strict"
"$PY" .ci/helm_charts.py lint

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/manifests"

log "render (schema-checked): default, production-like, Gateway API and kind values"
"$PY" .ci/helm_charts.py render -o "$work/manifests/default.yaml"
"$PY" .ci/helm_charts.py render -f helm/quintet/ci/production-values.yaml -o "$work/manifests/production.yaml"
"$PY" .ci/helm_charts.py render -f helm/quintet/ci/gateway-values.yaml -o "$work/manifests/gateway.yaml"
"$PY" .ci/helm_charts.py render -f k8s/kind-values.yaml -o "$work/manifests/kind.yaml"

log "kubernetes-validate --strict (Kubernetes $KUBE_VERSION)"
# It exits 0 on unknown versions and kinds and only warns: any line it prints fails the run,
# except the two CRD kinds we render on purpose (Gateway API HTTPRoute and prometheus-operator
# ServiceMonitor, checked by .ci/chart_checks.py and tests/deploy/test_helm.py instead).
report=$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$KUBE_VERSION" "$work"/manifests/*.yaml 2>&1) || {
  printf '%s\n' "$report"
  exit 1
}
unexpected=$(printf '%s\n' "$report" | grep -v '^$' \
  | grep -v "gateway.yaml Couldn't find schema for kind HTTPRoute with api version gateway.networking.k8s.io/v1 for kubernetes version" \
  | grep -v "gateway.yaml Couldn't find schema for kind ServiceMonitor with api version monitoring.coreos.com/v1 for kubernetes version" || true)
if [ -n "$unexpected" ]; then
  printf '%s\n' "$unexpected"
  echo "kubernetes-validate reported problems (warnings count as failures here)"
  exit 1
fi
printf '%s\n' "$report" | grep -q 'HTTPRoute' || { echo "the Gateway API render lost its HTTPRoute"; exit 1; }
printf '%s\n' "$report" | grep -q 'ServiceMonitor' || { echo "the Gateway API render lost its ServiceMonitor"; exit 1; }
for file in "$work"/manifests/*.yaml; do
  echo "kubernetes-validate: $(basename "$file"): $(grep -c '^kind:' "$file") manifests, nothing reported"
done

log "behavioural checks (.ci/chart_checks.py): labels, probe routes, ports, selectors, NetworkPolicy reachability"
# The routes come from the app's own router, so the project's venv (make setup) is needed.
routes=()
if [ -x .venv/bin/python ]; then
  .venv/bin/python .ci/chart_checks.py routes >"$work/routes.json"
  routes=(--routes "$work/routes.json")
elif [ "${CI:-}" = true ]; then
  echo "no .venv: run make setup first (the probe paths are checked against the app's routes)"
  exit 1
else
  echo "no .venv (make setup): probe paths are not compared with the app's routes this time"
fi
"$PY" .ci/helm_charts.py check "${routes[@]}"

log "chart READMEs match the # -- comments of values.yaml (.ci/chart_docs.py)"
"$PY" .ci/chart_docs.py --check

log "checkov (kubernetes on the rendered manifests, dockerfile, github_actions)"
# One run per framework: given -d and -f together, checkov 3.3 silently drops the -f target.
CHECKOV=("$VENV/bin/checkov" --config-file .ci/checkov.yaml)
"${CHECKOV[@]}" --framework kubernetes -d "$work/manifests"
if [ -f docker/Dockerfile ]; then
  # checkov does not expand build arguments, so `FROM ${PYTHON_IMAGE}` reads as an untagged
  # image (CKV_DOCKER_7). Scan a copy with the global ARG defaults written into FROM lines:
  # that is the base image a plain `docker build` uses.
  mkdir -p "$work/docker"
  "$PY" - docker/Dockerfile "$work/docker/Dockerfile" <<'RESOLVE'
import re, sys
source, target = sys.argv[1], sys.argv[2]
defaults, out, seen_from = {}, [], False
for line in open(source).read().splitlines():
    if not seen_from and (match := re.match(r"\s*ARG\s+(\w+)=(\S+)", line)):
        defaults[match[1]] = match[2].strip("\"'")
    if re.match(r"\s*FROM\s", line, re.I):
        seen_from = True
        line = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults.get(m[1] or m[2], m[0]), line)
    out.append(line)
open(target, "w").write("\n".join(out) + "\n")
RESOLVE
  "${CHECKOV[@]}" --framework dockerfile -f "$work/docker/Dockerfile"
else
  echo "docker/Dockerfile not present yet: dockerfile framework skipped"
fi
if [ -d .github/workflows ]; then
  "${CHECKOV[@]}" --framework github_actions -d .github
fi

if [ -d .github/workflows ]; then
  log "actionlint (with shellcheck) and check-jsonschema on .github/workflows"
  "$VENV/bin/actionlint" -no-color -shellcheck "$(command -v shellcheck)" .github/workflows/*.yml
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml
fi

log "shellcheck on the deployment scripts"
shopt -s nullglob
shellcheck -x .ci/helm.sh k8s/*.sh scripts/*.sh

log "ok"
