#!/usr/bin/python3
"""LLM service benchmark: agentos_kernel's THINK path against direct HTTP
calls to the same fake provider (tests/fakes/fake_llm.py), and the fairness
of the kernel's scheduler between a greedy and polite clients.

    llm_bench.py --kernel BIN [--fake tests/fakes/fake_llm.py] [--calls 500]
                 [--concurrency 8] [--tput-seconds 2.5] [--tput-rounds 3] [--fair-seconds 20]
                 [--solo-seconds 5] [--anticipation-ms MS] [--no-anticipation-contrast]
                 [--skip-overhead] [--skip-fairness] [--json FILE]

One fake server for the whole run (knobs changed through POST /_control);
a fresh kernel per configuration, on a private temp dir, Gemini provider
(GEMINI_API_KEY=fake, GEMINI_BASE_URL=the fake).

Part 1, overhead (fake latency 0, kernel --llm-max-inflight = concurrency):
  latency     1 client, sequential: --calls calls after --warmup, direct
              (http.client keep-alive POST of the body the kernel sends) and
              through the kernel (THINK 0x01 on one operator connection).
  throughput  --concurrency client processes, each one call at a time for
              --tput-seconds (after 0.5 s warm-up), direct vs kernel,
              alternating for --tput-rounds rounds; medians. Also the
              kernel's CPU time (/proc/PID/stat) per THINK.
Part 2, fairness (fake latency 100 ms + uniform 0..10 ms jitter, kernel
--llm-max-inflight 4, so capacity is ~4/0.105 s):
  solo        one polite client alone (its uncontended latency)
  fair, fair-noant, fifo
              one greedy client (64 THINKs pipelined on one connection,
              refilled as replies arrive) and 3 polite clients (one THINK at
              a time each), --fair-seconds, under --llm-scheduler fair (with
              the kernel's default anticipation, or --anticipation-ms),
              fair with anticipation off (AGENTOS_LLM_ANTICIPATION_MS=0;
              --no-anticipation-contrast skips it; a kernel that predates
              anticipation ignores it) and fifo. The kernel's LLM stats
              (HELLO) after each run give the holds granted and used.
"Agents" are operator connections: the kernel makes each connection its own
scheduling flow, exactly as it does for each spawned agent.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MAGIC = 0x41474E54
HEADER = struct.Struct("<IIBQ")
OP_THINK = 0x01
OP_HELLO = 0xFE
MODEL = "gemini-2.0-flash"
PROMPT = "Say something short."
# What the kernel's Gemini provider sends for a plain-text THINK of PROMPT.
GEMINI_BODY = json.dumps({"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}).encode()
GEMINI_PATH = f"/v1beta/models/{MODEL}:generateContent"
LLM_ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL",
                "GEMINI_BASE_URL", "AGENTOS_LLM_PROVIDER", "AGENTOS_LLM_BASE_URL",
                "AGENTOS_LLM_MODEL", "AGENTOS_LLM_SCHEDULER", "AGENTOS_LLM_ANTICIPATION_MS",
                "AGENTOS_SOCKET")
WARMUP_S = 0.5  # throughput phases: calls finished before this are not counted


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


# ---- the two kinds of client --------------------------------------------------------

class ThinkConn:
    """One operator connection to the kernel speaking THINK frames."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(path)
        self.buf = bytearray()

    def send(self, prompt=PROMPT):
        data = prompt.encode()
        self.sock.sendall(HEADER.pack(MAGIC, 0, OP_THINK, len(data)) + data)

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("kernel closed the connection")
            self.buf += chunk

    def recv(self):
        """The next reply, parsed; raises if it is not a THINK reply."""
        self._fill(HEADER.size)
        magic, _, opcode, size = HEADER.unpack_from(self.buf)
        self._fill(HEADER.size + size)
        payload = bytes(self.buf[HEADER.size:HEADER.size + size])
        del self.buf[:HEADER.size + size]
        if magic != MAGIC or opcode != OP_THINK:
            raise ValueError(f"unexpected frame magic={magic:#x} opcode={opcode:#x}")
        return json.loads(payload)

    def think(self):
        self.send()
        return self.recv()

    def hello(self):
        self.sock.sendall(HEADER.pack(MAGIC, 0, OP_HELLO, 0))
        self._fill(HEADER.size)
        _, _, opcode, size = HEADER.unpack_from(self.buf)
        self._fill(HEADER.size + size)
        payload = bytes(self.buf[HEADER.size:HEADER.size + size])
        del self.buf[:HEADER.size + size]
        return json.loads(payload)

    def close(self):
        self.sock.close()


