"""The `agentos` command-line client against a real kernel.

Runs the binary ($AGENTOS_CLI_BIN, else <repo>/build/agentos) as a user
would and checks what it prints and its exit code: ps, spawn (with units),
kill, logs, top, think, info, wait, pause, resume, events, --json, the
connection error, usage errors (exit 2) and kernel errors (exit 1).

Commands built on syscalls the kernel under test does not answer yet (LOGS,
STATS, PAUSE, RESUME, WAIT, EVENTS: detected by an "unknown opcode" reply)
are skipped with a message saying so.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from kernel_harness import REPO_ROOT, kernel_env, wait_for

LIST, LOGS, STATS, PAUSE, RESUME, WAIT, EVENTS, HELLO = 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0xFE
OP_NAMES = {LOGS: "LOGS", STATS: "STATS", PAUSE: "PAUSE", RESUME: "RESUME", WAIT: "WAIT", EVENTS: "EVENTS"}
MiB = 1 << 20
PROBES = REPO_ROOT / "tests" / "probes"
SLEEPER = PROBES / "sleeper.py"
EXIT_WITH = PROBES / "exit_with.py"
CLI_TIMEOUT_S = 60.0      # safety net for one CLI run; never a measured bound
AGENT_TIMEOUT_S = 30.0

ROOT_REASON = "spawning agents needs root (namespaces, per-agent uids, cgroups)"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason=ROOT_REASON)


# == helpers ===================================================================


def cli_binary():
    path = Path(os.environ.get("AGENTOS_CLI_BIN") or REPO_ROOT / "build" / "agentos")
    if not path.is_file():
        pytest.fail(f"CLI binary {path} not found: build it with `cmake --build <build dir> --target agentos` "
                    "or set AGENTOS_CLI_BIN")
    return path


def run(*args, socket_path=None, env=None, cwd=None, input=None, timeout=CLI_TIMEOUT_S):  # noqa: A002
    """Runs `agentos [--socket S] args...`; returns the CompletedProcess (text)."""
    cmd = [str(cli_binary())]
    if socket_path is not None:
        cmd += ["--socket", str(socket_path)]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env=kernel_env(env), cwd=cwd, input=input if input is not None else "")


def ok(k, *args, **kw):
    """Runs a command against kernel k that must succeed; returns its stdout."""
    r = run(*args, socket_path=k.socket_path, **kw)
    assert r.returncode == 0, f"agentos {' '.join(map(str, args))}: exit {r.returncode}\n{r.stderr}{k.log_tail()}"
    return r.stdout


def one_line_error(r, code=1):
    """Asserts exit `code` and a single 'agentos: ...' line on stderr; returns it."""
    assert r.returncode == code, f"expected exit {code}, got {r.returncode}: {r.stdout!r} {r.stderr!r}"
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentos: "), r.stderr
    return lines[0]


def call(k, opcode, body=b""):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    with k.raw() as conn:
        frame = conn.call(opcode, payload)
    return json.loads(frame.payload)


_support = {}


def require_op(k, opcode):
    """Skips the test when the kernel answers `opcode` with "unknown opcode"."""
    key = (k.pid, opcode)
    if key not in _support:
        # An unknown field is refused at once by a kernel that has the syscall.
        reply = call(k, opcode, {"cli_probe_unknown_field": True})
        error = reply.get("error", "") if isinstance(reply, dict) else ""
        _support[key] = not (isinstance(error, str) and error.startswith("unknown opcode"))
    if not _support[key]:
        pytest.skip(f"the kernel under test does not answer {OP_NAMES[opcode]} yet (unknown opcode)")


def list_all(k):
    return call(k, LIST, {"all": True})


def entry(k, name):
    """The newest LIST {"all": true} entry of that name."""
    found = [a for a in list_all(k) if a["name"] == name]
    assert found, f"no agent {name!r} in LIST"
    return max(found, key=lambda a: a["id"])


def wait_ended(k, name):
    return wait_for(lambda: (lambda e: e if not e["running"] else None)(entry(k, name)),
                    AGENT_TIMEOUT_S, interval=0.05, what=f"agent {name} to end")


def log_text(k, name, agent_id):
    try:
        return (Path(k.state_dir) / "logs" / f"{name}-{agent_id}.log").read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_log(k, name, needle):
    e = entry(k, name)
    return wait_for(lambda: needle in log_text(k, name, e["id"]), AGENT_TIMEOUT_S,
                    what=f"{needle!r} in the log of {name}")


def spawn(k, name, script=SLEEPER, *options):
    out = ok(k, "spawn", name, script, *options)
    assert re.fullmatch(rf"{re.escape(name)} started: id \d+, pid \d+\n", out), out
    return entry(k, name)


def kill_quietly(k, name):
    run("kill", "--timeout", "0", name, socket_path=k.socket_path)


def table_rows(text):
    """The data rows of a table printed by ps/top, as lists of cells split on 3+ blanks."""
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ID"))
    return [re.split(r"\s{3,}", line.strip()) for line in lines[header + 1:] if line.strip()]


class LineReader:
    """Reads a Popen's stdout lines on a thread, so a test can wait for one
    with a deadline instead of blocking for ever."""

    def __init__(self, proc):
        self.lines = []
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream):
        for line in stream:
            with self._cv:
                self.lines.append(line)
                self._cv.notify_all()

    def wait_for(self, needle, timeout=AGENT_TIMEOUT_S):
        with self._cv:
            if not self._cv.wait_for(lambda: any(needle in line for line in self.lines), timeout):
                raise TimeoutError(f"{needle!r} not printed within {timeout} s; got {self.lines}")

    def text(self):
        self._thread.join(timeout=AGENT_TIMEOUT_S)
        return "".join(self.lines)


# == no kernel needed: usage, help, connection errors ===========================


def test_connection_error_names_the_socket_and_the_fix(tmp_path):
    missing = tmp_path / "nobody.sock"
    r = run("ps", socket_path=missing)
    line = one_line_error(r)
    assert line == f"agentos: cannot connect to {missing}: is agentos_kernel running?"
    assert r.stdout == ""


def test_socket_defaults_to_agentos_socket_env(tmp_path):
    missing = tmp_path / "from-env.sock"
    line = one_line_error(run("info", env={"AGENTOS_SOCKET": str(missing)}))
    assert str(missing) in line


def test_socket_that_closes_without_replying_is_an_error(tmp_path):
    path = str(tmp_path / "mute.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def accept_and_close():
        conn, _ = srv.accept()
        conn.recv(64)
        conn.close()

    t = threading.Thread(target=accept_and_close, daemon=True)
    t.start()
    try:
        line = one_line_error(run("ps", socket_path=path))
    finally:
        t.join(timeout=10)
        srv.close()
    assert "closed the connection" in line, line


@pytest.mark.parametrize("args, needle", [
    ([], None),
    (["bogus"], "unknown command 'bogus'"),
    (["spawn", "only-a-name"], "script"),
    (["spawn", "a", "a.py", "--memory", "12Q"], "invalid size '12Q'"),
    (["spawn", "a", "a.py", "--memory", "0"], "greater than zero"),
    (["spawn", "a", "a.py", "--cpu", "0%"], "minimum is 1%"),
    (["spawn", "a", "a.py", "--cpu", "lots"], "invalid CPU share"),
    (["spawn", "a", "a.py", "--restart", "sometimes"], "sometimes"),
    (["spawn", "a", "a.py", "--env", "NOEQUALS"], "NAME=VALUE"),
    (["spawn", "a", "a.py", "--pids", "0"], "pids"),
    (["logs"], "name"),
    (["logs", "a", "--tail", "20000"], "tail"),
    (["kill"], "names"),
    (["wait"], "name"),
    (["top", "-n", "0"], "iterations"),
    (["ps", "--no-such-flag"], "no-such-flag"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_usage_errors_exit_2_before_contacting_the_kernel(tmp_path, args, needle):
    # The socket does not exist: a usage error must be found first.
    r = run(*args, socket_path=tmp_path / "none.sock")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "cannot connect" not in r.stderr, r.stderr
    if needle is not None:
        assert r.stderr.startswith("agentos: ") and len(r.stderr.splitlines()) == 1, r.stderr
        assert needle in r.stderr, r.stderr


def test_help_lists_every_command():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    for cmd in ("ps", "spawn", "kill", "logs", "top", "think", "info", "wait", "pause", "resume", "events"):
        assert re.search(rf"^\s+{cmd}\s", r.stdout, re.M), f"{cmd} missing from --help:\n{r.stdout}"
    r = run("spawn", "--help")
    assert r.returncode == 0 and "--memory" in r.stdout and "--restart" in r.stdout, r.stdout


# == info, ps, --json ==========================================================


def test_version_matches_the_kernel(kernel):
    hello = call(kernel, HELLO)
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == hello["kernel"], (r.stdout, hello)


def test_info(kernel):
    hello = call(kernel, HELLO)
    out = ok(kernel, "info")
    assert f"Socket:      {kernel.socket_path}\n" in out, out
    assert f"agentos_kernel {hello['kernel']}, protocol {hello['protocol']}" in out, out
    assert "Caller:      operator" in out, out
    assert "Features:    " + " ".join(hello["features"]) + "\n" in out, out
    assert "LLM:" in out and "Agents:" in out, out
    data = json.loads(ok(kernel, "--json", "info"))
    assert data["socket"] == str(kernel.socket_path) and data["hello"]["protocol"] == hello["protocol"], data
    assert set(data["hello"]["features"]) == set(hello["features"]), data


def test_info_through_agentos_socket_env(kernel):
    r = run("info", env={"AGENTOS_SOCKET": str(kernel.socket_path)})
    assert r.returncode == 0 and str(kernel.socket_path) in r.stdout, r.stderr


def test_json_flag_may_follow_the_command(kernel):
    assert isinstance(json.loads(ok(kernel, "ps", "--json")), list)


@needs_root
def test_ps_table_and_json(kernel):
    a = spawn(kernel, "cli-ps", SLEEPER, "--memory", "64M")
    try:
        wait_log(kernel, "cli-ps", "ready")
        rows = {r[1]: r for r in table_rows(ok(kernel, "ps"))}
        header = ok(kernel, "ps").splitlines()[0].split()
        assert header[:5] == ["ID", "NAME", "PID", "STATE", "STATUS"], header
        assert header[-2:] == ["RESTARTS", "LLM-TOKENS"] and "CPU%" in header, header
        row = rows["cli-ps"]
        assert row[0] == str(a["id"]) and row[2] == str(a["pid"]), row
        assert row[3:5] == ["RUNNING", "running"], row
        assert row[7].endswith(" / 64MiB"), row

        listed = json.loads(ok(kernel, "--json", "ps"))
        raw = call(kernel, LIST)
        assert [e["id"] for e in listed] == [e["id"] for e in raw]
        mine = next(e for e in listed if e["name"] == "cli-ps")
        assert set(mine) == set(next(e for e in raw if e["name"] == "cli-ps")), "--json must be LIST as is"
        assert mine["limits"]["memory"] == 64 * MiB, mine
    finally:
        kill_quietly(kernel, "cli-ps")


@needs_root
def test_ps_all_shows_how_agents_ended(kernel):
    spawn(kernel, "cli-exit3", EXIT_WITH, "--", "code", "3")
    ended = wait_ended(kernel, "cli-exit3")
    assert "cli-exit3" not in ok(kernel, "ps"), "plain ps lists running agents only"
    row = next(r for r in table_rows(ok(kernel, "ps", "-a")) if r[1] == "cli-exit3" and r[0] == str(ended["id"]))
    assert row[2] == "-" and row[3] == ended["state"] and row[4] == "exited (3)", row
    assert any(e["name"] == "cli-exit3" for e in json.loads(ok(kernel, "--json", "ps", "-a")))


@needs_root
def test_ps_cpu_column_comes_from_stats(kernel):
    require_op(kernel, STATS)
    spawn(kernel, "cli-cpu")
    try:
        def cpu_cell():
            row = next(r for r in table_rows(ok(kernel, "ps")) if r[1] == "cli-cpu")
            return row[6] if row[6] != "-" else None
        cell = wait_for(cpu_cell, AGENT_TIMEOUT_S, interval=0.2, what="a CPU% value for cli-cpu")
        assert re.fullmatch(r"\d+\.\d%", cell), cell
    finally:
        kill_quietly(kernel, "cli-cpu")


# == spawn =====================================================================


@needs_root
@pytest.mark.parametrize("options, memory, cpu_quota, max_pids", [
    (["--memory", "64M", "--cpu", "50%", "--pids", "16"], 64 * MiB, 50000, 16),
    (["--memory", "1G", "--cpu", "0.5"], 1 << 30, 50000, None),
    (["--memory", "67108864", "--cpu", "150%"], 64 * MiB, 150000, None),
    (["--memory", "12.5m", "--cpu", "1.5"], int(12.5 * MiB), 150000, None),
    (["-m", "32MiB", "-c", "25%", "-p", "8"], 32 * MiB, 25000, 8),
], ids=["64M-50%", "1G-0.5", "bytes-150%", "12.5m-1.5", "short-flags"])
def test_spawn_units_reach_the_kernel(kernel, options, memory, cpu_quota, max_pids):
    name = "cli-units"
    a = spawn(kernel, name, SLEEPER, *options)
    try:
        limits = a["limits"]
        assert (limits["memory"], limits["cpu_quota"]) == (memory, cpu_quota), limits
        if max_pids is not None:
            assert limits["max_pids"] == max_pids, limits
    finally:
        kill_quietly(kernel, name)
        wait_ended(kernel, name)


@needs_root
def test_spawn_relative_script_args_env_and_flags(kernel):
    name = "cli-env"
    out = run("spawn", name, "report_env.py", "--no-sandbox", "--network", "--env", "PROBE_VAR=x",
              "-e", "PROBE_EMPTY=", "--env", "PROBE_VAR=a=b", "--", "alpha", "--dashed",
              socket_path=kernel.socket_path, cwd=PROBES)
    assert out.returncode == 0, out.stderr
    e = wait_ended(kernel, name)
    assert e["script"] == str(PROBES / "report_env.py"), e
    assert e["sandboxed"] is False and e["network"] is True, e
    # Log lines may carry a "<ts> <stream> " prefix before the agent's text.
    reports = [json.loads(line[line.index("{"):])["report"] for line in log_text(kernel, name, e["id"]).splitlines()
               if '{"report"' in line]
    assert len(reports) == 1, log_text(kernel, name, e["id"])
    rep = reports[0]
    assert rep["argv"][2:] == ["alpha", "--dashed"], rep["argv"]
    # The last --env of a name wins; a value may hold '=' or be empty.
    assert rep["extra_env"] == {"PROBE_VAR": "a=b", "PROBE_EMPTY": ""}, rep


@needs_root
def test_spawn_json_is_the_kernel_reply(kernel):
    name = "cli-spawn-json"
    reply = json.loads(ok(kernel, "--json", "spawn", name, SLEEPER))
    try:
        assert reply["status"] == "running" and reply["name"] == name and reply["id"] > 0, reply
        assert "enforced" in reply, reply
    finally:
        kill_quietly(kernel, name)


@needs_root
def test_kernel_refusals_exit_1_with_the_kernels_reason(kernel):
    line = one_line_error(run("spawn", "cli-small", SLEEPER, "--memory", "512K", socket_path=kernel.socket_path))
    assert "limits.memory" in line and "8 MiB" in line, line
    line = one_line_error(run("spawn", "bad name!", SLEEPER, socket_path=kernel.socket_path))
    assert "name" in line, line
    line = one_line_error(run("spawn", "cli-missing", "/nonexistent/agent.py", socket_path=kernel.socket_path))
    assert "script" in line, line


@needs_root
def test_spawn_restart_policy_options(kernel):
    name = "cli-restart"
    r = run("spawn", name, SLEEPER, "--restart", "on-failure", "--max-restarts", "2",
            socket_path=kernel.socket_path)
    if r.returncode == 1 and ("restart" in r.stderr and ("only" in r.stderr or "unknown field" in r.stderr)):
        pytest.skip(f"the kernel under test has no restart policies yet: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    kill_quietly(kernel, name)
    assert wait_ended(kernel, name)["restarts"] == 0  # KILL never triggers a restart


# == kill ======================================================================


@needs_root
def test_kill_each_name_and_report_failures(kernel):
    spawn(kernel, "cli-k1")
    spawn(kernel, "cli-k2")
    r = run("kill", "cli-k1", "cli-nobody", "cli-k2", socket_path=kernel.socket_path)
    assert r.returncode == 1, r
    assert r.stdout == "cli-k1\ncli-k2\n", r.stdout
    assert r.stderr == "agentos: no agent named 'cli-nobody'\n", r.stderr
    for name in ("cli-k1", "cli-k2"):
        e = wait_ended(kernel, name)
        assert e["status"] == "killed" and e["signal"] == signal.SIGTERM, e
    line = one_line_error(run("kill", "cli-k1", socket_path=kernel.socket_path))
    assert "not running" in line, line


@needs_root
def test_kill_timeout_zero_is_sigkill(kernel):
    spawn(kernel, "cli-stubborn", SLEEPER, "--", "--ignore-term")
    wait_log(kernel, "cli-stubborn", "ready")
    assert ok(kernel, "kill", "--timeout", "0", "cli-stubborn") == "cli-stubborn\n"
    e = wait_ended(kernel, "cli-stubborn")
    assert e["signal"] == signal.SIGKILL, e
    row = next(r for r in table_rows(ok(kernel, "ps", "-a")) if r[0] == str(e["id"]))
    assert row[4] == "killed (SIGKILL)", row


# == think =====================================================================


def test_think_without_llm_is_an_error(kernel):
    hello = call(kernel, HELLO)
    if hello.get("llm", {}).get("configured"):
        pytest.skip("this kernel has an LLM configured")
    line = one_line_error(run("think", "hello", socket_path=kernel.socket_path))
    assert "not configured" in line.lower(), line


def test_think_prints_the_content(kernel_factory):
    from test_llm import FakeLLM, llm_env  # the fake provider and its kernel environment
    fake = FakeLLM()
    try:
        k = kernel_factory(env=llm_env(fake, "gemini"))
        assert ok(k, "think", "what is 2+2?") == "echo: what is 2+2?\n"
        assert ok(k, "think", "-", input="from stdin") == "echo: from stdin\n"
        reply = json.loads(ok(k, "--json", "think", "hi", "--system", "be terse", "--max-tokens", "9"))
        assert reply["content"] == "echo: hi" and reply["error"] is None and reply["usage"], reply
        body = fake.requests()[-1]["body"]
        assert body["systemInstruction"]["parts"][0]["text"] == "be terse", body
        assert body["generationConfig"]["maxOutputTokens"] == 9, body
    finally:
        fake.stop()


# == logs ======================================================================


@needs_root
def test_logs_prints_output_and_tail(kernel):
    require_op(kernel, LOGS)
    spawn(kernel, "cli-logs", EXIT_WITH, "--", "code", "0")
    wait_ended(kernel, "cli-logs")
    assert ok(kernel, "logs", "cli-logs") == "ending with code 0\n"
    assert ok(kernel, "logs", "--tail", "1", "cli-logs") == "ending with code 0\n"
    stamped = ok(kernel, "logs", "-t", "cli-logs")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z ending with code 0\n", stamped), stamped
    lines = [json.loads(x) for x in ok(kernel, "--json", "logs", "cli-logs").splitlines()]
    assert [(x["stream"], x["text"]) for x in lines] == [("stdout", "ending with code 0")], lines
    line = one_line_error(run("logs", "cli-no-such-agent", socket_path=kernel.socket_path))
    assert "cli-no-such-agent" in line, line


@needs_root
def test_logs_follow_ends_when_the_agent_ends(kernel):
    require_op(kernel, LOGS)
    spawn(kernel, "cli-follow")
    proc = subprocess.Popen([str(cli_binary()), "--socket", str(kernel.socket_path), "logs", "-f", "cli-follow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kernel_env())
    try:
        reader = LineReader(proc)
        reader.wait_for("ready")
        assert ok(kernel, "kill", "cli-follow") == "cli-follow\n"
        assert proc.wait(timeout=AGENT_TIMEOUT_S) == 0, proc.stderr.read()
        assert reader.text().startswith("ready pid="), reader.lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# == wait ======================================================================


@needs_root
@pytest.mark.parametrize("how, n, code, says", [
    ("code", 0, 0, "exited with code 0"),
    ("code", 3, 3, "exited with code 3"),
    ("signal", 9, 137, "was killed by SIGKILL"),
])
def test_wait_exit_code_is_the_agents(kernel, how, n, code, says):
    require_op(kernel, WAIT)
    name = f"cli-wait-{how}-{n}"
    spawn(kernel, name, EXIT_WITH, "--", how, n)
    r = run("wait", name, socket_path=kernel.socket_path)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert r.stdout == f"{name} {says}\n", r.stdout
    data = json.loads(ok(kernel, "--json", "wait", name) if code == 0 else
                      run("--json", "wait", name, socket_path=kernel.socket_path).stdout)
    assert data["name"] == name and data["running"] is False, data


@needs_root
def test_wait_timeout_exits_124(kernel):
    require_op(kernel, WAIT)
    spawn(kernel, "cli-wait-timeout")
    try:
        r = run("wait", "--timeout", "50", "cli-wait-timeout", socket_path=kernel.socket_path)
        line = one_line_error(r, code=124)
        assert "timeout" in line.lower(), line
    finally:
        kill_quietly(kernel, "cli-wait-timeout")


# == pause / resume ============================================================


@needs_root
def test_pause_and_resume(kernel):
    require_op(kernel, PAUSE)
    require_op(kernel, RESUME)
    spawn(kernel, "cli-pause")
    try:
        r = run("pause", "cli-pause", socket_path=kernel.socket_path)
        if r.returncode == 1 and "freez" in r.stderr.lower():
            pytest.skip(f"no cgroup freezer here: {r.stderr.strip()}")
        assert (r.returncode, r.stdout) == (0, "cli-pause\n"), r.stderr
        assert entry(kernel, "cli-pause")["state"] == "PAUSED"
        assert next(r for r in table_rows(ok(kernel, "ps")) if r[1] == "cli-pause")[3] == "PAUSED"
        assert ok(kernel, "resume", "cli-pause") == "cli-pause\n"
        assert entry(kernel, "cli-pause")["state"] == "RUNNING"
        line = one_line_error(run("pause", "cli-nobody", socket_path=kernel.socket_path))
        assert "cli-nobody" in line, line
    finally:
        kill_quietly(kernel, "cli-pause")


# == events ====================================================================


@needs_root
def test_events_for_one_agent(kernel):
    require_op(kernel, EVENTS)
    spawn(kernel, "cli-ev", EXIT_WITH, "--", "code", "4")
    wait_ended(kernel, "cli-ev")
    want = {"spawned", "exited"}
    events = wait_for(lambda: (lambda evs: evs if want <= {e["type"] for e in evs} else None)(
        [json.loads(x) for x in ok(kernel, "--json", "events", "cli-ev").splitlines()]),
        AGENT_TIMEOUT_S, interval=0.1, what="spawned and exited events")
    assert all(e["name"] == "cli-ev" for e in events), events
    exited = next(e for e in events if e["type"] == "exited")
    assert exited["exit_code"] == 4, exited
    lines = ok(kernel, "events", "cli-ev").splitlines()
    assert any(re.search(r"  cli-ev\[\d+\]  exited  .*exit_code=4", x) for x in lines), lines
    since = max(e["seq"] for e in events) + 1
    later = [json.loads(x) for x in ok(kernel, "--json", "events", "--since", since, "cli-ev").splitlines()]
    assert all(e["seq"] >= since for e in later), later


@needs_root
def test_events_follow_prints_new_events(kernel):
    require_op(kernel, EVENTS)
    proc = subprocess.Popen([str(cli_binary()), "--socket", str(kernel.socket_path), "events", "-f"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kernel_env())
    try:
        reader = LineReader(proc)
        spawn(kernel, "cli-ev-follow", EXIT_WITH, "--", "code", "0")
        reader.wait_for("cli-ev-follow[")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=AGENT_TIMEOUT_S)
        assert "spawned" in "".join(x for x in reader.lines if "cli-ev-follow[" in x), reader.lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# == top =======================================================================


@needs_root
def test_top_snapshots_when_not_a_tty(kernel):
    require_op(kernel, STATS)
    spawn(kernel, "cli-top")
    try:
        out = ok(kernel, "top", "-n", "1")
        assert out.startswith(f"agentos_kernel pid {kernel.pid} · "), out
        assert "\nLLM: queue " in out, out
        rows = table_rows(out)
        assert any(r[1] == "cli-top" and r[2] == "RUNNING" for r in rows), out
        two = ok(kernel, "top", "--iterations", "2", "--interval", "100")
        assert two.count("agentos_kernel pid ") == 2, two
        snap = json.loads(ok(kernel, "--json", "top", "-n", "1"))
        assert snap["kernel"]["pid"] == kernel.pid, snap
        assert any(a["name"] == "cli-top" for a in snap["agents"]), snap
    finally:
        kill_quietly(kernel, "cli-top")


@needs_root
@pytest.mark.parametrize("how", ["q", "ctrl-c", "sigterm"])
def test_top_screen_restores_the_terminal(kernel, how):
    import fcntl
    import pty
    import select
    import struct
    import termios
    require_op(kernel, STATS)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen([str(cli_binary()), "--socket", str(kernel.socket_path), "top"],
                            stdin=slave, stdout=slave, stderr=slave, env=kernel_env(), start_new_session=True)
    out = b""

    def read_some(timeout):
        nonlocal out
        ready, _, _ = select.select([master], [], [], timeout)
        if ready:
            try:
                out += os.read(master, 65536)
            except OSError:  # EIO once the last writer is gone
                return False
        return bool(ready)

    try:
        wait_for(lambda: read_some(0.2) and b"LLM: queue" in out, AGENT_TIMEOUT_S, interval=0,
                 what="the first frame of agentos top")
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:
            os.write(master, b"q" if how == "q" else b"\x03")
        assert proc.wait(timeout=AGENT_TIMEOUT_S) == 0
        while read_some(0.2):
            pass
        assert termios.tcgetattr(slave) == before, "the terminal mode was not restored"
        assert out.startswith(b"\x1b[?1049h"), out[:80]  # the alternate screen ...
        assert out.rstrip(b"\r\n").endswith(b"\x1b[?1049l"), out[-80:]  # ... and back
        frame = out.decode(errors="replace").split("\x1b[H")[1]
        lines = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", x) for x in frame.split("\r\n")]
        assert all(len(x) <= 100 for x in lines), lines
        assert lines[0].startswith("agentos top · ") and lines[1].startswith("agentos_kernel pid "), lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)
