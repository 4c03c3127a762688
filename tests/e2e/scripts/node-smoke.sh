#!/usr/bin/env bash
# Smoke test of the single-node cluster: node-up.sh, checks with real Pods, always node-down.sh
# and node-check-clean.sh (a check of its own).
#
# Usage: IMAGES_DIR=DIR node-smoke.sh      exit status 0 iff every check passed
#
# Environment:
#   IMAGES_DIR         OCI image tarballs for node-up.sh (pause + busybox at least)
#   BUSYBOX_IMAGE      busybox image reference (default: IMAGES_DIR/busybox.ref, else the
#                      imported image whose name contains "busybox")
#   KUBECTL            kubectl binary (default: kubectl on PATH)
#   SMOKE_KEEP_STATE=1 keep the state directory (logs) even on success
#   and everything node-up.sh reads.
#
# Prints one "PASS: ..." or "FAIL: ..." line per check on stdout, timings on stderr.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBECTL=${KUBECTL:-kubectl}
command -v "$KUBECTL" >/dev/null 2>&1 || { echo "kubectl not found" >&2; exit 2; }
export KUBECTL

STATE=$(mktemp -d "${TMPDIR:-/tmp}/node-smoke.XXXXXX")
FAILED=0
PASSED=0
T0=$SECONDS
OUT="${TMPDIR:-/tmp}/node-smoke-check.$$"

