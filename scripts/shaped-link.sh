#!/usr/bin/env bash
# A TCP link shaped to a given rate by the kernel, in front of a server of this host: a network
# namespace joined to this host by a veth pair whose two ends each send through a tbf qdisc, and a
# socat in the namespace that listens on the namespace's address and forwards every connection to
# the server over this host's loopback. A client that connects to the printed address gets the
# server's bytes across the shaped veth, as across a hypervisor's uplink; the server is unchanged.
#
# Usage (root):
#   scripts/shaped-link.sh up <name> <server> [rate]   prints <address>:<port> on stdout
#     <server>: host:port, or a port of 127.0.0.1
#   scripts/shaped-link.sh down <name>                      removes all that "up" made; idempotent
# <name>: letters, digits and dashes, at most 10; rate: a tc rate (default 1gbit).
# "up" removes what it made when any step fails. Needs ip (iproute2), tc, socat and nsenter.
set -euo pipefail

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 name=$2
case "$name" in ''|*[!a-zA-Z0-9-]*) usage ;; esac
[ ${#name} -le 10 ] || usage
ns=vpl-$name          # the namespace with the forwarder
host=vpl-$name-host   # a name for this host's own namespace, for the forwarder's outgoing side
dev=vplh-$name        # the veth end on this host; vpln-<name> is the end in the namespace
state=/run/volprov-link-$name
listen_port=8000

down() {
  if [ -f "$state/socat.pid" ]; then
    kill "$(cat "$state/socat.pid")" 2>/dev/null || true
  fi
  ip link del "$dev" 2>/dev/null || true       # removes both ends of the pair
  ip netns del "$ns" 2>/dev/null || true       # ends the namespace (and any forwarder left in it)
  ip netns del "$host" 2>/dev/null || true     # only a name: this host's namespace stays
  rm -rf "$state"
}

case "$cmd" in
  down) down; exit 0 ;;
  up) [ $# -ge 3 ] || usage ;;
  *) usage ;;
esac
server=$3 rate=${4:-1gbit}
case "$server" in *:*) ;; *) server=127.0.0.1:$server ;; esac
case "${server##*:}" in ''|*[!0-9]*) usage ;; esac
for tool in ip tc socat nsenter; do
  command -v "$tool" >/dev/null || { echo "shaped-link: $tool is missing" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "shaped-link: needs root (network namespaces and tc)" >&2; exit 1; }

# A /30 in 10.201.0.0/16 that no interface of this host uses yet.
subnet=
for i in $(seq 0 63); do
  candidate=10.201.$(( ($(printf '%s' "$name" | cksum | cut -d' ' -f1) + i) % 256 ))
  if ! ip -o -4 addr show | grep -q " $candidate\."; then subnet=$candidate; break; fi
done
[ -n "$subnet" ] || { echo "shaped-link: no free subnet in 10.201.0.0/16" >&2; exit 1; }

down # whatever an earlier run of the same name left
trap 'down' ERR
mkdir -p "$state"
ip netns add "$ns"
ip netns attach "$host" $$
ip link add "$dev" type veth peer name "vpln-$name"
ip link set "vpln-$name" netns "$ns"
ip addr add "$subnet.1/30" dev "$dev"
ip link set "$dev" up
ip -n "$ns" addr add "$subnet.2/30" dev "vpln-$name"
ip -n "$ns" link set "vpln-$name" up
ip -n "$ns" link set lo up
# Both directions at the rate. The burst holds 2 ms at 1 Gbit/s (a switch port's buffer, and more
# than one 64 KiB GSO segment); the queue holds 10 ms before tbf drops, so TCP sees a real bottleneck.
tc qdisc add dev "$dev" root tbf rate "$rate" burst 256kb latency 10ms
tc -n "$ns" qdisc add dev "vpln-$name" root tbf rate "$rate" burst 256kb latency 10ms
# The forwarder: listens in the namespace; each connection's other side runs in this host's
# namespace, where the server's 127.0.0.1 is.
ip netns exec "$ns" setsid socat "TCP-LISTEN:$listen_port,bind=$subnet.2,reuseaddr,fork" \
  "EXEC:nsenter --net=/run/netns/$host socat STDIO TCP\\:${server%:*}\\:${server##*:}" \
  </dev/null >"$state/socat.log" 2>&1 &
echo $! >"$state/socat.pid"
for _ in $(seq 1 50); do
  if ip netns exec "$ns" ss -Hltn "sport = :$listen_port" | grep -q .; then
    trap - ERR
    echo "$subnet.2:$listen_port"
    exit 0
  fi
  sleep 0.1
done
echo "shaped-link: the forwarder did not start; its log:" >&2
cat "$state/socat.log" >&2 || true
down
exit 1
