"""Hostile agents (DESIGN.md §4): a probe that tries to break out of the
sandbox in every way we know of (tests/probes/hostile.py and its escape_*
modules) and must be blocked in the expected way, kill(-1) from inside, fds
leaking into agents, SPAWN requests too big for execve, and a fork bomb
under a pids limit. The kernel and a healthy neighbour must not notice.

Needs root. Helpers come from test_runtime.py.
"""

import glob
import json
import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from kernel_harness import EXAMPLES_DIR, MAX_PAYLOAD, REPO_ROOT, wait_for
from test_runtime import (AGENT_TIMEOUT_S, SPAWN, MiB, PROBES, ROOT_REASON, UID_BASE, call,
                          children_of, entry, instance_cgroup_dirs, instance_of, json_lines, kill,
                          list_agents, log_path, log_texts, noop_ok, pids_of_uid, read_log, require_spawn,
                          spawn, spawn_ok, wait_ended, wait_log)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason=ROOT_REASON)

# Every attempt hostile.py makes, with how each must end (see
# tests/probes/probe_util.py): a set of outcomes every try of the attempt
# must be in, {try: outcomes} for an attempt whose tries end differently, or
# a function try -> outcomes.
# "ok" means the try worked: only controls (and write_tmp) may say so.
# The agent runs under its own unprivileged uid (the kernel is root here).
EPERM, EACCES, ENOENT, EROFS = {"EPERM"}, {"EACCES"}, {"ENOENT"}, {"EROFS"}
EXPECTED_HOW = {
    # The sandbox's root holds only what the mount plan put there.
    "read_etc_shadow": ENOENT, "list_root_home": ENOENT, "list_home": ENOENT,
    "read_repo_files": ENOENT, "list_repo_root": {"only exposed dirs"},
    "read_other_agent_files": ENOENT,
    # The temp dir shows at most the path to our own socket (at the operator path).
    "list_kernel_dirs": {"ENOENT", "only own socket"},
    "connect_other_agent_socket": ENOENT,
    "kernel_api_as_operator": {"reply carries": {"own id"}, "LIST all": {"victim not listed"},
                               "KILL victim": {"not killed"}},
    # Read-only mounts answer before any permission check...
    "write_usr": EROFS, "write_usr_bin": EROFS, "write_etc": EROFS, "write_root_dir": EROFS,
    "write_script_dir": EROFS,
    # ...except on open(): a root-owned 0644 file fails the permission check first.
    "append_etc_passwd": EACCES,
    "write_tmp": {"ok"},
    # /proc/1/root needs ptrace access to the init (root); host pids do not exist here.
    "proc1_root_escape": {"EACCES", "ENOENT"},
    "symlink_escape": {"via init's root": EACCES, "via own root": ENOENT, "absolute": ENOENT,
                       "host file 0": ENOENT, "host file 1": ENOENT, "via the kernel's root": ENOENT},
    "proc_root_traversal": {"self root is /": {"ok"}, "self root ../../etc/shadow": ENOENT,
                            "self root/proc/1/root": EACCES, "init cwd": EACCES, "init fd dir": EACCES,
                            "init environ": EACCES, "init mem": EACCES},
    "kernel_pid_invisible": {"stat /proc/<kernel pid>": ENOENT, "kernel root": ENOENT,
                             "kernel threads": {"not visible"}},
    # Reopening goes through Landlock (the log's path is under no rule); a
    # file has no '..'; link() never crosses mounts.
    "proc_fd_outside": {"reopen for reading": EACCES, "reopen for appending": EACCES,
                        "parent dir of the fd": {"ENOTDIR"}, "hard link into /tmp": {"EXDEV"}},
    "hardlink_into_ro": {"/usr/bin/python3 -> /tmp": {"EXDEV"}, "/tmp file -> /usr/bin": EROFS,
                         "script -> its own dir": EROFS, "/etc/passwd -> /etc": EROFS,
                         "/etc/passwd -> /tmp": {"EXDEV"}},
    # The device nodes are binds of the host's inodes, read-only: utime only
    # needs write permission (which /dev/null grants everyone), so before the
    # binds were read-only it changed the host's /dev/null.
    "chmod_chown_ro": {"chmod python": EROFS, "chown python": EROFS, "chmod script": EROFS,
                       "chmod /etc/passwd": EROFS, "chmod /": EROFS, "utime python": EROFS,
                       "utime /dev/null": EROFS, "chmod /dev/null": EROFS, "write /dev/null": {"ok"}},
    "sys_absent": {"list /sys": ENOENT, "mount sysfs": EPERM, "append /sys/fs/cgroup/cgroup.procs": ENOENT,
                   "append /sys/fs/cgroup/memory/cgroup.procs": ENOENT,
                   "append /sys/kernel/uevent_helper": ENOENT,
                   "append /sys/kernel/mm/transparent_hugepage/enabled": ENOENT,
                   "append /sys/power/state": ENOENT, "mkdir cgroup": ENOENT},
    # Root-owned knobs fail the permission check (EACCES) before the
    # read-only bind (EROFS). ENOENT: this kernel is built without them
    # (no modules, no magic SysRq, no /proc/kcore); a kernel with them says EACCES.
    "proc_knobs": {"append /proc/sys/kernel/hostname": EACCES,
                   "append /proc/sys/kernel/core_pattern": EACCES,
                   "append /proc/sys/vm/drop_caches": EACCES,
                   "append /proc/sys/kernel/modprobe": {"EACCES", "ENOENT"},
                   "append /proc/sysrq-trigger": {"EACCES", "ENOENT"},
                   "read /proc/kcore": {"EACCES", "ENOENT"}, "read /proc/kmsg": EACCES},
    "dev_nodes": {**{p: ENOENT for p in ("/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/sda",
                                         "/dev/vda", "/dev/nvme0n1", "/dev/vsock", "/dev/userfaultfd",
                                         "/dev/net/tun")},
                  "mknod /dev/mem in /tmp": EPERM, "mknod in /dev": EROFS},
    "see_host_processes": {"not visible"},
    "signal_kernel": {"ESRCH"},  # no such pid in our namespace
    "sethostname": EPERM,
    "capabilities": {"none"},
    "setuid_binary": {"not root"},
    "inherited_fds": {"none"},
    "huge_argv": {"E2BIG"},
    "personas": {**{p: EPERM for p in ("ADDR_NO_RANDOMIZE", "READ_IMPLIES_EXEC", "ADDR_COMPAT_LAYOUT",
                                       "MMAP_PAGE_ZERO", "ADDR_LIMIT_3GB", "PER_BSD", "SHORT_INODE",
                                       "READ_IMPLIES_EXEC | 1<<32")},
                 "query (control)": {"ok"}},
    "exploit_surfaces": EPERM,
    "trace_init_or_sibling": EPERM,
    "mount_api": EPERM,
    # clone3 is ENOSYS so that libc falls back to clone, whose flags the filter sees.
    "namespaces": lambda t: {"ENOSYS"} if t.startswith("clone3") else EPERM,
    "file_handles": EPERM,
    # PR_SET_NO_NEW_PRIVS accepts only 1: clearing it is EINVAL.
    "ids_and_caps": lambda t: {"EINVAL"} if t == "clear no_new_privs" else EPERM,
    # No controlling terminal (ENXIO), no /dev/ptmx (ENOENT); the ioctls are
    # the filter's EPERM, not the driver's ENOTTY.
    "tty_injection": {"TIOCSTI on stdin": EPERM, "TIOCSTI on stdout": EPERM, "TIOCSTI | 1<<32": EPERM,
                      "TIOCLINUX": EPERM, "open /dev/tty": {"ENXIO"}, "openpty": ENOENT},
    # Only AF_UNIX, AF_INET(6) and NETLINK_ROUTE exist for an agent: AF_VSOCK
    # would reach the hypervisor past the network namespace; MPTCP and SCTP
    # connect past Landlock's TCP rules.
    "socket_families": lambda t: ({"ok"} if "(control)" in t else {"EPROTONOSUPPORT"} if t in {
        "MPTCP v4", "MPTCP v6", "SCTP", "seqpacket (SCTP's default)", "SOCK_DCCP", "netlink uevent",
        "netlink sock_diag"} else {"EAFNOSUPPORT"}),
    "raw_sockets": {"AF_INET SOCK_RAW": EPERM, "AF_INET6 SOCK_RAW": EPERM, "AF_PACKET": {"EAFNOSUPPORT"}},
    "netlink_route_change": {"links visible": {"ok"}, "create dummy link": EPERM, "set lo down": EPERM,
                             "add address": EPERM, "add default route": EPERM},
    # Landlock (EACCES) stops TCP even on loopback; nothing has a route out.
    "tcp_landlock": {"bind v4": EACCES, "bind v6": EACCES, "route out v4": {"ENETUNREACH"},
                     "route out v6": {"ENETUNREACH"}, "connect host listener": EACCES},
    "abstract_unix_host": {"own abstract socket (control)": {"ok"}, "host abstract socket": {"ECONNREFUSED"}},
    "operator_socket_path": {"operator path": {"own socket"}, "argv socket": {"own socket"}},
}
ATTEMPTS = set(EXPECTED_HOW)
MUST_SUCCEED = {"write_tmp"}


