#!/usr/bin/env bash
# Installs the Debian packages spritescript needs to build and test, and only
# the missing ones. Every Makefile target runs it first, so `make demo` and
# `make test` work on a fresh Debian 12 machine.
#
#   tools/install-deps.sh          build + test dependencies
#   tools/install-deps.sh bench    also the tools the benchmarks compare against
#   tools/install-deps.sh fuzz     also clang and its runtimes (libFuzzer, sanitizers)
set -euo pipefail

packages=(
  cmake g++ make pkg-config ninja-build ccache lld
  libluajit-5.1-dev          # Debian's LuaJIT: carries the 2024 CVE fixes (docs/architecture.md)
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev   # never libboost-dev (1.74)
  libssl-dev catch2 libedit-dev ca-certificates
  curl                       # the engine's end-to-end tests speak HTTP with it
  # What tests and examples run inside sprites (which see the host's /usr):
  python3                    # servers behind the proxy and port tests
  git                        # the nightly and provision examples
  procps                     # ps, in the Lua API tests
)
# Node.js and npm run the official JS SDK against the local engine in the
# tests (tests/sdk); a node and npm already on PATH will do.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
if [ "${1:-}" = bench ]; then
  packages+=(luajit hyperfine)
fi
if [ "${1:-}" = fuzz ]; then
  packages+=(clang libclang-rt-14-dev)   # make check (tests/fuzz)
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: not a Debian system; install the equivalents of: ${packages[*]}" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    echo "install-deps: need root to install ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
