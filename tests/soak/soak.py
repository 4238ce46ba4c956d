#!/usr/bin/python3
"""Soak test: a real agentos_kernel under 1,000 concurrent clients for a long
time while agents are spawned and killed, then proof that it returned to
where it was (RELIABILITY.md, "Soak").

    /usr/bin/python3 tests/soak/soak.py --kernel BUILD/agentos_kernel --duration 180
    tests/soak/run.sh BUILD 180                      (the same)

What it does
  1. Starts tests/fakes/fake_llm.py (latency 20 ms + up to 10 ms jitter) and a
     kernel on a temp socket pointed at it (tests/integration/kernel_harness).
  2. Warm-up (--warmup s): the full load below, then every client disconnects
     and every agent ends. The kernel's fd count and RSS measured then are the
     baseline: first-use allocations (allocator arenas, curl's connection
     cache, the 1,000-connection peak) are behind us, so growth after this
     point is what a leak would look like.
  3. Main phase (--duration s): --clients connections on one selectors loop;
     9 in 10 alternate NOOP (80 %) and LIST (20 %) with --interval-ms between a
     reply and the next request; 1 in 10 send THINK back to back. Meanwhile
     a thread spawns sandboxed agents (agents/examples/healthy_agent.py, 64 MiB,
     16 pids) every --spawn-every s, at most --max-agents at once: half end by
     themselves, half are KILLed while running. A sampler reads
     /proc/<kernel>/status (VmRSS) and /proc/<kernel>/fd every 0.5 s.
  4. End: clients close, agents end; then the promises are checked.

Promises (exit status 1 if any is broken, 2 if the run itself failed)
  - every reply is right (NOOP echoes, LIST is an array, THINK answers the
    prompt); the only accepted failures are documented refusals (THINK queue
    or rate limits, the connection limit), counted separately;
  - every agent ends as asked: exit 0 or killed by us;
  - the kernel's fd table is exactly the baseline again;
  - its RSS is within --rss-slack-mib of the baseline, plus
    --rss-per-record-kib for each ended-agent record it kept meanwhile (it
    keeps the last 1,000); RELIABILITY.md says why a bound, not equality;
  - no agent cgroup, agent socket, child or zombie of the kernel is left;
  - the kernel still answers, and exits 0 on SIGTERM.

Output: a markdown table (stdout and --out) for RELIABILITY.md, and --json.
Standard library only.
"""

import argparse
import array
import datetime
import heapq
import json
import os
import platform
import random
import re
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from kernel_harness import (EXAMPLES_DIR, HEADER, HEADER_SIZE, MAGIC, MAX_PAYLOAD,  # noqa: E402
                            Kernel, pack_frame, wait_for)

NOOP, THINK, LIST, EXIT = 0x00, 0x01, 0x12, 0xFF
OP_NAMES = {NOOP: "NOOP", LIST: "LIST", THINK: "THINK"}
FAKE = REPO / "tests" / "fakes" / "fake_llm.py"
SYS_PYTHON = "/usr/bin/python3"
MiB = 1 << 20
CGROUP_ROOT = Path("/sys/fs/cgroup")
AGENT_LIMITS = {"memory": 64 * MiB, "max_pids": 16}
# THINK errors the kernel documents as refusals under load (docs/ERRORS.md):
# a full per-flow queue, a queue timeout, a rate or token limit.
REFUSAL = re.compile(r"queue|rate limit|budget|too many", re.I)
LLM_ENV_KNOBS = ("GEMINI_BASE_URL", "AGENTOS_LLM_MODEL", "AGENTOS_LLM_MAX_INFLIGHT", "AGENTOS_LLM_RPM",
                 "AGENTOS_LLM_TPM", "AGENTOS_LLM_TIMEOUT_S", "AGENTOS_LLM_MAX_QUEUE",
                 "AGENTOS_LLM_QUEUE_TIMEOUT_S", "AGENTOS_LLM_MAX_RETRIES", "AGENTOS_LLM_RETRY_BUDGET_S")


