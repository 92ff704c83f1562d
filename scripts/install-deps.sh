#!/usr/bin/env bash
# scripts/install-deps.sh: install the Debian 12 packages Warren needs to build, test and run.
#
# Installs only what is missing: it asks dpkg first, so when everything is present it takes
# a fraction of a second and needs no network (apt-get update runs only before an install).
# Needs root, or sudo when run by another user.
#
# Note: installing rabbitmq-server and postgresql lets Debian start their system services
# (on ports 5672 and 5432). Warren's scripts never use or touch those: scripts/stack.sh runs
# private servers on their own ports.
set -euo pipefail

packages=(
  # build tools
  g++ cmake ninja-build pkg-config git curl ca-certificates ccache
  # fuzzing (scripts/fuzz.sh): clang with libFuzzer and the sanitizer runtimes, llvm-symbolizer
  clang-14 libclang-rt-14-dev llvm-14
  # libraries Warren links (see cmake/Dependencies.cmake)
  librabbitmq-dev libpqxx-dev libuv1-dev libcpp-httplib-dev libspdlog-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libssl-dev
  # servers run privately by scripts/stack.sh (Postgres 15, RabbitMQ 3.10)
  rabbitmq-server postgresql postgresql-15
  # used by the scripts: jq (JSON), util-linux (runuser, setsid)
  jq util-linux
)

# One dpkg-query call for all packages (it prints nothing for a package it does not know).
declare -A installed=()
while read -r name status; do
  [[ $status == installed ]] && installed[${name%%:*}]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)

missing=()
for pkg in "${packages[@]}"; do
  [[ -n ${installed[$pkg]:-} ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages are installed" >&2
  exit 0
fi

if ((EUID == 0)); then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "install-deps: missing packages: ${missing[*]}; run this script as root (no sudo here)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: done" >&2
