"""Fault injection against the real kernel (RELIABILITY.md): what happens when
things break around it.

(a) an agent SIGKILLed in the middle of a THINK, of a SPAWN burst and of a
    tight logging loop: the provider transfer is cancelled, the kernel keeps
    answering and LIST tells the truth;
(b) clients that vanish in the middle of a frame or of a reply: nothing else
    is affected and the kernel's fd table returns to exactly what it was;
(c) the LLM provider killed and restarted under an in-flight THINK: a clear
    error or a successful retry, and later THINKs are served;
(d) the state directory's disk full while an agent floods its output: the
    kernel keeps serving and the agent is neither blocked nor failed;
(e) the kernel SIGKILLed with running agents (sandboxed and not, stubborn and
    forking) and restarted on the same socket: no agent process survives the
    restart, the crashed run's cgroups and sockets are removed, the stale
    socket is replaced and the lock keeps a second kernel out.

Agents live in tests/probes/ or are written to a temp dir by the test. The
tests that spawn agents, mount a tmpfs or read cgroups need root.
"""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from kernel_harness import HEADER, MAX_PAYLOAD, Kernel, pack_frame, wait_for
from test_leaks import fd_table, runtime_sockets
from test_llm import FAKE, REPLY_TIMEOUT_S, FakeLLM, llm_env, think
from test_runtime import (AGENT_TIMEOUT_S, KILL, NOOP, ROOT_REASON, SLEEPER, SYS_PYTHON, UID_BASE,
                          MiB, call, children_of, entry, instance_cgroup_dirs, instance_of,
                          list_agents, log_path, noop_ok, pids_of_uid, proc_stat, read_log,
                          require_spawn, same_process_alive, spawn_ok, wait_ended, wait_log)

HELLO = 0xFE
root_only = pytest.mark.skipif(os.geteuid() != 0, reason=ROOT_REASON)
FAST_KILL = ["--kill-grace-ms", "1000"]  # teardown of stubborn agents stays short
LIMITS = {"memory": 96 * MiB, "max_pids": 32}

# == agents written by the tests ===============================================

THINKER = """\
import sys
from agentos import AgentOSClient
client = AgentOSClient(sys.argv[1], timeout=300).connect()
print("asking", flush=True)
print("reply", client.think(sys.argv[2]), flush=True)
"""

