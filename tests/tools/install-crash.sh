#!/usr/bin/env bash
# Installs CrateDB's shell `crash` (PyPI package `crash`, exact version) for Debian's python3.11
# into a cache directory, once, and prints that directory (last and only line of stdout).
#
# The directory holds `site/` (the packages, `pip install --target`) and `bin/crash`, a launcher
# that runs pip's own `site/bin/crash` entry script with `/usr/bin/python3.11` and that site on
# PYTHONPATH. The simulator's
# tests run crash on the host this way; the simulator image copies `site/` next to the same
# Debian interpreter.
#
# Environment: CRATEDB_RESTORE_CACHE (default $HOME/.cache/cratedb-restore).
set -euo pipefail

readonly CRASH_VERSION=0.32.0
readonly PYTHON=/usr/bin/python3.11
readonly CACHE=${CRATEDB_RESTORE_CACHE:-$HOME/.cache/cratedb-restore}
readonly DIR="$CACHE/crash-$CRASH_VERSION-py3.11"

exec 3>&1 1>&2
log() { printf '[install-crash] %s\n' "$*" >&2; }

works() { [[ -x "$DIR/bin/crash" ]] && "$DIR/bin/crash" --version >/dev/null 2>&1; }
if works; then
  printf '%s\n' "$DIR" >&3
  exit 0
fi

if [[ ! -x $PYTHON ]] || ! $PYTHON -m pip --version >/dev/null 2>&1; then
  log "installing Debian's python3.11 and python3-pip"
  [[ $(id -u) -eq 0 ]] || { log "need root to install Debian packages"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends python3.11 python3-pip >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends python3.11 python3-pip >&2; }
fi

tmp=$(mktemp -d "$CACHE/.crash-XXXXXX" 2>/dev/null || { mkdir -p "$CACHE"; mktemp -d "$CACHE/.crash-XXXXXX"; })
trap 'rm -rf "$tmp"' EXIT
log "pip install crash==$CRASH_VERSION into $DIR"
# --no-compile: no .pyc files, so the tree is the same on every install (reproducible images).
PIP_DISABLE_PIP_VERSION_CHECK=1 $PYTHON -m pip install -q --no-compile --no-cache-dir \
  --target "$tmp/site" "crash==$CRASH_VERSION" >&2
mkdir -p "$tmp/bin"
cat > "$tmp/bin/crash" <<LAUNCHER
#!/bin/sh
PYTHONPATH="$DIR/site\${PYTHONPATH:+:\$PYTHONPATH}" exec $PYTHON "$DIR/site/bin/crash" "\$@"
LAUNCHER
chmod 0755 "$tmp/bin/crash"
rm -rf "$DIR"
mv "$tmp" "$DIR"
trap - EXIT
works || { log "crash at $DIR/bin/crash does not run"; exit 1; }
printf '%s\n' "$DIR" >&3