check() { # DESCRIPTION FUNCTION...: run it (output to $OUT), print PASS/FAIL
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

teardown() {
  local rc=$? t=$SECONDS
  trap - EXIT
  "$SCRIPT_DIR/node-down.sh" "$STATE" >&2 || true
  echo "[node-smoke] teardown took $((SECONDS - t)) s" >&2
  check "node-check-clean.sh after node-down.sh" "$SCRIPT_DIR/node-check-clean.sh" "$STATE"
  if ((rc == 0 && FAILED == 0)) && [[ "${SMOKE_KEEP_STATE:-0}" != 1 ]]; then
    rm -rf "$STATE"
  else
    echo "state and logs kept in ${STATE}" >&2
  fi
  rm -f "$OUT"
  echo "smoke: ${PASSED} passed, ${FAILED} failed ($((SECONDS - T0)) s in all)"
  if ((rc == 0 && FAILED > 0)); then rc=1; fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t=$SECONDS
if UP=$("$SCRIPT_DIR/node-up.sh" "$STATE"); then
  echo "PASS: node-up.sh ($((SECONDS - t)) s)"
  PASSED=$((PASSED + 1))
else
  echo "FAIL: node-up.sh (logs in ${STATE})"
  FAILED=$((FAILED + 1))
  exit 1
fi
eval "$UP"
export KUBECONFIG
envv() { awk -F= -v k="$1" '$1 == k { print substr($0, length(k) + 2); exit }' "$STATE/env"; }
NODE_NAME=$(envv NODE_NAME)
KUBE_SVC_IP=$(envv KUBERNETES_SERVICE_IP)
if [[ -z "${BUSYBOX_IMAGE:-}" && -s "${IMAGES_DIR}/busybox.ref" ]]; then
  BUSYBOX_IMAGE=$(head -n1 "$IMAGES_DIR/busybox.ref")
fi
if [[ -z "${BUSYBOX_IMAGE:-}" ]]; then
  BUSYBOX_IMAGE=$(envv IMAGES | tr ' ' '\n' | grep busybox | head -n1 || true)
fi
[[ -n "${BUSYBOX_IMAGE:-}" ]] || { echo "no busybox image (set BUSYBOX_IMAGE)" >&2; exit 2; }

NS=smoke
k() { "$KUBECTL" "$@"; }
retry() { # SECONDS CMD...
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

# --- checks -------------------------------------------------------------------------------------
node_ready() {
  k get nodes -o wide
  [[ "$(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

sa_token() {
  [[ -n "$(k -n "$NS" get serviceaccount default -o jsonpath='{.secrets[0].name}' 2>/dev/null)" ]]
}

deploy_ready() {
  k create namespace "$NS"
  # In 1.20 Pods are refused until the namespace's default ServiceAccount has its token Secret.
  retry 30 sa_token || { echo "no default ServiceAccount token in ${NS}"; return 1; }
  k -n "$NS" apply -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: { name: foo }
spec:
  replicas: 1
  selector: { matchLabels: { app: foo } }
  template:
    metadata: { labels: { app: foo } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: ${BUSYBOX_IMAGE}
        imagePullPolicy: Never
        command: ["sh", "-c", "mkdir -p /www && echo hello-from-foo > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{ containerPort: 8080 }]
        readinessProbe:
          httpGet: { path: /, port: 8080 }
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: { name: foo }
spec:
  selector: { app: foo }
  ports: [{ port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Pod
metadata: { name: client }
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sh
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: Never
    command: ["sleep", "3600"]
EOF
  k -n "$NS" rollout status deployment/foo --timeout=90s
  k -n "$NS" get pods -o wide
  [[ "$(k -n "$NS" get pods -l app=foo -o jsonpath='{.items[0].status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

JOB_TOKEN=job-output-$RANDOM$RANDOM
job_completes() {
  k -n "$NS" apply -f - <<EOF
apiVersion: batch/v1
kind: Job
metadata: { name: hello }
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: hello
        image: ${BUSYBOX_IMAGE}
        imagePullPolicy: Never
        command: ["sh", "-c", "echo ${JOB_TOKEN}; echo from \$(hostname)"]
EOF
  k -n "$NS" wait --for=condition=complete job/hello --timeout=90s
}

job_logs() {
  local out
  out=$(k -n "$NS" logs job/hello)
  echo "$out"
  expect_contains "$out" "$JOB_TOKEN"
}

EXEC_TOKEN=exec-$RANDOM
CLIENT_POD=client
exec_works() {
  k -n "$NS" wait --for=condition=Ready pod/"$CLIENT_POD" --timeout=60s || return 1
  local out
  out=$(k -n "$NS" exec "$CLIENT_POD" -- echo "$EXEC_TOKEN")
  echo "$out"
  [[ "$out" == "$EXEC_TOKEN" ]]
}

pod_resolv_conf() {
  local out
  out=$(k -n "$NS" exec "$CLIENT_POD" -- cat /etc/resolv.conf)
  echo "$out"
  expect_contains "$out" "search ${NS}.svc.cluster.local svc.cluster.local cluster.local"
}

# resolve NAME: the address the Pod's libc resolver (with its search path) finds for NAME.
# busybox's nslookup applies no search path to dotted names, so ping prints it instead
# ("PING NAME (IP): ..."; no reply is expected from a ClusterIP).
resolve() {
  k -n "$NS" exec "$CLIENT_POD" -- ping -c 1 -W 1 "$1" 2>&1 | sed -n 's/^PING [^ ]* (\([0-9.]*\)).*/\1/p'
}

pod_resolves_kubernetes() {
  local ip out
  ip=$(resolve kubernetes.default)
  echo "kubernetes.default -> ${ip}"
  [[ "$ip" == "$KUBE_SVC_IP" ]] || return 1
  out=$(k -n "$NS" exec "$CLIENT_POD" -- nslookup kubernetes.default.svc.cluster.local)
  echo "$out"
  expect_contains "$out" "$KUBE_SVC_IP"
}

FOO_IP=""
pod_resolves_service_short_name() {
  FOO_IP=$(k -n "$NS" get service foo -o jsonpath='{.spec.clusterIP}')
  echo "foo ClusterIP ${FOO_IP}"
  local ip=""
  # The DNS updater polls every second.
  for _ in $(seq 20); do
    ip=$(resolve "foo.${NS}")
    [[ "$ip" == "$FOO_IP" ]] && break
    sleep 0.5
  done
  echo "foo.${NS} -> ${ip}"
  [[ -n "$FOO_IP" && "$ip" == "$FOO_IP" ]]
}

# busybox wget's -T segfaults in Debian's busybox-static 1.35: timeout(1) instead.
pod_reaches_service_by_name() {
  local out
  out=$(k -n "$NS" exec "$CLIENT_POD" -- timeout 5 wget -qO- "http://foo.${NS}/")
  echo "$out"
  expect_contains "$out" hello-from-foo
}

pod_reaches_service_by_ip() {
  local out
  out=$(k -n "$NS" exec "$CLIENT_POD" -- timeout 5 wget -qO- "http://${FOO_IP}/")
  echo "$out"
  expect_contains "$out" hello-from-foo
}

host_reaches_cluster_ip() {
  local out
  out=$(curl -fsS --max-time 5 "http://${FOO_IP}/")
  echo "$out"
  expect_contains "$out" hello-from-foo
}

job_pod_replaced() {
  k -n "$NS" apply -f - <<EOF
apiVersion: batch/v1
kind: Job
metadata: { name: sleeper }
spec:
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: sleep
        image: ${BUSYBOX_IMAGE}
        imagePullPolicy: Never
        command: ["sleep", "3600"]
EOF
  local first second
  retry 60 bash -c "[[ \$(\"$KUBECTL\" -n $NS get pods -l job-name=sleeper -o jsonpath='{.items[0].status.phase}') == Running ]]" || { echo "first pod not Running"; return 1; }
  first=$(k -n "$NS" get pods -l job-name=sleeper -o jsonpath='{.items[0].metadata.name}')
  echo "first pod ${first}"
  k -n "$NS" delete pod "$first" --wait=false
  retry 60 bash -c "\"$KUBECTL\" -n $NS get pods -l job-name=sleeper -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase}{\"\\n\"}{end}' | grep -v '^$first ' | grep -q ' Running$'" || { k -n "$NS" get pods -o wide; return 1; }
  second=$(k -n "$NS" get pods -l job-name=sleeper -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | grep -vx "$first" | head -n1)
  echo "replacement pod ${second}"
  [[ -n "$second" && "$second" != "$first" ]]
}

audit_has_exec() {
  # JSON escapes '&' as \u0026.
  local want="/api/v1/namespaces/${NS}/pods/${CLIENT_POD}/exec?command=echo\\u0026command=${EXEC_TOKEN}\\u0026"
  grep -F "\"requestURI\":\"${want}" "$STATE/audit.log" | head -n 2
  grep -qF "\"requestURI\":\"${want}" "$STATE/audit.log"
}

check "node Ready" node_ready
check "Deployment's Pod Ready through an HTTP readiness probe" deploy_ready
check "Job's Pod completes" job_completes
check "kubectl logs job/hello shows its output" job_logs
check "kubectl exec" exec_works
check "Pod's resolv.conf has the cluster search path" pod_resolv_conf
check "Pod resolves kubernetes.default" pod_resolves_kubernetes
check "Pod resolves Service foo.${NS} by short name" pod_resolves_service_short_name
check "Pod reaches Service foo.${NS} by name" pod_reaches_service_by_name
check "Pod reaches Service foo by ClusterIP" pod_reaches_service_by_ip
check "host reaches Service foo by ClusterIP" host_reaches_cluster_ip
check "kubectl delete pod of a Job's Pod gets a replacement" job_pod_replaced
check "audit log has the exec request URI" audit_has_exec
echo "[node-smoke] checks took $((SECONDS - T0)) s including node-up" >&2
((FAILED == 0))
