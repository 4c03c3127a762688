#!/usr/bin/env bash
# Tear down a node started by node-up.sh STATE_DIR completely, and undo every change it made to
# the machine. Idempotent; safe after a partial or failed start, and after the processes died.
#
# Usage: node-down.sh STATE_DIR [--purge]
#   --purge  also delete STATE_DIR (refused while anything is still mounted below it)
#
# Order: stop controller-manager + scheduler (nothing recreates or places pods), delete all pods
# through the API (the kubelet stops them and runs CNI DEL), stop kubelet and kube-proxy,
# `kube-proxy --cleanup`, kill remaining containerd tasks with ctr, stop containerd and its
# shims, dnsmasq and its updater, API server, etcd; kill what is left in kubepods cgroups;
# unmount everything below STATE_DIR; delete CNI_BRIDGE, veths, NODE_IF and cni-* netns, and
# the conntrack entries of the node's addresses;
# delete KUBE-*/CNI-* iptables rules and chains; restore the sysctls from STATE_DIR/baseline;
# remove empty kubepods cgroups and the fixed paths that were not there before node-up.
# Processes are only signalled by the PIDs recorded in STATE_DIR/*.pid, or because they carry
# this STATE_DIR's mark in their environment, or sit in the node's kubepods cgroups.
#
# Exit status: 0 if node-check-clean.sh STATE_DIR finds nothing left afterwards, else 1 (the
# leftovers are printed on stderr).
set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=node-common.sh
. "$SCRIPT_DIR/node-common.sh"

