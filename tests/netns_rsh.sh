#!/bin/sh
# The stand-in for ssh that mpirun's rsh launcher calls (--mca
# plm_rsh_agent) for the hosts of tests/netns_hosts.sh: run the command
# line in the network namespace named like the host, under that host name.
# Usage (as ssh): netns_rsh.sh [-options] HOST COMMAND...
while [ $# -gt 0 ]; do
    case "$1" in
    -*) shift ;;
    *) break ;;
    esac
done
host=$1
shift
exec ip netns exec "$host" unshare --uts sh -c 'hostname "$0" && eval "$1"' "$host" "$*"
