#!/usr/bin/env bash
# Runs `npm ci` under strace and fails if it (or any install script it starts) looks up or connects
# to anything but the npm registry and loopback. A dependency's install script that downloads
# binaries from elsewhere (onnxruntime-node's CUDA libraries from NuGet, say) fails this check even
# on a machine with internet, where the download would otherwise succeed silently.
# Usage: bash scripts/check-install-network.sh [npm ci arguments...]   (needs strace)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { echo "[install-check] strace is not installed (apt-get install strace)" >&2; exit 2; }
trace=$(mktemp)
trap 'rm -f "$trace"' EXIT
registry_host=$(npm config get registry | sed -E 's#^[a-z]+://([^/:]+).*#\1#')
proxy_hosts=$(printf '%s\n' "${HTTPS_PROXY:-}" "${https_proxy:-}" "${HTTP_PROXY:-}" "${http_proxy:-}" | sed -nE 's#^[a-z]+://([^@/]*@)?([^/:]+).*#\2#p' | sort -u)
status=0
strace -f -qq -s 512 -e trace=connect,sendto,sendmmsg -o "$trace" npm ci "$@" || status=$?
node scripts/install-network-report.mjs "$trace" "$registry_host" $proxy_hosts
exit "$status"
