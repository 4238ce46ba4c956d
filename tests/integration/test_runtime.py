"""The agent runtime against the real kernel (DESIGN.md §2–§5): SPAWN
validation, the SPAWN/LIST/KILL life cycle, exit statuses, cgroup limits
(memory, CPU, pids), identity on agents' sockets, spawn authority, and what
happens to agents when the kernel goes.

Needs root (namespaces, per-agent uids, cgroups). The agent scripts live in
tests/probes/ and agents/examples/; they print to their log,
<state-dir>/logs/<name>-<id>.log, which is how the tests read what happened
inside. The helpers below are shared with test_hostile.py and test_leaks.py.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from kernel_harness import EXAMPLES_DIR, REPO_ROOT, kernel_env, pack_frame, wait_for

NOOP, SPAWN, KILL, LIST, HELLO, EXIT = 0x00, 0x10, 0x11, 0x12, 0xFE, 0xFF
MiB = 1 << 20
PROBES = REPO_ROOT / "tests" / "probes"
SYS_PYTHON = "/usr/bin/python3"
UID_BASE = 200000          # sandboxed agents run as UID_BASE + id when the kernel is root
AGENT_TIMEOUT_S = 30.0     # deadline for an agent to reach a state it is headed for
CGROUP_ROOT = Path("/sys/fs/cgroup")

ROOT_REASON = ("the agent runtime tests need root: namespaces, per-agent uids and cgroup "
               "limits are only applied when the kernel runs as root")
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason=ROOT_REASON)

LIST_FIELDS = {  # field: accepted types
    "id": (int,), "name": (str,), "pid": (int,), "parent_id": (int,), "state": (str,),
    "status": (str,), "running": (bool,), "exit_code": (int, type(None)),
    "signal": (int, type(None)), "oom_killed": (bool,), "throttled": (bool,),
    "throttled_ms": (int,), "restarts": (int,), "uptime_ms": (int,), "limits": (dict,),
    "sandboxed": (bool,), "network": (bool,), "memory_bytes": (int,),
    "memory_peak_bytes": (int,), "cpu_usage_ms": (int,), "pids": (int,), "script": (str,),
    "python": (str,),
}
STATES = {"STARTING", "RUNNING", "PAUSED", "STOPPING", "RESTARTING", "STOPPED", "FAILED"}


# == helpers (also imported by test_hostile.py and test_leaks.py) ==============


def features(k):
    with k.client() as c:
        return set(c.hello().get("features", []))


def require_spawn(k):
    offered = features(k)
    missing = {"spawn", "kill"} - offered
    if missing:
        pytest.skip(f"kernel {k.binary} does not offer {sorted(missing)} yet "
                    f"(HELLO features: {sorted(offered)})")


@pytest.fixture(autouse=True)
def _kernel_offers_spawn(kernel):
    require_spawn(kernel)


def payload_bytes(body):
    if isinstance(body, bytes):
        return body
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


def call(k, opcode, body=b"", timeout=AGENT_TIMEOUT_S):
    """One request on a fresh operator connection; returns the decoded JSON reply."""
    with k.raw(timeout=timeout) as conn:
        frame = conn.call(opcode, payload_bytes(body))
    assert frame.opcode == opcode and frame.agent_id == 0, frame
    return json.loads(frame.payload)


def pipelined(k, requests, timeout=120.0):
    """Sends every (opcode, body) in one write on one connection, reads the
    replies in order, and leaves with EXIT so the kernel closes its end."""
    with k.raw(timeout=timeout) as conn:
        conn.send_raw(b"".join(pack_frame(op, payload_bytes(b)) for op, b in requests))
        replies = [json.loads(conn.recv_frame().payload) for _ in requests]
        conn.send_frame(EXIT)
        conn.recv_frame()
        conn.is_closed_by_peer()
    return replies


def spawn(k, name, script, **fields):
    return call(k, SPAWN, {"name": name, "script": str(script), **fields})


def spawn_ok(k, name, script, **fields):
    reply = spawn(k, name, script, **fields)
    assert reply.get("status") == "running", f"SPAWN {name} failed: {reply}"
    return reply


def kill(k, timeout=AGENT_TIMEOUT_S, **selector):
    return call(k, KILL, selector, timeout=timeout)


def list_agents(k, all=False):  # noqa: A002 (the kernel's field name)
    reply = call(k, LIST, {"all": True} if all else b"")
    assert isinstance(reply, list), f"LIST did not answer a list: {reply}"
    return reply


def entry(k, agent_id):
    """This agent's LIST {"all": true} entry, or None."""
    return next((a for a in list_agents(k, all=True) if a.get("id") == agent_id), None)


