#!/usr/bin/env bash
# Keep the cluster DNS of a node started by node-up.sh current: watch Services and (headless)
# Endpoints through the API; on every change (and every DNS_SYNC_INTERVAL seconds) list them,
# rewrite STATE_DIR/dns/hosts (dnsmasq --addn-hosts) and send dnsmasq SIGHUP, only when the
# content changed. node-up.sh starts it; node-down.sh stops it.
#
#   <clusterIP>   <svc>.<ns>.svc.<domain>            every Service with a ClusterIP
#   <endpointIP>  <svc>.<ns>.svc.<domain>            headless Services (clusterIP: None)
#   <endpointIP>  <hostname>.<svc>.<ns>.svc.<domain> headless endpoints with a hostname
#
# Usage: node-dns-sync.sh STATE_DIR
# Environment: DNS_SYNC_INTERVAL (full re-list period without events, default 30).
# Reads KUBE_API_URL, KUBE_CA_FILE, KUBE_ADMIN_TOKEN, CLUSTER_DOMAIN from STATE_DIR/env.
# Uses curl and jq (a kubectl call per change costs ~10x the CPU).
set -uo pipefail

STATE=$1
INTERVAL=${DNS_SYNC_INTERVAL:-30}
envv() { awk -F= -v k="$1" '$1 == k { print substr($0, length(k) + 2); exit }' "$STATE/env"; }
API=$(envv KUBE_API_URL)
CA=$(envv KUBE_CA_FILE)
TOKEN=$(envv KUBE_ADMIN_TOKEN)
DOMAIN=$(envv CLUSTER_DOMAIN)
DOMAIN=${DOMAIN:-cluster.local}
HOSTS="$STATE/dns/hosts"
DNSMASQ_PIDFILE="$STATE/dnsmasq.pid"
HEADLESS='labelSelector=service.kubernetes.io/headless'

# This script leads its own process group (node-up.sh starts it with setsid): TERM ends the
# watchers too.
trap 'trap - TERM INT; kill -TERM 0 2>/dev/null; exit 0' TERM INT

api() {
  curl -sS --fail --cacert "$CA" -H "Authorization: Bearer ${TOKEN}" "$@"
}

list_hosts() {
  local svcs eps
  svcs=$(api --max-time 10 "$API/api/v1/services") || return 1
  eps=$(api --max-time 10 "$API/api/v1/endpoints?$HEADLESS") || return 1
  {
    jq -r --arg d "$DOMAIN" '.items[]
      | select((.spec.clusterIP // "None") != "None" and .spec.clusterIP != "")
      | "\(.spec.clusterIP) \(.metadata.name).\(.metadata.namespace).svc.\($d)"' <<<"$svcs"
    jq -r --arg d "$DOMAIN" '.items[] as $e
      | ($e.subsets // [])[] | (.addresses // [])[]
      | "\(.ip) \($e.metadata.name).\($e.metadata.namespace).svc.\($d)",
        (select(.hostname) | "\(.ip) \(.hostname).\($e.metadata.name).\($e.metadata.namespace).svc.\($d)")' <<<"$eps"
  } | sort -u
}

sync_hosts() {
  local new pid
  new=$(list_hosts) || { echo "$(date -u +%T) list failed"; return; }
  [[ "$new" == "$(cat "$HOSTS" 2>/dev/null)" ]] && return
  printf '%s\n' "$new" >"$HOSTS.tmp" && mv -f "$HOSTS.tmp" "$HOSTS"
  pid=$(cat "$DNSMASQ_PIDFILE" 2>/dev/null)
  [[ -n "$pid" ]] && kill -HUP "$pid" 2>/dev/null
  echo "$(date -u +%T) hosts updated: $(wc -l <<<"$new") names"
}

# watch PATH: one line per change of the listed objects, forever (watches end after a while and
# are reopened).
watch() {
  while :; do
    api -N "$API$1" || true
    echo reopened
    sleep 1
  done
}

sync_hosts
exec 3< <(watch "/api/v1/services?watch=1" & watch "/api/v1/endpoints?watch=1&$HEADLESS" & wait)
while :; do
  # Wait for an event (or the interval), let a burst of events settle, then list once.
  read -r -t "$INTERVAL" _ <&3
  rc=$?
  if ((rc != 0 && rc <= 128)); then
    echo "$(date -u +%T) watch stream ended"
    exit 1
  fi
  while read -r -t 0.1 _ <&3; do :; done
  sync_hosts
done
