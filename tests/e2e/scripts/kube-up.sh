#!/usr/bin/env bash
# Start a throw-away etcd + kube-apiserver (v1.20.2) on loopback, on free ports.
# This file is the reference for the exact flags; the Rust e2e harness starts
# the same processes the same way.
#
# Usage: kube-up.sh [STATE_DIR]        (default: a new mktemp directory)
#        eval "$(kube-up.sh)"           sets KUBECONFIG in the current shell
#        kube-down.sh STATE_DIR [--purge]
#
# stdout (eval-able):
#   export KUBECONFIG=STATE_DIR/kubeconfig
#   export KUBE_E2E_STATE_DIR=STATE_DIR
#   ETCD_PID=...
#   KUBE_APISERVER_PID=...
# stderr: progress. STATE_DIR/env holds all values (URLs, ports, admin token).
#
# Environment:
#   KUBE_APISERVER   kube-apiserver binary (default: build-kube-apiserver.sh output)
#   ETCD             etcd binary (default: etcd on PATH)
#   KUBE_UP_TIMEOUT  seconds to wait for readiness (default 90)
#
# STATE_DIR layout: etcd/ (data), certs/ (apiserver serving cert, self-signed by
# the apiserver), sa.key + sa.pub (ServiceAccount token signing), tokens.csv
# (static admin token), kubeconfig, env, etcd.log, kube-apiserver.log, *.pid.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TIMEOUT=${KUBE_UP_TIMEOUT:-90}

log() { printf '[kube-up] %s\n' "$*" >&2; }
die() { printf '[kube-up] ERROR: %s\n' "$*" >&2; exit 1; }

for tool in openssl curl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

# --- Binaries -----------------------------------------------------------------
if [[ -z "${KUBE_APISERVER:-}" ]]; then
  KUBE_APISERVER=$("$SCRIPT_DIR/build-kube-apiserver.sh" | tail -n1)
fi
ETCD=${ETCD:-$(command -v etcd || true)}
[[ -x "$KUBE_APISERVER" ]] || die "kube-apiserver not executable: ${KUBE_APISERVER}"
[[ -n "$ETCD" && -x "$ETCD" ]] || die "etcd not found (apt-get install etcd-server, or run build-kube-apiserver.sh)"