def wait_ended(k, agent_id, timeout=AGENT_TIMEOUT_S):
    """Polls LIST {"all": true} until the agent is no longer running."""
    def ended():
        e = entry(k, agent_id)
        assert e is not None, f"agent {agent_id} vanished from LIST {{\"all\": true}}"
        return e if not e["running"] else None
    return wait_for(ended, timeout, interval=0.05, what=f"agent {agent_id} to end")


def log_path(k, name, agent_id):
    return Path(k.state_dir) / "logs" / f"{name}-{agent_id}.log"


def read_log(k, name, agent_id):
    try:
        return log_path(k, name, agent_id).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_log(k, name, agent_id, needle, timeout=AGENT_TIMEOUT_S):
    """Waits until the agent's log contains `needle`; returns the log."""
    return wait_for(lambda: needle in read_log(k, name, agent_id) and read_log(k, name, agent_id),
                    timeout, what=f"{needle!r} in {log_path(k, name, agent_id)}")


# A captured log line: "<UTC timestamp> <stream> <text>" (docs/PROTOCOL.md).
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (stdout|stderr) (.*)$")


def log_texts(text):
    """The agent's own lines of a captured log, without timestamp and stream."""
    out = []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        out.append(m.group(2) if m else line)
    return out


def json_lines(text):
    out = []
    for line in log_texts(text):
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def instance_of(k):
    """The kernel's instance name from its start-up log line."""
    m = re.search(r"\(instance (agentos-[0-9a-f]{8})", k.log_text())
    assert m, f"no 'instance agentos-xxxxxxxx' in the kernel's log:\n{k.log_tail()}"
    return m.group(1)


def instance_cgroup_dirs(instance, leaves_only=True):
    """Directories under /sys/fs/cgroup/*/ whose path contains `instance`
    (only the agent-* ones when leaves_only)."""
    found = []
    for hierarchy in CGROUP_ROOT.iterdir():
        if not hierarchy.is_dir() or hierarchy.is_symlink():
            continue
        for dirpath, dirnames, _ in os.walk(hierarchy):
            for d in dirnames:
                path = os.path.join(dirpath, d)
                if instance in path and (not leaves_only or d.startswith("agent-")):
                    found.append(path)
    return sorted(found)


def proc_stat(pid):
    """(state, ppid, starttime) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def children_of(pid):
    """[(child pid, state)] of a host process."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[1] == pid:
                out.append((int(d), st[0]))
    return out