# == the kernel and its surroundings ===========================================


class SoakKernel(Kernel):
    """The harness's kernel at log level info: debug lines for 100,000
    connections would only measure the log file."""

    def command(self):
        cmd = super().command()
        cmd[cmd.index("--log-level") + 1] = "info"
        return cmd


class FakeLLM:
    """tests/fakes/fake_llm.py as a subprocess; it exits when our pipe closes."""

    def __init__(self, latency_ms, jitter_ms):
        self.proc = subprocess.Popen(
            [SYS_PYTHON, str(FAKE), "--port", "0", "--exit-on-stdin-eof", "--latency-ms", str(latency_ms),
             "--jitter-ms", str(jitter_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"fake_llm.py did not print its port (got {line!r})")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def raise_nofile(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def proc_value(pid, key):
    """A kB field of /proc/<pid>/status, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} missing from /proc/{pid}/status")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def nofile_limits(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return soft, hard
    return "?", "?"


def kernel_children(pid):
    """[(pid, state)] of the kernel's children (Z = zombie)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            text = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append((int(d), fields[0]))
    return out


def instance_cgroups(instance):
    found = []
    for hierarchy in CGROUP_ROOT.iterdir():
        if hierarchy.is_dir() and not hierarchy.is_symlink():
            for dirpath, dirnames, _ in os.walk(hierarchy):
                found += [os.path.join(dirpath, d) for d in dirnames
                          if d.startswith("agent-") and instance in dirpath]
    return found


def agent_sockets(k):
    agents = Path(k.runtime_dir) / "agents"
    return sorted(str(p) for p in agents.glob("*.sock")) if agents.is_dir() else []


def settle(k):
    """An EXIT round trip: the kernel closes first, so connections closed
    before it have been torn down on its side too."""
    with k.raw(timeout=30) as c:
        c.send_frame(EXIT)
        c.recv_frame()
        c.is_closed_by_peer(timeout=30)


def call_json(k, opcode, body=b""):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    with k.raw(timeout=60) as c:
        return json.loads(c.call(opcode, payload).payload)


# == the clients ================================================================


class Stats:
    """Latencies and outcomes per op for one phase."""

    def __init__(self):
        self.lat = {op: array.array("d") for op in OP_NAMES}
        self.refused = {op: 0 for op in OP_NAMES}
        self.errors = {op: 0 for op in OP_NAMES}
        self.transport_errors = 0
        self.examples = []
        self.kernel_cpu_s = self.client_cpu_s = self.kernel_wait_s = 0.0
        self.probe = []

    def error(self, op, what):
        if op is None:
            self.transport_errors += 1
        else:
            self.errors[op] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{OP_NAMES.get(op, 'connection')}: {what}")

    def served(self, op):
        return len(self.lat[op])


class Client:
    """One connection: a request, its reply, the next request."""

    __slots__ = ("cid", "sock", "thinker", "out", "inbuf", "op", "sent", "expect", "seq", "due")

    def __init__(self, cid, path, thinker):
        self.cid, self.thinker, self.seq = cid, thinker, 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.sock.setblocking(False)
        self.out, self.inbuf = b"", bytearray()
        self.op = self.sent = self.expect = None
        self.due = 0.0

    def next_request(self):
        self.seq += 1
        if self.thinker:
            self.op, body = THINK, f"soak {self.cid}.{self.seq}".encode()
            self.expect = "echo: " + body.decode()
        elif random.random() < 0.8:
            self.op, body = NOOP, os.urandom(random.randint(0, 256))
            self.expect = body
        else:
            self.op, body, self.expect = LIST, b"", None
        self.out = pack_frame(self.op, body)
        self.sent = time.monotonic()

    def flush(self):
        """Sends what it can; True when all of the request is out."""
        while self.out:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                return False
            self.out = self.out[n:]
        return True

    def read(self):
        """Reads what is there; returns a complete (opcode, payload) or None.
        Raises ConnectionError when the kernel closed the connection."""
        try:
            chunk = self.sock.recv(1 << 16)
        except BlockingIOError:
            return None
        if not chunk:
            raise ConnectionError("closed by the kernel")
        self.inbuf += chunk
        if len(self.inbuf) < HEADER_SIZE:
            return None
        magic, _, opcode, size = HEADER.unpack_from(self.inbuf)
        if magic != MAGIC or size > MAX_PAYLOAD:
            raise ConnectionError(f"bad reply header magic={magic:#x} size={size}")
        if len(self.inbuf) < HEADER_SIZE + size:
            return None
        payload = bytes(self.inbuf[HEADER_SIZE:HEADER_SIZE + size])
        del self.inbuf[:HEADER_SIZE + size]
        return opcode, payload


def judge(c, opcode, payload, stats):
    """Checks one reply against its request; records latency or the error."""
    op = c.op
    if opcode != op:
        return stats.error(op, f"reply opcode {opcode:#x} to {op:#x}")
    if op == NOOP:
        if payload != c.expect:
            return stats.error(op, f"echo of {len(c.expect)} bytes came back as {len(payload)}")
    else:
        try:
            reply = json.loads(payload)
        except ValueError:
            return stats.error(op, f"not JSON: {payload[:80]!r}")
        if op == LIST and not isinstance(reply, list):
            return stats.error(op, f"LIST answered {str(reply)[:120]}")
        if op == THINK:
            err = reply.get("error") if isinstance(reply, dict) else "not an object"
            if err and REFUSAL.search(str(err)):
                stats.refused[op] += 1
                return None
            if err or reply.get("content") != c.expect:
                return stats.error(op, f"THINK answered {str(reply)[:160]}")
    stats.lat[op].append((time.monotonic() - c.sent) * 1000.0)
    return None


def connect_all(k, n, thinkers):
    clients = []
    for i in range(n):
        clients.append(Client(i, str(k.socket_path), thinker=i < thinkers))
    return clients


def drive(k, args, seconds, stats):
    """Runs --clients connections for `seconds`, then lets every outstanding
    request finish (THINKs may be queued) and closes them all."""
    thinkers = args.clients // 10
    clients = connect_all(k, args.clients, thinkers)
    sel = selectors.DefaultSelector()
    for c in clients:
        sel.register(c.sock, selectors.EVENT_READ, c)
    timers = []  # (due, cid) of clients pacing before their next request
    for c in clients:
        start(c, sel)
    interval = args.interval_ms / 1000.0
    deadline = time.monotonic() + seconds
    busy = len(clients)
    draining = False
    while busy:
        now = time.monotonic()
        if not draining and now >= deadline:
            draining = True
            busy -= len(timers)
            timers.clear()
        while timers and timers[0][0] <= now:
            _, cid = heapq.heappop(timers)
            start(clients[cid], sel)
        timeout = 0.2 if not timers else max(0.0, min(0.2, timers[0][0] - now))
        for key, events in sel.select(timeout):
            c = key.data
            if events & selectors.EVENT_WRITE and c.flush():
                sel.modify(c.sock, selectors.EVENT_READ, c)
            if not events & selectors.EVENT_READ:
                continue
            try:
                reply = c.read()
            except (ConnectionError, OSError) as exc:
                stats.error(None, f"client {c.cid}: {exc}")
                sel.unregister(c.sock)
                busy -= 1
                continue
            if reply is None:
                continue
            judge(c, *reply, stats)
            c.op = None
            if draining:
                busy -= 1
            elif c.thinker:
                start(c, sel)
            else:
                heapq.heappush(timers, (time.monotonic() + interval * random.uniform(0.5, 1.5), c.cid))
        if draining and time.monotonic() > deadline + args.drain_timeout:
            stats.error(None, f"{busy} requests unanswered {args.drain_timeout} s after the end")
            break
    for c in clients:
        c.sock.close()
    sel.close()


def start(c, sel):
    c.next_request()
    if not c.flush():
        sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)


# == a light client beside the load ==============================================

# One NOOP every 50 ms on its own connection, in its own process (so the soak
# loop's own CPU time does not show up in it): how the kernel answers a quiet
# client while it serves the others. Prints {"lat_ms": [...]} at the end.
PROBE = r"""
import json, socket, struct, sys, time
s = socket.socket(socket.AF_UNIX); s.settimeout(60); s.connect(sys.argv[1])
end = time.monotonic() + float(sys.argv[2]); lat = []
def exact(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise SystemExit("closed by the kernel")
        b += c
    return b
while time.monotonic() < end:
    t = time.monotonic()
    s.sendall(struct.pack("<IIBQ", 0x41474E54, 0, 0, 5) + b"probe")
    h = exact(17)
    if exact(struct.unpack("<IIBQ", h)[3]) != b"probe": raise SystemExit("bad echo")
    lat.append((time.monotonic() - t) * 1000)
    time.sleep(0.05)
print(json.dumps({"lat_ms": lat}))
"""


def start_probe(k, seconds):
    return subprocess.Popen([SYS_PYTHON, "-c", PROBE, str(k.socket_path), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def probe_result(proc, stats):
    out, err = proc.communicate(timeout=120)
    if proc.returncode != 0:
        stats.error(None, f"probe client: exit {proc.returncode}: {err.strip()[-200:]}")
        return []
    return json.loads(out)["lat_ms"]


def run_queue_seconds(pid):
    """Time the process spent runnable but waiting for a CPU (schedstat)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# == agent churn =================================================================


class Churn(threading.Thread):
    """Spawns sandboxed agents and kills half of them, until stopped."""

    def __init__(self, k, args, prefix):
        super().__init__(daemon=True)
        self.k, self.args, self.prefix = k, args, prefix
        self.stop_event = threading.Event()
        self.spawned, self.killed, self.errors = [], [], []

    def run(self):
        try:
            with self.k.client(timeout=60) as c:
                self.loop(c)
        except Exception as exc:  # noqa: BLE001 - reported as a broken promise
            self.errors.append(f"churn: {type(exc).__name__}: {exc}")

    def loop(self, c):
        live = {}  # id -> kill at (monotonic) or None (ends by itself)
        n = 0
        while not self.stop_event.is_set():
            now = time.monotonic()
            for aid, kill_at in list(live.items()):
                if kill_at is not None and now >= kill_at:
                    reply = c.kill(agent_id=aid)
                    if reply.get("killed"):
                        self.killed.append(aid)
                    elif "not running" not in str(reply.get("error", "")):
                        self.errors.append(f"KILL {aid}: {reply}")
                    live[aid] = None
            running = {a["id"] for a in c.list_agents()}
            live = {aid: t for aid, t in live.items() if aid in running}
            if len(live) < self.args.max_agents:
                n += 1
                self.spawn_one(c, n, live)
            self.stop_event.wait(self.args.spawn_every)

    def spawn_one(self, c, n, live):
        # healthy_agent.py: an echo round trip every 0.5 s for 1.5 s, exit 0.
        reply = c.spawn(f"{self.prefix}-{n}", str(EXAMPLES_DIR / "healthy_agent.py"),
                        sandboxed=os.geteuid() == 0, limits=AGENT_LIMITS, args=["1.5"])
        if reply.get("status") != "running":
            self.errors.append(f"SPAWN: {reply}")
            return
        self.spawned.append(reply["id"])
        live[reply["id"]] = time.monotonic() + 0.3 if n % 2 == 0 else None

    def finish(self):
        """Stops spawning; kills what is left; checks how every agent ended."""
        self.stop_event.set()
        self.join(60)
        for a in call_json(self.k, LIST):
            reply = call_json(self.k, 0x11, {"id": a["id"]})
            if reply.get("killed"):
                self.killed.append(a["id"])
            else:
                self.errors.append(f"final KILL {a['id']}: {reply}")
        wait_for(lambda: call_json(self.k, LIST) == [], 60, what="every agent to end")
        ended = {a["id"]: a for a in call_json(self.k, LIST, {"all": True})}
        for aid in self.spawned:
            a = ended.get(aid)
            if a is None:
                continue  # pruned from the ended records (the kernel keeps the last 1,000)
            ok = (a["status"] == "exited" and a["exit_code"] == 0
                  or a["status"] == "killed" and aid in self.killed)
            if not ok:
                self.errors.append(f"agent {aid} ended badly: status={a['status']} exit_code="
                                   f"{a['exit_code']} signal={a['signal']}")


# == measurement ================================================================


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.stop_event = threading.Event()
        self.peak_rss = self.peak_fds = 0

    def run(self):
        while not self.stop_event.wait(0.5):
            try:
                self.peak_rss = max(self.peak_rss, proc_value(self.pid, "VmRSS"))
                self.peak_fds = max(self.peak_fds, fd_count(self.pid))
            except (OSError, RuntimeError):
                return


def snapshot(k, provider_port):
    """RSS and fds of the settled kernel. fd_table leaves out TCP connections
    to the provider: they are curl's connection cache (at most
    --llm-max-inflight, reused and replaced as curl sees fit), counted
    separately in provider_conns."""
    settle(k)
    records = len(call_json(k, LIST, {"all": True}))
    settle(k)
    table = fd_links(k.pid)
    provider = tcp_inodes_to(k.pid, provider_port)
    conns = {fd for fd, t in table.items() if t in provider}
    return {"rss": proc_value(k.pid, "VmRSS"), "fds": len(table), "provider_conns": len(conns),
            "records": records,
            "fd_table": {fd: t for fd, t in table.items() if fd not in conns}}


def tcp_inodes_to(pid, port):
    """{"socket:[inode]"} of TCP sockets in pid's namespace whose remote port is `port`."""
    out = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if int(f[2].rsplit(":", 1)[1], 16) == port:
                out.add(f"socket:[{f[9]}]")
    return out


def fd_links(pid):
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    return out


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def phase(k, args, seconds, prefix):
    stats = Stats()
    churn = Churn(k, args, prefix)
    churn.start()
    probe = start_probe(k, seconds)
    t0 = time.monotonic()
    cpu0, self0, wait0 = cpu_seconds(k.pid), time.process_time(), run_queue_seconds(k.pid)
    drive(k, args, seconds, stats)
    elapsed = time.monotonic() - t0
    stats.kernel_cpu_s = cpu_seconds(k.pid) - cpu0
    stats.client_cpu_s = time.process_time() - self0
    stats.kernel_wait_s = run_queue_seconds(k.pid) - wait0
    stats.probe = probe_result(probe, stats)
    churn.finish()
    return stats, churn, elapsed


# == the run =====================================================================


def run(args):
    problems = []
    our_nofile = raise_nofile(args.clients + 512)
    if our_nofile != resource.RLIM_INFINITY and our_nofile < args.clients + 64:
        raise RuntimeError(f"RLIMIT_NOFILE hard limit {our_nofile} is too low for {args.clients} clients")
    fake = FakeLLM(args.llm_latency_ms, args.llm_jitter_ms)
    env = {name: None for name in LLM_ENV_KNOBS}
    env.update(GEMINI_API_KEY="fake-soak-key", GEMINI_BASE_URL=fake.url, AGENTOS_LLM_MODEL="soak-model")
    k = SoakKernel(extra_args=["--kill-grace-ms", "1000", "--llm-max-inflight", str(args.llm_max_inflight)],
                   env=env, binary=args.kernel)
    result = {"problems": problems}
    try:
        start_kernel(k, args.kernel_nofile)
        instance = re.search(r"\(instance (agentos-[0-9a-f]{8})", k.log_text()).group(1)
        result["kernel_nofile"] = nofile_limits(k.pid)
        cold = snapshot(k, fake.port)
        log(f"kernel pid {k.pid}, instance {instance}, RLIMIT_NOFILE {result['kernel_nofile']}, "
            f"cold: {cold['fds']} fds, {cold['rss'] / MiB:.1f} MiB")

        log(f"warm-up: {args.warmup:g} s")
        w_stats, w_churn, _ = phase(k, args, args.warmup, "warm")
        problems += [f"warm-up: {e}" for e in w_churn.errors]
        problems += [f"warm-up: {e}" for e in w_stats.examples]
        base = snapshot(k, fake.port)
        log(f"baseline after warm-up: {base['fds']} fds ({base['provider_conns']} to the provider), "
            f"{base['rss'] / MiB:.1f} MiB")

        sampler = Sampler(k.pid)
        sampler.start()
        log(f"main phase: {args.duration:g} s, {args.clients} clients")
        stats, churn, elapsed = phase(k, args, args.duration, "churn")
        sampler.stop_event.set()
        sampler.join()

        end = end_state(k, base, args, fake.port)
        problems += check(k, instance, base, end, stats, churn, args)
        result.update(report_data(args, cold, base, end, sampler, stats, churn, elapsed))
    finally:
        code = k.stop() if k.running() else k.returncode
        if code != 0:
            problems.append(f"kernel exit code on SIGTERM: {code} (expected 0)\n{k.log_tail(20)}")
        fake.stop()
        if problems or args.keep:
            log(f"kernel log kept in {k.tmpdir}")
        else:
            k.cleanup()
    return result


def start_kernel(k, nofile):
    """Starts the kernel, with a soft RLIMIT_NOFILE of `nofile` if given (it
    inherits ours at fork: set it around the start only)."""
    if not nofile:
        return k.start()
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, saved[1]))
    try:
        return k.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, saved)