class DirectConn:
    """A keep-alive HTTP connection to the fake, POSTing the kernel's body."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Content-Type": "application/json", "x-goog-api-key": "fake"}

    def think(self):
        self.conn.request("POST", GEMINI_PATH, GEMINI_BODY, self.headers)
        resp = self.conn.getresponse()
        body = json.loads(resp.read())
        if resp.status != 200:
            return {"error": f"HTTP {resp.status}: {body}"}
        return {"error": "", "content": body["candidates"][0]["content"]["parts"][0]["text"]}

    def close(self):
        self.conn.close()


def check(reply):
    if reply.get("error"):
        raise RuntimeError(f"THINK failed: {reply['error']}")
    return reply


# ---- processes: the fake and the kernel ----------------------------------------------

class Fake:
    def __init__(self, script, python):
        self.proc = subprocess.Popen([python, str(script), "--port", "0", "--exit-on-stdin-eof"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("fake_llm.py exited before printing its port")
        self.port = int(line)

    def control(self, **knobs):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("POST", "/_control", json.dumps(knobs).encode(), {"Content-Type": "application/json"})
        resp = c.getresponse()
        body = resp.read()
        c.close()
        if resp.status != 200:
            raise RuntimeError(f"/_control failed: {body!r}")

    def stop(self):
        self.proc.stdin.close()  # --exit-on-stdin-eof
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Kernel:
    def __init__(self, binary, fake_port, args, extra_env=None):
        self.tmp = Path(tempfile.mkdtemp(prefix="agentos-llm-"))
        self.socket = str(self.tmp / "k.sock")
        env = {k: v for k, v in os.environ.items() if k not in LLM_ENV_VARS}
        env.update(GEMINI_API_KEY="fake", GEMINI_BASE_URL=f"http://127.0.0.1:{fake_port}")
        env.update(extra_env or {})
        self.log = open(self.tmp / "kernel.log", "wb")
        self.proc = subprocess.Popen(
            [str(binary), "--socket", self.socket, "--state-dir", str(self.tmp / "state"),
             "--runtime-dir", str(self.tmp / "run"), "--log-level", "warn", *args],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("kernel did not start: " + self.log_tail())
            time.sleep(0.02)

    def llm_stats(self):
        conn = ThinkConn(self.socket)
        try:
            return conn.hello().get("llm", {})
        finally:
            conn.close()

    def log_tail(self):
        return (self.tmp / "kernel.log").read_text(errors="replace")[-2000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- part 1: overhead -----------------------------------------------------------------

def sequential_latency(conn, calls, warmup):
    for _ in range(warmup):
        check(conn.think())
    lat = []
    for _ in range(calls):
        t = time.perf_counter()
        check(conn.think())
        lat.append((time.perf_counter() - t) * 1e3)
    return lat


def tput_worker(kind, target, seconds, out):
    """One client process: calls one at a time; sends (count, error) to out."""
    try:
        conn = ThinkConn(target) if kind == "kernel" else DirectConn(target)
        start = time.perf_counter()
        begin, end = start + WARMUP_S, start + WARMUP_S + seconds
        n = 0
        while True:
            check(conn.think())
            now = time.perf_counter()
            if now >= end:
                break
            n += now >= begin
        conn.close()
        out.send((n, None))
    except Exception as e:  # reported by the parent, which fails the run
        out.send((0, repr(e)))


def throughput(kind, target, clients, seconds):
    ctx = multiprocessing.get_context("fork")
    pipes, procs = [], []
    for _ in range(clients):
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=tput_worker, args=(kind, target, seconds, w))
        p.start()
        pipes.append(r)
        procs.append(p)
    results = [r.recv() for r in pipes]
    for p in procs:
        p.join()
    errors = [e for _, e in results if e]
    if errors:
        raise RuntimeError(f"{kind} throughput client failed: {errors[0]}")
    return sum(n for n, _ in results) / seconds


def part_overhead(args, fake):
    fake.control(reset=True, latency_ms=0, jitter_ms=0)
    k = Kernel(args.kernel, fake.port, ["--llm-max-inflight", str(args.concurrency)])
    try:
        direct, kern = DirectConn(fake.port), ThinkConn(k.socket)
        # Interleave halves so drift hits both alike.
        half = args.calls // 2
        d = sequential_latency(direct, half, args.warmup)
        kl = sequential_latency(kern, half, args.warmup)
        d += sequential_latency(direct, args.calls - half, 0)
        kl += sequential_latency(kern, args.calls - half, 0)
        direct.close()
        kern.close()
        # Alternating rounds, medians: other load on the machine drifts.
        rps_d, rps_k, cpu_us = [], [], []
        for _ in range(args.tput_rounds):
            rps_d.append(throughput("direct", fake.port, args.concurrency, args.tput_seconds))
            before = cpu_seconds(k.proc.pid)
            rps_k.append(throughput("kernel", k.socket, args.concurrency, args.tput_seconds))
            # Per counted call; warm-up calls make this a slight overestimate.
            cpu_us.append((cpu_seconds(k.proc.pid) - before) * 1e6 / (rps_k[-1] * args.tput_seconds))
    finally:
        k.stop()
    return {"direct_ms": d, "kernel_ms": kl, "rps_direct_rounds": rps_d, "rps_kernel_rounds": rps_k,
            "rps_direct": statistics.median(rps_d), "rps_kernel": statistics.median(rps_k),
            "kernel_cpu_us_per_think": statistics.median(cpu_us)}


def cpu_seconds(pid):
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- part 2: fairness -------------------------------------------------------------------

class Recorder:
    """Per-client samples (completion time, latency ms, kernel queue_ms)."""

    def __init__(self):
        self.samples, self.errors = [], []

    def add(self, done, latency_ms, reply):
        if reply.get("error"):
            self.errors.append(reply["error"])
        else:
            self.samples.append((done, latency_ms, reply.get("queue_ms")))


def polite_client(path, rec, stop_at):
    conn = ThinkConn(path)
    while time.perf_counter() < stop_at:
        t = time.perf_counter()
        reply = conn.think()
        now = time.perf_counter()
        rec.add(now, (now - t) * 1e3, reply)
    conn.close()


def greedy_client(path, rec, stop_at, depth):
    conn = ThinkConn(path)
    sent = []  # send times, oldest first: replies on a connection come in order
    for _ in range(depth):
        sent.append(time.perf_counter())
        conn.send()
    head = 0
    while time.perf_counter() < stop_at:
        reply = conn.recv()
        now = time.perf_counter()
        rec.add(now, (now - sent[head]) * 1e3, reply)
        head += 1
        sent.append(time.perf_counter())
        conn.send()
    conn.close()  # the kernel cancels what is still queued or in flight


def run_clients(path, polite, greedy_depth, seconds):
    """Returns ([greedy recorder or None] + polite recorders, t_begin, t_end)."""
    start = time.perf_counter()
    stop_at = start + seconds
    recs, threads = [], []
    if greedy_depth:
        recs.append(Recorder())
        threads.append(threading.Thread(target=greedy_client, args=(path, recs[-1], stop_at, greedy_depth)))
    for _ in range(polite):
        recs.append(Recorder())
        threads.append(threading.Thread(target=polite_client, args=(path, recs[-1], stop_at)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The first second is the ramp-up (queues filling); not counted.
    return recs, start + 1.0, stop_at


def summarize(rec, begin, end):
    s = [x for x in rec.samples if begin <= x[0] <= end]
    lat = [x[1] for x in s]
    queue = [x[2] for x in s if x[2] is not None]
    return {"n": len(s), "rps": len(s) / (end - begin),
            "p50": pct(lat, 50) if lat else float("nan"),
            "p95": pct(lat, 95) if lat else float("nan"),
            "queue_p50": statistics.median(queue) if queue else float("nan"),
            "errors": len(rec.errors), "first_error": rec.errors[0] if rec.errors else ""}


def jain(xs):
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs)) if any(xs) else float("nan")


# name -> (--llm-scheduler, extra kernel environment)
def variants(args):
    fair_env = {} if args.anticipation_ms is None else {"AGENTOS_LLM_ANTICIPATION_MS": str(args.anticipation_ms)}
    v = {"fair": ("fair", fair_env)}
    if not args.no_anticipation_contrast:
        v["fair-noant"] = ("fair", {"AGENTOS_LLM_ANTICIPATION_MS": "0"})
    v["fifo"] = ("fifo", {})
    return v


def fairness_run(args, fake, variant, polite, greedy_depth, seconds):
    """Summaries of the clients (greedy first) and the kernel's LLM stats."""
    scheduler, env = variants(args)[variant]
    k = Kernel(args.kernel, fake.port, ["--llm-max-inflight", str(args.max_inflight),
                                        "--llm-scheduler", scheduler], env)
    try:
        recs, begin, end = run_clients(k.socket, polite, greedy_depth, seconds)
        stats = k.llm_stats()
    finally:
        k.stop()
    return [summarize(r, begin, end) for r in recs], stats


