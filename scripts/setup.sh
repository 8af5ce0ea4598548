#!/usr/bin/env bash
# Installs what the build and the tests need on Debian 12, and nothing that is
# already there: Debian packages with apt-get, the reference's npm packages with
# npm ci (pinned by tests/interop/package-lock.json). Packages named as
# arguments are installed too (`make fuzz`: clang).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libssl-dev zlib1g-dev ca-certificates jq curl
  librocksdb-dev rocksdb-tools
  libnats-dev nats-server
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  nodejs npm
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# A node from elsewhere (e.g. NodeSource) satisfies the nodejs/npm need.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]:-}"
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm ci only when the lock changed since the last install.
for dir in tests/interop tests/e2e; do
  stamp="$dir/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ]; then
    echo "setup: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
