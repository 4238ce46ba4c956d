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
# Only for the fuzzers of `make check`: clang 16 (clang 14 and 15 cannot
# compile std::expected from libstdc++ 12, see fuzz/CMakeLists.txt), its
# libFuzzer and sanitizer runtimes, and llvm-symbolizer for readable crash
# stacks. Debian 12 has them. Where they are missing or not packaged
# (Ubuntu 22.04) everything else still installs; run-fuzzers.sh says so.
FUZZ_PACKAGES=(clang-16 libclang-rt-16-dev llvm-16)

missing_of() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
mapfile -t missing < <(missing_of "${PACKAGES[@]}")
mapfile -t missing_fuzz < <(missing_of "${FUZZ_PACKAGES[@]}")
if [ ${#missing[@]} -eq 0 ] && [ ${#missing_fuzz[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  all=("${missing[@]}" "${missing_fuzz[@]}")
  echo "missing packages: ${all[*]}" >&2
  echo "install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${all[*]}" >&2
  # The fuzzing packages alone do not stop `make test`.
  [ ${#missing[@]} -eq 0 ] && exit 0
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
for p in "${missing_fuzz[@]}"; do
  if apt-cache show "$p" >/dev/null 2>&1; then
    missing+=("$p")
  else
    echo "install-deps: $p is not packaged here; make check's fuzzing step needs clang 16 or newer" >&2
  fi
done
[ ${#missing[@]} -eq 0 ] || apt-get install -y -q --no-install-recommends "${missing[@]}"
