#!/usr/bin/env bash
# Install and start cellhost with its defaults, from this checkout:
#   host packages (sandbox and runtimes) → npm ci → dist/cellhost (one file) → cellhost serve.
# Data goes to /var/lib/cellhost as root (the sandboxed apps' uids must be able to enter the
# data dir's parents, which a checkout under /root is not), else ./cellhost-data; the router
# listens on :8080, the admin API and UI on 127.0.0.1:9090. The first start prints the admin
# token (or uses $CELLHOST_ADMIN_TOKEN).
# With --systemd it installs /usr/local/bin/cellhost and the unit in cellhost.service instead
# of running in the foreground (data in /var/lib/cellhost, router on :80).
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" = 0 ]; then
  bash .ci/install-deps.sh
else
  echo "cellhost: not root: skipping host packages; isolation features will be reported as off" >&2
fi
npm ci --no-audit --no-fund
npm run build

if [ "${1:-}" = "--systemd" ]; then
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
