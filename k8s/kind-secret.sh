#!/bin/sh
# The application Secret for the kind install (k8s/kind-values.yaml: existingSecret), made
# from random values at install time: production refuses secrets published in the
# repository, and kind runs with APP_ENV=production. Idempotent: an existing Secret is kept,
# so `skaffold dev` rebuilds and repeated installs do not log everybody out.
#   sh k8s/kind-secret.sh [namespace] [secret-name]
# Read the admin key back with:
#   kubectl -n quintet get secret quintet-kind -o jsonpath='{.data.ADMIN_API_KEY}' | base64 -d
set -eu
namespace="${1:-quintet}"
name="${2:-quintet-kind}"

if [ "$namespace" = quintet ]; then
  kubectl apply -f "$(dirname "$0")/namespace.yaml" >/dev/null
else
  kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
fi
if kubectl -n "$namespace" get secret "$name" >/dev/null 2>&1; then
  echo "secret $namespace/$name exists: kept"
  exit 0
fi
kubectl -n "$namespace" create secret generic "$name" \
  --from-literal=SECRET_KEY="$(openssl rand -hex 32)" \
  --from-literal=ADMIN_API_KEY="$(openssl rand -hex 20)" >/dev/null
echo "secret $namespace/$name created from random values"
