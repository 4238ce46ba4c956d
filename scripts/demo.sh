#!/usr/bin/env bash
# Starts a kernel on a private socket, runs the demo agent against it, and
# stops the kernel again (by pid). Usage: scripts/demo.sh [build-dir]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
tmp="$(mktemp -d /tmp/agentos-demo.XXXXXX)"
sock="$tmp/agentos.sock"

"$build/agentos_kernel" --socket "$sock" --state-dir "$tmp/state" --runtime-dir "$tmp/run" \
  --log-level warn &
kernel=$!
cleanup() {
  kill -TERM "$kernel" 2>/dev/null || true
  wait "$kernel" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

for _ in $(seq 100); do
  [ -S "$sock" ] && break
  kill -0 "$kernel" 2>/dev/null || { echo "kernel failed to start" >&2; exit 1; }
  sleep 0.05
done

demo="$root/agents/examples/fault_isolation_demo.py"
[ -f "$demo" ] || demo="$root/agents/examples/hello_agent.py"
/usr/bin/python3 "$demo" --socket "$sock"
