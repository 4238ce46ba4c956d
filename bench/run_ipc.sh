#!/usr/bin/env bash
# IPC benchmark: agentos_kernel's operator socket against bench/echo_baseline
# (the same framing, nothing else: the floor for our design).
#
#   bench/run_ipc.sh BUILD_DIR [ipc_bench flags, e.g. --duration 1]
#
# Builds nothing: configure and build first (targets agentos_kernel,
# echo_baseline, ipc_bench). Runs ipc_bench against each server in turn,
# interleaved (baseline, kernel, baseline, kernel, ...) for IPC_ROUNDS
# rounds (default 3) so slow drift hits both alike, and prints the median of
# each metric. Client and servers share the machine's cores (no pinning).
# server_cpu_us_per_req is the server's CPU time (user + system, from
# /proc/PID/stat) over every request of a round: the steadiest metric on a
# busy machine.
# Without an agentos_kernel binary it measures the baseline alone.
set -euo pipefail

if [[ $# -lt 1 || ! -d $1 ]]; then
  echo "usage: $0 BUILD_DIR [ipc_bench flags...]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
shift
rounds=${IPC_ROUNDS:-3}
kernel_bin=$build/agentos_kernel
baseline_bin=$build/bench/echo_baseline
bench_bin=$build/bench/ipc_bench
for bin in "$baseline_bin" "$bench_bin"; do
  [[ -x $bin ]] || { echo "missing $bin: build the bench targets first" >&2; exit 1; }
done
have_kernel=1
if [[ ! -x $kernel_bin ]]; then
  echo "note: $kernel_bin not built; measuring the baseline only" >&2
  have_kernel=0
fi

tmp=$(mktemp -d /tmp/agentos-ipc.XXXXXX)
kernel_pid=""
baseline_pid=""

# Stops one server by pid: SIGTERM, then SIGKILL if it has not exited in 5 s.
stop_pid() {
  local pid=$1 name=$2
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "warning: $name (pid $pid) ignored SIGTERM for 5 s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  stop_pid "$kernel_pid" agentos_kernel
  stop_pid "$baseline_pid" echo_baseline
  if [[ $rc -ne 0 && -s $tmp/kernel.log ]]; then
    echo "--- last lines of the kernel's log ---" >&2
    tail -n 20 "$tmp/kernel.log" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (10 s deadline) until $1 is a socket, failing early if pid $2 died.
wait_for_socket() {
  local path=$1 pid=$2 name=$3
  for _ in $(seq 200); do
    [[ -S $path ]] && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$name exited before creating $path" >&2; return 1; }
    sleep 0.05
  done
  echo "$name did not create $path within 10 s" >&2
  return 1
}

"$baseline_bin" --socket "$tmp/b.sock" 2>"$tmp/baseline.log" &
baseline_pid=$!
wait_for_socket "$tmp/b.sock" "$baseline_pid" echo_baseline
if ((have_kernel)); then
  "$kernel_bin" --socket "$tmp/k.sock" --state-dir "$tmp/state" --runtime-dir "$tmp/run" \
    --log-level warn >"$tmp/kernel.log" 2>&1 &
  kernel_pid=$!
  wait_for_socket "$tmp/k.sock" "$kernel_pid" agentos_kernel
fi

servers=(baseline)
((have_kernel)) && servers+=(kernel)
echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r)"
echo "# ipc_bench flags: ${*:-(defaults)}; $rounds interleaved rounds; client and servers share the cores"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

for ((r = 1; r <= rounds; r++)); do
  for s in "${servers[@]}"; do
    sock=$tmp/b.sock pid=$baseline_pid
    [[ $s == kernel ]] && sock=$tmp/k.sock pid=$kernel_pid
    before=$(cpu_ticks "$pid")
    "$bench_bin" --socket "$sock" "$@" >"$tmp/$s.$r.out"
    # The server's CPU time per request hardly depends on what else the
    # machine runs, unlike the wall-clock metrics.
    cpu=$(awk -v t=$(($(cpu_ticks "$pid") - before)) -v hz="$hz" '$2 == "requests_total" {
      printf "server_cpu_us_per_req %.2f\n", t * 1e6 / hz / $3 }' "$tmp/$s.$r.out")
    echo "$cpu" >>"$tmp/$s.$r.out"
    echo "# round $r $s: $(grep -v '^#' "$tmp/$s.$r.out" | tr '\n' ' ')"
  done
done

# median METRIC SERVER: the median of that metric over all rounds.
median() {
  cat "$tmp/$2".*.out | awk -v m="$1" '$1 == m { print $2 }' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) exit 1;
          if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

metrics=$(grep -v '^#' "$tmp/baseline.1.out" | awk '{ print $1 }')
echo
printf '| %-21s | %12s | %12s | %6s |\n' metric baseline kernel ratio
printf '|%s|%s|%s|%s|\n' ----------------------- -------------- -------------- --------
declare -A base kern
for m in $metrics; do
  base[$m]=$(median "$m" baseline)
  kern[$m]=n/a
  ratio=n/a
  if ((have_kernel)); then
    kern[$m]=$(median "$m" kernel)
    ratio=$(awk -v k="${kern[$m]}" -v b="${base[$m]}" 'BEGIN { printf "%.2f", k / b }')
  fi
  printf '| %-21s | %12s | %12s | %6s |\n' "$m" "${base[$m]}" "${kern[$m]}" "$ratio"
done
echo "(ratio = kernel / baseline: lower is better for latency and CPU, higher for rps)"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if ((have_kernel)); then
  awk -v k="${kern[latency_p50_us]}" -v b="${base[latency_p50_us]}" 'BEGIN {
    r = k / b; printf "target p50 latency <= 1.2x baseline: %.2fx -> %s\n", r, (r <= 1.2 ? "MET" : "NOT MET") }'
  awk -v k="${kern[rps_c16]}" -v b="${base[rps_c16]}" 'BEGIN {
    r = k / b; printf "target rps at 16 clients >= 0.8x baseline: %.2fx -> %s\n", r, (r >= 0.8 ? "MET" : "NOT MET") }'
fi
