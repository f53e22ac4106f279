#!/bin/sh
# A simulated host's service manager: restarts its Nova services in the simulator
# (run by the local connector in the host's directory, with STACKFLEET_HOST set). A
# nova.conf with `broken = true` keeps nova-compute from starting, as a bad option would.
sim=${STACKFLEET_SIM:-http://127.0.0.1:8700}
if grep -q '^broken = true' etc/nova/nova.conf; then up=false; else up=true; fi
curl -sf -X POST -H 'Content-Type: application/json' -d "{\"up\": $up}" \
  "$sim/_sim/hosts/$STACKFLEET_HOST/restart" > /dev/null
