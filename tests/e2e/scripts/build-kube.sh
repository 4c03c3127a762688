#!/usr/bin/env bash
# Build (once) and cache the Kubernetes v1.20.2 server binaries from Debian
# bookworm's `kubernetes` source package, with the three Go-1.19 source fixes,
# static (CGO_ENABLED=0), and make sure the Debian packages needed to run them
# are installed. See README.md next to this script.
#
# Usage: build-kube.sh [NAME...]
#   NAME: kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy
#         (default: all five). Only the requested binaries that are not cached
#         yet are built, in one `make` run.
#
# stdout: one KEY=PATH line per requested binary, then ETCD=PATH, e.g.
#           KUBE_APISERVER=/root/.cache/cratedb-restore/kube-1.20.5+really1.20.2-r2/kube-apiserver
#           KUBE_CONTROLLER_MANAGER=...  KUBE_SCHEDULER=...  KUBELET=...  KUBE_PROXY=...
#           ETCD=/usr/bin/etcd
#         (KEY = NAME upper-cased, '-' -> '_').
# stderr: all progress output.
#
# Packages: always etcd-server; when kubelet or kube-proxy is requested also
# the node runtime (containerd runc containernetworking-plugins iptables
# conntrack socat dnsmasq-base iproute2 kmod curl jq, and busybox-static unless
# a busybox is installed). Build tools only when building.
#
# Environment:
#   CRATEDB_RESTORE_CACHE  cache root (default: $HOME/.cache/cratedb-restore)
#   KUBE_BUILD_GOCACHE     keep the Go build cache in this directory (default:
#                          a temp dir that is deleted; ~1.6 GB for all five)
#   KEEP_BUILD_DIR=1       keep the temporary source/build directory (debugging)
#
# Needs root (or passwordless sudo) only when packages must be installed.
set -euo pipefail

# --- What we build --------------------------------------------------------
readonly SRC_PACKAGE=kubernetes
readonly SRC_VERSION=1.20.5+really1.20.2
readonly SRC_SUITE=bookworm
# Bump RECIPE_REVISION whenever apply_fixes() or the build recipe changes: it
# is part of the cache key, so a bump forces a rebuild. (1 was the
# kube-apiserver-only recipe, cached as kube-apiserver-<version>-fix1.)
readonly RECIPE_REVISION=2
readonly CACHE_KEY="${SRC_VERSION}-r${RECIPE_REVISION}"

readonly ALL_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

# Upstream version information baked into the binaries (`--version`, /version).
readonly KUBE_VERSION=v1.20.2
readonly KUBE_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56

# Versions of the Debian library packages used by fixes 1 and 2.
readonly REFLECT2_PKG=golang-github-modern-go-reflect2-dev
readonly REFLECT2_EXPECTED=1.0.2
readonly JSONITER_PKG=golang-github-json-iterator-go-dev
readonly JSONITER_EXPECTED=1.1.12
readonly GOCODE=/usr/share/gocode/src

readonly BUILD_PACKAGES=(golang-go rsync dpkg-dev make "$REFLECT2_PKG" "$JSONITER_PKG")
readonly RUNTIME_PACKAGES=(etcd-server)
# containerd 1.6 still serves CRI v1alpha2, which kubelet 1.20 needs.
readonly NODE_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack socat
  dnsmasq-base iproute2 kmod curl jq)

readonly CACHE_ROOT="${CRATEDB_RESTORE_CACHE:-${HOME}/.cache/cratedb-restore}"
readonly CACHE_DIR="${CACHE_ROOT}/kube-${CACHE_KEY}"
readonly DEB_SRC_FILE=/etc/apt/sources.list.d/cratedb-restore-${SRC_SUITE}-src.sources
# Other sessions may be running apt at the same time: wait for the lock.
readonly APT_LOCK_WAIT=(-o DPkg::Lock::Timeout=600)

# All progress goes to stderr; fd 3 is the real stdout for the KEY=PATH lines.
exec 3>&1 1>&2

