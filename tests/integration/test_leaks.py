"""Resource hygiene of the agent runtime (DESIGN.md §1, §5): after many
spawn/kill cycles and many agents at once, the kernel holds no more fds
than before, has no zombie children, has removed every agent cgroup and
socket, left no mount behind on the host, and its RSS has not grown beyond
a loose bound.

Needs root. Helpers come from test_runtime.py.
"""

import os
import stat

import pytest

from kernel_harness import SANITIZED, wait_for
from test_runtime import (KILL, SPAWN, MiB, PROBES, ROOT_REASON, children_of,
                          instance_cgroup_dirs, instance_of, list_agents, noop_ok, pipelined,
                          require_spawn)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason=ROOT_REASON)

SLEEPER = str(PROBES / "sleeper.py")
CYCLES = 200
BATCH = 10          # agents spawned (pipelined) per batch, then killed (pipelined)
AT_ONCE = 50
RSS_GROWTH_BOUND = 16 * MiB  # loose: 250 ended records plus allocator slack
LIMITS = {"memory": 64 * MiB, "max_pids": 16, "cpu_quota": 100000}


@pytest.fixture(autouse=True)
def _kernel_offers_spawn(kernel):
    require_spawn(kernel)


def fd_table(pid):
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    return out


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return set(f.read().splitlines())


def runtime_sockets(k):
    out = []
    for dirpath, _, files in os.walk(k.runtime_dir):
        for f in files:
            p = os.path.join(dirpath, f)
            if stat.S_ISSOCK(os.lstat(p).st_mode):
                out.append(p)
    return out


def spawn_batch(k, names, sandboxed=lambda i: True):
    replies = pipelined(k, [(SPAWN, {"name": n, "script": SLEEPER, "limits": LIMITS,
                                     "sandboxed": sandboxed(i)}) for i, n in enumerate(names)])
    bad = [(n, r) for n, r in zip(names, replies) if r.get("status") != "running"]
    assert not bad, f"SPAWN failed: {bad[:3]}"
    return replies


def kill_batch(k, replies):
    killed = pipelined(k, [(KILL, {"id": r["id"]}) for r in replies])
    bad = [(r["id"], x) for r, x in zip(replies, killed) if x != {"killed": True}]
    assert not bad, f"KILL failed: {bad[:3]}"


def cycle(k, n_agents, prefix):
    kill_batch(k, spawn_batch(k, [f"{prefix}-{i % BATCH}" for i in range(n_agents)]))


class Snapshot:
    def __init__(self, k):
        self.fds = fd_table(k.pid)
        self.rss = k.rss_bytes()
        self.mounts = host_mounts()


def assert_back_to_baseline(k, base, instance):
    # The kernel has replied {"killed": true} to every KILL; what is left to
    # settle is only its side of our last connection, hence the short poll.
    try:
        wait_for(lambda: len(fd_table(k.pid)) <= len(base.fds), 5, what="the kernel's fd count")
    except TimeoutError:
        now = fd_table(k.pid)
        extra = {fd: t for fd, t in now.items() if base.fds.get(fd) != t}
        pytest.fail(f"kernel holds {len(now)} fds, {len(base.fds)} before; new ones: {extra}")
    kids = children_of(k.pid)
    assert kids == [], f"kernel children left (state Z = zombie): {kids}"
    assert instance_cgroup_dirs(instance) == [], "agent cgroups left behind"
    assert runtime_sockets(k) == [], "agent sockets left behind"
    added, removed = host_mounts() - base.mounts, base.mounts - host_mounts()
    assert not added and not removed, f"host mounts changed: +{sorted(added)} -{sorted(removed)}"
    assert list_agents(k) == [], "agents still listed as running"
    growth = k.rss_bytes() - base.rss
    if not SANITIZED:
        assert growth <= RSS_GROWTH_BOUND, f"kernel RSS grew by {growth / MiB:.1f} MiB"
    assert noop_ok(k)


def test_spawn_kill_cycles_leak_nothing(kernel):
    instance = instance_of(kernel)
    cycle(kernel, BATCH, "warm")  # first-use allocations are not leaks
    base = Snapshot(kernel)
    for _ in range(CYCLES // BATCH):
        cycle(kernel, BATCH, "cyc")
    ended = [a for a in list_agents(kernel, all=True) if a["name"].startswith("cyc-")]
    assert len(ended) == CYCLES and not any(a["running"] for a in ended), len(ended)
    assert all(a["status"] == "killed" for a in ended), [a for a in ended if a["status"] != "killed"][:3]
    assert_back_to_baseline(kernel, base, instance)


def test_fifty_agents_at_once_leak_nothing(kernel):
    instance = instance_of(kernel)
    cycle(kernel, BATCH, "warm")
    base = Snapshot(kernel)
    # Every fifth one unsandboxed, so both paths are covered.
    replies = spawn_batch(kernel, [f"many-{i}" for i in range(AT_ONCE)], sandboxed=lambda i: i % 5 != 0)
    running = {a["id"]: a for a in list_agents(kernel)}
    assert set(running) >= {r["id"] for r in replies}
    assert len({running[r["id"]]["pid"] for r in replies}) == AT_ONCE, "agents share a pid"
    assert len(instance_cgroup_dirs(instance)) >= AT_ONCE
    kill_batch(kernel, replies)
    assert_back_to_baseline(kernel, base, instance)
