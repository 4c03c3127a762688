#!/usr/bin/env bash
# Stop, or start again, processes of the running node by name (kube-apiserver, etcd, kubelet,
# containerd, ...), with exactly the command line and environment node-up.sh started them with:
# the disruptions of the end-to-end suite (an API server down for a while, etcd restarted, the
# kubelet and containerd restarted while containers run).
#
# Usage: node-ctl.sh STATE_DIR stop NAME...    TERM the recorded PID, KILL after 15 s; returns
#                                               once it has exited
#        node-ctl.sh STATE_DIR start NAME...   start it again from STATE_DIR/NAME.cmd, detached,
#                                               PID in STATE_DIR/NAME.pid; prints NAME_PID=...
#
# Only processes node-up.sh recorded, only for the registered (running) node, and never one that
# is still running on start. containerd's shims (and so the containers) outlive containerd, and
# containers outlive the kubelet: stopping them stops no Pod. node-down.sh tears down whatever
# runs, restarted or not.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=node-common.sh
. "$SCRIPT_DIR/node-common.sh"

log() { printf '[node-ctl] %s\n' "$*" >&2; }
die() { printf '[node-ctl] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $# -ge 3 ]] || { echo "usage: $0 STATE_DIR stop|start NAME..." >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
STATE=$(cd "$1" && pwd) || die "no state dir $1"
ACTION=$2
shift 2
[[ "$ACTION" == stop || "$ACTION" == start ]] || die "unknown action ${ACTION} (stop or start)"
[[ -s "$NODE_CURRENT" && "$(cat "$NODE_CURRENT")" == "$STATE" ]] \
  || die "${STATE} is not the running node (${NODE_CURRENT}: $(cat "$NODE_CURRENT" 2>/dev/null || echo none))"

# Not while node-up.sh or node-down.sh works on the node.
exec 8>"$NODE_REGISTRY/lock"
flock -w 60 8 || die "${NODE_REGISTRY}/lock is held (node-up or node-down running)"

pid_of() { cat "$STATE/$1.pid" 2>/dev/null || true; }

# The NAME_PID= line of STATE/env follows the process.
record_pid() {
  local key
  key="$(tr 'a-z-' 'A-Z_' <<<"$1")_PID"
  if grep -q "^${key}=" "$STATE/env"; then
    sed -i "s/^${key}=.*/${key}=$2/" "$STATE/env"
  else
    printf '%s=%s\n' "$key" "$2" >>"$STATE/env"
  fi
}

stop_one() {
  local name=$1 pid i
  pid=$(pid_of "$name")
  node_pid_alive_ours "$STATE" "$pid" || die "${name} is not running (pid file: '${pid}')"
  log "stopping ${name} (pid ${pid})"
  kill -TERM "$pid"
  for ((i = 0; i < 150; i++)); do
    node_pid_running "$pid" || break
    sleep 0.1
  done
  if node_pid_running "$pid"; then
    log "${name} (pid ${pid}) still running after 15s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      node_pid_running "$pid" || break
      sleep 0.1
    done
  fi
  node_pid_running "$pid" && die "${name} (pid ${pid}) did not stop"
  log "${name} stopped"
}

start_one() {
  local name=$1 pid i
  [[ -s "$STATE/$name.cmd" ]] || die "no recorded command line for ${name} (${STATE}/${name}.cmd)"
  pid=$(pid_of "$name")
  if node_pid_alive_ours "$STATE" "$pid"; then die "${name} is still running (pid ${pid})"; fi
  local cmd=()
  while IFS= read -r -d '' arg; do cmd+=("$arg"); done <"$STATE/$name.cmd"
  rm -f "$STATE/$name.pid"
  # As node-up.sh's start(): own session, the node mark, output appended to the same log.
  # shellcheck disable=SC2016 # $$, $0 and $@ belong to the inner bash
  env "${NODE_ENV_MARK}=${STATE}" AWS_EC2_METADATA_DISABLED=true setsid bash -c 'echo $$ >"$0"; exec "$@"' "$STATE/$name.pid" "${cmd[@]}" \
    </dev/null >>"$STATE/$name.log" 2>&1 8>&- &
  for ((i = 0; i < 50; i++)); do
    [[ -s "$STATE/$name.pid" ]] && break
    sleep 0.1
  done
  pid=$(pid_of "$name")
  [[ -n "$pid" ]] || die "${name} did not start"
  record_pid "$name" "$pid"
  log "${name} started (pid ${pid})"
  printf '%s_PID=%s\n' "$(tr 'a-z-' 'A-Z_' <<<"$name")" "$pid"
}

for name in "$@"; do
  [[ "$name" =~ ^[a-z0-9-]+$ ]] || die "bad process name ${name}"
  "${ACTION}_one" "$name"
done