log() { printf '[build-kube] %s\n' "$*" >&2; }
die() { printf '[build-kube] ERROR: %s\n' "$*" >&2; exit 1; }

# --- Arguments ----------------------------------------------------------------
WANT=()
if (($# == 0)); then
  WANT=("${ALL_BINARIES[@]}")
else
  for arg in "$@"; do
    case " ${ALL_BINARIES[*]} " in
      *" $arg "*) WANT+=("$arg") ;;
      *) die "unknown binary '${arg}' (known: ${ALL_BINARIES[*]})" ;;
    esac
  done
fi

key_of() { # kube-apiserver -> KUBE_APISERVER
  local k=${1//-/_}
  printf '%s\n' "${k^^}"
}

# A cached binary is usable if it runs `--version` (static is checked at build time).
binary_works() {
  local bin="$CACHE_DIR/$1"
  [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1
}

missing_binaries() {
  local n
  for n in "${WANT[@]}"; do
    binary_works "$n" || printf '%s\n' "$n"
  done
}

needs_node_packages() {
  [[ " ${WANT[*]} " == *" kubelet "* || " ${WANT[*]} " == *" kube-proxy "* ]]
}

print_result() {
  local n
  for n in "${WANT[@]}"; do
    printf '%s=%s\n' "$(key_of "$n")" "$CACHE_DIR/$n" >&3
  done
  printf 'ETCD=%s\n' "$(command -v etcd)" >&3
}

node_tools_present() {
  needs_node_packages || return 0
  local t
  for t in containerd containerd-shim-runc-v2 runc ctr iptables conntrack socat dnsmasq ip modprobe curl jq busybox; do
    command -v "$t" >/dev/null 2>&1 || return 1
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/portmap && -x /usr/lib/cni/loopback ]]
}

# --- Fast path: everything cached and installed --------------------------------
if [[ -z "$(missing_binaries)" ]] && command -v etcd >/dev/null 2>&1 && node_tools_present; then
  print_result
  exit 0
fi

# --- apt helpers ------------------------------------------------------------
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install packages"
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0

apt_update() {
  log "apt-get update"
  "${SUDO[@]}" apt-get "${APT_LOCK_WAIT[@]}" update -q >&2
  APT_UPDATED=1
}

pkg_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

pkg_has_candidate() {
  local cand
  cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
  [[ -n "$cand" && "$cand" != "(none)" ]]
}

# ensure_packages PKG...: install those that are missing; `apt-get update`
# only if a package is unknown or the install fails (e.g. stale lists).
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    pkg_installed "$p" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if ((APT_UPDATED == 0)); then
    for p in "${missing[@]}"; do
      if ! pkg_has_candidate "$p"; then apt_update; break; fi
    done
  fi
  log "installing: ${missing[*]}"
  if ! "${SUDO[@]}" apt-get "${APT_LOCK_WAIT[@]}" install -y -q --no-install-recommends "${missing[@]}" >&2; then
    ((APT_UPDATED == 0)) || die "apt-get install ${missing[*]} failed"
    apt_update
    "${SUDO[@]}" apt-get "${APT_LOCK_WAIT[@]}" install -y -q --no-install-recommends "${missing[@]}" >&2 \
      || die "apt-get install ${missing[*]} failed"
  fi
}

