#!/usr/bin/env bash
# Check that no trace of a single-node cluster (node-up.sh) is left on this machine.
#
# Usage: node-check-clean.sh [STATE_DIR...]
#
# Exit 0 and print "clean" if nothing is left; otherwise print one "LEFTOVER: ..." line per
# leftover on stdout and exit 1. Looks for:
#   - processes carrying the node mark in their environment (every process node-up.sh starts,
#     and containerd's shims), processes of the given STATE_DIRs (pid files, command lines);
#   - kubepods cgroups (and processes in them);
#   - mounts under the given STATE_DIRs, /var/lib/kubelet, /run/containerd, /run/netns, and
#     any mount of a kubelet pod volume, a containerd snapshot/rootfs or a CNI netns;
#   - KUBE-*/CNI-* iptables chains and rules referring to them (iptables and ip6tables, all
#     backends present, tables filter/nat/mangle/raw);
#   - the interfaces NODE_IF and CNI_BRIDGE, veth interfaces, and interfaces that were not
#     there before node-up; routes to POD_CIDR/SERVICE_CIDR;
#   - network namespaces named cni-*; conntrack entries from/to POD_CIDR, SERVICE_CIDR, NODE_IP;
#   - sysctls that differ from the baseline node-up.sh recorded (STATE_DIR/baseline, else
#     /run/cratedb-restore-node/baseline of this boot; with neither, known defaults);
#   - the fixed paths the kubelet/containerd/CNI create (/var/lib/kubelet, /var/log/pods,
#     /var/log/containers, /var/lib/cni, /run/containerd, ...) when absent from the baseline,
#     or entries in them that the baseline does not list;
#   - a registered running node (/run/cratedb-restore-node/current).
#
# Settings: NODE_IP, NODE_IF, CNI_BRIDGE, CNI_NETWORK, POD_CIDR, SERVICE_CIDR from the first
# STATE_DIR/env given, else the environment, else node-up.sh's defaults.
# Needs root (reads every process's environment and the iptables rules).
set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=node-common.sh
. "$SCRIPT_DIR/node-common.sh"

STATES=()
for s in "$@"; do
  if [[ -d "$s" ]]; then STATES+=("$(cd "$s" && pwd)"); else STATES+=("${s%/}"); fi
done
ARG_STATES=("${STATES[@]}")
# The settings of the first given state dir that recorded them.
for s in "${ARG_STATES[@]}"; do
  [[ -f "$s/env" ]] || continue
  for key in NODE_IP NODE_IF CNI_BRIDGE CNI_NETWORK POD_CIDR SERVICE_CIDR; do
    if v=$(node_read_env "$s/env" "$key") && [[ -n "$v" ]]; then printf -v "$key" '%s' "$v"; fi
  done
  break
done
# Plus every state dir node-up.sh used since boot: their processes and mounts count too.
while read -r s; do
  [[ -n "$s" && " ${STATES[*]} " != *" $s "* ]] && STATES+=("$s")
done < <(node_known_states)

FOUND=0
leftover() {
  printf 'LEFTOVER: %s\n' "$*"
  FOUND=$((FOUND + 1))
}

# --- Baseline -----------------------------------------------------------------------------
BASELINE=""
for s in "${ARG_STATES[@]}"; do
  if [[ -f "$s/baseline" ]]; then BASELINE="$s/baseline"; break; fi
done
if [[ -z "$BASELINE" && -f "$NODE_BASELINE" ]] \
  && grep -qxF "boot_id=$(node_boot_id)" "$NODE_BASELINE"; then
  BASELINE=$NODE_BASELINE
fi
baseline_get() { # KIND NAME -> recorded value; fails if not recorded
  [[ -n "$BASELINE" ]] || return 1
  awk -v p="$1 $2=" 'index($0, p) == 1 { print substr($0, length(p) + 1); f = 1; exit }
    END { exit !f }' "$BASELINE"
}
baseline_has() { # LINE
  [[ -n "$BASELINE" ]] && grep -qxF -- "$1" "$BASELINE"
}

# --- Processes ----------------------------------------------------------------------------
# Our own ancestors (e.g. a shell whose command line names the state dir) are not leftovers.
declare -A SEEN_PIDS=()
a=$$
while [[ -n "$a" && "$a" != 0 ]]; do
  SEEN_PIDS[$a]=1
  a=$(awk '/^PPid:/ { print $2 }' "/proc/$a/status" 2>/dev/null)
done
describe_pid() {
  local p=$1 cmd
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | cut -c1-160)
  printf 'pid %s: %s' "$p" "${cmd:-?}"
}
while read -r p; do
  [[ -n "$p" && -z "${SEEN_PIDS[$p]:-}" ]] || continue
  SEEN_PIDS[$p]=1
  leftover "process with ${NODE_ENV_MARK} in its environment: $(describe_pid "$p")"
done < <(node_marked_pids "")
for s in "${STATES[@]}"; do
  for f in "$s"/*.pid; do
    [[ -s "$f" ]] || continue
    p=$(cat "$f")
    [[ "$p" =~ ^[0-9]+$ ]] || continue
    [[ -n "${SEEN_PIDS[$p]:-}" ]] && continue
    if kill -0 "$p" 2>/dev/null && grep -qzF -- "$s/" "/proc/$p/cmdline" 2>/dev/null; then
      SEEN_PIDS[$p]=1
      leftover "process of ${f}: $(describe_pid "$p")"
    fi
  done
done
if ((${#STATES[@]})); then
  # Patterns from a file: on grep's own command line they would match grep itself.
  while IFS=/ read -r _ _ p _; do
    [[ -n "$p" && "$p" != "$$" && -z "${SEEN_PIDS[$p]:-}" ]] || continue
    SEEN_PIDS[$p]=1
    leftover "process referring to a node state dir: $(describe_pid "$p")"
  done < <(grep -lzF -f <(printf '%s/\n' "${STATES[@]}") /proc/[0-9]*/cmdline 2>/dev/null)
