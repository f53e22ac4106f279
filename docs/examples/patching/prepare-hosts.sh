#!/bin/sh
# Demo hosts for the simulated cloud: a directory per compute host with its
# /etc/nova/nova.conf (what the local connector reads and changes), and each host's
# Nova services started in the simulator (they report heartbeats from then on).
#   sh prepare-hosts.sh SIMULATOR_URL HOSTS_DIR
set -eu
sim=${1:-http://127.0.0.1:8700}
root=${2:-hosts}
for host in $(seq -f 'cmp%04g' 1 12); do
  mkdir -p "$root/$host/etc/nova"
  [ -f "$root/$host/etc/nova/nova.conf" ] || printf '[DEFAULT]\ndebug = false\n' > "$root/$host/etc/nova/nova.conf"
  curl -sf -X POST "$sim/_sim/hosts/$host/restart" > /dev/null
done
echo "$root: $(ls "$root" | wc -l) hosts ready"