def pids_of_uid(uid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            out.append(int(d))
                        break
        except OSError:
            pass
    return out


def same_process_alive(pid, starttime):
    st = proc_stat(pid)
    return st is not None and st[2] == starttime and st[0] != "Z"


def noop_ok(k, payload=b"still served"):
    with k.raw() as conn:
        return conn.call(NOOP, payload).payload == payload


def assert_list_entry_shape(e):
    missing = set(LIST_FIELDS) - set(e)
    assert not missing, f"LIST entry lacks {sorted(missing)}: {e}"
    wrong = {f: e[f] for f, types in LIST_FIELDS.items()
             if not isinstance(e[f], types) or (bool not in types and isinstance(e[f], bool))}
    assert not wrong, f"LIST entry fields of the wrong type: {wrong}"
    assert e["state"] in STATES, e
    assert e["status"] in {"running", "exited", "killed", "oom_killed"}, e


# == SPAWN validation ==========================================================

SLEEPER = str(PROBES / "sleeper.py")
BAD_SPAWNS = [  # id, payload, the field the error must name
    ("name-missing", {"script": SLEEPER}, "name"),
    ("name-empty", {"name": "", "script": SLEEPER}, "name"),
    ("name-type", {"name": 7, "script": SLEEPER}, "name"),
    ("name-leading-dash", {"name": "-x", "script": SLEEPER}, "name"),
    ("name-leading-dot", {"name": ".x", "script": SLEEPER}, "name"),
    ("name-space", {"name": "a b", "script": SLEEPER}, "name"),
    ("name-slash", {"name": "a/b", "script": SLEEPER}, "name"),
    ("name-64-chars", {"name": "a" * 64, "script": SLEEPER}, "name"),
    ("name-non-ascii", {"name": "agent\u00fc", "script": SLEEPER}, "name"),
    ("name-newline", {"name": "a\nb", "script": SLEEPER}, "name"),
    ("script-missing", {"name": "v"}, "script"),
    ("script-type", {"name": "v", "script": 5}, "script"),
    ("script-nonexistent", {"name": "v", "script": "/nonexistent/agent.py"}, "script"),
    ("script-directory", {"name": "v", "script": str(PROBES)}, "script"),
    ("script-relative-nonexistent", {"name": "v", "script": "no_such_agent.py"}, "script"),
    ("python-type", {"name": "v", "script": SLEEPER, "python": 3}, "python"),
    ("python-nonexistent", {"name": "v", "script": SLEEPER, "python": "/nonexistent/python3"}, "python"),
    ("args-type", {"name": "v", "script": SLEEPER, "args": "x"}, "args"),
    ("args-item-type", {"name": "v", "script": SLEEPER, "args": ["ok", 1]}, "args"),
    ("env-type", {"name": "v", "script": SLEEPER, "env": ["A=1"]}, "env"),
    ("env-value-type", {"name": "v", "script": SLEEPER, "env": {"A": 1}}, "env"),
    ("sandboxed-type", {"name": "v", "script": SLEEPER, "sandboxed": "yes"}, "sandboxed"),
    ("network-type", {"name": "v", "script": SLEEPER, "network": 1}, "network"),
    ("allow_spawn-type", {"name": "v", "script": SLEEPER, "allow_spawn": "true"}, "allow_spawn"),
    ("limits-type", {"name": "v", "script": SLEEPER, "limits": [64 * MiB]}, "limits"),
    ("limits-typo", {"name": "v", "script": SLEEPER, "limits": {"memroy": 64 * MiB}}, "memroy"),
    ("memory-below-8MiB", {"name": "v", "script": SLEEPER, "limits": {"memory": 4 * MiB}}, "memory"),
    ("memory-zero", {"name": "v", "script": SLEEPER, "limits": {"memory": 0}}, "memory"),
    ("memory-negative", {"name": "v", "script": SLEEPER, "limits": {"memory": -1}}, "memory"),
    ("memory-string", {"name": "v", "script": SLEEPER, "limits": {"memory": "64M"}}, "memory"),
    ("memory-bool", {"name": "v", "script": SLEEPER, "limits": {"memory": True}}, "memory"),
    ("memory-fraction", {"name": "v", "script": SLEEPER, "limits": {"memory": 67108864.5}}, "memory"),
    ("max_pids-zero", {"name": "v", "script": SLEEPER, "limits": {"max_pids": 0}}, "max_pids"),
    ("max_pids-negative", {"name": "v", "script": SLEEPER, "limits": {"max_pids": -3}}, "max_pids"),
    ("cpu_quota-zero", {"name": "v", "script": SLEEPER, "limits": {"cpu_quota": 0}}, "cpu_quota"),
    ("cpu_quota-negative", {"name": "v", "script": SLEEPER, "limits": {"cpu_quota": -10000}}, "cpu_quota"),
    ("cpu_period-zero", {"name": "v", "script": SLEEPER, "limits": {"cpu_period": 0}}, "cpu_period"),
    ("cpu_period-below-1ms", {"name": "v", "script": SLEEPER, "limits": {"cpu_period": 100}}, "cpu_period"),
    ("restart-type", {"name": "v", "script": SLEEPER, "restart": 1}, "restart"),
    ("restart-unknown", {"name": "v", "script": SLEEPER, "restart": "sometimes"}, "restart"),
    ("unknown-field", {"name": "v", "script": SLEEPER, "memroy": 64 * MiB}, "memroy"),
    ("typo-sandbox", {"name": "v", "script": SLEEPER, "sandbox": False}, "sandbox"),
]


def assert_nothing_left(k, instance, names=()):
    listed = [a for a in list_agents(k, all=True) if a.get("name") in names]
    assert not listed, f"a refused SPAWN left a record: {listed}"
    assert children_of(k.pid) == [], f"a refused SPAWN left a process: {children_of(k.pid)}"
    assert instance_cgroup_dirs(instance) == [], "a refused SPAWN left a cgroup"


@pytest.mark.parametrize("payload,field", [(p, f) for _, p, f in BAD_SPAWNS],
                         ids=[i for i, _, _ in BAD_SPAWNS])
def test_spawn_validation_names_the_field(kernel, payload, field):
    reply = call(kernel, SPAWN, payload)
    assert isinstance(reply, dict) and isinstance(reply.get("error"), str), reply
    assert field in reply["error"], f"error does not name '{field}': {reply}"
    assert reply.get("status") != "running"
    names = [payload["name"]] if isinstance(payload.get("name"), str) else []
    assert_nothing_left(kernel, instance_of(kernel), names)


@pytest.mark.parametrize("payload", [b"", b"not json", b"[]", b'"worker"', b"42", b"{\"name\": "],
                         ids=["empty", "not-json", "array", "string", "number", "truncated"])
def test_spawn_payload_that_is_not_an_object_is_refused(kernel, payload):
    reply = call(kernel, SPAWN, payload)
    assert isinstance(reply, dict) and reply.get("error"), reply
    assert_nothing_left(kernel, instance_of(kernel))
    assert noop_ok(kernel)


def test_relative_script_resolves_against_callers_cwd(kernel):
    # A separate client process whose cwd is tests/probes sends a bare file name.
    client = (
        "import json, socket, struct, sys\n"
        "p = json.dumps({'name': 'rel-script', 'script': 'exit_with.py', 'args': ['code', '0']}).encode()\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        "s.sendall(struct.pack('<IIBQ', 0x41474E54, 0, 0x10, len(p)) + p)\n"
        "h = b''\n"
        "while len(h) < 17: h += s.recv(17 - len(h))\n"
        "n = struct.unpack('<IIBQ', h)[3]; b = b''\n"
        "while len(b) < n: b += s.recv(n - len(b))\n"
        "print(b.decode())\n")
    out = subprocess.run([SYS_PYTHON, "-c", client, str(kernel.socket_path)], cwd=PROBES,
                         capture_output=True, text=True, timeout=60, env=kernel_env())
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply.get("status") == "running", reply
    assert reply["script"] == str(PROBES / "exit_with.py")
    ended = wait_ended(kernel, reply["id"])
    assert (ended["status"], ended["exit_code"]) == ("exited", 0), ended


# == life cycle ================================================================


def test_spawn_list_kill_round_trip(kernel):
    limits = {"memory": 64 * MiB, "max_pids": 8, "cpu_quota": 50000}
    r = spawn_ok(kernel, "rt-sleeper", SLEEPER, limits=limits)
    assert isinstance(r["id"], int) and r["id"] > 0 and isinstance(r["pid"], int) and r["pid"] > 0, r
    assert r["name"] == "rt-sleeper" and r["state"] == "RUNNING", r
    assert r["sandboxed"] is True and r["network"] is False, r
    assert r["script"] == SLEEPER and os.path.isabs(r["python"]) and os.access(r["python"], os.X_OK), r
    assert {k: r["limits"].get(k) for k in limits} == limits, r["limits"]
    assert isinstance(r["enforced"], dict) and r["enforced"], r
    agent_id, pid = r["id"], r["pid"]

    # The pid is a live host process in its own PID namespace.
    assert proc_stat(pid) is not None
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    log = wait_log(kernel, "rt-sleeper", agent_id, "ready")
    assert f"uid={UID_BASE + agent_id}" in log, log
    assert pids_of_uid(UID_BASE + agent_id), "no host process runs as the agent's uid"
    assert instance_cgroup_dirs(instance_of(kernel)), "the running agent has no cgroup"

    listed = [a for a in list_agents(kernel) if a["id"] == agent_id]
    assert len(listed) == 1, list_agents(kernel)
    e = listed[0]
    assert_list_entry_shape(e)
    assert (e["name"], e["pid"], e["state"], e["status"], e["running"]) == \
        ("rt-sleeper", pid, "RUNNING", "running", True), e
    assert (e["exit_code"], e["signal"], e["oom_killed"], e["parent_id"]) == (None, None, False, 0), e
    assert e["limits"].get("memory") == 64 * MiB and e["limits"].get("max_pids") == 8, e
    assert 0 < e["memory_bytes"] <= 64 * MiB and 1 <= e["pids"] <= 8, e

    assert kill(kernel, name="rt-sleeper") == {"killed": True}
    # "killed": true means gone: process reaped, cgroup removed, out of LIST.
    assert proc_stat(pid) is None, f"pid {pid} still exists after KILL replied"
    assert pids_of_uid(UID_BASE + agent_id) == []
    wait_for(lambda: instance_cgroup_dirs(instance_of(kernel)) == [], 5,
             what="the agent's cgroup to be removed")
    assert agent_id not in [a["id"] for a in list_agents(kernel)]
    e = entry(kernel, agent_id)
    assert_list_entry_shape(e)
    assert (e["running"], e["status"], e["state"], e["signal"], e["exit_code"]) == \
        (False, "killed", "STOPPED", signal.SIGTERM, None), e

    again = kill(kernel, name="rt-sleeper")
    assert again.get("killed") is False and again.get("error"), again


def test_kill_by_id(kernel):
    r = spawn_ok(kernel, "rt-by-id", SLEEPER)
    assert kill(kernel, id=r["id"]) == {"killed": True}
    assert entry(kernel, r["id"])["running"] is False


def test_kill_unknown_agent(kernel):
    reply = kill(kernel, name="nope")
    assert reply.get("killed") is False and "no agent named 'nope'" in reply.get("error", ""), reply
    reply = kill(kernel, id=987654)
    assert reply.get("killed") is False and reply.get("error"), reply


@pytest.mark.parametrize("how,n,status,state,exit_code,sig", [
    ("code", 0, "exited", "STOPPED", 0, None),
    ("code", 3, "exited", "FAILED", 3, None),
    ("signal", signal.SIGSEGV, "killed", "FAILED", None, signal.SIGSEGV),
], ids=["exit-0", "exit-3", "sigsegv"])
def test_exit_status_reported(kernel, how, n, status, state, exit_code, sig):
    name = f"rt-exit-{how}-{n}"
    r = spawn_ok(kernel, name, PROBES / "exit_with.py", args=[how, str(n)])
    e = wait_ended(kernel, r["id"])
    assert_list_entry_shape(e)
    assert (e["status"], e["state"], e["exit_code"], e["signal"], e["oom_killed"], e["running"]) == \
        (status, state, exit_code, sig, False, False), f"{e}\nlog: {read_log(kernel, name, r['id'])}"
    assert r["id"] not in [a["id"] for a in list_agents(kernel)]
    assert f"ending with {how} {n}" in read_log(kernel, name, r["id"])


def test_duplicate_name_refused_while_running_reusable_after(kernel):
    first = spawn_ok(kernel, "dup", SLEEPER)
    refused = spawn(kernel, "dup", SLEEPER)
    assert refused.get("status") != "running" and "dup" in refused.get("error", ""), refused
    assert [a["id"] for a in list_agents(kernel) if a["name"] == "dup"] == [first["id"]]
    assert kill(kernel, name="dup") == {"killed": True}

    second = spawn_ok(kernel, "dup", SLEEPER)
    assert second["id"] != first["id"]
    records = {a["id"]: a for a in list_agents(kernel, all=True) if a["name"] == "dup"}
    assert set(records) >= {first["id"], second["id"]}, records
    assert records[first["id"]]["running"] is False and records[second["id"]]["running"] is True
    assert kill(kernel, name="dup") == {"killed": True}  # the live one
    assert entry(kernel, second["id"])["running"] is False


def test_agent_ignoring_sigterm_is_killed_after_timeout(kernel):
    r = spawn_ok(kernel, "rt-stubborn", SLEEPER, args=["--ignore-term"])
    wait_log(kernel, "rt-stubborn", r["id"], "ready")
    started = time.monotonic()
    assert kill(kernel, name="rt-stubborn", timeout_ms=1000) == {"killed": True}
    waited = time.monotonic() - started
    e = entry(kernel, r["id"])
    assert (e["running"], e["status"], e["signal"], e["state"]) == (False, "killed", signal.SIGKILL, "STOPPED"), e
    assert "got SIGTERM" in read_log(kernel, "rt-stubborn", r["id"]), "SIGTERM never reached the agent"
    # Not a speed limit: the kernel must honour the grace before SIGKILL.
    assert waited >= 0.9, f"SIGKILL came {waited:.2f} s after KILL, before timeout_ms=1000"
    assert proc_stat(r["pid"]) is None


# == identity: argv, environment, the agent's socket =============================


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "unsandboxed"])
def test_agent_argv_env_and_socket_identity(kernel, sandboxed):
    name = f"rt-env-{'sb' if sandboxed else 'plain'}"
    args = ["alpha", "two words", ""]
    env = {"PROBE_VAR": "hello", "PROBE_EMPTY": ""}
    r = spawn_ok(kernel, name, PROBES / "report_env.py", args=args, env=env, sandboxed=sandboxed)
    assert r["sandboxed"] is sandboxed
    e = wait_ended(kernel, r["id"])
    log = read_log(kernel, name, r["id"])
    assert (e["status"], e["exit_code"]) == ("exited", 0), f"{e}\nlog:\n{log}"
    reports = [x["report"] for x in json_lines(log) if "report" in x]
    assert len(reports) == 1, log
    rep = reports[0]
    agent_id = r["id"]

    assert rep["argv"][0].endswith("report_env.py") and rep["argv"][2:] == args, rep["argv"]
    assert rep["argv"][1] == rep["env"].get("AGENTOS_SOCKET"), rep
    assert rep["env"].get("AGENTOS_AGENT_ID") == str(agent_id), rep["env"]
    assert rep["env"].get("AGENTOS_AGENT_NAME") == name, rep["env"]
    assert rep["extra_env"] == env
    assert rep["pythonpath"] and rep["sdk_import"] is True, rep
    assert "socket_error" not in rep, rep
    assert rep["echo_ok"] is True and rep["raw_echo_ok"] is True, rep
    # Replies on the agent's socket carry its id, whatever the request claims.
    assert (rep["echo_agent_id"], rep["hello_agent_id"], rep["raw_claim_0"], rep["raw_claim_4242"]) == \
        (agent_id,) * 4, rep
    if sandboxed:
        # Inside, the agent's own socket sits at the operator socket's path.
        assert rep["argv"][1] == str(kernel.socket_path), rep["argv"]
        assert rep["uid"] == rep["euid"] == UID_BASE + agent_id, rep
        assert rep["gid"] != 0 and set(rep["groups"]) <= {rep["gid"]}, rep
        assert rep["hostname"] == name, rep
    else:
        # Its own socket in the kernel's runtime directory, never the operator's.
        assert rep["argv"][1] != str(kernel.socket_path), rep["argv"]
        assert rep["argv"][1].startswith(str(kernel.runtime_dir) + "/"), rep["argv"]


