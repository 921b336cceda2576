#!/usr/bin/env bash
# Validates the deployment artifacts under deploy/:
# - every Kubernetes manifest against the API's schemas with
#   `kubernetes-validate --strict` (PyPI; installed into a venv under
#   target/, idempotently), for the oldest and newest Kubernetes versions
#   we support;
# - the audit policy and the audit webhook kubeconfig, which have no API
#   schema, against their documented shapes (deploy/check_audit_files.py);
# - the vigil.toml embedded in the ConfigMap, with `vigil config check`
#   (plugins included; the binary given as $VIGIL, default target/release/vigil);
# - the systemd unit with `systemd-analyze verify`, when systemd-analyze exists.
# Exits non-zero on the first invalid artifact.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly KV_VERSION=1.37.0
readonly K8S_VERSIONS=(1.30 1.37)
venv="$root/target/deploy-venv"
vigil=${VIGIL:-$root/target/release/vigil}

log() { printf 'validate-deploy: %s\n' "$*" >&2; }

if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$KV_VERSION"; then
    log "installing kubernetes-validate $KV_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KV_VERSION"
fi

cd "$root/deploy/kubernetes"
manifests=(namespace.yaml rbac.yaml rbac-response.yaml service.yaml configmap.yaml daemonset.yaml
    fleet-configmap.yaml fleet-deployment.yaml nats-configmap.yaml nats-statefulset.yaml
    nats-service.yaml nats-stream-job.yaml)
for v in "${K8S_VERSIONS[@]}"; do
    log "kubernetes-validate --strict -k $v ${manifests[*]}"
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "${manifests[@]}"
done

log "audit policy and webhook kubeconfig"
"$venv/bin/python" "$root/deploy/check_audit_files.py" audit-policy.yaml audit-webhook-kubeconfig.yaml

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The NATS password files exist only in the pods (Secret vigil-nats): the
# check reads stand-ins, as the systemd unit's check points at the binary.
mkdir -p "$tmp/nats"
echo stand-in >"$tmp/nats/node-password"
echo stand-in >"$tmp/nats/fleet-password"
for cm in configmap.yaml fleet-configmap.yaml; do
    log "vigil.toml of $cm ($vigil config check, plugins included)"
    "$venv/bin/python" - "$cm" "$tmp/vigil.toml" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
open(sys.argv[2], "w").write(doc["data"]["vigil.toml"])
PY
    sed -i "s|/etc/vigil/nats/|$tmp/nats/|g" "$tmp/vigil.toml"
    "$vigil" config check "$tmp/vigil.toml" >&2
done

if command -v systemd-analyze >/dev/null 2>&1; then
    log "systemd-analyze verify deploy/systemd/vigil.service"
    # verify wants the executables to exist: point them at the built binary.
    sed "s|/usr/local/bin/vigil|$vigil|g" "$root/deploy/systemd/vigil.service" >"$tmp/vigil.service"
    systemd-analyze verify "$tmp/vigil.service"
else
    log "systemd-analyze not found: the unit is not verified"
fi
log "all deployment artifacts are valid"