def part_fairness(args, fake):
    fake.control(reset=True, latency_ms=args.latency_ms, jitter_ms=args.jitter_ms)
    # Solo under the variant with the fewest knobs: one flow never contends.
    rows, _ = fairness_run(args, fake, "fair", 1, 0, args.solo_seconds)
    out = {"solo": rows[0]}
    for name in variants(args):
        rows, stats = fairness_run(args, fake, name, args.polite, args.greedy_depth, args.fair_seconds)
        out[name] = {"greedy": rows[0], "polite": rows[1:], "kernel_llm": stats}
    return out


# ---- report ----------------------------------------------------------------------------

def report_overhead(r):
    d50, d99 = pct(r["direct_ms"], 50), pct(r["direct_ms"], 99)
    k50, k99 = pct(r["kernel_ms"], 50), pct(r["kernel_ms"], 99)
    ratio = r["rps_kernel"] / r["rps_direct"]
    print("### Overhead (fake latency 0)\n")
    print("| metric | direct | kernel | added / ratio |")
    print("|---|---|---|---|")
    print(f"| latency p50 (ms) | {d50:.3f} | {k50:.3f} | +{k50 - d50:.3f} ms |")
    print(f"| latency p99 (ms) | {d99:.3f} | {k99:.3f} | +{k99 - d99:.3f} ms |")
    print(f"| throughput, {ARGS.concurrency} clients (req/s, median of {ARGS.tput_rounds}) | "
          f"{r['rps_direct']:.0f} | {r['rps_kernel']:.0f} | {ratio:.2f}x |")
    print(f"\nrounds direct: {', '.join(f'{x:.0f}' for x in r['rps_direct_rounds'])}; "
          f"kernel: {', '.join(f'{x:.0f}' for x in r['rps_kernel_rounds'])}; "
          f"kernel CPU per THINK at {ARGS.concurrency} clients: {r['kernel_cpu_us_per_think']:.0f} us")
    print()
    return k50 - d50, ratio