# == spawn authority ===========================================================


def spawner_steps(k, name, agent_id):
    e = wait_ended(k, agent_id)
    log = read_log(k, name, agent_id)
    steps = {x["step"]: x.get("reply") for x in json_lines(log) if "step" in x}
    assert "done" in steps and (e["status"], e["exit_code"]) == ("exited", 0), f"{e}\nlog:\n{log}"
    return steps


def test_spawn_authority(kernel):
    sibling = spawn_ok(kernel, "sp-sibling", SLEEPER)
    plan = {"child_script": SLEEPER, "sibling_name": "sp-sibling", "sibling_id": sibling["id"]}

    no = spawn_ok(kernel, "sp-nospawn", PROBES / "spawner.py",
                  args=[json.dumps({**plan, "child_name": "sp-child-x"})])
    steps = spawner_steps(kernel, "sp-nospawn", no["id"])
    assert steps["spawn_child"].get("error") and steps["spawn_child"].get("status") != "running", steps
    assert "sp-child-x" not in [a["name"] for a in list_agents(kernel, all=True)]
    assert steps["list"] == [] and steps["list_all"] == [], steps
    assert steps["kill_sibling_by_name"].get("killed") is False, steps
    assert steps["kill_sibling_by_id"].get("killed") is False, steps

    parent = spawn_ok(kernel, "sp-parent", PROBES / "spawner.py", allow_spawn=True,
                      args=[json.dumps({**plan, "child_name": "sp-child"})])
    steps = spawner_steps(kernel, "sp-parent", parent["id"])
    assert steps["spawn_child"].get("status") == "running", steps
    child_id = steps["spawn_child"]["id"]
    assert [a["name"] for a in steps["list"]] == ["sp-child"], steps["list"]
    assert [a["name"] for a in steps["list_all"]] == ["sp-child"], steps["list_all"]
    assert steps["kill_sibling_by_name"].get("killed") is False, steps
    assert steps["kill_sibling_by_id"].get("killed") is False, steps
    assert steps["kill_child"] == {"killed": True}, steps
    after = [a for a in steps["list_all_after"] if a["id"] == child_id]
    assert len(after) == 1 and after[0]["running"] is False, steps["list_all_after"]
    assert steps["self_id"] == parent["id"], steps

    child = entry(kernel, child_id)
    assert child["parent_id"] == parent["id"] and child["running"] is False, child
    sib = entry(kernel, sibling["id"])
    assert sib["running"] is True, f"the sibling was touched: {sib}"
    assert kill(kernel, id=sibling["id"]) == {"killed": True}


