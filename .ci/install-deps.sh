#!/usr/bin/env bash
# Host packages cellhost and its tests use: the sandbox and network tools, and the runtimes the
# tests deploy real apps with. Installs only what is missing.
set -euo pipefail
PKGS=(bubblewrap util-linux iproute2 nftables iptables procps git openssh-client ca-certificates
      python3 python3-venv python3-pip python3-flask gunicorn golang-go wrk chromium docker-registry podman runc skopeo umoci)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "cellhost: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error("cellhost needs Node 20.19 or newer, this is "+process.version); process.exit(1) }'
