#!/usr/bin/env bash
# Install and start cellhost from this checkout: the Debian packages the product needs → npm ci →
# dist/cellhost (one file) → cellhost serve.
#
#   ./install.sh [--runtimes node,python,go,rust] [--systemd] [--deps-only] [--dry-run]
#
#   --runtimes LIST  the runtimes apps may be deployed with. Default: node, plus each of python,
#                    go and rust whose toolchain the host already has. node is always the host's
#                    own Node (20.19 or newer), the one that builds cellhost.
#   --systemd        install /usr/local/bin/cellhost and cellhost.service and start the service
#                    (router on :80, data in /var/lib/cellhost) instead of serving in the foreground
#   --deps-only      install the host packages and stop
#   --dry-run        print what would be installed and run; change nothing
#
# Packages: the sandbox and network tools every instance and build uses (bubblewrap, util-linux,
# iproute2, nftables, procps), git for deploys from a git URL, ca-certificates; make, g++ and
# python3, which npm ci needs to compile the terminal addon (node-pty has no Linux prebuilds);
# and per runtime: python → python3 python3-venv python3-pip, go → golang-go, rust → cargo.
# A toolchain already on PATH (rustup's cargo, Go in /usr/local/go) is used as it is.
#
# In the foreground, data goes to /var/lib/cellhost as root (the sandboxed apps' uids must be able
# to enter the data dir's parents, which a checkout under /root is not), else ./cellhost-data; the
# router listens on :8080, the admin API and UI on 127.0.0.1:9090. Every CELLHOST_* variable in
# the environment reaches `cellhost serve` (README, Configuration). The first start prints the
# admin token (or uses $CELLHOST_ADMIN_TOKEN).
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '5,13s/^# \{0,1\}//p' "$0"; }

runtimes=""
systemd=0
deps_only=0
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runtimes) [ $# -ge 2 ] || { echo "install.sh: --runtimes needs a list, e.g. node,python" >&2; exit 2; }; runtimes="$2"; shift 2 ;;
    --runtimes=*) runtimes="${1#*=}"; shift ;;
    --systemd) systemd=1; shift ;;
    --deps-only) deps_only=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

has() { command -v "$1" >/dev/null 2>&1; }
# where cellhost itself looks for a per-user toolchain (runtime/sandbox/toolchains.ts)
has_tool() { has "$1" || [ -x "$HOME/.cargo/bin/$1" ] || [ -x "/usr/local/go/bin/$1" ]; }

if [ -z "$runtimes" ]; then
  runtimes=node
  [ -x /usr/bin/python3 ] && runtimes+=,python
  has_tool go && runtimes+=,go
  has_tool cargo && runtimes+=,rust
fi

PKGS=(bubblewrap util-linux iproute2 nftables procps git ca-certificates make g++ python3)
case ",$runtimes," in *,node,*) ;; *) runtimes="node,$runtimes" ;; esac
IFS=, read -r -a chosen <<<"$runtimes"
for r in "${chosen[@]}"; do
  case "$r" in
    node) ;;
    python) PKGS+=(python3-venv python3-pip) ;;
    go) has_tool go || PKGS+=(golang-go) ;;
    rust) has_tool cargo || PKGS+=(cargo) ;;
    *) echo "install.sh: unknown runtime \"$r\" (node, python, go or rust)" >&2; exit 2 ;;
  esac
done
# the NAT backend: nftables, or iptables where nftables cannot be had (the code uses either)
if has apt-cache && ! apt-cache show nftables >/dev/null 2>&1; then
  PKGS=("${PKGS[@]/nftables/iptables}")
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

node_ok() { has npm && has node && node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; }

if [ "$dry_run" = 1 ]; then
  echo "runtimes: $runtimes"
  if [ ${#missing[@]} -gt 0 ]; then echo "would install (apt-get): ${missing[*]}"; else echo "would install: nothing (every package is there)"; fi
  node_ok || echo "missing: Node 20.19 or newer with npm (e.g. from https://nodejs.org or NodeSource); install it first"
  [ "$deps_only" = 1 ] && exit 0
  echo "would run: npm ci && npm run build"
  if [ "$systemd" = 1 ]; then
    echo "would install /usr/local/bin/cellhost and /etc/systemd/system/cellhost.service, then systemctl enable --now cellhost"
  else
    data="${CELLHOST_DATA:-}"
    [ -z "$data" ] && { [ "$(id -u)" = 0 ] && data=/var/lib/cellhost || data=./cellhost-data; }
    echo "would run: dist/cellhost serve (data in $data)"
  fi
  exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "cellhost: not root: not installing ${missing[*]}; isolation features will be reported as off" >&2
  elif ! has apt-get; then
    echo "cellhost: no apt-get: install these (or your distribution's equivalents) yourself: ${missing[*]}" >&2
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi
if ! node_ok; then
  echo "cellhost needs Node 20.19 or newer with npm, this host has $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi
[ "$deps_only" = 1 ] && exit 0

npm ci --no-audit --no-fund
npm run build

if [ "$systemd" = 1 ]; then
  install -m 0755 dist/cellhost /usr/local/bin/cellhost
  install -m 0644 cellhost.service /etc/systemd/system/cellhost.service
  systemctl daemon-reload
  systemctl enable --now cellhost
  sleep 2
  echo "cellhost is running as a systemd service. The admin token is in its first log lines:"
  journalctl -u cellhost --no-pager | grep -m1 'admin token' || true
  exit 0
fi

if [ "$(id -u)" = 0 ] && [ -z "${CELLHOST_DATA:-}" ]; then
  export CELLHOST_DATA=/var/lib/cellhost
fi
exec ./dist/cellhost serve