def spawned_by(k, name, agent_id):
    """The SPAWN reply a nester.py agent printed."""
    log = wait_log(k, name, agent_id, '"spawned"')
    return next(x["spawned"] for x in json_lines(log) if "spawned" in x)


def test_agent_spawned_by_an_agent_is_bound_by_its_limits(kernel):
    """DESIGN.md §3: an agent's agents live in its cgroup, so its limits bound
    them: a child asking for 1 GiB inside a 96 MiB parent is OOM-killed near
    96 MiB, and the parent is not."""
    limit = 96 * MiB
    child = {"name": "nest-hog", "script": str(EXAMPLES_DIR / "memory_hog_agent.py"), "args": ["0.02"],
             "limits": {"memory": 1024 * MiB}}
    parent = spawn_ok(kernel, "nest-parent", PROBES / "nester.py", allow_spawn=True,
                      limits={"memory": limit}, args=[json.dumps(child)])
    spawned = spawned_by(kernel, "nest-parent", parent["id"])
    assert spawned.get("status") == "running", spawned
    child_id = spawned["id"]
    nested_in = spawned["enforced"]["cgroup"].get("nested_in", "")
    assert nested_in.endswith(f"/agent-{parent['id']}"), spawned["enforced"]
    instance = instance_of(kernel)
    assert any(d.endswith(f"/agent-{parent['id']}/agent-{child_id}") for d in instance_cgroup_dirs(instance)), \
        instance_cgroup_dirs(instance)

    def ended_or_runaway():
        e = entry(kernel, child_id)
        held = [int(n) for n in re.findall(r"holding (\d+) MiB", read_log(kernel, "nest-hog", child_id))]
        if e["running"] and held and held[-1] * MiB > 2 * limit:
            kill(kernel, id=child_id, timeout_ms=0)
            pytest.fail(f"the parent's limit does not bind its child: it holds {held[-1]} MiB: {e}")
        return None if e["running"] else e

    e = wait_for(ended_or_runaway, 60, interval=0.05, what="the nested memory hog to be OOM-killed")
    assert (e["status"], e["oom_killed"]) == ("oom_killed", True), e
    assert e["memory_peak_bytes"] <= limit, f"peak {e['memory_peak_bytes']} over the parent's {limit}: {e}"
    p = entry(kernel, parent["id"])
    assert (p["running"], p["oom_killed"]) == (True, False), f"the parent paid for its child's OOM: {p}"
    assert kill(kernel, id=parent["id"]) == {"killed": True}
    wait_ended(kernel, parent["id"])
    assert not [d for d in instance_cgroup_dirs(instance) if f"agent-{parent['id']}" in d]