# Writes N SPAWN frames in one write, waits for the first reply (so the
# kernel has read them all: one write, one read) and SIGKILLs itself while the
# other children are still being started: their replies have nobody to go to.
SPAWN_BURST = """\
import json, os, signal, socket, struct, sys
child, n = sys.argv[2], int(sys.argv[3])
frames = b""
for i in range(n):
    body = json.dumps({"name": "kid-%d" % i, "script": child,
                       "limits": {"memory": 64 << 20, "max_pids": 8}}).encode()
    frames += struct.pack("<IIBQ", 0x41474E54, 0, 0x10, len(body)) + body
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(frames)
head = b""
while len(head) < 17:
    head += s.recv(17 - len(head))
print("first reply came; dying", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""

# Bounded on its own (256 MiB or 60 s) so that a test that dies before
# killing it cannot fill the disk.
TIGHT_PRINTER = """\
import time
line = "flood " + "x" * 200
deadline = time.monotonic() + 60
for i in range((256 << 20) // 210):
    print(line, i)
    if i % 1000 == 0 and time.monotonic() > deadline:
        break
"""

# Writes `total` bytes of 1 KiB lines to stdout, counting failed writes.
# Exit 0: every write succeeded; 3: some failed and stdout is a regular file
# (the agent writes its log itself); 4: some failed through a pipe.
DISK_FLOODER = """\
import os, stat, sys
total = int(sys.argv[2])
line = b"y" * 1023 + b"\\n"
failed = 0
for _ in range(total // len(line)):
    try:
        os.write(1, line)
    except OSError:
        failed += 1
if failed == 0:
    sys.exit(0)
sys.exit(4 if stat.S_ISFIFO(os.fstat(1).st_mode) else 3)
"""


@pytest.fixture(scope="module")
def agents_dir():
    """A temp dir with the agents above, readable by sandboxed agents' uids."""
    d = Path(tempfile.mkdtemp(prefix="agentos-faults-"))
    os.chmod(d, 0o755)
    for name, text in [("thinker.py", THINKER), ("spawn_burst.py", SPAWN_BURST),
                       ("tight_printer.py", TIGHT_PRINTER), ("disk_flooder.py", DISK_FLOODER)]:
        (d / name).write_text(text)
        os.chmod(d / name, 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# == helpers ===================================================================


def agent_process(reply):
    """Host pid of the agent's own interpreter: the LIST pid when unsandboxed,
    else the only child of the sandbox's init."""
    if not reply.get("sandboxed"):
        return reply["pid"]
    kids = wait_for(lambda: children_of(reply["pid"]), AGENT_TIMEOUT_S,
                    what=f"the agent process under init {reply['pid']}")
    assert len(kids) == 1, f"init {reply['pid']} has {kids}, expected only the agent"
    return kids[0][0]


def llm_idle(k):
    """The kernel's LLM service holds no request: queued, in flight, transfers."""
    with k.raw() as conn:
        llm = json.loads(conn.call(HELLO).payload)["llm"]
    return llm["queued"] == 0 and llm["inflight"] == 0 and llm["http_transfers"] == 0


def assert_killed_by_sigkill(e):
    assert not e["running"] and e["status"] == "killed" and e["signal"] == signal.SIGKILL, e
    assert e["exit_code"] is None, e


def cgroup_members(instance, agent_id=None):
    """{pid: starttime} of host processes in a cgroup of `instance` (one agent's if given)."""
    leaf = rf"/{re.escape(instance)}/agent-{agent_id}(/|$)" if agent_id else rf"/{re.escape(instance)}(/|$)"
    pattern = re.compile(leaf, re.M)
    found = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            text = Path(f"/proc/{d}/cgroup").read_text()
        except OSError:
            continue
        st = proc_stat(int(d))
        if st and st[0] != "Z" and pattern.search(text):
            found[int(d)] = st[2]
    return found


def assert_list_is_the_truth(k, instance):
    """Every agent LIST calls running is a live process in its cgroup; every
    other one is gone."""
    for a in list_agents(k, all=True):
        st = proc_stat(a["pid"])
        if a["running"]:
            assert st is not None and st[0] != "Z", f"LIST says running, process gone: {a}"
            assert a["pid"] in cgroup_members(instance, a["id"]), f"running agent not in its cgroup: {a}"
        else:
            assert a["pid"] not in children_of_kernel(k), f"LIST says ended, kernel still has it: {a}"


def children_of_kernel(k):
    return [pid for pid, _ in children_of(k.pid)]


def kill_all_running(k):
    for a in list_agents(k):
        reply = call(k, KILL, {"id": a["id"]})
        assert reply.get("killed") is True or "not running" in reply.get("error", ""), reply


def settled_fds(k):
    """The kernel's fd table once it has closed every connection we left:
    after an EXIT round trip (the kernel closes first), earlier closes are done."""
    with k.raw() as c:
        c.send_frame(0xFF)
        c.recv_frame()
        c.is_closed_by_peer()
    return fd_table(k.pid)


def wait_fds_back(k, base, timeout=10):
    """The kernel closes its side of a vanished client on its next loop turn:
    poll for the fd table to be exactly `base` again."""
    try:
        wait_for(lambda: fd_table(k.pid) == base, timeout, what="the kernel's fd table")
    except TimeoutError:
        now = fd_table(k.pid)
        extra = {fd: t for fd, t in now.items() if base.get(fd) != t}
        gone = {fd: t for fd, t in base.items() if now.get(fd) != t}
        pytest.fail(f"kernel holds {len(now)} fds, {len(base)} before; new: {extra}; gone: {gone}")


# == (a) agents killed in the middle of something ==============================


@root_only
def test_agent_sigkilled_mid_think_cancels_the_transfer(agents_dir, kernel_factory):
    fake = FakeLLM()
    try:
        k = kernel_factory(extra_args=FAST_KILL, env=llm_env(fake, "gemini"))
        require_spawn(k)
        instance = instance_of(k)
        fake.control(hang=1)
        r = spawn_ok(k, "thinker", agents_dir / "thinker.py", args=["never answered"], limits=LIMITS)
        fake.wait_requests(1)
        assert fake.log()["aborted"] == 0
        os.kill(agent_process(r), signal.SIGKILL)

        wait_for(lambda: fake.log()["aborted"] >= 1, 15, interval=0.1,
                 what="the fake provider to see the dead agent's request aborted")
        wait_for(lambda: llm_idle(k), 10, what="the kernel's LLM service to hold nothing")
        assert_killed_by_sigkill(wait_ended(k, r["id"]))
        assert "asking" in read_log(k, "thinker", r["id"])
        assert list_agents(k) == []
        assert_list_is_the_truth(k, instance)
        assert think(k, "and now?")["content"] == "echo: and now?"
    finally:
        fake.stop()


@root_only
def test_agent_killed_mid_spawn_burst_leaves_the_truth(agents_dir, kernel_factory):
    k = kernel_factory(extra_args=FAST_KILL)
    require_spawn(k)
    instance = instance_of(k)
    base = settled_fds(k)
    r = spawn_ok(k, "burst", agents_dir / "spawn_burst.py", args=[SLEEPER, "8"], allow_spawn=True,
                 limits=LIMITS)
    assert_killed_by_sigkill(wait_ended(k, r["id"]))
    assert "first reply came" in read_log(k, "burst", r["id"])

    # Every SPAWN the kernel had read is carried out and listed as it is.
    assert noop_ok(k)
    kids = [a for a in list_agents(k, all=True) if a["name"].startswith("kid-")]
    assert sorted(a["name"] for a in kids) == [f"kid-{i}" for i in range(8)], kids
    assert all(a["parent_id"] == r["id"] for a in kids), kids
    assert_list_is_the_truth(k, instance)
    kill_all_running(k)
    for a in kids:
        wait_ended(k, a["id"])
    assert_list_is_the_truth(k, instance)
    assert children_of(k.pid) == [], "kernel children left"
    wait_for(lambda: instance_cgroup_dirs(instance) == [], 5, what="agent cgroups to be removed")
    assert runtime_sockets(k) == [], "agent sockets left"
    wait_fds_back(k, base)
    # And SPAWN still works.
    again = spawn_ok(k, "after-burst", SLEEPER, limits=LIMITS)
    assert call(k, KILL, {"id": again["id"]}) == {"killed": True}


@root_only
def test_agent_sigkilled_while_flooding_its_log(agents_dir, kernel_factory):
    k = kernel_factory(extra_args=FAST_KILL)
    require_spawn(k)
    instance = instance_of(k)
    base = settled_fds(k)
    r = spawn_ok(k, "printer", agents_dir / "tight_printer.py", limits=LIMITS)
    log = log_path(k, "printer", r["id"])
    wait_for(lambda: log.exists() and log.stat().st_size > 256 << 10, AGENT_TIMEOUT_S,
             what="the printer's log to pass 256 KiB")
    assert noop_ok(k), "the kernel did not answer while an agent flooded its log"
    os.kill(agent_process(r), signal.SIGKILL)

    assert_killed_by_sigkill(wait_ended(k, r["id"]))
    assert noop_ok(k)
    assert list_agents(k) == []
    assert_list_is_the_truth(k, instance)
    wait_for(lambda: instance_cgroup_dirs(instance) == [], 5, what="agent cgroups to be removed")
    wait_fds_back(k, base)


# == (b) clients vanishing mid-frame ===========================================


def half_header(k):
    with k.raw() as c:
        c.send_raw(pack_frame(NOOP, b"abc")[:HEADER.size // 2])


def half_payload(k):
    with k.raw() as c:
        c.send_raw(pack_frame(NOOP, b"p" * 4000)[:HEADER.size + 2000])


def header_claims_one_mib(k):
    with k.raw() as c:
        c.send_frame(NOOP, b"", size=MAX_PAYLOAD)


def most_of_one_mib(k):
    with k.raw() as c:
        c.send_raw(pack_frame(NOOP, b"m" * MAX_PAYLOAD)[:HEADER.size + 700 * 1024])


def replies_never_read(k):
    # 8 x 256 KiB echoes: the kernel is still writing when the peer goes.
    with k.raw() as c:
        c.send_raw(pack_frame(NOOP, b"r" * (256 << 10)) * 8)


def half_close_mid_frame(k):
    """The client can never finish the frame: the kernel must close."""
    with k.raw() as c:
        c.send_raw(pack_frame(NOOP, b"abc")[:10])
        c.sock.shutdown(socket.SHUT_WR)
        assert c.is_closed_by_peer(), "the kernel kept a half-closed, half-framed connection"


VANISHING = [half_header, half_payload, header_claims_one_mib, most_of_one_mib, replies_never_read,
             half_close_mid_frame]


def test_clients_vanishing_mid_frame_leave_no_trace(kernel):
    with kernel.raw() as warm:
        assert warm.call(NOOP, b"warm").payload == b"warm"
    bystander = kernel.raw()
    base = None
    try:
        assert bystander.call(NOOP, b"before").payload == b"before"
        base = settled_fds(kernel)
        for round_ in range(20):
            for vanish in VANISHING:
                vanish(kernel)
            assert bystander.call(NOOP, b"round %d" % round_).payload == b"round %d" % round_
        assert noop_ok(kernel)
        wait_fds_back(kernel, base)
        assert bystander.call(NOOP, b"after").payload == b"after"
    finally:
        bystander.close()


# == (c) the provider dies under an in-flight THINK =============================


class FakeOnPort(FakeLLM):
    """fake_llm.py on a fixed port, so that a restart is the same provider."""

    def __init__(self, port):  # noqa: D107 - same as FakeLLM, with --port
        self.proc = subprocess.Popen([SYS_PYTHON, str(FAKE), "--port", str(port), "--exit-on-stdin-eof"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if line.strip() != str(port).encode():
            self.stop()
            raise RuntimeError(f"fake_llm.py on port {port} printed {line!r}")
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


def test_provider_killed_and_restarted_mid_think(kernel_factory):
    first = FakeLLM()  # port 0 picks a free port; the restart takes it over
    second = None
    try:
        k = kernel_factory(env=llm_env(first, "gemini"))
        first.control(hang=3)
        conns = [k.raw(timeout=REPLY_TIMEOUT_S * 2) for _ in range(3)]
        for i, c in enumerate(conns):
            c.send_frame(0x01, f"in flight {i}")
        first.wait_requests(3)
        first.proc.kill()  # SIGKILL by pid: the connections die with it
        first.proc.wait()
        second = FakeOnPort(first.port)

        for i, c in enumerate(conns):
            with c:
                _, reply = c.recv_json()
            error = reply.get("error")
            if error:
                assert isinstance(error, str) and reply.get("content") in ("", None), reply
            else:
                assert reply["content"] == f"echo: in flight {i}", reply
        wait_for(lambda: llm_idle(k), 10, what="the kernel's LLM service to hold nothing")
        for i in range(3):
            assert think(k, f"after restart {i}")["content"] == f"echo: after restart {i}"
        assert noop_ok(k)
    finally:
        first.stop()
        if second:
            second.stop()


# == (d) the state directory's disk is full =====================================

TMPFS_BYTES = 2 * MiB
FLOOD_BYTES = 16 * MiB


@root_only
def test_full_state_disk_neither_blocks_the_kernel_nor_the_agent(agents_dir, kernel_factory):
    k = kernel_factory(extra_args=FAST_KILL, start=False)
    os.makedirs(k.state_dir)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0700", "agentos-full",
                    str(k.state_dir)], check=True)
    try:
        k.start()
        require_spawn(k)
        r = spawn_ok(k, "flooder", agents_dir / "disk_flooder.py", args=[str(FLOOD_BYTES)],
                     limits=LIMITS)
        # The kernel answers all along; the agent ends (16 MiB is seconds of
        # work) instead of hanging on a write the kernel does not drain.
        deadline = time.monotonic() + 2 * AGENT_TIMEOUT_S
        while (e := entry(k, r["id"])) and e["running"]:
            assert noop_ok(k), "the kernel stopped answering while its disk was full"
            if time.monotonic() > deadline:
                pytest.fail(f"the flooding agent has not ended after {2 * AGENT_TIMEOUT_S:g} s: "
                            "blocked on its output?")
        ended = wait_ended(k, r["id"])
        free = os.statvfs(k.state_dir)
        assert free.f_bavail * free.f_frsize < 128 << 10, "the test did not fill the disk"
        assert (ended["status"], ended["exit_code"]) == ("exited", 0), \
            f"the agent's writes failed (exit 3: its stdout is a file; exit 4: through the kernel's pipe): {ended}"
        assert k.running() and noop_ok(k)
        # The kernel still manages agents with the disk full.
        again = spawn_ok(k, "on-full-disk", SLEEPER, limits=LIMITS)
        assert call(k, KILL, {"id": again["id"]}) == {"killed": True}
    finally:
        try:
            k.stop()
        finally:
            subprocess.run(["umount", "-l", str(k.state_dir)], check=False)


# == (e) the kernel itself is SIGKILLed =========================================


def stale_socket(path):
    """True when `path` is a socket nobody listens on."""
    if not stat.S_ISSOCK(os.lstat(path).st_mode):
        return False
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
        except ConnectionRefusedError:
            return True
    return False


@root_only
def test_kernel_sigkilled_then_restarted_leaves_no_orphans(kernel_factory):
    sockdir = Path(tempfile.mkdtemp(prefix="agentos-crash-"))
    try:
        k = kernel_factory(socket_path=sockdir / "agentos.sock", extra_args=FAST_KILL)
        require_spawn(k)
        instance = instance_of(k)
        victims = {}  # name -> reply
        for name, sandboxed in [("sb-stubborn", True), ("plain-stubborn", False)]:
            victims[name] = spawn_ok(k, name, SLEEPER, args=["--ignore-term", "--fork", "2"],
                                     sandboxed=sandboxed, limits=LIMITS)
            wait_log(k, name, victims[name]["id"], "ready")
        members = {name: cgroup_members(instance, r["id"]) for name, r in victims.items()}
        for name, procs in members.items():
            assert len(procs) >= 3, f"{name}: expected the agent and 2 children in its cgroup: {procs}"
        assert pids_of_uid(UID_BASE + victims["sb-stubborn"]["id"]), "the sandboxed agent has its own uid"
        assert len(runtime_sockets(k)) == 2

        k.stop(signal.SIGKILL)
        # The sandbox's init dies with the kernel and takes its namespace along.
        wait_for(lambda: not any(same_process_alive(p, t) for p, t in members["sb-stubborn"].items()),
                 10, what="the sandboxed agent's tree to die with the kernel")
        assert stale_socket(k.socket_path), "the crashed kernel's socket should still be there"

        k2 = kernel_factory(socket_path=k.socket_path, extra_args=FAST_KILL, start=False)
        k2.state_dir, k2.runtime_dir = k.state_dir, k.runtime_dir  # the same instance, all of it
        k2.start()
        assert instance_of(k2) == instance and noop_ok(k2)
        every = {p: t for procs in members.values() for p, t in procs.items()}
        wait_for(lambda: not any(same_process_alive(p, t) for p, t in every.items()), 10,
                 what=f"the crashed run's agents to be gone: "
                      f"{[p for p, t in every.items() if same_process_alive(p, t)]}")
        assert cgroup_members(instance) == {}, "processes left in the instance's cgroups"
        assert instance_cgroup_dirs(instance) == [], "the crashed run's agent cgroups were not removed"

        # The lock: a second kernel on the same socket refuses and leaves ours alone.
        third = Kernel(socket_path=k.socket_path)
        try:
            code, out = third.run_until_exit()
        finally:
            third.cleanup()
        assert code != 0 and "already running" in out, (code, out)
        assert noop_ok(k2), "the refused kernel disturbed the running one"

        # The restarted kernel reuses ids (and so socket paths) of the crashed run.
        again = spawn_ok(k2, "after-crash", SLEEPER, limits=LIMITS)
        wait_log(k2, "after-crash", again["id"], "ready")
        assert call(k2, KILL, {"id": again["id"]}) == {"killed": True}
        assert k2.stop() == 0, k2.log_tail()
        assert instance_cgroup_dirs(instance, leaves_only=False) == [], "cgroups left after a clean exit"
        assert not os.path.exists(k.socket_path) and not os.path.exists(k.lock_path)
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)


@root_only
def test_restart_removes_the_crashed_runs_agent_sockets(kernel_factory):
    k = kernel_factory(extra_args=FAST_KILL)
    require_spawn(k)
    spawn_ok(k, "left-behind", SLEEPER, limits=LIMITS)
    old_sockets = runtime_sockets(k)
    assert len(old_sockets) == 1, old_sockets
    k.stop(signal.SIGKILL)

    k2 = kernel_factory(extra_args=FAST_KILL, start=False)
    k2.socket_path, k2.state_dir, k2.runtime_dir = k.socket_path, k.state_dir, k.runtime_dir
    k2.start()
    assert runtime_sockets(k2) == [], "the crashed run's agent sockets are still there"
