#!/usr/bin/env bash
# Installs the peers `npm run bench` measures tether against, from Debian's packages, when they
# are missing: HAProxy, nginx with its stream module, wrk and iperf3 (and taskset, util-linux).
# Never starts, enables or restarts their system services: the bench runs each one in the
# foreground with its own config on loopback ports. Safe to run again; prints what it did.
set -euo pipefail

need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
# The stream module: Debian ships it as a dynamic module in its own package.
ls /usr/lib/nginx/modules/ngx_stream_module.so >/dev/null 2>&1 || need+=(libnginx-mod-stream)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)

if [ ${#need[@]} -eq 0 ]; then
  echo "setup-peers: haproxy, nginx (stream), wrk, iperf3 and taskset are present"
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup-peers: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
  as_root=(sudo)
fi

echo "setup-peers: installing ${need[*]}"
# policy-rc.d exit 101 tells Debian's maintainer scripts not to start any service they install.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then "${as_root[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq >/dev/null 2>&1 || true
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "setup-peers: done ($(haproxy -v 2>/dev/null | head -1 | cut -c1-40); $(nginx -v 2>&1); $(wrk -v 2>&1 | head -1 | cut -c1-30); $(iperf3 --version | head -1 | cut -c1-30))"