def expected_for(name, how):
    spec = EXPECTED_HOW[name]
    if callable(spec):
        return {t: spec(t) for t in how} if isinstance(how, dict) else spec(how)
    return spec


def wrong_how(name, how):
    """Why `how` is not what EXPECTED_HOW says, or None."""
    expected = expected_for(name, how)
    if isinstance(expected, dict):
        if not isinstance(how, dict) or set(how) != set(expected):
            return f"tries {sorted(how) if isinstance(how, dict) else how!r}, expected {sorted(expected)}"
        bad = {t: o for t, o in how.items() if o not in expected[t]}
        return f"{bad} (expected {({t: sorted(expected[t]) for t in bad})})" if bad else None
    outcomes = how.values() if isinstance(how, dict) else [how]
    bad = [o for o in outcomes if o not in expected]
    return f"{how} (expected each in {sorted(expected)})" if bad else None


PROBE_MARK_GLOBS = ["/.agentos-probe-*", "/usr/.agentos-probe-*", "/usr/bin/.agentos-probe-*",
                    "/etc/.agentos-probe-*", str(PROBES / ".agentos-probe-*")]


@pytest.fixture(autouse=True)
def _kernel_offers_spawn(kernel):
    require_spawn(kernel)


@pytest.fixture
def healthy(kernel):
    """A well-behaved neighbour echoing through its socket every 0.5 s."""
    r = spawn_ok(kernel, "victim", EXAMPLES_DIR / "healthy_agent.py",
                 limits={"memory": 64 * MiB, "max_pids": 16})
    wait_log(kernel, "victim", r["id"], "echo ok")
    yield r
    kill(kernel, id=r["id"])