# --- State directory ----------------------------------------------------------
if [[ $# -ge 1 ]]; then
  STATE=$1
  mkdir -p "$STATE"
else
  STATE=$(mktemp -d "${TMPDIR:-/tmp}/kube-e2e.XXXXXX")
fi
STATE=$(cd "$STATE" && pwd)
for name in etcd kube-apiserver; do
  if [[ -f "$STATE/$name.pid" ]] && kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null; then
    die "$name from ${STATE} is still running; run kube-down.sh ${STATE} first"
  fi
done
rm -rf "$STATE/etcd" "$STATE/certs"
mkdir -p "$STATE/etcd" "$STATE/certs"
chmod 700 "$STATE" "$STATE/etcd"

# --- Free loopback ports: etcd client, etcd peer, apiserver -----------------------
free_ports() {
  if command -v python3 >/dev/null 2>&1; then
    python3 - <<'EOF'
import socket
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
  else
    local ports=() p
    while ((${#ports[@]} < 3)); do
      p=$((20000 + RANDOM % 30000))
      [[ " ${ports[*]} " == *" $p "* ]] && continue
      # A refused connection means nobody listens there.
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then ports+=("$p"); fi
    done
    echo "${ports[*]}"
  fi
}
read -r ETCD_PORT ETCD_PEER_PORT API_PORT < <(free_ports)
ETCD_URL="http://127.0.0.1:${ETCD_PORT}"
ETCD_PEER_URL="http://127.0.0.1:${ETCD_PEER_PORT}"
API_URL="https://127.0.0.1:${API_PORT}"

# --- Credentials ------------------------------------------------------------------
openssl genrsa -out "$STATE/sa.key" 2048 2>/dev/null
openssl rsa -in "$STATE/sa.key" -pubout -out "$STATE/sa.pub" 2>/dev/null
ADMIN_TOKEN=$(openssl rand -hex 32)
# token,user,uid,"group1,group2"
printf '%s,admin,admin,system:masters\n' "$ADMIN_TOKEN" >"$STATE/tokens.csv"
chmod 600 "$STATE/sa.key" "$STATE/tokens.csv"

# --- Start processes ------------------------------------------------------------------
STARTED=()
cleanup_on_failure() {
  local rc=$?
  if ((rc != 0)) && ((${#STARTED[@]})); then
    log "start failed; stopping what was started"
    "$SCRIPT_DIR/kube-down.sh" "$STATE" >&2 || true
  fi
}
trap cleanup_on_failure EXIT

# start NAME CMD...: run CMD detached (own session, survives this script) with
# its output in STATE/NAME.log and its PID in STATE/NAME.pid.
start() {
  local name=$1
  shift
  # shellcheck disable=SC2016 # $$, $0 and $@ belong to the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$STATE/$name.pid" "$@" \
    </dev/null >"$STATE/$name.log" 2>&1 &
  for _ in $(seq 50); do
    [[ -s "$STATE/$name.pid" ]] && break
    sleep 0.1
  done
  [[ -s "$STATE/$name.pid" ]] || die "$name did not start"
  STARTED+=("$name")
}

# wait_for NAME CHECK_CMD...: until CHECK_CMD succeeds, the process dies or timeout.
wait_for() {
  local name=$1 deadline=$((SECONDS + TIMEOUT))
  shift
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null; then
      tail -n 30 "$STATE/$name.log" >&2 || true
      die "$name exited; see ${STATE}/${name}.log"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$STATE/$name.log" >&2 || true
      die "$name not ready after ${TIMEOUT}s; see ${STATE}/${name}.log"
    fi
    sleep 0.2
  done
}

log "starting etcd on ${ETCD_URL} (state ${STATE})"
ETCD_ARGS=(
  --name=default
  --data-dir="$STATE/etcd"
  --listen-client-urls="$ETCD_URL"
  --advertise-client-urls="$ETCD_URL"
  --listen-peer-urls="$ETCD_PEER_URL"
  --initial-advertise-peer-urls="$ETCD_PEER_URL"
  --initial-cluster="default=$ETCD_PEER_URL"
)
start etcd "$ETCD" "${ETCD_ARGS[@]}"
etcd_healthy() { curl -fsS "$ETCD_URL/health" | grep -q '"health":"true"'; }
wait_for etcd etcd_healthy

log "starting kube-apiserver on ${API_URL}"
APISERVER_ARGS=(
  --etcd-servers="$ETCD_URL"
  --secure-port="$API_PORT"
  --bind-address=127.0.0.1
  --advertise-address=127.0.0.1
  --insecure-port=0
  --cert-dir="$STATE/certs"
  --token-auth-file="$STATE/tokens.csv"
  --authorization-mode=RBAC
  --service-account-key-file="$STATE/sa.pub"
  --service-account-signing-key-file="$STATE/sa.key"
  --service-account-issuer=https://kubernetes.default.svc
  --service-cluster-ip-range=10.0.0.0/24
)
start kube-apiserver "$KUBE_APISERVER" "${APISERVER_ARGS[@]}"
apiserver_ready() {
  [[ "$(curl -ksS --max-time 5 -H "Authorization: Bearer ${ADMIN_TOKEN}" "$API_URL/readyz")" == ok ]]
}
wait_for kube-apiserver apiserver_ready

# --- kubeconfig ---------------------------------------------------------------------
# The apiserver generated a self-signed serving certificate (for 127.0.0.1,
# localhost, ...) and its CA into --cert-dir; apiserver.crt holds both, so it
# serves as the CA bundle.
CA_FILE="$STATE/certs/apiserver.crt"
[[ -s "$CA_FILE" ]] || die "no ${CA_FILE}"
CA_DATA=$(base64 -w0 <"$CA_FILE")
cat >"$STATE/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: ${API_URL}
    certificate-authority-data: ${CA_DATA}
users:
- name: admin
  user:
    token: ${ADMIN_TOKEN}
contexts:
- name: e2e
  context:
    cluster: e2e
    user: admin
    namespace: default
current-context: e2e
EOF
chmod 600 "$STATE/kubeconfig"
# The CA must verify the server (no insecure-skip-tls-verify).
curl -fsS --cacert "$CA_FILE" -H "Authorization: Bearer ${ADMIN_TOKEN}" "$API_URL/readyz" >/dev/null \
  || die "apiserver certificate does not verify against ${CA_FILE}"

ETCD_PID=$(cat "$STATE/etcd.pid")
KUBE_APISERVER_PID=$(cat "$STATE/kube-apiserver.pid")
cat >"$STATE/env" <<EOF
KUBECONFIG=$STATE/kubeconfig
KUBE_API_URL=$API_URL
KUBE_API_PORT=$API_PORT
KUBE_CA_FILE=$CA_FILE
KUBE_ADMIN_TOKEN=$ADMIN_TOKEN
ETCD_URL=$ETCD_URL
ETCD_PID=$ETCD_PID
KUBE_APISERVER_PID=$KUBE_APISERVER_PID
KUBE_APISERVER=$KUBE_APISERVER
EOF
chmod 600 "$STATE/env"

log "ready: ${API_URL} (etcd pid ${ETCD_PID}, kube-apiserver pid ${KUBE_APISERVER_PID})"
log "stop with: ${SCRIPT_DIR}/kube-down.sh ${STATE}"
printf 'export KUBECONFIG=%q\n' "$STATE/kubeconfig"
printf 'export KUBE_E2E_STATE_DIR=%q\n' "$STATE"
printf 'ETCD_PID=%s\n' "$ETCD_PID"
printf 'KUBE_APISERVER_PID=%s\n' "$KUBE_APISERVER_PID"