def end_state(k, base, args, provider_port):
    """The kernel after clients and agents are gone: the fd table is polled
    back to the baseline (closing is asynchronous on its side), then sampled."""
    try:
        wait_for(lambda: snapshot(k, provider_port)["fd_table"] == base["fd_table"], args.settle_timeout,
                 interval=0.2, what="the kernel's fd table to return to the baseline")
    except TimeoutError:
        pass  # reported by check()
    return snapshot(k, provider_port)


def check(k, instance, base, end, stats, churn, args):
    problems = [f"churn: {e}" for e in churn.errors]
    problems += stats.examples
    if end["fd_table"] != base["fd_table"]:
        extra = {fd: t for fd, t in end["fd_table"].items() if base["fd_table"].get(fd) != t}
        gone = {fd: t for fd, t in base["fd_table"].items() if end["fd_table"].get(fd) != t}
        problems.append(f"fds: {end['fds']} at the end vs {base['fds']} at baseline; new: {extra}; "
                        f"gone: {gone}")
    if end["provider_conns"] > args.llm_max_inflight:
        problems.append(f"{end['provider_conns']} connections to the provider, more than "
                        f"--llm-max-inflight {args.llm_max_inflight}")
    growth = end["rss"] - base["rss"]
    if growth > rss_bound(args, base, end):
        problems.append(f"RSS grew by {growth / MiB:.1f} MiB (bound {rss_bound(args, base, end) / MiB:.1f} "
                        f"MiB for {end['records'] - base['records']} more ended-agent records)")
    kids = kernel_children(k.pid)
    if kids:
        problems.append(f"kernel children left (Z = zombie): {kids}")
    left = instance_cgroups(instance)
    if left:
        problems.append(f"agent cgroups left: {left}")
    socks = agent_sockets(k)
    if socks:
        problems.append(f"agent sockets left: {socks}")
    with k.raw() as c:
        if c.call(NOOP, b"still there").payload != b"still there":
            problems.append("the kernel no longer echoes")
    for op in OP_NAMES:
        if stats.served(op) == 0:
            problems.append(f"no {OP_NAMES[op]} was served")
    return problems