@pytest.fixture
def listener():
    """A TCP listener on the host's 127.0.0.1 that no agent should reach."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        s.setblocking(False)
        yield s


@pytest.fixture
def abstract_listener():
    """An abstract unix socket listening on the host; its name lives in the
    host's network namespace, so no agent without the network may reach it."""
    name = f"agentos-hostile-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind("\0" + name)
        s.listen(8)
        s.setblocking(False)
        yield name, s


def accepted_any(listener_sock):
    try:
        conn, _ = listener_sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def beats(k, agent):
    return read_log(k, "victim", agent["id"]).count("echo ok")


def assert_healthy_still_served(k, agent, beats_before):
    e = entry(k, agent["id"])
    log = read_log(k, "victim", agent["id"])
    assert e["running"] is True, f"the healthy agent ended: {e}\n{log}"
    assert "stopped answering" not in log, log
    # Poll, not sleep: it beats every 0.5 s while the kernel serves it.
    wait_for(lambda: beats(k, agent) >= beats_before + 2, 30,
             what="the healthy agent to keep echoing")
    assert noop_ok(k)


def hostile_config(k, victim, port, abstract_name=None):
    canary = Path(k.tmpdir) / "canary.txt"
    canary.write_text("the kernel's temp dir must not be visible to agents\n")
    repo_files = [str(REPO_ROOT / f) for f in ("README.md", "CMakeLists.txt", "Makefile",
                                                 "tests/integration/kernel_harness.py")]
    sockets = sorted(p for p in glob.glob(f"{k.runtime_dir}/**", recursive=True)
                     if os.path.exists(p) and stat.S_ISSOCK(os.stat(p).st_mode))
    return {
        "port": port, "kernel_pid": k.pid, "repo_root": str(REPO_ROOT),
        "repo_files": [f for f in repo_files if os.path.exists(f)],
        "other_files": [str(log_path(k, "victim", victim["id"])),
                        str(EXAMPLES_DIR / "healthy_agent.py"), str(canary),
                        str(Path(k.log_path))],
        "other_dirs": [str(k.state_dir), str(k.runtime_dir), str(k.tmpdir)],
        "other_sockets": sockets,  # the victim's; inside, the operator path is the probe's own
        "victim_name": "victim",
        "operator_socket": str(k.socket_path),
        "abstract_name": abstract_name,
    }


