#!/usr/bin/env bash
# Start a real single-node Kubernetes v1.20.2 on this machine: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd (its own), kubelet, kube-proxy (iptables)
# and a dnsmasq cluster DNS kept current from the Services. See README.md next to this script.
#
# Usage: node-up.sh STATE_DIR
#        eval "$(node-up.sh STATE_DIR)"      sets KUBECONFIG in the current shell
#        node-down.sh STATE_DIR [--purge]     stops everything and undoes every change
#
# stdout (eval-able):
#   export KUBECONFIG=STATE_DIR/kubeconfig
#   export KUBE_E2E_STATE_DIR=STATE_DIR
#   <NAME>_PID=... for each process started
# stderr: progress. STATE_DIR/env: all values as KEY=value lines (see README.md).
#
# Environment:
#   IMAGES_DIR        directory of OCI image-layout tarballs (*.tar); all are imported into the
#                     node's containerd (namespace k8s.io). Must provide the pause image.
#   PAUSE_IMAGE       pause image reference (default: contents of IMAGES_DIR/pause.ref, else the
#                     one imported image named .../pause:TAG)
#   KUBE_APISERVER KUBE_CONTROLLER_MANAGER KUBE_SCHEDULER KUBELET KUBE_PROXY
#                     binaries (default: build-kube.sh, which also installs the node packages)
#   ETCD KUBECTL      (default: on PATH)
#   NODE_UP_TIMEOUT   seconds for the whole start (default 180)
#   NODE_EVICTION_DISK kubelet evictionHard nodefs/imagefs.available (default 512Mi)
#   NODE_AUDIT_POLICY audit policy file (default: pods/exec, pods/attach, pods/portforward at
#                     Metadata level, nothing else)
#   NODE_IP NODE_IF NODE_NAME POD_CIDR SERVICE_CIDR CNI_BRIDGE CNI_NETWORK CLUSTER_DOMAIN
#                     network settings (defaults in node-common.sh: 10.200.0.1 on bridge crnode0,
#                     pods 10.244.0.0/24 on cni0, Services 10.0.0.0/24)
#   DNS_SYNC_INTERVAL the DNS updater re-lists Services at least this often (default 30 s); it
#                     watches them, so changes show up within a fraction of a second
#
# Needs root. Only one node runs at a time (it owns cni0, NODE_IF and the fixed kubelet paths);
# a node whose processes are gone but that was not torn down is torn down first.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=node-common.sh
. "$SCRIPT_DIR/node-common.sh"

TIMEOUT=${NODE_UP_TIMEOUT:-180}
# The kubelet evicts Pods (and refuses new ones) when the disk has less than this free. Absolute,
# not a percentage: the node shares a build machine's disk, where 1 % of a large disk (2.5 GB of
# 252 GB) is eaten by a parallel cargo build within minutes, while the node needs ~300 MB.
NODE_EVICTION_DISK=${NODE_EVICTION_DISK:-512Mi}
DNS_SYNC_INTERVAL=${DNS_SYNC_INTERVAL:-30}
T_START=$(date +%s.%N)
DEADLINE=$((SECONDS + TIMEOUT))

