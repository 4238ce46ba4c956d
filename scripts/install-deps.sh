#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages AgentOS builds and tests with.
# As root it runs apt-get; otherwise it prints the sudo line and fails.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  nlohmann-json3-dev libspdlog-dev libfmt-dev libcurl4-openssl-dev
  libseccomp-dev libcap-dev libsqlite3-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libbenchmark-dev
  python3 python3-pytest bubblewrap procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages: ${missing[*]}" >&2
  echo "install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
