#!/usr/bin/env bash
# Smoke test of the real kube-apiserver used by the e2e tests: builds/uses the
# cached binary, brings up etcd + kube-apiserver (kube-up.sh), checks the API
# features the operator relies on, and always tears down (kube-down.sh).
#
# Usage: smoke.sh            exit status 0 iff every check passed
#
# Environment:
#   KUBECTL            kubectl binary (default: kubectl on PATH; any version works,
#                      skew warnings are harmless)
#   SMOKE_KEEP_STATE=1 keep the state directory (logs) even on success
#
# Prints one "PASS: ..." or "FAIL: ..." line per check on stdout.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBECTL=${KUBECTL:-kubectl}
command -v "$KUBECTL" >/dev/null 2>&1 || { echo "kubectl not found" >&2; exit 2; }

STATE=$(mktemp -d "${TMPDIR:-/tmp}/kube-smoke.XXXXXX")
FAILED=0
PASSED=0

teardown() {
  local rc=$?
  if ((rc == 0 && FAILED == 0)) && [[ "${SMOKE_KEEP_STATE:-0}" != 1 ]]; then
    "$SCRIPT_DIR/kube-down.sh" "$STATE" --purge || true
  else
    "$SCRIPT_DIR/kube-down.sh" "$STATE" || true
    echo "state and logs kept in ${STATE}" >&2
  fi
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

UP=$("$SCRIPT_DIR/kube-up.sh" "$STATE")
eval "$UP"
export KUBECONFIG

OUT="$STATE/check.out"
k() { "$KUBECTL" "$@"; }

# check DESCRIPTION FUNCTION: run FUNCTION (output to $OUT), print PASS/FAIL.
check() {
  local desc=$1
  shift
  if "$@" >"$OUT" 2>&1; then
    echo "PASS: ${desc}"
    PASSED=$((PASSED + 1))
  else
    echo "FAIL: ${desc}"
    sed 's/^/    | /' "$OUT"
    FAILED=$((FAILED + 1))
  fi
}

# retry SECONDS CMD...: rerun CMD until it succeeds (e.g. while discovery or
# the RBAC cache catches up).
retry() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

expect_contains() { # HAYSTACK NEEDLE
  if [[ "$1" != *"$2"* ]]; then
    printf 'expected to find %s in:\n%s\n' "$2" "$1"
    return 1
  fi
}

# --- (a) version -----------------------------------------------------------------
check_version() {
  local v
  v=$(k get --raw /version)
  echo "$v"
  expect_contains "$v" '"gitVersion": "v1.20.2"'
}

# --- (b) CRD + custom resource with an empty string -----------------------------
create_crd() {
  k apply -f - <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: cratedbs.cloud.crate.io
spec:
  group: cloud.crate.io
  scope: Namespaced
  names:
    kind: CrateDB
    listKind: CrateDBList
    plural: cratedbs
    singular: cratedb
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cluster:
                type: object
                properties:
                  restoreSnapshot:
                    type: object
                    properties:
                      snapshot:
                        type: string
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
EOF
  k wait --for condition=established --timeout=60s crd/cratedbs.cloud.crate.io
}

create_cr_empty_string() {
  cat >"$STATE/cr.yaml" <<'EOF'
apiVersion: cloud.crate.io/v1
kind: CrateDB
metadata:
  name: smoke
spec:
  cluster:
    restoreSnapshot:
      snapshot: ""
EOF
  # Discovery of the new resource may lag a moment behind "Established".
  retry 30 k get cratedbs.cloud.crate.io >/dev/null 2>&1 || { echo "cratedbs not discoverable"; return 1; }
  k create -f "$STATE/cr.yaml" || return 1
  snapshot_is ""
}

snapshot_is() {
  local got
  got=$(k get cratedb smoke -o jsonpath='{.spec.cluster.restoreSnapshot}')
  echo "restoreSnapshot = ${got}"
  [[ "$got" == "{\"snapshot\":\"$1\"}" ]]
}

schema_rejects_wrong_type() {
  local out
  if out=$(k create -f - 2>&1 <<'EOF'
apiVersion: cloud.crate.io/v1
kind: CrateDB
metadata:
  name: smoke-bad
spec:
  cluster:
    restoreSnapshot:
      snapshot: 42
EOF
  ); then
    echo "$out"
    echo "a CR with snapshot: 42 was accepted"
    return 1
  fi
  echo "$out"
  expect_contains "$out" 'must be of type string'
}

# --- (c) JSON patch and merge patch (no status subresource) ------------------------
json_patch() {
  k patch cratedb smoke --type=json \
    -p '[{"op":"replace","path":"/spec/cluster/restoreSnapshot/snapshot","value":"snap-1"}]'
  snapshot_is snap-1
}

merge_patch() {
  k patch cratedb smoke --type=merge \
    -p '{"spec":{"cluster":{"restoreSnapshot":{"snapshot":""}}},"status":{"phase":"Restored","anything":{"x":1}}}'
  snapshot_is "" || return 1
  local phase
  phase=$(k get cratedb smoke -o jsonpath='{.status.phase}')
  echo "status.phase = ${phase}"
  [[ "$phase" == Restored ]]
}

# --- (d) Lease create conflict ------------------------------------------------------
lease_conflict() {
  cat >"$STATE/lease.yaml" <<'EOF'
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: smoke-lock
spec:
  holderIdentity: smoke-1
  leaseDurationSeconds: 30
EOF
  k create -f "$STATE/lease.yaml" || return 1
  local out
  if out=$(k create -f "$STATE/lease.yaml" 2>&1); then
    echo "$out"
    echo "second create succeeded"
    return 1
  fi
  echo "$out"
  expect_contains "$out" 'AlreadyExists'
}

# --- (e) TokenRequest + RBAC ----------------------------------------------------------
SA_TOKEN=""
token_request() {
  k create serviceaccount smoke-sa || return 1
  local resp
  resp=$(printf '%s' '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":600}}' \
    | k create --raw /api/v1/namespaces/default/serviceaccounts/smoke-sa/token -f -) || return 1
  SA_TOKEN=$(printf '%s' "$resp" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  echo "token length ${#SA_TOKEN}"
  [[ -n "$SA_TOKEN" ]]
}

rbac_denies_secret() {
  [[ -n "$SA_TOKEN" ]] || { echo "no token"; return 1; }
  k create secret generic smoke-secret --from-literal=k=v || return 1
  local out
  if out=$(k --token="$SA_TOKEN" get secret smoke-secret 2>&1); then
    echo "$out"
    echo "ServiceAccount token could read the Secret without a Role"
    return 1
  fi
  echo "$out"
  expect_contains "$out" 'Forbidden' \
    && expect_contains "$out" 'User "system:serviceaccount:default:smoke-sa" cannot get resource "secrets"'
}

rbac_role_allows_secret() {
  [[ -n "$SA_TOKEN" ]] || { echo "no token"; return 1; }
  k create role smoke-read-secret --verb=get --resource=secrets --resource-name=smoke-secret || return 1
  k create rolebinding smoke-read-secret --role=smoke-read-secret --serviceaccount=default:smoke-sa || return 1
  retry 15 k --token="$SA_TOKEN" get secret smoke-secret
}

check "(a) /version reports v1.20.2" check_version
check "(b) CRD cratedbs.cloud.crate.io created and Established" create_crd
check "(b) CR with restoreSnapshot.snapshot: \"\" accepted (fix 3)" create_cr_empty_string
check "(b) schema still rejects snapshot: 42" schema_rejects_wrong_type
check "(c) JSON patch on the CR" json_patch
check "(c) merge patch on the CR (spec and status, no status subresource)" merge_patch
check "(d) second Lease create gives AlreadyExists" lease_conflict
check "(e) TokenRequest for a ServiceAccount returns a token" token_request
check "(e) RBAC denies the SA token reading a Secret without a Role" rbac_denies_secret
check "(e) RBAC allows it once a Role + RoleBinding exist" rbac_role_allows_secret

echo "smoke: ${PASSED} passed, ${FAILED} failed"
((FAILED == 0))
