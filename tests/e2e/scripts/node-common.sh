# shellcheck shell=bash
# shellcheck disable=SC2034 # the definitions are used by the scripts that source this file
# Shared definitions of node-up.sh, node-down.sh and node-check-clean.sh (sourced, not run).
# Everything a single-node cluster changes on the machine outside its state dir is named here,
# so that the three scripts agree on what to record, undo and check.

# --- Defaults (node-up.sh records the values it used in STATE_DIR/env) ------------------------
: "${NODE_IP:=10.200.0.1}"          # node / API server / DNS address, /32 on NODE_IF
: "${NODE_IF:=crnode0}"             # interface node-up.sh creates for NODE_IP (a port-less bridge:
                                    # this kernel has no dummy driver)
: "${CNI_BRIDGE:=cni0}"             # bridge the CNI bridge plugin creates for pods
: "${CNI_NETWORK:=cratedb-e2e}"     # CNI network name (host-local IPAM and CNI cache files)
: "${POD_CIDR:=10.244.0.0/24}"
: "${SERVICE_CIDR:=10.0.0.0/24}"    # first address = the `kubernetes` Service
: "${CLUSTER_DOMAIN:=cluster.local}"
: "${NODE_NAME:=e2e-node}"

# Machine-level record of the running node and of the values before the first node-up of this
# boot. Not inside a state dir: it must survive `node-down.sh --purge` for node-check-clean.sh.
readonly NODE_REGISTRY=/run/cratedb-restore-node
readonly NODE_CURRENT="$NODE_REGISTRY/current"        # path of the running node's STATE_DIR
readonly NODE_BASELINE="$NODE_REGISTRY/baseline"      # machine state before node-up (this boot)
readonly NODE_STATES="$NODE_REGISTRY/states"          # every STATE_DIR node-up used (this boot)
# Set in the environment of every process node-up.sh starts (containerd passes it on to its
# shims), so that leftovers can be found without knowing their state dir.
readonly NODE_ENV_MARK=CRATEDB_RESTORE_NODE

# Sysctls the kubelet (setupKernelTunables), kube-proxy, the CNI bridge plugin or node-up.sh
# itself change. All of net.bridge.* is added at run time.
readonly NODE_SYSCTLS=(
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes
  net.ipv4.ip_forward net.ipv4.conf.all.forwarding net.ipv4.conf.default.forwarding
  net.ipv4.conf.all.accept_redirects net.ipv4.conf.all.route_localnet
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait
)

# Fixed paths the kubelet or the CNI library create whatever their configured directories are.
# Removed at teardown when they did not exist before node-up (else only the entries added).
readonly NODE_FIXED_PATHS=(/var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni
  /run/netns /var/lib/dockershim /usr/libexec/kubernetes /etc/cni/net.d)
# containerd puts its shims' sockets in /run/containerd/s whatever its state dir is. Other
# containerds (a developer's, another test's) share it, so it is only removed when empty.
readonly NODE_SHARED_DIRS=(/run/containerd/s /run/containerd)

readonly NODE_IPTABLES_TABLES=(filter nat mangle raw)

# node_sysctl_names: NODE_SYSCTLS, then the forwarding flag of every interface (ip_forward sets
# them all), then every net.bridge.* key of this kernel. Restoring in this order works because
# writing net.ipv4.ip_forward resets the per-interface flags and all.accept_redirects.
node_sysctl_names() {
  printf '%s\n' "${NODE_SYSCTLS[@]}"
  local f i
  for f in /proc/sys/net/ipv4/conf/*/forwarding; do
    i=${f#/proc/sys/net/ipv4/conf/}
    i=${i%/forwarding}
    [[ "$i" == all || "$i" == default ]] || printf 'net.ipv4.conf.%s.forwarding\n' "$i"
  done
  for f in /proc/sys/net/bridge/*; do
    [[ -f "$f" ]] && printf 'net.bridge.%s\n' "${f##*/}"
  done
}

# node_sysctl_get NAME: value (tabs/spaces normalized) or nothing if the key does not exist.
node_sysctl_get() {
  local f="/proc/sys/${1//.//}"
  [[ -r "$f" ]] || return 0
  tr -s ' \t' ' ' <"$f"
}

# node_sysctl_snapshot: "NAME=VALUE" lines of the current values.
node_sysctl_snapshot() {
  local n v
  while read -r n; do
    v=$(node_sysctl_get "$n")
    [[ -n "$v" ]] && printf '%s=%s\n' "$n" "$v"
  done < <(node_sysctl_names)
}

# node_iptables_cmds: the iptables front ends to inspect (IPv4 + IPv6, each backend present).
node_iptables_cmds() {
  local c
  for c in iptables ip6tables iptables-legacy ip6tables-legacy; do
    command -v "$c" >/dev/null 2>&1 && printf '%s\n' "$c"
  done
}