def report_fairness(f, fair_share):
    solo = f["solo"]
    print(f"### Fairness (fake 100 ms + 0..10 ms jitter, --llm-max-inflight {ARGS.max_inflight}, "
          f"{ARGS.fair_seconds:g} s, first second not counted)\n")
    print("| scheduler | client | req/s | share of fair (10/s) | p50 ms | p95 ms | kernel queue_ms p50 | errors |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| (alone) | polite | {solo['rps']:.1f} | {solo['rps'] / fair_share:.2f} | {solo['p50']:.1f} | "
          f"{solo['p95']:.1f} | {solo['queue_p50']:.1f} | {solo['errors']} |")
    summary = {}
    scheds = [name for name in f if name != "solo"]
    for sched in scheds:
        rows = [("greedy", f[sched]["greedy"])] + [(f"polite {i + 1}", p) for i, p in enumerate(f[sched]["polite"])]
        for name, row in rows:
            print(f"| {sched} | {name} | {row['rps']:.1f} | {row['rps'] / fair_share:.2f} | {row['p50']:.1f} | "
                  f"{row['p95']:.1f} | {row['queue_p50']:.1f} | {row['errors']} |")
        polite = f[sched]["polite"]
        shares = [p["rps"] / fair_share for p in polite]
        # Over all 4 clients, against the max-min fair allocation: a polite
        # client can use at most what it gets alone; the greedy one the rest.
        cap = min(fair_share, solo["rps"])
        total = sum(r["rps"] for _, r in rows)
        alloc = [total - cap * len(polite)] + [cap] * len(polite)
        all4 = jain([r["rps"] / a for (_, r), a in zip(rows, alloc)])
        worst_p95 = max(p["p95"] for p in polite)
        summary[sched] = {"jain_polite": jain(shares), "jain_all": all4,
                          "polite_share": sum(shares) / len(shares), "worst_p95": worst_p95,
                          "p95_over_solo_p50": worst_p95 / solo["p50"],
                          "p95_over_solo_p95": worst_p95 / solo["p95"], "total_rps": total}
    print()
    print("| scheduler | total req/s | mean polite share of fair | Jain (3 polite, x=rps/10) | "
          "Jain (all 4, vs max-min fair) | worst polite p95 / solo p50 | / solo p95 |")
    print("|---|---|---|---|---|---|---|")
    for sched, s in summary.items():
        print(f"| {sched} | {s['total_rps']:.1f} | {s['polite_share']:.2f} | {s['jain_polite']:.3f} | "
              f"{s['jain_all']:.3f} | {s['p95_over_solo_p50']:.2f}x | {s['p95_over_solo_p95']:.2f}x |")
    print()
    for sched in scheds:
        llm = f[sched].get("kernel_llm", {})
        print(f"kernel {sched}: anticipation_ms {llm.get('anticipation_ms', 'n/a')}, holds granted "
              f"{llm.get('anticipated', 'n/a')}, used {llm.get('anticipation_hits', 'n/a')}, "
              f"completed {llm.get('completed', 'n/a')}")
    print()
    return summary