def test_hostile_probe_is_contained(kernel, healthy, listener, abstract_listener):
    name, abstract_sock = abstract_listener
    cfg = hostile_config(kernel, healthy, listener.getsockname()[1], name)
    assert cfg["other_sockets"], f"no agent socket found under {kernel.runtime_dir}"
    before = beats(kernel, healthy)
    r = spawn_ok(kernel, "hostile", PROBES / "hostile.py", args=[json.dumps(cfg)])
    assert r["sandboxed"] is True
    e = wait_ended(kernel, r["id"], timeout=120)
    log = read_log(kernel, "hostile", r["id"])
    assert (e["status"], e["exit_code"]) == ("exited", 0), f"the probe did not finish: {e}\n{log}"
    lines = json_lines(log)
    assert {"done": len(ATTEMPTS)} in lines, f"the probe did not report every attempt:\n{log}"
    results = {x["attempt"]: x for x in lines if "attempt" in x}
    assert set(results) == ATTEMPTS, set(results) ^ ATTEMPTS

    wrong = [f"{name}: blocked={x['blocked']} detail={x['detail']}"
             for name, x in sorted(results.items())
             if x["blocked"] is not (name not in MUST_SUCCEED)]
    assert not wrong, "attempts with the wrong outcome:\n  " + "\n  ".join(wrong)
    wrong_hows = [f"{name}: {why}" for name, x in sorted(results.items())
                  if (why := wrong_how(name, x["how"]))]
    assert not wrong_hows, "attempts blocked the wrong way:\n  " + "\n  ".join(wrong_hows)

    assert not accepted_any(listener), "an agent reached the host's TCP listener"
    assert not accepted_any(abstract_sock), "an agent reached the host's abstract unix socket"
    left = [p for g in PROBE_MARK_GLOBS for p in glob.glob(g)]
    assert not left, f"the probe left files on the host: {left}"
    assert_healthy_still_served(kernel, healthy, before)


def test_network_true_reaches_host_listener(kernel, listener):
    # The control for tcp_host_listener above: with "network": true the same
    # connection works, so the probe's failure is the sandbox's doing.
    port = listener.getsockname()[1]
    results = {}
    for network in (False, True):
        name = f"net-{str(network).lower()}"
        r = spawn_ok(kernel, name, PROBES / "net_connect.py", network=network,
                     args=["127.0.0.1", str(port)])
        assert r["network"] is network
        e = wait_ended(kernel, r["id"])
        log = read_log(kernel, name, r["id"])
        assert (e["status"], e["exit_code"]) == ("exited", 0), f"{e}\n{log}"
        results[network] = [x for x in json_lines(log) if "connected" in x][0]
    assert results[False]["connected"] is False, results
    assert results[True]["connected"] is True, results
    listener.setblocking(True)
    listener.settimeout(5)
    conn, _ = listener.accept()
    with conn:
        assert conn.recv(64).startswith(b"hello from an agent")