def test_agents_end_with_the_agent_that_spawned_them(kernel):
    """The child lives in its parent's cgroup: when the parent's run ends the
    child is stopped for good, whatever its restart policy."""
    child = {"name": "nest-child", "script": SLEEPER, "restart": "always"}
    parent = spawn_ok(kernel, "nest-quitter", PROBES / "nester.py", allow_spawn=True,
                      args=[json.dumps(child), "exit"])
    spawned = spawned_by(kernel, "nest-quitter", parent["id"])
    assert spawned.get("status") == "running", spawned
    p = wait_ended(kernel, parent["id"])
    assert (p["status"], p["exit_code"]) == ("exited", 0), p
    c = wait_for(lambda: (x := entry(kernel, spawned["id"]))["state"] == "STOPPED" and x, AGENT_TIMEOUT_S,
                 what="the child to be stopped with its parent")
    assert c["running"] is False and c["restarts"] == 0, c
    assert f"agent {parent['id']} 'nest-quitter' ended" in c.get("reason", ""), c
    assert proc_stat(spawned["pid"]) is None
    assert not [d for d in instance_cgroup_dirs(instance_of(kernel)) if f"agent-{spawned['id']}" in d]


def test_agents_nest_at_most_8_deep_and_end_together(kernel):
    """A chain of agents each spawning the next: the 8th may not spawn (each
    level is a cgroup inside the last); killing the first ends them all."""
    deepest = {"name": "nest-9", "script": SLEEPER}
    spec = deepest
    for level in range(8, 1, -1):  # nest-8 spawns nest-9, ..., nest-2 spawns nest-3
        spec = {"name": f"nest-{level}", "script": str(PROBES / "nester.py"), "allow_spawn": True,
                "args": [json.dumps(spec)]}
    first = spawn_ok(kernel, "nest-1", PROBES / "nester.py", allow_spawn=True, args=[json.dumps(spec)])
    chain = [first]
    for level in range(1, 9):
        chain.append(spawned_by(kernel, f"nest-{level}", chain[-1]["id"]))
    refused = chain.pop()
    assert "nest at most 8 deep" in refused.get("error", ""), refused
    assert [a["name"] for a in list_agents(kernel) if a["name"].startswith("nest-")] == \
        [f"nest-{level}" for level in range(1, 9)]
    assert kill(kernel, id=first["id"]) == {"killed": True}
    for a in chain:
        e = wait_ended(kernel, a["id"])
        assert e["state"] == "STOPPED", e
    assert not [d for d in instance_cgroup_dirs(instance_of(kernel)) if f"agent-{first['id']}" in d]