log() { printf '[node-up] %s\n' "$*" >&2; }
die() { printf '[node-up] ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

[[ $# -eq 1 ]] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || die "must run as root (network, mounts, cgroups, iptables)"

# --- Binaries and tools ----------------------------------------------------------------------
BIN_KEYS=(KUBE_APISERVER KUBE_CONTROLLER_MANAGER KUBE_SCHEDULER KUBELET KUBE_PROXY)
missing_bin=0
for k in "${BIN_KEYS[@]}"; do [[ -n "${!k:-}" ]] || missing_bin=1; done
if ((missing_bin)); then
  while IFS='=' read -r k v; do
    case " ${BIN_KEYS[*]} " in *" $k "*) [[ -n "${!k:-}" ]] || printf -v "$k" '%s' "$v" ;; esac
  done < <("$SCRIPT_DIR/build-kube.sh")
fi
for k in "${BIN_KEYS[@]}"; do
  [[ -x "${!k:-}" ]] || die "${k} not executable: '${!k:-}'"
done
ETCD=$(command -v "${ETCD:-etcd}" || true)
KUBECTL=$(command -v "${KUBECTL:-kubectl}" || true)
[[ -n "$ETCD" && -x "$ETCD" ]] || die "etcd not found (apt-get install etcd-server, or run build-kube.sh)"
[[ -n "$KUBECTL" && -x "$KUBECTL" ]] || die "kubectl not found (set KUBECTL)"
for t in containerd containerd-shim-runc-v2 runc ctr dnsmasq ip iptables conntrack openssl curl jq busybox flock setsid; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (build-kube.sh installs the node packages)"
done
CTR=$(command -v ctr)
CNI_BIN_DIR=/usr/lib/cni
for p in bridge host-local portmap loopback; do
  [[ -x "$CNI_BIN_DIR/$p" ]] || die "CNI plugin ${CNI_BIN_DIR}/${p} missing (containernetworking-plugins)"
done

# --- State directory -----------------------------------------------------------------------------
mkdir -p "$1"
STATE=$(cd "$1" && pwd)
CTRD_SOCK="$STATE/containerd/containerd.sock"
# sun_path is 108 bytes; containerd also listens on SOCK.ttrpc.
((${#CTRD_SOCK} <= 100)) || die "state dir path too long for a unix socket: ${CTRD_SOCK}"
# --- One node at a time; clean machine -----------------------------------------------------------
mkdir -p "$NODE_REGISTRY"
exec 8>"$NODE_REGISTRY/lock"
flock -w 600 8 || die "another node-up/node-down holds ${NODE_REGISTRY}/lock"
# A registered node runs while any process of its pid files does; if none does (its starter was
# killed, say), what is left of it (shims, containers, mounts, rules) is torn down first.
if [[ -s "$NODE_CURRENT" ]]; then
  other=$(cat "$NODE_CURRENT")
  for f in "$other"/*.pid; do
    [[ -s "$f" ]] || continue
    if node_pid_alive_ours "$other" "$(cat "$f")"; then
      die "a node is running from ${other}; stop it first: node-down.sh ${other}"
    fi
  done
  log "a node from ${other} was not torn down; tearing it down first"
  NODE_DOWN_LOCKED=1 "$SCRIPT_DIR/node-down.sh" "$other" >&2 || true
fi
for f in "$STATE"/*.pid; do
  [[ -s "$f" ]] || continue
  if node_pid_alive_ours "$STATE" "$(cat "$f")"; then
    die "$(basename "$f" .pid) from ${STATE} is still running; run node-down.sh ${STATE} first"
  fi
done
[[ -z "$(node_mounts_under "$STATE")" ]] || die "mounts left under ${STATE}; run node-down.sh ${STATE} first"
# A fresh state dir, or an earlier node's (whose contents are replaced); nothing else.
if [[ -n "$(ls -A "$STATE")" && ! -f "$STATE/baseline" && ! -f "$STATE/env" ]]; then
  die "${STATE} is neither empty nor an earlier node-up state dir"
fi
find "$STATE" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
chmod 700 "$STATE"
mkdir -p "$STATE/pki" "$STATE/etcd" "$STATE/containerd" "$STATE/cni/net.d" "$STATE/cni/ipam" \
  "$STATE/kubelet" "$STATE/dns"

if ! preflight=$("$SCRIPT_DIR/node-check-clean.sh"); then
  printf '%s\n' "$preflight" >&2
  die "the machine is not clean (see LEFTOVER lines); run node-down.sh on the state dir they belong to"
fi

# Baseline: what node-down.sh restores and node-check-clean.sh compares against.
{
  printf 'boot_id=%s\n' "$(node_boot_id)"
  node_sysctl_snapshot | sed 's/^/sysctl /'
  for p in "${NODE_FIXED_PATHS[@]}" "${NODE_SHARED_DIRS[@]}"; do
    if [[ -e "$p" ]]; then
      printf 'path %s=present\n' "$p"
      find "$p" -mindepth 1 -maxdepth 1 -printf "entry $p/%f\n" 2>/dev/null
    else
      printf 'path %s=absent\n' "$p"
    fi
  done
  ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print "link " $2 }'
} >"$STATE/baseline"
cp "$STATE/baseline" "$NODE_BASELINE.tmp.$$" && mv -f "$NODE_BASELINE.tmp.$$" "$NODE_BASELINE"
if ! grep -qxF "boot_id=$(node_boot_id)" "$NODE_STATES" 2>/dev/null; then
  printf 'boot_id=%s\n' "$(node_boot_id)" >"$NODE_STATES"
fi
printf '%s\n' "$STATE" >>"$NODE_STATES"
printf '%s\n' "$STATE" >"$NODE_CURRENT"

# From here on a failure tears down what was started (logs stay in STATE_DIR).
STARTED=()
on_exit() {
  local rc=$?
  if ((rc != 0)); then
    log "start failed after $(elapsed) s; tearing down (logs stay in ${STATE})"
    local n
    for n in "${STARTED[@]}"; do
      if ! node_pid_alive_ours "$STATE" "$(cat "$STATE/$n.pid" 2>/dev/null)"; then
        log "--- ${n} exited; last lines of ${STATE}/${n}.log ---"
        tail -n 15 "$STATE/$n.log" >&2 || true
      fi
    done
    NODE_DOWN_LOCKED=1 "$SCRIPT_DIR/node-down.sh" "$STATE" >&2 || true
  fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Addresses -------------------------------------------------------------------------------
ip2int() { local IFS=.; read -r a b c d <<<"$1"; echo $(((a << 24) + (b << 16) + (c << 8) + d)); }
int2ip() { echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"; }
svc_net=${SERVICE_CIDR%/*}
svc_bits=${SERVICE_CIDR#*/}
KUBERNETES_SVC_IP=$(int2ip $(((($(ip2int "$svc_net") >> (32 - svc_bits)) << (32 - svc_bits)) + 1)))
API_PORT=6443
API_URL="https://${NODE_IP}:${API_PORT}"
KUBECONFIG_FILE="$STATE/kubeconfig"

# Settings first, so node-down.sh finds them after a partial start; rewritten at the end.
write_env() {
  local pid_lines="" n
  for n in "${STARTED[@]}"; do
    pid_lines+="$(tr 'a-z-' 'A-Z_' <<<"$n")_PID=$(cat "$STATE/$n.pid")"$'\n'
  done
  cat >"$STATE/env.tmp" <<EOF
STATE_DIR=$STATE
KUBECONFIG=$KUBECONFIG_FILE
KUBE_API_URL=$API_URL
KUBE_API_PORT=$API_PORT
KUBE_CA_FILE=$STATE/pki/ca.crt
KUBE_ADMIN_TOKEN=${ADMIN_TOKEN:-}
ETCD_URL=${ETCD_URL:-}
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
NODE_IF=$NODE_IF
POD_CIDR=$POD_CIDR
SERVICE_CIDR=$SERVICE_CIDR
KUBERNETES_SERVICE_IP=$KUBERNETES_SVC_IP
CLUSTER_DNS=$NODE_IP
CLUSTER_DOMAIN=$CLUSTER_DOMAIN
CNI_BRIDGE=$CNI_BRIDGE
CNI_NETWORK=$CNI_NETWORK
CONTAINERD_ADDRESS=$CTRD_SOCK
CONTAINERD_NAMESPACE=k8s.io
CTR=$CTR
PAUSE_IMAGE=${PAUSE_IMAGE:-}
IMAGES=${IMAGES_LOADED:-}
AUDIT_LOG=$STATE/audit.log
KUBECTL=$KUBECTL
ETCD=$ETCD
KUBE_APISERVER=$KUBE_APISERVER
KUBE_CONTROLLER_MANAGER=$KUBE_CONTROLLER_MANAGER
KUBE_SCHEDULER=$KUBE_SCHEDULER
KUBELET=$KUBELET
KUBE_PROXY=$KUBE_PROXY
${pid_lines}NODE_UP_SECONDS=${NODE_UP_SECONDS:-}
EOF
  chmod 600 "$STATE/env.tmp"
  mv -f "$STATE/env.tmp" "$STATE/env"
}
write_env

# --- Processes --------------------------------------------------------------------------------
# start NAME CMD...: run CMD detached (own session, survives this script) with the node mark in
# its environment, output in STATE/NAME.log, PID in STATE/NAME.pid, the command line in
# STATE/NAME.cmd (NUL-separated; node-ctl.sh starts it again from there).
# AWS_EC2_METADATA_DISABLED: the kubelet's built-in ECR credential provider otherwise asks the
# EC2 metadata address 169.254.169.254 for credentials, through the host's default route.
start() {
  local name=$1
  shift
  printf '%s\0' "$@" >"$STATE/$name.cmd"
  # shellcheck disable=SC2016 # $$, $0 and $@ belong to the inner bash
  env "${NODE_ENV_MARK}=${STATE}" AWS_EC2_METADATA_DISABLED=true setsid bash -c 'echo $$ >"$0"; exec "$@"' "$STATE/$name.pid" "$@" \
    </dev/null >>"$STATE/$name.log" 2>&1 8>&- &

  for _ in $(seq 50); do
    [[ -s "$STATE/$name.pid" ]] && break
    sleep 0.1
  done
  [[ -s "$STATE/$name.pid" ]] || die "$name did not start"
  STARTED+=("$name")
  write_env
}

# wait_for NAME WHAT CHECK_CMD...: until CHECK_CMD succeeds; fails if NAME's process exits or
# the overall deadline passes.
wait_for() {
  local name=$1 what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$name" ]] && ! node_pid_alive_ours "$STATE" "$(cat "$STATE/$name.pid" 2>/dev/null)"; then
      die "$name exited while waiting for ${what}; see ${STATE}/${name}.log"
    fi
    ((SECONDS < DEADLINE)) || die "timed out (NODE_UP_TIMEOUT=${TIMEOUT}s) waiting for ${what}"
    sleep 0.2
  done
  log "${what} ($(elapsed) s)"
}

# --- Network: our own interface for the node address -----------------------------------------
if ! ip link show dev "$NODE_IF" >/dev/null 2>&1; then
  ip link add "$NODE_IF" type bridge
fi
ip addr replace "$NODE_IP/32" dev "$NODE_IF"
ip link set "$NODE_IF" up
# Host -> ClusterIP traffic leaves from NODE_IP through NODE_IF (kube-proxy DNATs it to a pod).
ip route replace "$SERVICE_CIDR" dev "$NODE_IF" src "$NODE_IP"
sysctl -qw net.ipv4.ip_forward=1
if [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
fi

# --- Credentials --------------------------------------------------------------------------------
PKI="$STATE/pki"
openssl_quiet() { openssl "$@" 2>"$STATE/openssl.err" || { cat "$STATE/openssl.err" >&2; die "openssl $1 failed"; }; }
openssl_quiet req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 30 -subj "/CN=cratedb-restore-e2e-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
# cert NAME SUBJECT EXTKEYUSAGE [SAN]
cert() {
  local name=$1 subj=$2 eku=$3 san=${4:-}
  openssl_quiet req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "$subj"
  {
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n'
    printf 'extendedKeyUsage=%s\n' "$eku"
    [[ -z "$san" ]] || printf 'subjectAltName=%s\n' "$san"
  } >"$PKI/$name.ext"
  openssl_quiet x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAcreateserial -days 30 -out "$PKI/$name.crt" -extfile "$PKI/$name.ext"
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}
cert apiserver "/CN=kube-apiserver" serverAuth \
  "IP:${NODE_IP},IP:${KUBERNETES_SVC_IP},IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.${CLUSTER_DOMAIN},DNS:localhost"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert kubelet-serving "/CN=${NODE_NAME}" serverAuth "IP:${NODE_IP},DNS:${NODE_NAME}"
cert kubelet "/O=system:nodes/CN=system:node:${NODE_NAME}" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kube-proxy "/CN=system:kube-proxy" clientAuth
openssl_quiet genrsa -out "$PKI/sa.key" 2048
openssl_quiet rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
ADMIN_TOKEN=$(openssl rand -hex 32)
printf '%s,admin,admin,system:masters\n' "$ADMIN_TOKEN" >"$PKI/tokens.csv"
chmod 600 "$PKI"/*.key "$PKI/tokens.csv"
CA_DATA=$(base64 -w0 <"$PKI/ca.crt")

# kubeconfig FILE USER (token TOKEN | cert NAME)
kubeconfig() {
  local file=$1 user=$2 kind=$3 cred=$4 auth
  if [[ "$kind" == token ]]; then
    auth="    token: ${cred}"
  else
    auth="    client-certificate: ${PKI}/${cred}.crt
    client-key: ${PKI}/${cred}.key"
  fi
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: ${API_URL}
    certificate-authority-data: ${CA_DATA}
users:
- name: ${user}
  user:
${auth}
contexts:
- name: e2e
  context:
    cluster: e2e
    user: ${user}
    namespace: default
current-context: e2e
EOF
  chmod 600 "$file"
}
kubeconfig "$KUBECONFIG_FILE" admin token "$ADMIN_TOKEN"
kubeconfig "$STATE/controller-manager.kubeconfig" system:kube-controller-manager cert controller-manager
kubeconfig "$STATE/scheduler.kubeconfig" system:kube-scheduler cert scheduler
kubeconfig "$STATE/kubelet.kubeconfig" "system:node:${NODE_NAME}" cert kubelet
kubeconfig "$STATE/kube-proxy.kubeconfig" system:kube-proxy cert kube-proxy
write_env
log "network and credentials ready ($(elapsed) s)"

# --- containerd (its own root, state, socket) ---------------------------------------------------
CTRD="$STATE/containerd"
cat >"$STATE/cni/net.d/10-${CNI_NETWORK}.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "${CNI_NETWORK}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${CNI_BRIDGE}",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "${POD_CIDR}" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "${STATE}/cni/ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
cat >"$CTRD/config.toml" <<EOF
version = 2
root = "${CTRD}/root"
state = "${CTRD}/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.internal.v1.opt",
]

[grpc]
  address = "${CTRD_SOCK}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "@PAUSE_IMAGE@"
  # Root here lacks CAP_SYS_RESOURCE: without this every pod fails in runc create.
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${CTRD}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN_DIR}"
    conf_dir = "${STATE}/cni/net.d"
    max_conf_num = 1
EOF
ctr_() { "$CTR" --address "$CTRD_SOCK" --namespace k8s.io "$@"; }

# --- etcd + containerd ------------------------------------------------------------------------------
free_ports() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))'
  else
    local ports=() p
    while ((${#ports[@]} < 2)); do
      p=$((20000 + RANDOM % 30000))
      [[ " ${ports[*]} " == *" $p "* ]] && continue
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then ports+=("$p"); fi
    done
    echo "${ports[*]}"
  fi
}
read -r ETCD_PORT ETCD_PEER_PORT < <(free_ports)
ETCD_URL="http://127.0.0.1:${ETCD_PORT}"
ETCD_PEER_URL="http://127.0.0.1:${ETCD_PEER_PORT}"
start etcd "$ETCD" --name=default --data-dir="$STATE/etcd" \
  --listen-client-urls="$ETCD_URL" --advertise-client-urls="$ETCD_URL" \
  --listen-peer-urls="$ETCD_PEER_URL" --initial-advertise-peer-urls="$ETCD_PEER_URL" \
  --initial-cluster="default=$ETCD_PEER_URL"
etcd_healthy() { curl -fsS --max-time 2 "$ETCD_URL/health" | grep -q '"health":"true"'; }
wait_for etcd "etcd healthy" etcd_healthy

# --- kube-apiserver ---------------------------------------------------------------------------------
if [[ -n "${NODE_AUDIT_POLICY:-}" ]]; then
  cp "$NODE_AUDIT_POLICY" "$STATE/audit-policy.yaml"
else
  cat >"$STATE/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  resources:
  - group: ""
    resources: ["pods/exec", "pods/attach", "pods/portforward"]
- level: None
EOF
fi
start kube-apiserver "$KUBE_APISERVER" \
  --etcd-servers="$ETCD_URL" \
  --advertise-address="$NODE_IP" --bind-address="$NODE_IP" --secure-port="$API_PORT" \
  --insecure-port=0 \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true --enable-aggregator-routing=true \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" \
  --kubelet-preferred-address-types=InternalIP \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --audit-policy-file="$STATE/audit-policy.yaml" --audit-log-path="$STATE/audit.log" \
  --audit-log-maxbackup=1 --audit-log-maxsize=100

# --- containerd and images, while the API server starts ---------------------------------------------
[[ -n "${IMAGES_DIR:-}" ]] || die "IMAGES_DIR is not set (a directory of OCI image tarballs, with the pause image)"
[[ -d "$IMAGES_DIR" ]] || die "IMAGES_DIR ${IMAGES_DIR} is not a directory"
if [[ -z "${PAUSE_IMAGE:-}" && -s "$IMAGES_DIR/pause.ref" ]]; then
  PAUSE_IMAGE=$(head -n1 "$IMAGES_DIR/pause.ref")
fi
# containerd reads sandbox_image at start. When the pause reference is only known from the
# imported names, containerd is restarted once with it (about a second).
sed -i "s#@PAUSE_IMAGE@#${PAUSE_IMAGE:-@PAUSE_IMAGE@}#" "$CTRD/config.toml"
start containerd containerd --config "$CTRD/config.toml"
wait_for containerd "containerd serving" ctr_ version
IMAGES_LOADED=$("$SCRIPT_DIR/node-import-images.sh" "$STATE" "$IMAGES_DIR"/*.tar | tr '\n' ' ')
IMAGES_LOADED=${IMAGES_LOADED% }
[[ -n "$IMAGES_LOADED" ]] || die "no image imported from ${IMAGES_DIR}"
if [[ -z "${PAUSE_IMAGE:-}" ]]; then
  PAUSE_IMAGE=$(tr ' ' '\n' <<<"$IMAGES_LOADED" | grep -E '(^|/)pause:[^/]+$' | head -n1 || true)
  [[ -n "$PAUSE_IMAGE" ]] || die "no pause image: set PAUSE_IMAGE or write IMAGES_DIR/pause.ref (imported: ${IMAGES_LOADED})"
  sed -i "s#@PAUSE_IMAGE@#${PAUSE_IMAGE}#" "$CTRD/config.toml"
  log "pause image ${PAUSE_IMAGE}; restarting containerd to use it"
  ctrd_pid=$(cat "$STATE/containerd.pid")
  kill -TERM "$ctrd_pid"
  # Until it has exited for good (zombie or gone): an exiting process loses its environment
  # before it closes its files, and the new containerd needs the metadata database's lock.
  for _ in $(seq 150); do
    node_pid_running "$ctrd_pid" || break
    sleep 0.1
  done
  node_pid_running "$ctrd_pid" && die "containerd (pid ${ctrd_pid}) did not stop for the restart"
  kept=()
  for n in "${STARTED[@]}"; do [[ "$n" == containerd ]] || kept+=("$n"); done
  STARTED=("${kept[@]}")
  start containerd containerd --config "$CTRD/config.toml"
  wait_for containerd "containerd serving" ctr_ version
fi
pause_listed() {
  local present
  present=$(ctr_ images ls -q) && grep -qxF -- "$PAUSE_IMAGE" <<<"$present"
}
if ! (
  DEADLINE=$((SECONDS + 20))
  wait_for containerd "pause image ${PAUSE_IMAGE} in containerd" pause_listed
); then
  die "pause image ${PAUSE_IMAGE} is not in containerd (imported: ${IMAGES_LOADED}; listed: $(ctr_ images ls -q 2>&1 | tr '\n' ' '))"
fi
write_env

apiserver_ready() {
  [[ "$(curl -sS --max-time 5 --cacert "$PKI/ca.crt" -H "Authorization: Bearer ${ADMIN_TOKEN}" "$API_URL/readyz")" == ok ]]
}
wait_for kube-apiserver "kube-apiserver ready" apiserver_ready
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" --request-timeout=10s "$@"; }

# --- Control plane ------------------------------------------------------------------------------------
start kube-controller-manager "$KUBE_CONTROLLER_MANAGER" \
  --kubeconfig="$STATE/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=0 --port=0 --leader-elect=false \
  --controllers='*' --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --cluster-cidr="$POD_CIDR" --allocate-node-cidrs=false \
  --flex-volume-plugin-dir="$STATE/kubelet/volume-plugins"
start kube-scheduler "$KUBE_SCHEDULER" \
  --kubeconfig="$STATE/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=0 --port=0 --leader-elect=false

# --- DNS: dnsmasq serving <svc>.<ns>.svc.CLUSTER_DOMAIN from a hosts file ---------------------------
printf '%s kubernetes.default.svc.%s\n' "$KUBERNETES_SVC_IP" "$CLUSTER_DOMAIN" >"$STATE/dns/hosts"
start dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root --group=root \
  --pid-file="$STATE/dns/dnsmasq.pid" --log-facility=- \
  --listen-address="$NODE_IP" --bind-interfaces --port=53 \
  --no-resolv --no-hosts --addn-hosts="$STATE/dns/hosts" --no-negcache \
  --local="/${CLUSTER_DOMAIN}/" --address=/#/ --domain-needed
start dns-sync env DNS_SYNC_INTERVAL="$DNS_SYNC_INTERVAL" "$SCRIPT_DIR/node-dns-sync.sh" "$STATE"

# --- kubelet + kube-proxy ----------------------------------------------------------------------------
printf 'nameserver %s\n' "$NODE_IP" >"$STATE/kubelet/resolv.conf"
cat >"$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: ${NODE_IP}
healthzPort: 10248
tlsCertFile: ${PKI}/kubelet-serving.crt
tlsPrivateKeyFile: ${PKI}/kubelet-serving.key
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: ${PKI}/ca.crt }
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
failSwapOn: false
clusterDNS: [${NODE_IP}]
clusterDomain: ${CLUSTER_DOMAIN}
resolvConf: ${STATE}/kubelet/resolv.conf
volumePluginDir: ${STATE}/kubelet/volume-plugins
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "${NODE_EVICTION_DISK}"
  nodefs.inodesFree: "1%"
  imagefs.available: "${NODE_EVICTION_DISK}"
evictionPressureTransitionPeriod: 10s
# Imported images cannot be pulled again: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 110
# Check the node status every 2 s (the default 10 s delays Ready by up to 10 s after start);
# it is only posted when it changed, or every minute.
nodeStatusUpdateFrequency: 2s
nodeStatusReportFrequency: 1m
EOF
# --containerd is cAdvisor's: without it cAdvisor dials /run/containerd/containerd.sock (5 s
# timeout when absent; another containerd's stats when present).
start kubelet "$KUBELET" \
  --config="$STATE/kubelet/config.yaml" \
  --kubeconfig="$STATE/kubelet.kubeconfig" \
  --container-runtime=remote --container-runtime-endpoint="unix://${CTRD_SOCK}" \
  --image-service-endpoint="unix://${CTRD_SOCK}" \
  --containerd="$CTRD_SOCK" \
  --root-dir="$STATE/kubelet" --cert-dir="$STATE/kubelet/pki" \
  --seccomp-profile-root="$STATE/kubelet/seccomp" \
  --node-ip="$NODE_IP" --hostname-override="$NODE_NAME" \
  --pod-infra-container-image="$PAUSE_IMAGE"
cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: ${POD_CIDR}
bindAddress: ${NODE_IP}
healthzBindAddress: ${NODE_IP}:10256
metricsBindAddress: ${NODE_IP}:10249
hostnameOverride: ${NODE_NAME}
nodePortAddresses: ["${NODE_IP}/32"]
clientConnection:
  kubeconfig: ${STATE}/kube-proxy.kubeconfig
# 0 = leave the host's conntrack settings alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
start kube-proxy "$KUBE_PROXY" --config="$STATE/kube-proxy.yaml"

# --- Ready? -------------------------------------------------------------------------------------------
node_ready() {
  [[ "$(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}
wait_for kubelet "node ${NODE_NAME} Ready" node_ready
# Pods need the default ServiceAccount and (in 1.20) its token Secret.
default_sa_ready() {
  [[ -n "$(k -n default get serviceaccount default -o jsonpath='{.secrets[0].name}')" ]]
}
wait_for kube-controller-manager "ServiceAccount default/default with token" default_sa_ready
dns_answers() {
  busybox nslookup "kubernetes.default.svc.${CLUSTER_DOMAIN}" "$NODE_IP" 2>/dev/null \
    | awk '/^Name:/ { n = 1 } n && /^Address/ { print $NF }' | grep -qxF "$KUBERNETES_SVC_IP"
}
wait_for dnsmasq "cluster DNS answers kubernetes.default.svc.${CLUSTER_DOMAIN}" dns_answers
kube_proxy_synced() {
  iptables -w 5 -t nat -S KUBE-SERVICES 2>/dev/null | grep -qF -- "-d ${KUBERNETES_SVC_IP}/32"
}
wait_for kube-proxy "kube-proxy rules for the kubernetes Service" kube_proxy_synced

NODE_UP_SECONDS=$(elapsed)
write_env
log "ready in ${NODE_UP_SECONDS} s: ${API_URL}, node ${NODE_NAME} (${NODE_IP}), pause ${PAUSE_IMAGE}"
log "stop with: ${SCRIPT_DIR}/node-down.sh ${STATE}"
printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_FILE"
printf 'export KUBE_E2E_STATE_DIR=%q\n' "$STATE"
for n in "${STARTED[@]}"; do
  printf '%s_PID=%s\n' "$(tr 'a-z-' 'A-Z_' <<<"$n")" "$(cat "$STATE/$n.pid")"
done
