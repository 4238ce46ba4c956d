#!/usr/bin/env bash
# Spawn benchmark: agentos_kernel starting sandboxed (and unsandboxed) Python
# agents against bubblewrap and a plain subprocess (bench/spawn_bench.py).
#
#   bench/run_spawn.sh BUILD_DIR [spawn_bench.py flags, e.g. --rounds 50]
#
# Builds nothing: build the agentos_kernel target first. Run as root, so the
# kernel applies the full sandbox and cgroup limits (as a normal user the
# "sandboxed" numbers would measure the rootless variant). Starts a private
# kernel on a temp socket, runs the benchmark against it, stops it.
set -euo pipefail

if [[ $# -lt 1 || ! -d $1 ]]; then
  echo "usage: $0 BUILD_DIR [spawn_bench.py flags...]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
kernel_bin=$build/agentos_kernel
python=${PYTHON:-/usr/bin/python3}
[[ -x $kernel_bin ]] || { echo "missing $kernel_bin: build the agentos_kernel target first" >&2; exit 1; }
command -v bwrap >/dev/null || { echo "bwrap not found: apt-get install bubblewrap" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || echo "warning: not root: the kernel cannot apply the full sandbox and cgroups" >&2

tmp=$(mktemp -d /tmp/agentos-spawn.XXXXXX)
kernel_pid=""

# Stops the kernel by pid: SIGTERM, then SIGKILL if it has not exited in 10 s.
stop_kernel() {
  [[ -n $kernel_pid ]] && kill -0 "$kernel_pid" 2>/dev/null || return 0
  kill -TERM "$kernel_pid" 2>/dev/null || true
  for _ in $(seq 200); do
    kill -0 "$kernel_pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$kernel_pid" 2>/dev/null; then
    echo "warning: agentos_kernel (pid $kernel_pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
    kill -KILL "$kernel_pid" 2>/dev/null || true
  fi
  wait "$kernel_pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  stop_kernel
  if [[ $rc -ne 0 && -s $tmp/kernel.log ]]; then
    echo "--- last lines of the kernel's log ---" >&2
    tail -n 30 "$tmp/kernel.log" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$kernel_bin" --socket "$tmp/k.sock" --state-dir "$tmp/state" --runtime-dir "$tmp/run" \
  --log-level warn >"$tmp/kernel.log" 2>&1 &
kernel_pid=$!
for _ in $(seq 200); do
  [[ -S $tmp/k.sock ]] && break
  kill -0 "$kernel_pid" 2>/dev/null || { echo "agentos_kernel exited during start-up" >&2; exit 1; }
  sleep 0.05
done
[[ -S $tmp/k.sock ]] || { echo "agentos_kernel did not create $tmp/k.sock within 10 s" >&2; exit 1; }

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
echo "# $("$kernel_bin" --version); $("$python" --version 2>&1) ($python); $(bwrap --version)"
echo "# cgroups: $(stat -fc %T /sys/fs/cgroup)$( [[ -d /sys/fs/cgroup/unified ]] && echo ' (hybrid: v1 controllers + empty cgroup2 at unified/)')"
echo "# spawn_bench.py flags: ${*:-(defaults)}"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" "$here/spawn_bench.py" --socket "$tmp/k.sock" --python "$python" "$@"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