# == cgroup limits =============================================================


def test_memory_hog_is_oom_killed(kernel):
    limit = 64 * MiB
    r = spawn_ok(kernel, "rt-mem-hog", EXAMPLES_DIR / "memory_hog_agent.py", limits={"memory": limit},
                 args=["0.02"])

    def ended_or_runaway():
        # Without an enforced limit the hog would eat the host's memory: stop it early.
        e = entry(kernel, r["id"])
        held = [int(n) for n in re.findall(r"holding (\d+) MiB", read_log(kernel, "rt-mem-hog", r["id"]))]
        if e["running"] and held and held[-1] * MiB > 2 * limit:
            kill(kernel, id=r["id"], timeout_ms=0)
            pytest.fail(f"memory limit not enforced: the hog holds {held[-1]} MiB under {limit >> 20} MiB: {e}")
        return None if e["running"] else e

    e = wait_for(ended_or_runaway, 60, interval=0.05, what="the memory hog to be OOM-killed")
    log = read_log(kernel, "rt-mem-hog", r["id"])
    assert "holding 40 MiB" in log, f"the hog never got going:\n{log}"
    assert (e["status"], e["oom_killed"], e["signal"], e["exit_code"], e["state"]) == \
        ("oom_killed", True, signal.SIGKILL, None, "FAILED"), e
    assert 0.75 * limit <= e["memory_peak_bytes"] <= limit, \
        f"memory_peak_bytes {e['memory_peak_bytes']} not near the {limit} limit: {e}"
    assert noop_ok(kernel)


def heartbeats(k, name, agent_id):
    return read_log(k, name, agent_id).count("echo ok")


