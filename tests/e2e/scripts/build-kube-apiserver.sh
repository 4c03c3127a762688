#!/usr/bin/env bash
# Build (once) and cache a real kube-apiserver v1.20.2 and make sure `etcd`
# (package etcd-server) is installed. A thin wrapper of build-kube.sh, which
# holds the recipe (source package, the three fixes, cache key); see README.md.
#
# Usage: build-kube-apiserver.sh
#
# stdout: exactly one line, the absolute path of the cached kube-apiserver.
# stderr: all progress output.
#
# Environment: as build-kube.sh (CRATEDB_RESTORE_CACHE, KUBE_BUILD_GOCACHE,
# KEEP_BUILD_DIR). Needs root (or passwordless sudo) only when packages must be
# installed.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$("$SCRIPT_DIR/build-kube.sh" kube-apiserver)
bin=$(sed -n 's/^KUBE_APISERVER=//p' <<<"$out")
if [[ -z "$bin" || ! -x "$bin" ]]; then
  printf '[build-kube-apiserver] ERROR: build-kube.sh gave no kube-apiserver:\n%s\n' "$out" >&2
  exit 1
fi
printf '%s\n' "$bin"