def rss_bound(args, base, end):
    """Allowed RSS growth: a fixed slack plus the ended-agent records the
    kernel kept meanwhile (it keeps the last 1,000; see RELIABILITY.md)."""
    new_records = max(0, end["records"] - base["records"])
    return args.rss_slack_mib * MiB + new_records * args.rss_per_record_kib * 1024


def report_data(args, cold, base, end, sampler, stats, churn, elapsed):
    ops = {}
    for op, name in OP_NAMES.items():
        lat = stats.lat[op]
        ops[name] = {"served": len(lat), "per_s": len(lat) / elapsed, "errors": stats.errors[op],
                     "refused": stats.refused[op], "p50_ms": percentile(lat, 0.50),
                     "p99_ms": percentile(lat, 0.99), "max_ms": max(lat) if lat else float("nan")}
    return {
        "date": datetime.date.today().isoformat(),
        "load_avg": os.getloadavg(),
        "nproc": os.cpu_count(),
        "kernel_release": platform.release(),
        "duration_s": elapsed, "warmup_s": args.warmup, "clients": args.clients,
        "interval_ms": args.interval_ms,
        "ops": ops, "transport_errors": stats.transport_errors,
        "agents": {"spawned": len(churn.spawned), "killed": len(churn.killed)},
        "kernel_cpu_s": stats.kernel_cpu_s, "client_cpu_s": stats.client_cpu_s,
        "kernel_wait_s": stats.kernel_wait_s,
        "probe": {"n": len(stats.probe), "p50_ms": percentile(stats.probe, 0.5),
                  "p99_ms": percentile(stats.probe, 0.99),
                  "max_ms": max(stats.probe) if stats.probe else float("nan")},
        "fds": {"cold": cold["fds"], "baseline": base["fds"], "peak": sampler.peak_fds, "end": end["fds"],
                "provider_conns": {"baseline": base["provider_conns"], "end": end["provider_conns"]}},
        "rss_mib": {"cold": cold["rss"] / MiB, "baseline": base["rss"] / MiB,
                    "peak": sampler.peak_rss / MiB, "end": end["rss"] / MiB},
        "rss_slack_mib": args.rss_slack_mib, "rss_per_record_kib": args.rss_per_record_kib,
        "records": {"baseline": base["records"], "end": end["records"]},
        "rss_bound_mib": rss_bound(args, base, end) / MiB,
    }