fi

# --- cgroups ------------------------------------------------------------------------------
while read -r cg; do
  [[ -n "$cg" ]] || continue
  leftover "cgroup ${cg}"
  while read -r procs; do
    while read -r p; do
      [[ -n "$p" && -z "${SEEN_PIDS[$p]:-}" ]] || continue
      SEEN_PIDS[$p]=1
      leftover "process in ${procs%/cgroup.procs}: $(describe_pid "$p")"
    done <"$procs"
  done < <(find "$cg" -name cgroup.procs 2>/dev/null)
done < <(node_kubepods_cgroups)

# --- Mounts -------------------------------------------------------------------------------
declare -A SEEN_MOUNTS=()
for d in "${STATES[@]}" /var/lib/kubelet /run/netns; do
  while read -r m; do
    [[ -n "$m" && -z "${SEEN_MOUNTS[$m]:-}" ]] || continue
    SEEN_MOUNTS[$m]=1
    leftover "mount ${m}"
  done < <(node_mounts_under "$d")
done
while read -r m; do
  [[ -n "$m" && -z "${SEEN_MOUNTS[$m]:-}" ]] || continue
  SEEN_MOUNTS[$m]=1
  leftover "mount ${m}"
done < <(awk '{ mp = $5; gsub(/\\040/, " ", mp) }
  mp ~ /\/kubelet\/(pods|plugins)\// || mp ~ /\/netns\/cni-/ { print mp }' /proc/self/mountinfo)

# --- iptables -----------------------------------------------------------------------------
while IFS= read -r l; do
  [[ -n "$l" ]] && leftover "iptables: ${l}"
done < <(node_iptables_leftovers)

# --- Interfaces, routes, netns -------------------------------------------------------------
for i in "$NODE_IF" "$CNI_BRIDGE"; do
  ip link show dev "$i" >/dev/null 2>&1 && leftover "interface ${i}"
done
while read -r name; do
  [[ -z "$name" || "$name" == "$NODE_IF" || "$name" == "$CNI_BRIDGE" ]] && continue
  if [[ "$name" == veth* ]]; then
    leftover "interface ${name}"
  elif [[ -n "$BASELINE" ]] && ! baseline_has "link $name"; then
    leftover "interface ${name} (not there before node-up)"
  fi
done < <(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
for cidr in "$POD_CIDR" "$SERVICE_CIDR"; do
  r=$(ip route show "$cidr" 2>/dev/null)
  [[ -n "$r" ]] && leftover "route ${r}"
done
n=$(node_conntrack_entries | grep -c .)
((n == 0)) || leftover "${n} conntrack entries from/to ${POD_CIDR}, ${SERVICE_CIDR} or ${NODE_IP}"
for n in /run/netns/cni-* /var/run/netns/cni-*; do
  [[ -e "$n" ]] && leftover "network namespace ${n}"
done

# --- sysctls ------------------------------------------------------------------------------
cmdline_panic() {
  local w
  local words
  read -r -a words </proc/cmdline
  for w in "${words[@]}"; do
    [[ "$w" == panic=* ]] && { printf '%s\n' "${w#panic=}"; return; }
  done
  printf '0\n'
}
declare -A DEFAULTS=(
  [vm.overcommit_memory]=0 [kernel.panic_on_oops]=0 [net.ipv4.ip_forward]=0
  [net.ipv4.conf.all.route_localnet]=0 [kernel.panic]="$(cmdline_panic)"
)
while IFS='=' read -r n v; do
  [[ -n "$n" ]] || continue
  if [[ -n "$BASELINE" ]]; then
    if want=$(baseline_get sysctl "$n"); then
      [[ "$v" == "$want" ]] || leftover "sysctl ${n} = ${v} (was ${want} before node-up)"
    fi
  elif [[ -n "${DEFAULTS[$n]:-}" && "$v" != "${DEFAULTS[$n]}" ]]; then
    leftover "sysctl ${n} = ${v} (default ${DEFAULTS[$n]}; no baseline recorded)"
  fi
done < <(node_sysctl_snapshot)

# --- Fixed paths --------------------------------------------------------------------------
for p in "${NODE_FIXED_PATHS[@]}"; do
  [[ -e "$p" ]] || continue
  if [[ -n "$BASELINE" ]] && baseline_has "path $p=present"; then
    while read -r e; do
      [[ -n "$e" ]] || continue
      baseline_has "entry $p/$e" || leftover "path $p/$e (created after node-up's baseline)"
    done < <(find "$p" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null)
  else
    leftover "path ${p}"
  fi
done
# This node's CNI IPAM and cache files, also when /var/lib/cni itself was there before.
for p in "/var/lib/cni/networks/$CNI_NETWORK" /var/lib/cni/results/"$CNI_NETWORK"-*; do
  [[ -e "$p" ]] && leftover "path ${p}"
done

# --- Registry -----------------------------------------------------------------------------
if [[ -e "$NODE_CURRENT" ]]; then
  leftover "registered running node ${NODE_CURRENT} -> $(cat "$NODE_CURRENT" 2>/dev/null)"
fi

if ((FOUND)); then
  printf 'not clean: %d leftover(s)%s\n' "$FOUND" "${BASELINE:+ (baseline ${BASELINE})}"
  exit 1
fi
printf 'clean%s\n' "${BASELINE:+ (baseline ${BASELINE})}"