T_START=$(date +%s.%N)
elapsed() { awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[node-down %ss] %s\n' "$(elapsed)" "$*" >&2; }

[[ $# -ge 1 ]] || { echo "usage: $0 STATE_DIR [--purge]" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { log "must run as root"; exit 2; }
PURGE=0
[[ "${2:-}" == --purge ]] && PURGE=1
STATE=${1%/}
if [[ ! -d "$STATE" ]]; then
  log "no such directory: ${STATE}"
  if [[ -f "$NODE_CURRENT" && "$(cat "$NODE_CURRENT")" == "$STATE" ]]; then rm -f "$NODE_CURRENT"; fi
  exit 0
fi
STATE=$(cd "$STATE" && pwd)

if [[ "${NODE_DOWN_LOCKED:-0}" != 1 ]]; then
  mkdir -p "$NODE_REGISTRY"
  exec 8>"$NODE_REGISTRY/lock"
  flock -w 600 8 || log "WARNING: could not get ${NODE_REGISTRY}/lock; going on"
fi

# Settings the node used (defaults when node-up.sh did not get far enough to write them).
ENVF="$STATE/env"
for key in NODE_IF NODE_IP CNI_BRIDGE CNI_NETWORK POD_CIDR SERVICE_CIDR KUBECTL KUBE_PROXY CTR; do
  if v=$(node_read_env "$ENVF" "$key") && [[ -n "$v" ]]; then printf -v "$key" '%s' "$v"; fi
done
KUBECTL=${KUBECTL:-$(command -v kubectl || true)}
CTR=${CTR:-$(command -v ctr || true)}
CTRD_SOCK="$STATE/containerd/containerd.sock"
BASELINE="$STATE/baseline"

# Another node running (this one is stale)? Then only this state dir's processes and mounts are
# ours to clean: interfaces, iptables, sysctls, cgroups and fixed paths belong to the other node.
OTHER_RUNNING=""
if [[ -s "$NODE_CURRENT" && "$(cat "$NODE_CURRENT")" != "$STATE" ]]; then
  other=$(cat "$NODE_CURRENT")
  for f in "$other"/*.pid; do
    [[ -s "$f" ]] || continue
    if node_pid_alive_ours "$other" "$(cat "$f")"; then OTHER_RUNNING=$other; break; fi
  done
fi

pid_of() { cat "$STATE/$1.pid" 2>/dev/null; }
alive() { node_pid_alive_ours "$STATE" "$(pid_of "$1")"; }

# stop NAME [SECONDS]: TERM the recorded PID, KILL after SECONDS (default 10).
stop() {
  local name=$1 secs=${2:-10} pid
  pid=$(pid_of "$name")
  if [[ -n "$pid" ]] && node_pid_alive_ours "$STATE" "$pid"; then
    log "stopping ${name} (pid ${pid})"
    kill -TERM "$pid" 2>/dev/null
    local i
    for ((i = 0; i < secs * 10; i++)); do
      node_pid_running "$pid" || break
      sleep 0.1
    done
    if node_pid_running "$pid"; then
      log "${name} (pid ${pid}) still running after ${secs}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null
      sleep 0.2
    fi
  fi
  rm -f "$STATE/$name.pid"
}

k() { "$KUBECTL" --kubeconfig "$STATE/kubeconfig" --request-timeout=10s "$@"; }
ctr_() { timeout 20 "$CTR" --address "$CTRD_SOCK" --namespace k8s.io "$@"; }
ctr_running_tasks() { ctr_ tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING" { print $1 }'; }

# --- 1. Pods, through the kubelet (CNI DEL, volume unmounts) --------------------------------------
# Waiting for the pod objects to disappear costs ~10 s more per pod (the 1.20 kubelet confirms
# deletions in a 10 s batch); what matters is that the kubelet stopped the sandboxes (CNI DEL)
# and unmounted the volumes, so wait for that.
if alive kube-apiserver && alive kubelet && [[ -n "$KUBECTL" && -f "$STATE/kubeconfig" ]]; then
  stop kube-controller-manager
  stop kube-scheduler
  log "deleting all pods"
  k delete pods --all --all-namespaces --grace-period=1 --wait=false >&2
  pods_stopped() {
    [[ -z "$(node_mounts_under "$STATE/kubelet/pods")" ]] || return 1
    alive containerd || return 0
    [[ -z "$(ctr_running_tasks)" ]]
  }
  for _ in $(seq 300); do
    pods_stopped && break
    sleep 0.2
  done
  if pods_stopped; then log "pods stopped"; else log "WARNING: pods still running after 60s"; fi
fi

# --- 2. kubelet, kube-proxy ---------------------------------------------------------------------------
stop kubelet
had_proxy=0
[[ -e "$STATE/kube-proxy.pid" ]] && had_proxy=1
stop kube-proxy
if ((had_proxy)) && [[ -n "${KUBE_PROXY:-}" && -x "$KUBE_PROXY" ]]; then
  log "kube-proxy --cleanup"
  timeout 60 "$KUBE_PROXY" --cleanup >"$STATE/kube-proxy-cleanup.log" 2>&1 \
    || log "kube-proxy --cleanup: exit $? (its IPVS part wants ipset; see ${STATE}/kube-proxy-cleanup.log); KUBE-* rules are removed below anyway"
fi

# --- 3. containerd: remaining tasks, then containerd and its shims ----------------------------------
if alive containerd && [[ -n "$CTR" ]]; then
  mapfile -t tasks < <(ctr_ tasks ls -q 2>/dev/null)
  if ((${#tasks[@]})); then
    log "killing ${#tasks[@]} remaining containerd task(s)"
    for t in "${tasks[@]}"; do ctr_ tasks kill --signal SIGKILL "$t" >/dev/null 2>&1; done
    for _ in $(seq 50); do
      [[ -z "$(ctr_running_tasks)" ]] && break
      sleep 0.1
    done
    for t in "${tasks[@]}"; do ctr_ tasks delete --force "$t" >/dev/null 2>&1; done
  fi
fi
stop containerd 15

# --- 4. DNS, control plane, etcd ----------------------------------------------------------------------
stop dns-sync
stop dnsmasq
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver
stop etcd
# Any other process node-up.sh recorded.
for f in "$STATE"/*.pid; do
  [[ -e "$f" ]] && stop "$(basename "$f" .pid)"
done

# Shims (containerd passes its environment on) and anything else carrying this node's mark.
mapfile -t marked < <(node_marked_pids "$STATE")
if ((${#marked[@]})); then
  log "terminating ${#marked[@]} leftover process(es) of this node: ${marked[*]}"
  kill -TERM "${marked[@]}" 2>/dev/null
  sleep 1
  mapfile -t marked < <(node_marked_pids "$STATE")
  ((${#marked[@]})) && kill -KILL "${marked[@]}" 2>/dev/null
fi

# Container processes left in the node's kubepods cgroups (node-up.sh refuses to start when a
# kubepods cgroup exists, so every one of them belongs to this node).
kill_kubepods() {
  local cg procs p n=0
  while read -r cg; do
    while read -r procs; do
      while read -r p; do
        [[ -n "$p" ]] || continue
        kill -KILL "$p" 2>/dev/null && n=$((n + 1))
      done <"$procs"
    done < <(find "$cg" -name cgroup.procs 2>/dev/null)
  done < <(node_kubepods_cgroups)
  ((n == 0)) || log "killed ${n} process(es) left in kubepods cgroups"
}
[[ -n "$OTHER_RUNNING" ]] || kill_kubepods

# --- 5. Mounts ------------------------------------------------------------------------------------------
unmount_under() {
  local m
  while read -r m; do
    [[ -n "$m" ]] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "WARNING: cannot unmount ${m}"
  done < <(node_mounts_under "$1")
}
unmount_under "$STATE"
if [[ -n "$OTHER_RUNNING" ]]; then
  log "WARNING: the node from ${OTHER_RUNNING} is running: stopped this state dir's processes and"
  log "unmounted its mounts only; the machine-wide cleanup is that node's node-down.sh"
  if ((PURGE)) && [[ -z "$(node_mounts_under "$STATE")" ]]; then rm -rf "$STATE" && log "removed ${STATE}"; fi
  exit 1
fi
baseline_has() { [[ -f "$BASELINE" ]] && grep -qxF -- "$1" "$BASELINE"; }
if ! baseline_has "path /var/lib/kubelet=present"; then unmount_under /var/lib/kubelet; fi
for n in /run/netns/cni-*; do
  [[ -e "$n" ]] || continue
  umount "$n" 2>/dev/null || umount -l "$n" 2>/dev/null
  rm -f "$n"
done

# --- 6. Interfaces ---------------------------------------------------------------------------------------
if ip link show dev "$CNI_BRIDGE" >/dev/null 2>&1; then
  while read -r v; do
    [[ -n "$v" ]] && ip link del "$v" 2>/dev/null
  done < <(ip -o link show master "$CNI_BRIDGE" 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
  ip link del "$CNI_BRIDGE" && log "deleted ${CNI_BRIDGE}"
fi
if ip link show dev "$NODE_IF" >/dev/null 2>&1; then
  ip link del "$NODE_IF" && log "deleted ${NODE_IF}"
fi

if command -v conntrack >/dev/null 2>&1; then
  for net in "$POD_CIDR" "$SERVICE_CIDR" "$NODE_IP"; do
    conntrack -D -s "$net" >/dev/null 2>&1
    conntrack -D -d "$net" >/dev/null 2>&1
  done
fi

# --- 7. iptables ------------------------------------------------------------------------------------------
iptables_cleanup() {
  local cmd t line chains=() c n=0
  while read -r cmd t line; do
    case "$line" in
      "-A KUBE-"* | "-A CNI-"*) ;; # flushed with their chain
      "-A "*)
        # iptables -S quotes comments; eval re-reads them as one argument each.
        eval "\"\$cmd\" -w 5 -t \"\$t\" -D ${line#-A }" 2>/dev/null && n=$((n + 1))
        ;;
      "-N "*) chains+=("$cmd $t ${line#-N }") ;;
    esac
  done < <(node_iptables_leftovers)
  for c in "${chains[@]}"; do
    read -r cmd t line <<<"$c"
    "$cmd" -w 5 -t "$t" -F "$line" 2>/dev/null
  done
  for c in "${chains[@]}"; do
    read -r cmd t line <<<"$c"
    "$cmd" -w 5 -t "$t" -X "$line" 2>/dev/null && n=$((n + 1))
  done
  ((n == 0)) || log "removed ${n} iptables rule(s)/chain(s)"
}
iptables_cleanup
# A second pass catches chains that were still referenced by another chain the first time.
[[ -z "$(node_iptables_leftovers)" ]] || iptables_cleanup

# --- 8. sysctls ---------------------------------------------------------------------------------------------
if [[ -f "$BASELINE" ]]; then
  while read -r kind kv; do
    [[ "$kind" == sysctl ]] || continue
    name=${kv%%=*}
    want=${kv#*=}
    cur=$(node_sysctl_get "$name")
    if [[ -n "$cur" && "$cur" != "$want" ]]; then
      if printf '%s\n' "$want" >"/proc/sys/${name//.//}" 2>/dev/null; then
        log "sysctl ${name}: ${cur} -> ${want}"
      else
        log "WARNING: cannot restore sysctl ${name}=${want}"
      fi
    fi
  done <"$BASELINE"
else
  log "no baseline in ${STATE}: sysctls not restored (node-up.sh stopped before recording them)"
fi

# --- 9. cgroups ----------------------------------------------------------------------------------------------
for _ in 1 2 3 4 5; do
  left=0
  while read -r cg; do
    [[ -n "$cg" ]] || continue
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
    [[ -d "$cg" ]] && left=1
  done < <(node_kubepods_cgroups)
  ((left)) || break
  kill_kubepods
  sleep 0.5
done

# --- 10. Fixed paths ---------------------------------------------------------------------------------------------
if [[ -f "$BASELINE" ]]; then
  for p in "${NODE_FIXED_PATHS[@]}"; do
    [[ -e "$p" ]] || continue
    if baseline_has "path $p=present"; then
      while read -r e; do
        [[ -n "$e" ]] || continue
        baseline_has "entry $p/$e" && continue
        [[ -z "$(node_mounts_under "$p/$e")" ]] || { log "WARNING: mounts under ${p}/${e}; not removed"; continue; }
        rm -rf "${p:?}/$e"
      done < <(find "$p" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null)
    elif baseline_has "path $p=absent"; then
      [[ -z "$(node_mounts_under "$p")" ]] || { log "WARNING: mounts under ${p}; not removed"; continue; }
      rm -rf "$p" && log "removed ${p}"
    fi
  done
  rm -rf "/var/lib/cni/networks/$CNI_NETWORK" /var/lib/cni/results/"$CNI_NETWORK"-* 2>/dev/null
  for p in "${NODE_SHARED_DIRS[@]}"; do
    if baseline_has "path $p=absent" && [[ -d "$p" ]]; then
      rmdir "$p" 2>/dev/null && log "removed ${p}"
    fi
  done
fi

# --- 11. Registry, purge, check -------------------------------------------------------------------------------
if [[ -f "$NODE_CURRENT" && "$(cat "$NODE_CURRENT")" == "$STATE" ]]; then rm -f "$NODE_CURRENT"; fi

rc=0
if ! report=$("$SCRIPT_DIR/node-check-clean.sh" "$STATE"); then
  printf '%s\n' "$report" >&2
  log "WARNING: leftovers remain (above)"
  rc=1
fi
if ((PURGE)); then
  if [[ -n "$(node_mounts_under "$STATE")" ]]; then
    log "WARNING: mounts remain under ${STATE}; not deleting it"
    rc=1
  else
    rm -rf "$STATE"
    log "removed ${STATE}"
  fi
fi
log "done in $(elapsed) s"
exit "$rc"
