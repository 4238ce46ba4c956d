#!/usr/bin/env python3
"""Spawn benchmark: how long a trivial Python agent takes from start request
to "ended", through agentos_kernel (sandboxed with every isolation step and
cgroup limit, and unsandboxed) against bubblewrap and a plain subprocess.

    spawn_bench.py --socket PATH [--rounds 30] [--concurrent 100] [--concurrent-rounds 3]
                   [--python /usr/bin/python3] [--list-only] [--json FILE]

Single starts, interleaved (the order rotates every round so drift hits all
variants alike):
  kernel-sandboxed  SPAWN {"sandboxed": true, limits memory+pids+cpu} of a
                    script `import sys; sys.exit(0)`; wait on a pidfd of the
                    agent's pid until it exits, then LIST every 1 ms until the
                    kernel no longer lists it (--list-only: LIST every 1 ms
                    from the start). "(SPAWN reply)" rows: time to the reply,
                    which comes once execve succeeded
  kernel-plain      the same with "sandboxed": false (cgroup limits still on)
  bwrap             bwrap --unshare-all ... python3 -c 'import sys; sys.exit(0)'
                    run to completion (subprocess)
  plain             python3 -c 'import sys; sys.exit(0)' run to completion
Concurrent starts (rounds interleaved):
  kernel-sandboxed x N  N SPAWNs pipelined in one write; done when the kernel
                        no longer lists any of them (pidfds tell us when the
                        processes are gone; LIST confirms the kernel saw it)
  plain x N / bwrap x N Popen x N, then wait for all
Prints a Markdown table (median and p90 in ms, and the CPU each agent cost:
the kernel's own CPU plus its reaped children's for kernel variants, our
reaped children's otherwise; unlike wall time it does not depend on other
load on the machine), the ratios and the targets; --json FILE also writes the
raw samples.
"""

import argparse
import ctypes
import json
import os
import resource
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HEADER = struct.Struct("<IIBQ")
MAGIC = 0x41474E54
SPAWN, LIST, HELLO = 0x10, 0x12, 0xFE
MiB = 1 << 20
CODE = "import sys; sys.exit(0)"
LIMITS = {"memory": 64 * MiB, "max_pids": 16, "cpu_quota": 100000, "cpu_period": 100000}
POLL_S = 0.001


def bwrap_cmd(python):
    return ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", python, "-c", CODE]