def main(argv):
    global ARGS
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kernel", required=True, type=Path)
    p.add_argument("--fake", type=Path, default=here.parent / "tests" / "fakes" / "fake_llm.py")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--tput-seconds", type=float, default=2.5)
    p.add_argument("--tput-rounds", type=int, default=3)
    p.add_argument("--latency-ms", type=float, default=100)
    p.add_argument("--jitter-ms", type=float, default=10)
    p.add_argument("--max-inflight", type=int, default=4)
    p.add_argument("--greedy-depth", type=int, default=64)
    p.add_argument("--polite", type=int, default=3)
    p.add_argument("--fair-seconds", type=float, default=20)
    p.add_argument("--solo-seconds", type=float, default=5)
    p.add_argument("--anticipation-ms", type=float, default=None,
                   help="AGENTOS_LLM_ANTICIPATION_MS for the 'fair' runs (default: the kernel's)")
    p.add_argument("--no-anticipation-contrast", action="store_true",
                   help="skip the fair run with anticipation off")
    p.add_argument("--skip-overhead", action="store_true")
    p.add_argument("--skip-fairness", action="store_true")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    ARGS = args = p.parse_args(argv)
    fake = Fake(args.fake, args.python)
    raw = {}
    try:
        if not args.skip_overhead:
            raw["overhead"] = part_overhead(args, fake)
        if not args.skip_fairness:
            raw["fairness"] = part_fairness(args, fake)
    finally:
        fake.stop()
    ok = True
    if "overhead" in raw:
        added, ratio = report_overhead(raw["overhead"])
        met = added <= 0.5
        print(f"target added p50 latency <= 0.5 ms: {added:.3f} ms -> {'MET' if met else 'NOT MET'}")
        met2 = ratio >= 0.8
        print(f"target throughput >= 0.8x direct at {args.concurrency} clients: {ratio:.2f}x -> "
              f"{'MET' if met2 else 'NOT MET'}")
        ok = ok and met and met2
    if "fairness" in raw:
        capacity = args.max_inflight / (args.latency_ms / 1000.0)
        s = report_fairness(raw["fairness"], capacity / (args.polite + 1))
        met = s["fair"]["p95_over_solo_p50"] <= 2.0
        print(f"target polite p95 <= 2x uncontended (p50) under fair: "
              f"{s['fair']['p95_over_solo_p50']:.2f}x -> {'MET' if met else 'NOT MET'} "
              f"(fifo for contrast: {s['fifo']['p95_over_solo_p50']:.2f}x)")
        raw["fairness_summary"] = s
        ok = ok and met
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
