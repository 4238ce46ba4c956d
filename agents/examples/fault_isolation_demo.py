#!/usr/bin/env python3
"""Fault isolation demo: three agents, two of them misbehaving.

  cpu-hog  spins forever under a CPU quota of 10% (10 ms per 100 ms period)
  mem-hog  allocates without end under a 50 MiB memory limit
  healthy  echoes through the kernel every 0.5 s under modest limits

The demo waits until the kernel has ended mem-hog and cpu-hog has run long
enough to measure, then prints what the kernel reports in LIST (nothing is
inferred on this side), kills the survivors, and exits 0 only if the kernel
reports cpu-hog throttled, mem-hog OOM-killed and healthy still running.

Usage: fault_isolation_demo.py [--socket PATH] [--timeout SECONDS]
Run the kernel as root for cgroup enforcement.
"""

import sys
import time

import _common

MiB = 1024 * 1024
AGENTS = (  # name, script, limits
    ("cpu-hog", "cpu_hog_agent.py", {"cpu_quota": 10_000}),
    ("mem-hog", "memory_hog_agent.py", {"memory": 50 * MiB}),
    ("healthy", "healthy_agent.py", {"memory": 64 * MiB, "max_pids": 16}),
)
MEASURE_MS = 3000  # cpu-hog uptime needed before its CPU share means something
POLL_S = 0.5


def spawn_all(client, spawned):
    for name, script, limits in AGENTS:
        reply = client.spawn(name=name, script=_common.example_path(script),
                             sandboxed=True, limits=limits)
        if reply.get("status") != "running":
            print(f"spawn {name} failed: {reply.get('error', reply)}", file=sys.stderr)
            return False
        spawned[name] = reply["id"]
        print(f"spawned {name:8} id={reply['id']} pid={reply.get('pid')} limits={limits}")
    return True


def snapshot(client, spawned):
    """name -> this run's LIST {"all": true} entry (matched by id, not name)."""
    by_id = {a.get("id"): a for a in client.list_agents(all=True)}
    return {name: by_id.get(agent_id) for name, agent_id in spawned.items()}


def settled(entries):
    cpu, mem, healthy = (entries.get(n) for n in ("cpu-hog", "mem-hog", "healthy"))
    if None in (cpu, mem, healthy):
        return True  # something vanished: nothing more to wait for
    if not cpu.get("running") or not healthy.get("running"):
        return True  # the outcome cannot change any more
    measured = (cpu.get("uptime_ms") or 0) >= MEASURE_MS
    return not mem.get("running") and measured and bool(cpu.get("throttled"))


def wait_for_outcome(client, spawned, timeout):
    print(f"\nwaiting up to {timeout:g} s for the kernel to act ...")
    deadline = time.monotonic() + timeout
    entries = snapshot(client, spawned)
    while not settled(entries) and time.monotonic() < deadline:
        time.sleep(POLL_S)
        entries = snapshot(client, spawned)
    return entries


def mib(n):
    return "n/a" if n is None else f"{n / MiB:.1f} MiB"


def verdict(entry):
    if entry.get("oom_killed"):
        return "KILLED"
    if entry.get("running"):
        return "THROTTLED" if entry.get("throttled") else "RUNNING"
    return str(entry.get("status", "?")).upper()


def notes(name, entry):
    limits = entry.get("limits") or {}
    if name == "cpu-hog":
        cpu, up = entry.get("cpu_usage_ms"), entry.get("uptime_ms")
        share = f"{100.0 * cpu / up:.1f}%" if cpu is not None and up else "n/a"
        quota = limits.get("cpu_quota")
        quota_txt = f"{quota / 1000:g}%" if quota else "none reported"
        return (f"CPU share {share} ({cpu} ms CPU in {up} ms), quota {quota_txt}, "
                f"throttled {entry.get('throttled_ms')} ms")
    if name == "mem-hog":
        cause = "OOM" if entry.get("oom_killed") else f"status {entry.get('status')}"
        return (f"{cause}: peak {mib(entry.get('memory_peak_bytes'))} vs limit "
                f"{mib(limits.get('memory'))}, exit_code={entry.get('exit_code')} "
                f"signal={entry.get('signal')}")
    up = entry.get("uptime_ms")
    return f"up {up / 1000:.1f} s, unaffected" if up is not None else "uptime n/a"


def print_table(entries):
    print(f"\n{'Agent':9} {'Verdict':10} {'State':11} {'Status':11} Notes")
    print("-" * 96)
    for name, _, _ in AGENTS:
        entry = entries.get(name)
        if entry is None:
            print(f"{name:9} {'MISSING':10} {'-':11} {'-':11} not in LIST {{\"all\": true}}")
            continue
        print(f"{name:9} {verdict(entry):10} {str(entry.get('state')):11} "
              f"{str(entry.get('status')):11} {notes(name, entry)}")


def judge(entries):
    """The reasons the demo failed, from the kernel's own reports."""
    cpu, mem, healthy = (entries.get(n) or {} for n in ("cpu-hog", "mem-hog", "healthy"))
    problems = []
    if cpu.get("throttled") is not True:
        problems.append(f"cpu-hog not reported throttled (throttled={cpu.get('throttled')})")
    if mem.get("oom_killed") is not True:
        problems.append(f"mem-hog not reported OOM-killed (status={mem.get('status')}, "
                        f"oom_killed={mem.get('oom_killed')})")
    if healthy.get("running") is not True:
        problems.append(f"healthy not running (status={healthy.get('status')}, "
                        f"exit_code={healthy.get('exit_code')})")
    return problems


def main():
    parser = _common.parser("Show that misbehaving agents are contained by the kernel.")
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="seconds to wait for the outcome (default 20)")
    args = parser.parse_args()
    with _common.client(args.socket, raise_errors=False) as client:
        running = {a.get("name") for a in client.list_agents()}
        clash = sorted(running.intersection(n for n, _, _ in AGENTS))
        if clash:
            print(f"agents named {', '.join(clash)} are already running; kill them first",
                  file=sys.stderr)
            return 1
        spawned = {}
        try:
            if not spawn_all(client, spawned):
                return 1
            entries = wait_for_outcome(client, spawned, args.timeout)
            print_table(entries)
        finally:
            for name, agent_id in spawned.items():
                reply = client.kill(agent_id=agent_id)
                if reply.get("killed"):
                    print(f"killed survivor {name} (id {agent_id})")
    problems = judge(entries)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if not problems:
        print("\nThe kernel contained both misbehaving agents; the healthy one kept running.")
    return 1 if problems else 0


if __name__ == "__main__":
    _common.run(main)
