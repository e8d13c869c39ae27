#!/usr/bin/env bash
#   Installs the Debian 12 packages vedetta needs to build, test and run its demo.
#   Idempotent: installs only what is missing, and touches apt only then. Run as root.
#   usage: deploy/install-deps.sh [--with-clang]   (clang: fuzzing and sanitizer extras)
set -euo pipefail
packages=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev
          libsodium-dev libjansson-dev libsqlite3-dev check jq python3 python3-cryptography)
[ "${1:-}" = "--with-clang" ] && packages+=(clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: everything is installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${missing[*]}; run as root (or with sudo)" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