def test_cpu_hog_is_throttled_while_healthy_agent_keeps_answering(kernel):
    healthy = spawn_ok(kernel, "rt-healthy", EXAMPLES_DIR / "healthy_agent.py",
                       limits={"memory": 64 * MiB, "max_pids": 16})
    wait_log(kernel, "rt-healthy", healthy["id"], "echo ok")
    beats_before = heartbeats(kernel, "rt-healthy", healthy["id"])
    hog = spawn_ok(kernel, "rt-cpu-hog", EXAMPLES_DIR / "cpu_hog_agent.py", limits={"cpu_quota": 10000})
    try:
        measured = wait_for(lambda: (e := entry(kernel, hog["id"])) and
                            (not e["running"] or e["uptime_ms"] >= 3000) and e,
                            30, interval=0.1, what="the CPU hog to run for 3 s")
        assert measured["running"] is True, f"the CPU hog died: {measured}"
        assert measured["limits"].get("cpu_quota") == 10000, measured
        assert measured["throttled"] is True and measured["throttled_ms"] > 0, measured
        assert measured["cpu_usage_ms"] > 0, measured
        share = measured["cpu_usage_ms"] / measured["uptime_ms"]
        assert share < 0.3, f"CPU share {share:.2f} with a 10% quota: {measured}"

        h = entry(kernel, healthy["id"])
        log = read_log(kernel, "rt-healthy", healthy["id"])
        assert h["running"] is True and "stopped answering" not in log, f"{h}\n{log}"
        assert heartbeats(kernel, "rt-healthy", healthy["id"]) >= beats_before + 2, log
        assert noop_ok(kernel)
    finally:
        assert kill(kernel, id=hog["id"]).get("killed") is True
        assert kill(kernel, id=healthy["id"]).get("killed") is True


# == the original examples =======================================================


def run_example(kernel, script, timeout=120):
    out = subprocess.run([SYS_PYTHON, str(EXAMPLES_DIR / script), "--socket", str(kernel.socket_path)],
                         capture_output=True, text=True, timeout=timeout, env=kernel_env())
    assert out.returncode == 0, f"{script} exited {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


def test_original_spawn_test_flow(kernel):
    out = run_example(kernel, "spawn_test.py")
    assert "all steps passed" in out.stdout
    worker = [a for a in list_agents(kernel, all=True) if a["name"] == "worker1"]
    assert worker and worker[-1]["status"] == "exited" and worker[-1]["exit_code"] == 0, worker


def test_fault_isolation_demo(kernel):
    run_example(kernel, "fault_isolation_demo.py")
    assert [a for a in list_agents(kernel) if a["name"] in {"cpu-hog", "mem-hog", "healthy"}] == []


# == agents die with the kernel ====================================================


def start_victims(k):
    """A process tree, an agent that ignores SIGTERM and an unsandboxed one;
    returns {(pid, starttime)} of every host process they consist of, and uids."""
    specs = [("tree", ["--fork", "2"], True), ("stubborn", ["--ignore-term"], True),
             ("plain", [], False)]
    procs, uids = set(), []
    for name, args, sandboxed in specs:
        r = spawn_ok(k, name, SLEEPER, args=args, sandboxed=sandboxed)
        wait_log(k, name, r["id"], "ready")
        st = proc_stat(r["pid"])
        assert st is not None
        procs.add((r["pid"], st[2]))
        if sandboxed:
            uids.append(UID_BASE + r["id"])
            for pid in pids_of_uid(UID_BASE + r["id"]):
                if (st := proc_stat(pid)):
                    procs.add((pid, st[2]))
    assert len(procs) >= 5, f"expected at least the agents and the tree's 2 children: {procs}"
    return procs, uids


def test_sigterm_to_kernel_kills_its_agents(kernel_factory):
    k = kernel_factory()
    require_spawn(k)
    instance = instance_of(k)
    procs, uids = start_victims(k)
    assert instance_cgroup_dirs(instance)

    assert k.stop(signal.SIGTERM) == 0, k.log_tail()
    alive = [p for p in procs if same_process_alive(*p)]
    assert alive == [], f"agent processes outlived the kernel: {alive}"
    assert [p for u in uids for p in pids_of_uid(u)] == []
    assert instance_cgroup_dirs(instance, leaves_only=False) == [], "cgroups left after a clean exit"


def test_sigkill_to_kernel_kills_its_agents_and_restart_cleans_up(kernel_factory):
    sockdir = Path(tempfile.mkdtemp(prefix="agentos-rt-sock-"))
    try:
        k = kernel_factory(socket_path=sockdir / "agentos.sock")
        require_spawn(k)
        instance = instance_of(k)
        procs, _ = start_victims(k)
        k.stop(signal.SIGKILL)
        wait_for(lambda: not any(same_process_alive(*p) for p in procs), 10,
                 what=f"agents to die with the SIGKILLed kernel: "
                      f"{[p for p in procs if same_process_alive(*p)]}")

        k2 = kernel_factory(socket_path=sockdir / "agentos.sock")
        assert instance_of(k2) == instance
        wait_for(lambda: instance_cgroup_dirs(instance) == [], 5,
                 what="the restarted kernel to remove the crashed run's agent cgroups")
        assert noop_ok(k2)
        k2.stop()
        assert instance_cgroup_dirs(instance, leaves_only=False) == []
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)
