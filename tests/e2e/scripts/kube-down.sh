#!/usr/bin/env bash
# Stop the kube-apiserver and etcd started by kube-up.sh STATE_DIR.
#
# Usage: kube-down.sh STATE_DIR [--purge]
#   --purge  also delete STATE_DIR
#
# Only PIDs recorded in STATE_DIR/*.pid are signalled, and only if that
# process's command line still refers to STATE_DIR (guards against PID reuse).
set -euo pipefail

log() { printf '[kube-down] %s\n' "$*" >&2; }

[[ $# -ge 1 ]] || { echo "usage: $0 STATE_DIR [--purge]" >&2; exit 2; }
STATE=$1
PURGE=0
[[ "${2:-}" == --purge ]] && PURGE=1
[[ -d "$STATE" ]] || { log "no such directory: ${STATE}"; exit 0; }
STATE=$(cd "$STATE" && pwd)

ours() { # PID: alive and started with STATE_DIR in its arguments
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$STATE/"
}

stop() {
  local name=$1 pidfile="$STATE/$1.pid" pid
  [[ -s "$pidfile" ]] || return 0
  pid=$(cat "$pidfile")
  if ours "$pid"; then
    log "stopping ${name} (pid ${pid})"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "${name} (pid ${pid}) still running after 10s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$pidfile"
}

# API server first, so it does not log a storm of etcd connection errors.
stop kube-apiserver
stop etcd

if ((PURGE)); then
  rm -rf "$STATE"
  log "removed ${STATE}"
fi
