#!/bin/sh
# Make N "hosts" on this machine and run a command on the first one, as a
# cluster user would from a login node: each host is a network namespace
# with its own address on a private 10.77.0.0/24 network, joined by veth
# pairs to a bridge in one more namespace (the switch), so the ranks talk
# TCP across namespaces and no traffic leaves them. mpirun reaches the
# hosts through tests/netns_rsh.sh, the stand-in for ssh. Everything is
# removed on exit, whatever happens.
#
# Usage: tests/netns_hosts.sh N DIR COMMAND...
#   writes DIR/hosts (the hostfile: one line "NAME slots=1" per host) and
#   DIR/rsh (the launcher), then runs COMMAND in DIR on the first host with
#   $HOSTS (the host names, comma-separated) and $RSH in its environment.
# Exit 77 with "skip: REASON" when namespaces cannot be made here (not
# root, no ip, no permission); otherwise COMMAND's status.
set -u
n=$1
dir=$2
shift 2
[ "$(id -u)" = 0 ] || { echo "skip: network namespaces need root"; exit 77; }
command -v ip >/dev/null 2>&1 || { echo "skip: ip (iproute2) not found"; exit 77; }

tag="m$$"
sw="${tag}sw"
hosts=""
cleanup() {
    for h in $hosts; do
        ip netns pids "$h" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$h" 2>/dev/null
    done
    ip netns pids "$sw" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$sw" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$sw" 2>/dev/null || { echo "skip: cannot create a network namespace here"; exit 77; }
ip -n "$sw" link add br0 type bridge || exit 1
ip -n "$sw" link set br0 up || exit 1
ip -n "$sw" link set lo up || exit 1
: > "$dir/hosts"
i=1
while [ "$i" -le "$n" ]; do
    h="${tag}h$i"
    hosts="$hosts $h"
    ip netns add "$h" || exit 1
    # the veth pair is made inside the host and its far end moved to the switch
    ip -n "$h" link add eth0 type veth peer name "p$i" || exit 1
    ip -n "$h" link set "p$i" netns "$sw" || exit 1
    ip -n "$sw" link set "p$i" master br0 up || exit 1
    ip -n "$h" addr add "10.77.0.$i/24" dev eth0 || exit 1
    ip -n "$h" link set eth0 up || exit 1
    ip -n "$h" link set lo up || exit 1
    echo "$h slots=1" >> "$dir/hosts"
    i=$((i + 1))
done
first=$(echo $hosts | cut -d' ' -f1)
HOSTS=$(echo $hosts | tr ' ' ',')
RSH="$(cd "$(dirname "$0")" && pwd)/netns_rsh.sh"
export HOSTS RSH
cd "$dir" || exit 1
# each host has its own host name too (a UTS namespace), so Open MPI tells
# them apart; the first one is where mpirun runs, like a login node
ip netns exec "$first" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$first" "$@"
