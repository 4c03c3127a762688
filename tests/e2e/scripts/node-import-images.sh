#!/usr/bin/env bash
# Import OCI image-layout tarballs into the containerd of a node started by node-up.sh
# (namespace k8s.io, unpacked for the overlayfs snapshotter), so that Pods can use them with
# imagePullPolicy: Never or IfNotPresent.
#
# Usage: node-import-images.sh STATE_DIR FILE.tar...
# stdout: the image references imported, one per line.
set -euo pipefail

log() { printf '[node-import-images] %s\n' "$*" >&2; }
die() { printf '[node-import-images] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $# -ge 2 ]] || { echo "usage: $0 STATE_DIR FILE.tar..." >&2; exit 2; }
STATE=$(cd "$1" && pwd)
shift
CTR=$(command -v ctr) || die "ctr not found (package containerd)"
SOCK="$STATE/containerd/containerd.sock"
[[ -S "$SOCK" ]] || die "no containerd socket ${SOCK} (is the node up?)"

for f in "$@"; do
  [[ -f "$f" ]] || die "no such image archive: ${f}"
  out=$("$CTR" --address "$SOCK" --namespace k8s.io images import "$f" 2>&1) \
    || { printf '%s\n' "$out" >&2; die "ctr images import ${f} failed"; }
  # ctr 1.6 prints "unpacking REF (sha256:...)...done" per image.
  refs=$(sed -n 's/^unpacking \(.*\) (sha256:[0-9a-f]*)\.\.\.done$/\1/p' <<<"$out")
  [[ -n "$refs" ]] || { printf '%s\n' "$out" >&2; die "${f}: no named image in the archive (index.json needs an io.containerd.image.name or org.opencontainers.image.ref.name annotation with a full reference)"; }
  log "${f##*/}: $(tr '\n' ' ' <<<"$refs")"
  printf '%s\n' "$refs"
done
