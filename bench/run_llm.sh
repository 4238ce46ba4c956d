#!/usr/bin/env bash
# LLM service benchmark: agentos_kernel's THINK path against direct HTTP calls
# to the fake provider (tests/fakes/fake_llm.py), and the scheduler's fairness
# between a greedy and polite clients, fair vs fifo (bench/llm_bench.py).
#
#   bench/run_llm.sh BUILD_DIR [llm_bench.py flags, e.g. --fair-seconds 10]
#
# Builds nothing: build the agentos_kernel target first. llm_bench.py starts
# one fake server and a private kernel per configuration (temp dirs, Gemini
# provider pointed at the fake, GEMINI_API_KEY=fake) and stops them by pid.
# Takes about 100 s with the defaults (fairness under fair, fair without
# anticipation, and fifo). Client, fake and kernel share the machine's cores
# (no pinning); the fake is a threaded Python server.
set -euo pipefail

if [[ $# -lt 1 || ! -d $1 ]]; then
  echo "usage: $0 BUILD_DIR [llm_bench.py flags...]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
kernel_bin=$build/agentos_kernel
python=${PYTHON:-/usr/bin/python3}
[[ -x $kernel_bin ]] || { echo "missing $kernel_bin: build the agentos_kernel target first" >&2; exit 1; }

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
echo "# $("$kernel_bin" --version); $("$python" --version 2>&1) ($python)"
echo "# llm_bench.py flags: ${*:-(defaults)}"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
"$python" "$here/llm_bench.py" --kernel "$kernel_bin" --fake "$here/../tests/fakes/fake_llm.py" \
  --python "$python" "$@" || rc=$?
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# 3: ran fine, some target not met; anything else is a failure of the run.
exit "$rc"