# node_iptables_leftovers: "CMD TABLE RULE-OR-CHAIN" lines for every KUBE-*/CNI-* chain and every
# rule that jumps to one (or carries a kubernetes/CNI comment).
node_iptables_leftovers() {
  local cmd t line names
  while read -r cmd; do
    # Listing a table of the legacy backend creates it in the kernel: only look at tables that
    # already exist there.
    names=""
    case "$cmd" in
      iptables-legacy) names=/proc/net/ip_tables_names ;;
      ip6tables-legacy) names=/proc/net/ip6_tables_names ;;
    esac
    for t in "${NODE_IPTABLES_TABLES[@]}"; do
      if [[ -n "$names" ]] && ! grep -qx -- "$t" "$names" 2>/dev/null; then continue; fi
      while IFS= read -r line; do
        case "$line" in
          "-N KUBE-"* | "-N CNI-"*) printf '%s %s %s\n' "$cmd" "$t" "$line" ;;
          "-A "*)
            if [[ "$line" =~ -j\ (KUBE|CNI)- || "$line" =~ ^-A\ (KUBE|CNI)- || "$line" == *'--comment "CNI-'* || "$line" == *"kubernetes"* ]]; then
              printf '%s %s %s\n' "$cmd" "$t" "$line"
            fi
            ;;
        esac
      done < <("$cmd" -w 5 -t "$t" -S 2>/dev/null || true)
    done
  done < <(node_iptables_cmds)
}

# node_kubepods_cgroups: every cgroup directory named kubepods* (deepest first is the caller's job).
node_kubepods_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [[ -d "$h" ]] || continue
    find "$h" -maxdepth 2 -type d \( -name 'kubepods' -o -name 'kubepods.slice' \) 2>/dev/null
  done | sort -u
}

# node_marked_pids: PIDs (other than ours) whose environment carries NODE_ENV_MARK, and
# optionally only those of one STATE_DIR.
node_marked_pids() {
  local want=${1:-} p
  {
    if [[ -n "$want" ]]; then
      grep -lzxF -- "${NODE_ENV_MARK}=${want}" /proc/[0-9]*/environ 2>/dev/null
    else
      grep -lz -- "^${NODE_ENV_MARK}=" /proc/[0-9]*/environ 2>/dev/null
    fi
  } | while IFS=/ read -r _ _ p _; do
    [[ "$p" == "$$" ]] || printf '%s\n' "$p"
  done
}

# node_mounts_under DIR: mount points at or below DIR, deepest first.
node_mounts_under() {
  local dir=${1%/}
  awk -v d="$dir" '{
      mp = $5; gsub(/\\040/, " ", mp)
      if (mp == d || index(mp, d "/") == 1) print mp
    }' /proc/self/mountinfo | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

# node_conntrack_entries: conntrack entries from or to the node's addresses (flows of pods,
# Services and the node IP outlive them by up to 5 days otherwise).
node_conntrack_entries() {
  command -v conntrack >/dev/null 2>&1 || return 0
  local net
  for net in "$POD_CIDR" "$SERVICE_CIDR" "$NODE_IP"; do
    conntrack -L -s "$net" 2>/dev/null
    conntrack -L -d "$net" 2>/dev/null
  done | sort -u
}

node_boot_id() { cat /proc/sys/kernel/random/boot_id; }

# node_known_states: the STATE_DIRs node-up.sh used since boot (one per line).
node_known_states() {
  [[ -f "$NODE_STATES" ]] || return 0
  grep -qxF "boot_id=$(node_boot_id)" "$NODE_STATES" 2>/dev/null || return 0
  grep -v '^boot_id=' "$NODE_STATES" | sort -u
}

# node_read_env FILE KEY: value of KEY in a KEY=value file (value = everything after the first '=').
node_read_env() {
  [[ -f "$1" ]] || return 1
  awk -v k="$2" 'index($0, k "=") == 1 { print substr($0, length(k) + 2); f = 1; exit } END { exit !f }' "$1"
}

# node_pid_running PID: exists and is not a zombie (our daemons' parent is init, which may reap
# them only seconds later).
node_pid_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat:0:1}" != Z ]]
}

# node_pid_alive_ours STATE_DIR PID: PID is alive and carries STATE_DIR's mark or names STATE_DIR
# on its command line (guards against PID reuse).
node_pid_alive_ours() {
  local state=$1 pid=$2
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  node_pid_running "$pid" || return 1
  grep -qzxF -- "${NODE_ENV_MARK}=${state}" "/proc/$pid/environ" 2>/dev/null && return 0
  grep -qzF -- "$state/" "/proc/$pid/cmdline" 2>/dev/null
}