# Print "URI<TAB>SIGNED-BY" of the first enabled `deb` entry for
# $SRC_SUITE main, looking at deb822 .sources files and one-line .list files.
find_debian_mirror() {
  local f out
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    out=$(awk -v suite="$SRC_SUITE" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && suites ~ ("(^| )" suite "( |$)") &&
            comps ~ /(^| )main( |$)/ && tolower(enabled) != "no" && uri != "") {
          printf "%s\t%s\n", uri, signed; found = 1; exit
        }
        types = suites = comps = uri = signed = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^[^ \t]/ {
        key = tolower($1); sub(/:$/, "", key)
        val = $0; sub(/^[^:]*:[ \t]*/, "", val)
        if (key == "types") types = val
        else if (key == "suites") suites = val
        else if (key == "components") comps = val
        else if (key == "enabled") enabled = val
        else if (key == "uris") { split(val, u, /[ \t]+/); uri = u[1] }
        else if (key == "signed-by" && val ~ /^\//) { split(val, s, /[ \t]+/); signed = s[1] }
      }
      END { if (!found) flush() }
    ' "$f")
    if [[ -n "$out" ]]; then printf '%s\n' "$out"; return 0; fi
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    out=$(awk -v suite="$SRC_SUITE" '
      /^[ \t]*#/ { next }
      $1 == "deb" {
        i = 2; signed = ""
        if ($i ~ /^\[/) {
          while (i <= NF) {
            opt = $i; gsub(/[\[\]]/, "", opt)
            if (opt ~ /^signed-by=/) { sub(/^signed-by=/, "", opt); signed = opt }
            if ($i ~ /\]$/) { i++; break }
            i++
          }
        }
        uri = $i; s = $(i + 1); hasmain = 0
        for (j = i + 2; j <= NF; j++) if ($j == "main") hasmain = 1
        if (s == suite && hasmain) { printf "%s\t%s\n", uri, signed; exit }
      }
    ' "$f")
    if [[ -n "$out" ]]; then printf '%s\n' "$out"; return 0; fi
  done
}

# Full Debian version (e.g. 1.20.5+really1.20.2-1.1+deb12u1) of the newest
# known source of upstream version $SRC_VERSION; empty if unknown.
source_full_version() {
  { apt-cache showsrc "$SRC_PACKAGE" 2>/dev/null || true; } \
    | awk -v up="$SRC_VERSION" '$1 == "Version:" && index($2, up "-") == 1 {print $2}' \
    | sort -V | tail -n1
}

source_known() {
  [[ -n "$(source_full_version)" ]]
}

ensure_deb_src() {
  source_known && return 0
  if [[ ! -f "$DEB_SRC_FILE" ]]; then
    local line uri signed
    line=$(find_debian_mirror)
    uri=${line%%$'\t'*}
    signed=${line#*$'\t'}
    if [[ -z "$line" || -z "$uri" ]]; then
      uri=http://deb.debian.org/debian
      signed=""
      log "no 'deb ... ${SRC_SUITE} main' entry found in apt sources; using ${uri}"
    fi
    log "adding deb-src entry ${uri} ${SRC_SUITE} main -> ${DEB_SRC_FILE}"
    {
      printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\n' "$uri" "$SRC_SUITE"
      [[ -n "$signed" ]] && printf 'Signed-By: %s\n' "$signed"
    } | "${SUDO[@]}" tee "$DEB_SRC_FILE" >/dev/null
  fi
  apt_update
  source_known || die "source package ${SRC_PACKAGE}=${SRC_VERSION} not found after adding ${DEB_SRC_FILE}"
}

# Upstream part of an installed package's version (1.0.2-1 -> 1.0.2).
pkg_upstream_version() {
  local v
  v=$(dpkg-query -W -f='${Version}' "$1")
  v=${v#*:}
  printf '%s\n' "${v%-*}"
}

# --- The three source fixes ---------------------------------------------------
# replace_vendored_module MODULE DEBIAN_SRC_DIR NEW_VERSION
# Replaces the vendored packages of MODULE (exactly the directories that are
# vendored now) by the non-test .go/.s files of the Debian copy, and pins
# NEW_VERSION in vendor/modules.txt, go.mod and staging/src/k8s.io/*/go.mod.
replace_vendored_module() {
  local module=$1 from=$2 version=$3 dest="vendor/$1"
  local mre=${module//./\\.}
  [[ -d "$dest" ]] || die "fix: ${dest} does not exist in the source tree"
  [[ -d "$from" ]] || die "fix: ${from} does not exist (package not installed?)"
  grep -Eq "^# ${mre} v[0-9]" vendor/modules.txt \
    || die "fix: ${module} not found in vendor/modules.txt"
  grep -Eq "${mre} v[0-9]" go.mod || die "fix: ${module} not found in go.mod"

  local dirs=() d
  mapfile -t dirs < <(cd "$dest" && find . -type f -name '*.go' ! -name '*_test.go' -printf '%h\n' | sort -u)
  ((${#dirs[@]})) || die "fix: no vendored .go files under ${dest}"
  rm -rf "$dest"
  for d in "${dirs[@]}"; do
    compgen -G "$from/$d/*.go" >/dev/null || die "fix: ${from}/${d} has no .go files"
    mkdir -p "$dest/$d"
    # Sources and the (empty) assembly stubs that permit bodyless linkname funcs.
    find "$from/$d" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
      -exec cp -t "$dest/$d" {} +
  done
  [[ -f "$from/LICENSE" ]] && cp "$from/LICENSE" "$dest/"

  local files=(vendor/modules.txt go.mod) f
  for f in staging/src/k8s.io/*/go.mod; do files+=("$f"); done
  # "MODULE vX.Y.Z" everywhere: require lines, replace lines, modules.txt headers.
  sed -E -i "s#(${mre}) v[0-9][^ ]*#\\1 ${version}#g" "${files[@]}"
  grep -Eq "^# ${mre} ${version//./\\.}( |\$)" vendor/modules.txt \
    || die "fix: version of ${module} not updated in vendor/modules.txt"
  log "fix: vendor/${module} (${dirs[*]}) replaced by Debian's ${version}"
}

apply_fixes() {
  local reflect2_v jsoniter_v
  reflect2_v=$(pkg_upstream_version "$REFLECT2_PKG")
  jsoniter_v=$(pkg_upstream_version "$JSONITER_PKG")
  [[ "$reflect2_v" == "$REFLECT2_EXPECTED" ]] \
    || log "WARNING: ${REFLECT2_PKG} is ${reflect2_v}, expected ${REFLECT2_EXPECTED} (bump FIX_REVISION?)"
  [[ "$jsoniter_v" == "$JSONITER_EXPECTED" ]] \
    || log "WARNING: ${JSONITER_PKG} is ${jsoniter_v}, expected ${JSONITER_EXPECTED} (bump FIX_REVISION?)"

  # Fix 1: reflect2 1.0.1 crashes under Go >= 1.18 (panics on every CR create).
  replace_vendored_module github.com/modern-go/reflect2 "$GOCODE/github.com/modern-go/reflect2" "v${reflect2_v}"
  # Fix 2: the matching json-iterator (1.1.12 goes with reflect2 1.0.2).
  replace_vendored_module github.com/json-iterator/go "$GOCODE/github.com/json-iterator/go" "v${jsoniter_v}"

  # Fix 3: under Go >= 1.18 the OpenAPI type check treats zero values ("", 0,
  # false) as null, rejecting e.g. `snapshot: ""` with "must be of type string".
  local old='data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data))'
  local f n
  for f in vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go \
           vendor/github.com/go-openapi/validate/type.go; do
    [[ -f "$f" ]] || die "fix 3: ${f} not found"
    n=$(grep -cF -- "$old" "$f" || true)
    [[ "$n" -ge 1 ]] || die "fix 3: pattern not found in ${f}"
    OLD="$old" perl -0pi -e 's/\Q$ENV{OLD}\E/data == nil/g' "$f"
    ! grep -qF -- "$old" "$f" || die "fix 3: pattern still present in ${f}"
    log "fix 3: patched ${f} (${n} occurrence(s))"
  done
}

# --- Main ---------------------------------------------------------------------
ensure_packages "${RUNTIME_PACKAGES[@]}"
command -v etcd >/dev/null 2>&1 || die "etcd not on PATH after installing etcd-server"
if needs_node_packages; then
  ensure_packages "${NODE_PACKAGES[@]}"
  # node-up.sh queries the cluster DNS with busybox nslookup; busybox and busybox-static conflict.
  command -v busybox >/dev/null 2>&1 || ensure_packages busybox-static
  node_tools_present || die "node tools missing after installing ${NODE_PACKAGES[*]}"
fi

mapfile -t TODO < <(missing_binaries)
if ((${#TODO[@]} == 0)); then
  log "cached binaries OK: ${WANT[*]}"
  print_result
  exit 0
fi

mkdir -p "$CACHE_DIR"
# Serialize concurrent builds of the same key.
exec 9>"${CACHE_DIR}/.lock"
log "waiting for build lock ${CACHE_DIR}/.lock"
flock 9
mapfile -t TODO < <(missing_binaries)
if ((${#TODO[@]} == 0)); then
  log "binaries built by a concurrent run"
  print_result
  exit 0
fi

START=$SECONDS
ensure_packages "${BUILD_PACKAGES[@]}"
ensure_deb_src

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kube-build.XXXXXX")
cleanup() {
  if [[ "${KEEP_BUILD_DIR:-0}" == 1 ]]; then
    log "keeping build directory ${WORK}"
  else
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
  fi
  rm -f "$CACHE_DIR"/*.tmp.$$
}
trap cleanup EXIT

SRC_FULL_VERSION=$(source_full_version)
[[ -n "$SRC_FULL_VERSION" ]] || die "source package ${SRC_PACKAGE} ${SRC_VERSION}-* not available"
log "fetching source ${SRC_PACKAGE}=${SRC_FULL_VERSION} into ${WORK}"
(cd "$WORK" && apt-get source -q "${SRC_PACKAGE}=${SRC_FULL_VERSION}" >&2)
SRC=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name "${SRC_PACKAGE}-*" | head -n1)
[[ -n "$SRC" && -f "$SRC/Makefile" ]] || die "unpacked source tree not found in ${WORK}"
cd "$SRC"

apply_fixes

WHAT=""
for n in "${TODO[@]}"; do WHAT+=" cmd/$n"; done
WHAT=${WHAT# }
log "building ${WHAT} (2 cores: ~5 min for kube-apiserver alone, ~11 min for all five)"
export GOPATH="$SRC/.go"
if [[ -n "${KUBE_BUILD_GOCACHE:-}" ]]; then
  mkdir -p "$KUBE_BUILD_GOCACHE"
  GOCACHE=$(cd "$KUBE_BUILD_GOCACHE" && pwd)
else
  GOCACHE="$WORK/go-build-cache"
fi
export GOCACHE
export CGO_ENABLED=0
export GOTOOLCHAIN=local
mkdir -p .go/src/k8s.io
ln -sfn ../../.. .go/src/k8s.io/kubernetes
cat >"$WORK/version-vars" <<VARS
KUBE_GIT_COMMIT='${KUBE_COMMIT}'
KUBE_GIT_TREE_STATE='clean'
KUBE_GIT_VERSION='${KUBE_VERSION}'
KUBE_GIT_MAJOR='1'
KUBE_GIT_MINOR='20'
VARS
export KUBE_GIT_VERSION_FILE="$WORK/version-vars"
make WHAT="$WHAT" >&2

for n in "${TODO[@]}"; do
  out="$SRC/_output/bin/$n"
  [[ -x "$out" ]] || die "build did not produce ${out}"
  "$out" --version >&2 || die "built ${n} does not run"
  # Static: ldd refuses (exit 1, "not a dynamic executable").
  if ldd "$out" >/dev/null 2>&1; then die "${n} is dynamically linked (CGO_ENABLED=0 ignored?)"; fi
  cp "$out" "$CACHE_DIR/$n.tmp.$$"
  chmod 0755 "$CACHE_DIR/$n.tmp.$$"
  mv -f "$CACHE_DIR/$n.tmp.$$" "$CACHE_DIR/$n"
done
printf 'source=%s=%s recipe_revision=%s built=%s seconds=%s binaries=%s\n' \
  "$SRC_PACKAGE" "$SRC_FULL_VERSION" "$RECIPE_REVISION" "$(date -u +%FT%TZ)" \
  "$((SECONDS - START))" "${TODO[*]}" >>"${CACHE_DIR}/BUILD-INFO"
log "built ${TODO[*]} in $((SECONDS - START)) s into ${CACHE_DIR}"
[[ -z "$(missing_binaries)" ]] || die "cached binaries do not run: $(missing_binaries | tr '\n' ' ')"
print_result
