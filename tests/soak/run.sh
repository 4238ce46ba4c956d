#!/usr/bin/env bash
# Soak test of agentos_kernel (tests/soak/soak.py): 1,000 concurrent clients
# and agent churn for DURATION seconds, then checks that the kernel returned
# to its baseline. Usage: tests/soak/run.sh [BUILD_DIR] [DURATION_S] [soak.py options]
#   BUILD_DIR   where agentos_kernel is (default: build)
#   DURATION_S  main phase in seconds (default: 180; a warm-up of duration/6,
#               10..60 s, comes first)
# Writes BUILD_DIR/soak.md (the table for RELIABILITY.md) and BUILD_DIR/soak.json.
# Exit status: 0 all promises kept, 1 a promise broken, 2 the run failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build}"
duration="${2:-180}"
shift $(( $# > 2 ? 2 : $# ))
kernel="$(cd "$build" && pwd)/agentos_kernel"
if [[ ! -x "$kernel" ]]; then
  echo "run.sh: $kernel not found: build it first (cmake --build $build --target agentos_kernel)" >&2
  exit 2
fi
if [[ $EUID -ne 0 ]]; then
  echo "run.sh: not root: agents run unsandboxed and without cgroups" >&2
fi
exec /usr/bin/python3 "$here/soak.py" --kernel "$kernel" --duration "$duration" \
  --out "$build/soak.md" --json "$build/soak.json" "$@"