def markdown(r):
    if "ops" not in r:
        return "soak did not complete: " + "; ".join(r["problems"]) + "\n"
    la = ", ".join(f"{x:.1f}" for x in r["load_avg"])
    lines = [
        f"Soak, {r['date']}: {r['nproc']} cores, Debian 12, shared/busy (load average at the end {la}), "
        f"Linux {r['kernel_release']}; {r['duration_s']:.0f} s after a {r['warmup_s']:g} s warm-up; "
        f"{r['clients']} concurrent connections ({r['clients'] * 9 // 10} NOOP/LIST, "
        f"{r['interval_ms']:g} ms between requests; {r['clients'] // 10} THINK back to back, fake "
        f"provider 20-30 ms); {r['agents']['spawned']} sandboxed agents spawned, "
        f"{r['agents']['killed']} of them killed while running. Kernel RLIMIT_NOFILE "
        f"{r.get('kernel_nofile', ('?', '?'))[0]}.",
        "",
        "| op | served | per s | errors | refused | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, o in r["ops"].items():
        lines.append(f"| {name} | {o['served']} | {o['per_s']:.0f} | {o['errors']} | {o['refused']} | "
                     f"{o['p50_ms']:.2f} | {o['p99_ms']:.2f} | {o['max_ms']:.1f} |")
    pr = r["probe"]
    lines.append(f"| NOOP, a quiet client (1 per 50 ms, own process) | {pr['n']} | "
                 f"{pr['n'] / r['duration_s']:.0f} | 0 | 0 | {pr['p50_ms']:.2f} | {pr['p99_ms']:.2f} | "
                 f"{pr['max_ms']:.1f} |")
    lines += ["", f"CPU used in the main phase: kernel {r['kernel_cpu_s']:.0f} s "
                  f"({100 * r['kernel_cpu_s'] / r['duration_s']:.0f} % of one core), soak client loop "
                  f"{r['client_cpu_s']:.0f} s; the kernel waited {r['kernel_wait_s']:.0f} s for a CPU "
                  f"while runnable."]
    f, m = r["fds"], r["rss_mib"]
    lines += [
        "",
        "| kernel | cold start | baseline (after warm-up) | peak | end | promise |",
        "|---|---:|---:|---:|---:|---|",
        f"| open fds | {f['cold']} | {f['baseline']} | {f['peak']} | {f['end']} | same fds as the baseline, "
        f"except curl's cached provider connections ({f['provider_conns']['baseline']} at baseline, "
        f"{f['provider_conns']['end']} at the end; at most --llm-max-inflight) |",
        f"| RSS MiB | {m['cold']:.1f} | {m['baseline']:.1f} | {m['peak']:.1f} | {m['end']:.1f} | "
        f"end ≤ baseline + {r['rss_slack_mib']:g} MiB + {r['rss_per_record_kib']:g} KiB per ended-agent "
        f"record kept since ({r['records']['end'] - r['records']['baseline']}): "
        f"+{r['rss_bound_mib']:.1f} MiB |",
        "",
        f"Transport errors: {r['transport_errors']}. Left behind: "
        + ("nothing (no cgroup, agent socket, child or zombie)." if not r["problems"]
           else "see problems below."),
    ]
    if r["problems"]:
        lines += ["", "Problems:"] + [f"- {p}" for p in r["problems"]]
    return "\n".join(lines) + "\n"


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kernel", default=str(REPO / "build" / "agentos_kernel"), help="agentos_kernel binary")
    p.add_argument("--duration", type=float, default=180.0, help="main phase, seconds")
    p.add_argument("--warmup", type=float, default=None, help="seconds (default: duration / 6, 10..60)")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--interval-ms", type=float, default=100.0, help="NOOP/LIST pacing per client")
    p.add_argument("--spawn-every", type=float, default=0.4, help="seconds between spawns")
    p.add_argument("--max-agents", type=int, default=4, help="agents alive at once")
    p.add_argument("--llm-max-inflight", type=int, default=8, help="the kernel's flag (its default: 8)")
    p.add_argument("--llm-latency-ms", type=float, default=20.0)
    p.add_argument("--llm-jitter-ms", type=float, default=10.0)
    p.add_argument("--rss-slack-mib", type=float, default=8.0, help="allocator slack (RELIABILITY.md)")
    p.add_argument("--rss-per-record-kib", type=float, default=24.0,
                   help="per ended-agent record kept (measured: 17 KiB)")
    p.add_argument("--settle-timeout", type=float, default=15.0)
    p.add_argument("--drain-timeout", type=float, default=150.0)
    p.add_argument("--kernel-nofile", type=int, default=None,
                   help="start the kernel with this soft RLIMIT_NOFILE (e.g. 1024, a common default)")
    p.add_argument("--out", default=None, help="also write the markdown here")
    p.add_argument("--json", default=None, help="write the raw figures here")
    p.add_argument("--keep", action="store_true", help="keep the kernel's temp dir")
    args = p.parse_args(argv)
    if args.warmup is None:
        args.warmup = min(60.0, max(10.0, args.duration / 6))
    return args


def main(argv):
    args = parse_args(argv)
    os.environ["AGENTOS_KERNEL_BIN"] = args.kernel
    try:
        result = run(args)
    except Exception as exc:  # noqa: BLE001 - the run itself failed
        log(f"soak failed to run: {type(exc).__name__}: {exc}")
        return 2
    text = markdown(result)
    sys.stdout.write(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    if result["problems"]:
        log(f"{len(result['problems'])} promise(s) broken")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