class Conn:
    """A minimal operator connection (framing of DESIGN.md §2)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(path)

    def send(self, opcode, body=b""):
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.sock.sendall(HEADER.pack(MAGIC, 0, opcode, len(payload)) + payload)

    def send_many(self, frames):
        data = b"".join(HEADER.pack(MAGIC, 0, op, len(p)) + p
                        for op, p in ((op, json.dumps(b).encode()) for op, b in frames))
        self.sock.sendall(data)

    def recv(self):
        _, _, _, size = HEADER.unpack(self._exact(HEADER.size))
        return json.loads(self._exact(size)) if size else None

    def call(self, opcode, body=b""):
        self.send(opcode, body)
        return self.recv()

    def _exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("kernel closed the connection")
            buf += chunk
        return bytes(buf)

    def close(self):
        self.sock.close()


class Bench:
    def __init__(self, args):
        self.args = args
        self.conn = Conn(args.socket)
        creds = self.conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        self.kernel_pid = struct.unpack("3i", creds)[0]
        self.tmp = tempfile.mkdtemp(prefix="agentos-spawn-bench-")
        self.script = os.path.join(self.tmp, "exit0.py")
        with open(self.script, "w") as f:
            f.write(CODE + "\n")
        os.chmod(self.tmp, 0o755)
        os.chmod(self.script, 0o644)
        self.seq = 0
        self.samples = {}
        self.cpu = {}  # variant: [CPU seconds, starts]

    def close(self):
        self.conn.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def request(self, sandboxed):
        self.seq += 1
        return {"name": f"bench-{os.getpid()}-{self.seq}", "script": self.script,
                "python": self.args.python, "sandboxed": sandboxed, "limits": LIMITS}

    def running_ids(self):
        return {a["id"] for a in self.conn.call(LIST)}

    def kernel_cpu_s(self):
        """CPU of the kernel and of every child it has reaped (the agents'
        inits, which reaped the agents): utime+stime+cutime+cstime."""
        with open(f"/proc/{self.kernel_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    # -- single starts -------------------------------------------------------

    def kernel_once(self, sandboxed):
        """(SPAWN -> reply, SPAWN -> the kernel no longer lists the agent)."""
        t0 = time.perf_counter()
        reply = self.conn.call(SPAWN, self.request(sandboxed))
        t_reply = time.perf_counter()
        if reply.get("status") != "running":
            raise RuntimeError(f"SPAWN failed: {reply}")
        if not self.args.list_only:
            wait_pids_gone([reply["pid"]])
        while reply["id"] in self.running_ids():
            time.sleep(POLL_S)
        return t_reply - t0, time.perf_counter() - t0

    def subprocess_once(self, argv):
        t0 = time.perf_counter()
        rc = subprocess.run(argv, stdin=subprocess.DEVNULL).returncode
        elapsed = time.perf_counter() - t0
        if rc != 0:
            raise RuntimeError(f"{argv[0]} exited {rc}")
        return elapsed

    # -- concurrent starts -----------------------------------------------------

    def kernel_concurrent(self, n):
        t0 = time.perf_counter()
        self.conn.send_many([(SPAWN, self.request(True)) for _ in range(n)])
        replies = [self.conn.recv() for _ in range(n)]
        bad = [r for r in replies if r.get("status") != "running"]
        if bad:
            raise RuntimeError(f"{len(bad)} of {n} SPAWNs failed, e.g. {bad[0]}")
        wait_pids_gone([r["pid"] for r in replies])
        ids = {r["id"] for r in replies}
        while ids & self.running_ids():
            time.sleep(POLL_S)
        return time.perf_counter() - t0

    @staticmethod
    def subprocess_concurrent(argv, n):
        t0 = time.perf_counter()
        procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL) for _ in range(n)]
        codes = [p.wait() for p in procs]
        elapsed = time.perf_counter() - t0
        if any(codes):
            raise RuntimeError(f"{argv[0]}: exit codes {sorted(set(codes))}")
        return elapsed

    # -- driver ------------------------------------------------------------------

    def record(self, name, seconds):
        self.samples.setdefault(name, []).append(seconds * 1000.0)

    def measure(self, name, fn, starts):
        """Runs fn, records its wall time(s) and the CPU it cost: the kernel's
        (with reaped children) for kernel variants, our reaped children's
        (RUSAGE_CHILDREN: bwrap or python and what they reaped) otherwise.
        Timing noise from other load does not change CPU cost, wall time does."""
        kernel = name.startswith("kernel")
        cpu_now = self.kernel_cpu_s if kernel else children_cpu_s
        c0 = cpu_now()
        result = fn()
        if not kernel:
            reap_orphans()
        acc = self.cpu.setdefault(name, [0.0, 0])
        acc[0] += cpu_now() - c0
        acc[1] += starts
        if isinstance(result, tuple):  # kernel: the SPAWN reply time too
            self.record(f"{name} (SPAWN reply)", result[0])
            result = result[1]
        self.record(name, result)

    def run(self):
        a = self.args
        singles = [
            ("kernel-sandboxed", lambda: self.kernel_once(True)),
            ("kernel-plain", lambda: self.kernel_once(False)),
            ("bwrap", lambda: self.subprocess_once(bwrap_cmd(a.python))),
            ("plain", lambda: self.subprocess_once([a.python, "-c", CODE])),
        ]
        for name, fn in singles:  # warm-up: page cache, first-use allocations
            fn()
        for r in range(a.rounds):
            k = r % len(singles)
            for name, fn in singles[k:] + singles[:k]:
                self.measure(name, fn, 1)
        n = a.concurrent
        concurrent = [
            (f"kernel-sandboxed x{n}", lambda: self.kernel_concurrent(n)),
            (f"plain x{n}", lambda: self.subprocess_concurrent([a.python, "-c", CODE], n)),
            (f"bwrap x{n}", lambda: self.subprocess_concurrent(bwrap_cmd(a.python), n)),
        ]
        for r in range(a.concurrent_rounds):
            k = r % len(concurrent)
            for name, fn in concurrent[k:] + concurrent[:k]:
                self.measure(name, fn, n)


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def become_subreaper():
    """bwrap's outer process exits without reaping its pid-namespace child;
    as a subreaper we inherit and reap it, so its CPU shows in RUSAGE_CHILDREN."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_orphans():
    """Waits for and reaps every descendant left to us (outside the timing)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def wait_pids_gone(pids):
    """Returns once every pid has exited (pidfds in poll; no busy loop)."""
    poller, fds = select.poll(), []
    try:
        for pid in pids:
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue  # already exited and reaped
            fds.append(fd)
            poller.register(fd, select.POLLIN)
        left = len(fds)
        while left:
            events = poller.poll(60_000)
            if not events:
                raise TimeoutError(f"{left} agents still alive after 60 s")
            for fd, _ in events:
                poller.unregister(fd)
                left -= 1
    finally:
        for fd in fds:
            os.close(fd)


def percentile(values, p):
    s = sorted(values)
    k = (len(s) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def report(samples, cpu, n):
    med = {k: statistics.median(v) for k, v in samples.items()}
    cpu_ms = {k: 1000.0 * total / starts for k, (total, starts) in cpu.items()}
    lines = ["| variant | runs | median ms | p90 ms | min ms | CPU ms per agent (mean) |",
             "|---|---:|---:|---:|---:|---:|"]
    order = sorted(samples, key=lambda name: "(SPAWN reply)" in name)  # stable: main rows first
    for name in order:
        v = samples[name]
        c = f"{cpu_ms[name]:.1f}" if name in cpu_ms else "-"
        lines.append(f"| {name} | {len(v)} | {med[name]:.1f} | {percentile(v, 0.9):.1f} | {min(v):.1f} | {c} |")
    ratios = [
        ("kernel-sandboxed / bwrap (median)", med["kernel-sandboxed"] / med["bwrap"]),
        ("kernel-sandboxed / plain (median)", med["kernel-sandboxed"] / med["plain"]),
        ("kernel-plain / plain (median)", med["kernel-plain"] / med["plain"]),
        (f"kernel-sandboxed x{n} / plain x{n} (median)", med[f"kernel-sandboxed x{n}"] / med[f"plain x{n}"]),
        (f"kernel-sandboxed x{n} / bwrap x{n} (median)", med[f"kernel-sandboxed x{n}"] / med[f"bwrap x{n}"]),
        ("CPU per agent: kernel-sandboxed / bwrap", cpu_ms["kernel-sandboxed"] / cpu_ms["bwrap"]),
        ("CPU per agent: kernel-sandboxed / plain", cpu_ms["kernel-sandboxed"] / cpu_ms["plain"]),
        (f"CPU per agent: kernel-sandboxed x{n} / plain x{n}", cpu_ms[f"kernel-sandboxed x{n}"] / cpu_ms[f"plain x{n}"]),
    ]
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in ratios]
    t1 = ratios[0][1]
    t2 = ratios[3][1]
    lines += ["",
              f"target: sandboxed spawn-to-exit <= 1.0x bubblewrap: {t1:.2f}x -> {'MET' if t1 <= 1.0 else 'NOT MET'}",
              f"target: {n} concurrent sandboxed <= 2.0x {n} plain: {t2:.2f}x -> {'MET' if t2 <= 2.0 else 'NOT MET'}"]
    return "\n".join(lines), {"median_ms": med, "cpu_ms_per_agent": cpu_ms, "ratios": dict(ratios),
                              "targets_met": [t1 <= 1.0, t2 <= 2.0]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--socket", required=True, help="the kernel's operator socket")
    p.add_argument("--rounds", type=int, default=30, help="interleaved rounds of single starts")
    p.add_argument("--concurrent", type=int, default=100, help="agents per concurrent batch")
    p.add_argument("--concurrent-rounds", type=int, default=3)
    p.add_argument("--python", default="/usr/bin/python3", help="interpreter for every variant")
    p.add_argument("--list-only", action="store_true",
                   help="single starts: poll LIST every 1 ms from SPAWN on, instead of waiting "
                        "on the agent's pidfd first (the polling then competes with the agent)")
    p.add_argument("--json", help="write raw samples and the summary here")
    a = p.parse_args()
    if shutil.which("bwrap") is None:
        sys.exit("bwrap not found: apt-get install bubblewrap")

    become_subreaper()
    bench = Bench(a)
    try:
        features = bench.conn.call(HELLO).get("features", [])
        if "spawn" not in features:
            sys.exit(f"the kernel on {a.socket} does not offer spawn (features: {features})")
        bench.run()
    finally:
        bench.close()
    table, summary = report(bench.samples, bench.cpu, a.concurrent)
    print(table)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"samples_ms": bench.samples, **summary, "limits": LIMITS,
                       "python": a.python, "rounds": a.rounds,
                       "concurrent": a.concurrent, "concurrent_rounds": a.concurrent_rounds}, f, indent=1)


if __name__ == "__main__":
    main()
