#!/usr/bin/env python3
"""STATS sampling cost: how long the kernel's periodic sampling pass takes
with N agents (issue: "cheap enough to run every second with 200 agents").

    stats_bench.py [--agents 200] [--samples 20] [--interval-ms 1000]

Starts a private kernel (root: sandboxed agents in their own cgroups), spawns
N sleeping agents, and reads `kernel.sampler.last_pass_us` from STATS once
per interval. Baseline, in the same run: this script reading the very same
cgroup files of the same agents (v1: memory.{usage_in_bytes,
max_usage_in_bytes, oom_control}, cpuacct.usage, cpu.stat, pids.current;
v2: the files of V2Agent::stats()). Prints a Markdown table: per-pass time, per agent, and the share of
one CPU the sampler costs at the interval.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

from kernel_harness import Kernel, wait_for  # noqa: E402

SPAWN, STATS, LIST = 0x10, 0x14, 0x12
V1_FILES = {  # what V1Agent::usage() reads
    "memory": ["memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.oom_control"],
    "cpuacct": ["cpuacct.usage"], "cpu": ["cpu.stat"], "pids": ["pids.current"],
}
V2_FILES = ["memory.current", "memory.peak", "memory.max", "memory.events", "cpu.stat", "pids.current",
            "cgroup.procs"]


def call(k, op, body):
    with k.raw(timeout=120) as c:
        return json.loads(c.call(op, json.dumps(body).encode()).payload)


def agent_files(instance):
    """Every file the kernel's sampler reads, for every agent of `instance`."""
    root = Path("/sys/fs/cgroup")
    files = []
    if (root / "cgroup.controllers").exists():  # pure v2
        for d in root.rglob(f"*{instance}*/agent-*"):
            files += [d / f for f in V2_FILES if (d / f).exists()]
        return files
    for ctrl, names in V1_FILES.items():
        for d in (root / ctrl).rglob("agent-*"):
            if instance in str(d):
                files += [d / f for f in names if (d / f).exists()]
    return files


def read_all(files):
    t0 = time.perf_counter()
    for f in files:
        with open(f, "rb") as fh:
            fh.read()
    return (time.perf_counter() - t0) * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--interval-ms", type=int, default=1000)
    args = ap.parse_args()
    k = Kernel(extra_args=["--stats-interval-ms", str(args.interval_ms)])
    k.start()
    try:
        sleeper = str(REPO / "tests" / "probes" / "sleeper.py")
        for i in range(args.agents):
            r = call(k, SPAWN, {"name": f"s{i}", "script": sleeper, "limits": {"memory": 64 << 20}})
            assert r.get("status") == "running", r
        wait_for(lambda: call(k, STATS, {})["kernel"]["sampler"]["agents"] == args.agents, 60,
                 what="a sampling pass over every agent")
        m = re.search(r"\(instance (agentos-[0-9a-f]+)", k.log_text())
        passes, direct = [], []
        files = agent_files(m.group(1)) if m else []
        for _ in range(args.samples):
            time.sleep(args.interval_ms / 1000)
            passes.append(call(k, STATS, {})["kernel"]["sampler"]["last_pass_us"])
            if files:
                direct.append(read_all(files))
        n = args.agents
        med = statistics.median(passes)
        print(f"# {time.strftime('%Y-%m-%d')}; {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}; "
              f"{n} agents; {len(files)} cgroup files; interval {args.interval_ms} ms")
        print("| what | median µs/pass | p90 µs/pass | µs per agent | CPU share at interval |")
        print("|---|---|---|---|---|")
        p90 = sorted(passes)[int(0.9 * (len(passes) - 1))]
        print(f"| kernel sampler | {med:.0f} | {p90:.0f} | {med / n:.1f} | {med / (args.interval_ms * 10):.2f}% |")
        if direct:
            dmed = statistics.median(direct)
            dp90 = sorted(direct)[int(0.9 * (len(direct) - 1))]
            print(f"| baseline: Python reads the same files | {dmed:.0f} | {dp90:.0f} | {dmed / n:.1f} | "
                  f"{dmed / (args.interval_ms * 10):.2f}% |")
            print(f"\nratio kernel/baseline (median): {med / dmed:.2f}")
        else:
            print("\n(no agent cgroup files found for the baseline: cgroups unavailable?)")
    finally:
        k.stop()
        k.cleanup()


if __name__ == "__main__":
    main()
