"""Hostile agents (DESIGN.md §4): a probe that tries to break out of the
sandbox in every way we know of (tests/probes/hostile.py), and a fork bomb
under a pids limit. The kernel and a healthy neighbour must not notice.

Needs root. Helpers come from test_runtime.py.
"""

import glob
import json
import os
import socket
import stat
import time
from pathlib import Path

import pytest

from kernel_harness import EXAMPLES_DIR, REPO_ROOT, wait_for
from test_runtime import (MiB, PROBES, ROOT_REASON, UID_BASE, entry, instance_cgroup_dirs,
                          instance_of, json_lines, kill, list_agents, log_path, noop_ok,
                          pids_of_uid, read_log, require_spawn, spawn, spawn_ok, wait_ended,
                          wait_log)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason=ROOT_REASON)

# Every attempt hostile.py makes; all must be blocked except write_tmp.
ATTEMPTS = {
    "read_etc_shadow", "list_root_home", "list_home", "read_repo_files", "list_repo_root",
    "read_other_agent_files", "list_kernel_dirs", "connect_other_agent_socket",
    "kernel_api_as_operator", "write_usr", "write_usr_bin", "write_etc", "append_etc_passwd",
    "write_root_dir", "write_script_dir", "write_tmp", "tcp_host_listener", "tcp_internet",
    "udp_internet", "raw_socket", "see_host_processes", "signal_kernel", "sethostname", "mount",
    "ptrace_traceme", "ptrace_attach_pid1", "unshare_user", "unshare_net", "unshare_mount", "setns",
    "clone_newuser", "clone3_newuser", "bpf", "keyctl", "personality", "io_uring_setup",
    "perf_event_open", "userfaultfd", "kexec_load", "init_module", "pivot_root",
    "proc1_root_escape", "write_sys", "write_proc_sys", "devices", "capabilities",
    "setuid_binary", "setuid_root", "inherited_fds", "huge_argv",
}
MUST_SUCCEED = {"write_tmp"}
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


def hostile_config(k, victim, port):
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
    }


def test_hostile_probe_is_contained(kernel, healthy, listener):
    cfg = hostile_config(kernel, healthy, listener.getsockname()[1])
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

    assert not accepted_any(listener), "an agent reached the host's TCP listener"
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


def test_huge_args_are_handled(kernel):
    # ~900 KiB of arguments in one SPAWN: either run with argv intact or
    # refused naming 'args'; the kernel keeps serving either way.
    args = [f"{i:06d}-" + "x" * 1000 for i in range(900)]
    r = spawn(kernel, "huge-args", PROBES / "report_env.py", args=args)
    if r.get("status") == "running":
        e = wait_ended(kernel, r["id"])
        reports = [x["report"] for x in json_lines(read_log(kernel, "huge-args", r["id"]))
                   if "report" in x]
        assert e["exit_code"] == 0 and reports and reports[0]["argv"][2:] == args, e
    else:
        assert "args" in r.get("error", ""), r
    assert noop_ok(kernel)


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