def test_network_true_still_cannot_reach_host_abstract_sockets(kernel, abstract_listener):
    # With "network": true the agent shares the host's network namespace, so
    # the host's abstract names are there to find; Landlock's scope (ABI 6+)
    # is what refuses the connection (EPERM). With the network off the name
    # is simply not in the agent's namespace (ECONNREFUSED).
    name, sock = abstract_listener
    seen = {}
    for network in (True, False):
        agent = f"abstract-{str(network).lower()}"
        r = spawn_ok(kernel, agent, PROBES / "net_connect.py", network=network, args=["@" + name])
        scoped = r.get("enforced", {}).get("sandbox", {}).get("landlock", {}).get("scoped")
        if network and not isinstance(scoped, list):
            pytest.skip(f"no Landlock scopes on this kernel (ABI 6+): {scoped}")
        e = wait_ended(kernel, r["id"])
        log = read_log(kernel, agent, r["id"])
        assert (e["status"], e["exit_code"]) == ("exited", 0), f"{e}\n{log}"
        seen[network] = next(x for x in json_lines(log) if "connected" in x)
    assert seen[True]["connected"] is False and seen[True]["errno"] == "EPERM", seen
    assert seen[False]["connected"] is False and seen[False]["errno"] == "ECONNREFUSED", seen
    assert not accepted_any(sock)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as control:
        control.connect("\0" + name)  # the name is there for the host itself


def test_huge_args_are_handled(kernel):
    # ~900 KiB of arguments in one SPAWN: either run with argv intact or
    # refused naming 'args'; the kernel keeps serving either way.
    args = [f"{i:06d}-" + "x" * 1000 for i in range(900)]
    r = spawn(kernel, "huge-args", PROBES / "report_env.py", args=args)
    if r.get("status") == "running":
        e = wait_ended(kernel, r["id"])
        # The probe prints one ~900 KiB line, which the log stores split into
        # lines of at most 16 KiB: join them back.
        report = json.loads("".join(log_texts(read_log(kernel, "huge-args", r["id"]))))["report"]
        assert e["exit_code"] == 0 and report["argv"][2:] == args, e
    else:
        assert "args" in r.get("error", ""), r
    assert noop_ok(kernel)


