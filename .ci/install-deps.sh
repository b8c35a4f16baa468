#!/usr/bin/env bash
# Host packages the tests need: the product's own with every runtime (install.sh --deps-only), then
# what only the tests use. Installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ./install.sh --deps-only --runtimes node,python,go,rust

# - cargo and golang-go: Debian's toolchains even where rustup's or another Go is on PATH, so the
#   runtime tests build with what a fresh Debian host gets from install.sh
# - python3-flask, gunicorn: the Flask apps the python tests deploy use the system packages
#   (python3-venv and python3-pip, which every python build uses, come with install.sh's python)
# - chromium: the browser test drives Debian's chromium through playwright-core
# - wrk: the benchmarks' load generator (npm run bench); nginx, their baseline, below
# - openssh-client: the git tests clone over ssh from a test-run server
# - zsh: the completion test runs the zsh script in a real zsh
# - pebble, libnss3-tools: the HTTPS tests get certificates from Let's Encrypt's test CA (and its
#   DNS server) on loopback, and certutil makes the browser test's Chromium trust its root
# - docker-registry, podman, runc, skopeo, umoci: the Knative export tests push to a local
#   registry and run the images
PKGS=(cargo golang-go python3-flask gunicorn chromium wrk docker-registry podman runc skopeo umoci zsh openssh-client
      pebble libnss3-tools)
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

# nginx: the benchmarks' baseline (npm run bench runs its own, with its own configuration, on
# loopback). Debian's package would start a server on :80, cellhost's own port, now and at every
# boot: it is installed without starting (policy-rc.d says no, unless the host already has one)
# and its unit left disabled.
if ! dpkg-query -W -f='${Status}' nginx 2>/dev/null | grep -q 'install ok installed'; then
  if [ "$(id -u)" != 0 ]; then
    echo "cellhost: nginx (the benchmarks' baseline) is missing and installing it needs root" >&2
    exit 1
  fi
  policy=/usr/sbin/policy-rc.d
  own_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
    trap 'rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nginx
  if [ -n "$own_policy" ]; then rm -f "$policy"; trap - EXIT; fi
  systemctl disable nginx >/dev/null 2>&1 || true
fi

# The FastAPI and Django build tests (test/integration/builds-mirrors.test.ts) install fastapi,
# uvicorn, django and gunicorn from the package index the host's pip is configured for, as a
# build does: a local index on disk on these machines (`pip config list`). Nothing to install for
# that here; say early when the configured index lacks them (the test then fails, naming why).
missing_py=()
wheels=$(mktemp -d)
for p in fastapi uvicorn django gunicorn; do
  PIP_RETRIES=0 /usr/bin/python3 -m pip download --quiet --no-deps --dest "$wheels" "$p" >/dev/null 2>&1 || missing_py+=("$p")
done
rm -rf "$wheels"
if [ ${#missing_py[@]} -gt 0 ]; then
  echo "cellhost: the package index pip is configured for (pip config list) does not offer: ${missing_py[*]}; test/integration/builds-mirrors.test.ts will fail" >&2
fi