def test_spawn_over_the_frame_limit_is_refused_by_framing(kernel):
    # Arguments totalling more than 1 MiB cannot even be asked for: the frame
    # limit answers one error from the header alone and closes that
    # connection, before any JSON is read. Nothing is spawned.
    body = json.dumps({"name": "too-big", "script": str(PROBES / "report_env.py"),
                       "args": ["x" * 1000] * 1100}).encode()
    assert len(body) > MAX_PAYLOAD
    with kernel.raw() as conn:
        try:
            conn.send_frame(SPAWN, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still writing: what we want
        frame = conn.recv_frame()
        assert frame.opcode == SPAWN and "exceeds the limit" in json.loads(frame.payload)["error"], frame
        assert conn.is_closed_by_peer()
    assert "too-big" not in [a["name"] for a in list_agents(kernel, all=True)]
    assert noop_ok(kernel)


@pytest.mark.parametrize("args", [
    ["y" * (200 * 1024)],   # one string over MAX_ARG_STRLEN (128 KiB)
    [""] * 300_000,         # 300,000 pointers: 2.4 MB of argv[] alone, over ARG_MAX
], ids=["one-long-arg", "many-args"])
def test_args_near_arg_max_get_a_clear_error(kernel, args):
    # Both fit in one frame but not in execve(): the SPAWN reply says what
    # failed (E2BIG from the exec, as "Argument list too long", or a refusal
    # naming 'args'), no agent is left running, and the kernel keeps serving.
    name = f"argmax-{len(args)}"
    body = json.dumps({"name": name, "script": str(PROBES / "report_env.py"), "args": args},
                      separators=(",", ":")).encode()
    assert len(body) < MAX_PAYLOAD
    # execve's limit for argv + envp is a quarter of the stack limit the
    # agent inherits (at most 6 MiB): 8 MiB here, so 2 MiB, 262,144 pointers.
    stack = stack_limit(kernel.pid)
    if len(args) > 1 and len(args) * 8 <= min(stack // 4, 6 * MiB):
        pytest.skip(f"the kernel's stack limit ({stack} bytes) lets {len(args)} arguments through")
    r = call(kernel, SPAWN, body)
    error = r.get("error", "")
    assert "Argument list too long" in error or "args" in error, r
    assert [a for a in list_agents(kernel, all=True) if a["name"] == name and a["running"]] == []
    assert noop_ok(kernel)


def stack_limit(pid):
    """The soft RLIMIT_STACK of a process, in bytes (2**63 for unlimited)."""
    with open(f"/proc/{pid}/limits") as f:
        soft = next(line.split()[3] for line in f if line.startswith("Max stack size"))
    return 2**63 if soft == "unlimited" else int(soft)


@pytest.mark.parametrize("key", ["A=B", "A\0B", "=", ""], ids=["equals", "nul", "only-equals", "empty"])
def test_env_key_that_execve_would_misread_is_refused(kernel, key):
    # execve's environment is "KEY=VALUE" strings: a '=' in the key would
    # shift the split, a NUL would cut it. Refused by name, before any fork.
    r = call(kernel, SPAWN, {"name": "bad-env", "script": str(PROBES / "report_env.py"),
                             "env": {key: "v"}})
    assert "invalid field 'env." in r.get("error", ""), r
    assert "bad-env" not in [a["name"] for a in list_agents(kernel, all=True)]


def first_json_with(k, name, agent_id, key):
    found = [x[key] for x in json_lines(read_log(k, name, agent_id)) if key in x]
    return found[0] if found else None


def test_kill_all_from_inside_stays_in_its_namespace(kernel, healthy):
    # kill(-1, SIGKILL) reaches every process the caller may signal. A host
    # process under the agent's very uid is out of reach only because of the
    # pid namespace: so the test starts one and checks it survives, while the
    # agent's own children (same namespace) die, proving the call did act.
    before = beats(kernel, healthy)
    r = spawn_ok(kernel, "killer", PROBES / "kill_all.py", args=["3"], limits={"max_pids": 16})
    ready = wait_for(lambda: first_json_with(kernel, "killer", r["id"], "ready"), AGENT_TIMEOUT_S,
                     what="the killer to be ready")
    agent_pids = pids_of_uid(ready["uid"])  # the init runs as root: only the agent has this uid
    assert len(agent_pids) == 1, agent_pids
    bystander = subprocess.Popen(["/bin/sleep", "600"], user=ready["uid"], group=ready["uid"],
                                 stdin=subprocess.DEVNULL)
    try:
        os.kill(agent_pids[0], signal.SIGUSR1)
        e = wait_ended(kernel, r["id"])
        log = read_log(kernel, "killer", r["id"])
        assert (e["status"], e["exit_code"]) == ("exited", 0), f"{e}\n{log}"
        result = first_json_with(kernel, "killer", r["id"], "kill_all")
        assert result and result["result"] == "ok" and result["children_killed"] == 3, log
        assert bystander.poll() is None, "kill(-1) inside the sandbox killed a host process of its uid"
    finally:
        bystander.kill()
        bystander.wait()
    assert kernel.running()
    assert_healthy_still_served(kernel, healthy, before)


def fd_identity(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def fd_table(pid):
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            pass
    return out


def assert_output_goes_to_the_kernel(k, name, agent_id, targets):
    """fds 1 and 2 are the agent's log file, or pipes whose other end the
    kernel holds (it timestamps the lines into the log); nothing else."""
    kernel_pipes = {t for t in fd_table(k.pid).values() if t.startswith("pipe:[")}
    log = str(log_path(k, name, agent_id))
    for fd in (1, 2):
        assert targets[fd] == log or targets[fd] in kernel_pipes, (
            f"fd {fd} -> {targets[fd]}: neither {log} nor a pipe of the kernel's {sorted(kernel_pipes)}")


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "unsandboxed"])
def test_agent_inherits_nothing_but_stdio(kernel, sandboxed):
    # The kernel holds sockets, its epoll, log files, pipes of other spawns:
    # none may leak into an agent. Before it opens anything, the agent sees
    # fd 0 = /dev/null and fds 1, 2 = its output, plus what a bare Python
    # holds for itself (measured by the probe: nothing, on this interpreter).
    name = f"fds-{'sb' if sandboxed else 'plain'}"
    r = spawn_ok(kernel, name, PROBES / "list_fds.py", sandboxed=sandboxed, args=["--stay"])
    try:
        wait_log(kernel, name, r["id"], '"fds"')
        rep = next(x for x in json_lines(read_log(kernel, name, r["id"])) if "fds" in x)
        fds = {int(fd): info for fd, info in rep["fds"].items()}
        assert set(fds) == {0, 1, 2} | set(rep["python_fds"]), fds
        assert rep["python_fds"] == [], rep
        assert (fds[0]["dev"], fds[0]["ino"]) == fd_identity("/dev/null"), fds
        assert_output_goes_to_the_kernel(kernel, name, r["id"], {fd: fds[fd]["target"] for fd in (1, 2)})
        if sandboxed:
            # The init is root; the ptrace check closes its fds to the agent.
            assert rep["init_fds"] == "EACCES", rep
    finally:
        kill(kernel, id=r["id"])


def test_sandbox_init_holds_only_its_report_pipe(kernel):
    # Seen from the host (as root): the namespace's init keeps exactly one fd,
    # the write end of the pipe whose read end the kernel holds for the
    # agent's exit status. No socket, log or epoll fd of the kernel's. The
    # agent under it holds its stdio only.
    r = spawn_ok(kernel, "fd-init", PROBES / "sleeper.py")
    try:
        wait_log(kernel, "fd-init", r["id"], "ready")
        init_fds = fd_table(r["pid"])
        assert len(init_fds) == 1, init_fds
        (target,) = init_fds.values()
        assert target.startswith("pipe:["), init_fds
        assert target in fd_table(kernel.pid).values(), "the init's pipe is not the kernel's report pipe"
        (agent,) = [pid for pid, _ in children_of(r["pid"])]
        agent_fds = fd_table(agent)
        assert set(agent_fds) == {0, 1, 2} and agent_fds[0] == "/dev/null", agent_fds
        assert_output_goes_to_the_kernel(kernel, "fd-init", r["id"], agent_fds)
    finally:
        kill(kernel, id=r["id"])


def test_fork_bomb_is_contained(kernel, healthy):
    instance = instance_of(kernel)
    before = beats(kernel, healthy)
    r = spawn_ok(kernel, "bomb", PROBES / "fork_bomb.py", limits={"max_pids": 16, "memory": 256 * MiB})
    assert r["limits"].get("max_pids") == 16, r
    samples = []

    def sample_until_refused():
        e = entry(kernel, r["id"])
        samples.append(e["pids"])
        assert e["running"], f"the bomb ended by itself: {e}"
        assert noop_ok(kernel)
        return "fork refused" in read_log(kernel, "bomb", r["id"])

    wait_for(sample_until_refused, 60, interval=0.05, what="the pids limit to refuse a fork")
    for _ in range(20):  # keep watching while the bomb retries at the limit
        sample_until_refused()
        time.sleep(0.05)
    assert max(samples) <= 16, f"LIST pids went above max_pids=16: {samples}"
    assert max(samples) >= 8, f"the bomb never grew (pids {samples}): is it running?"

    assert kill(kernel, id=r["id"], timeout_ms=1000) == {"killed": True}
    e = entry(kernel, r["id"])
    assert e["running"] is False and e["status"] == "killed", e
    assert pids_of_uid(UID_BASE + r["id"]) == [], "bomb processes survived KILL"
    wait_for(lambda: [d for d in instance_cgroup_dirs(instance) if d.endswith(f"agent-{r['id']}")] == [],
             5, what="the bomb's cgroup to be removed")
    assert "bomb" not in [a["name"] for a in list_agents(kernel)]
    assert_healthy_still_served(kernel, healthy, before)
