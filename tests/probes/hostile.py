#!/usr/bin/env python3
"""Hostile agent: tries, one by one, what a malicious agent would try to get
out of the AgentOS sandbox (DESIGN.md §4), and reports each attempt.

    hostile.py <socket> CONFIG_JSON

CONFIG_JSON (all optional): {"port": TCP port of a listener on the host,
"kernel_pid": host pid of the kernel, "repo_root": the repository,
"repo_files": host files outside the exposed dirs, "other_files": another
agent's log and script, files in the kernel's temp dir, "other_dirs": the
kernel's state and runtime dirs, "other_sockets": other agents' sockets,
"operator_socket": the kernel's operator socket path on the host,
"abstract_name": an abstract unix socket listening on the host (without the
leading NUL), "victim_name": another agent's name}.

Output: one JSON line per attempt,
    {"attempt": name, "blocked": true|false|null, "detail": ..., "how": ...}
(null means the probe itself failed). "how" says how the attempt ended: an
errno name ("EPERM"), "ok" when it worked, or for an attempt made of several
tries a {try: outcome} object (see probe_util.py). Then {"done": n_attempts}.
Every attempt runs in a forked child, so a seccomp kill or a crash ends only
that attempt (reported as blocked, how "signal N"). Exit status 0.

Never run it as root outside a sandbox: with euid 0 or any capability it
skips the attempts that would change the host (HOST_CHANGING) and reports
them as not blocked.
"""

import json
import os
import socket
import struct
import subprocess
import sys

import escape_fs
import escape_net
import escape_sys
from probe_util import MARK, err_name, none_worked, outcome, read_file


# Before anything opens a file: which fds besides 0, 1, 2 came from the kernel.
def _inherited_fds():
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the directory fd listdir used, closed by now
    return fds


INHERITED_FDS = _inherited_fds()


def _privileged():
    """True when running as root or with any effective capability."""
    with open("/proc/self/status") as f:
        cap_eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return os.geteuid() == 0 or cap_eff != 0


# A probe with privileges is not contained, and its attempts would then act on
# the host (mount over /tmp, set the hostname, ...). Those are not made; they
# are reported as not blocked, which fails the test anyway.
PRIVILEGED = _privileged()
HOST_CHANGING = {
    "write_usr", "write_usr_bin", "write_etc", "write_root_dir", "write_script_dir",
    "append_etc_passwd", "sethostname", "setuid_binary",
} | escape_fs.HOST_CHANGING | escape_sys.HOST_CHANGING | escape_net.HOST_CHANGING

HEADER = struct.Struct("<IIBQ")
MAGIC = 0x41474E54


def single(fn, what):
    """(blocked, detail, how) of one try: blocked when fn() raises OSError."""
    try:
        result = fn()
    except OSError as exc:
        return True, f"{what}: {err_name(exc)}", err_name(exc)
    return False, f"{what}: succeeded: {result!r}"[:300], "ok"


# -- files -------------------------------------------------------------------


def try_reads(paths):
    """Blocked when none of `paths` can be read."""
    return none_worked({p: outcome(lambda p=p: read_file(p)) for p in paths})


def try_list_empty(path):
    try:
        entries = os.listdir(path)
    except OSError as exc:
        return True, f"listdir {path}: {err_name(exc)}", err_name(exc)
    return not entries, f"listdir {path}: {sorted(entries)[:20]}", "empty" if not entries else "ok"


def try_create(directory):
    path = os.path.join(directory, MARK)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        return True, f"create {path}: {err_name(exc)}", err_name(exc)
    os.close(fd)
    os.unlink(path)  # leave nothing behind even when not blocked
    return False, f"created {path}", "ok"


def write_tmp():
    path = os.path.join("/tmp", MARK)
    try:
        with open(path, "w") as f:
            f.write("scratch")
        with open(path) as f:
            ok = f.read() == "scratch"
        os.unlink(path)
    except OSError as exc:
        return True, f"write {path}: {err_name(exc)}", err_name(exc)
    return (not ok), f"wrote and read back {path}: {ok}", "ok" if ok else "read back differs"


def repo_listing(cfg):
    """The repository root shows at most the paths leading to exposed dirs."""
    root = cfg.get("repo_root")
    if not root:
        return None, "no repo_root given", None
    exposed = [os.path.dirname(os.path.abspath(__file__))]
    exposed += [p for p in (os.environ.get("PYTHONPATH") or "").split(":") if p]
    allowed = {os.path.relpath(p, root).split(os.sep)[0] for p in exposed
               if os.path.abspath(p).startswith(root.rstrip("/") + "/")}
    try:
        entries = set(os.listdir(root))
    except OSError as exc:
        return True, f"listdir {root}: {err_name(exc)}", err_name(exc)
    hidden = entries <= allowed
    return hidden, f"listdir {root}: {sorted(entries)} (allowed: {sorted(allowed)})", (
        "only exposed dirs" if hidden else "ok")


def own_socket_path_names(d):
    """Entries of `d` that only lead to our own socket (argv[1]), which the
    sandbox may place at the operator socket's path, inside the kernel's dirs."""
    own = os.path.abspath(sys.argv[1])
    if not own.startswith(d.rstrip("/") + "/"):
        return set()
    return {os.path.relpath(own, d).split(os.sep)[0]}


def other_dirs(cfg):
    """The kernel's temp, state and runtime dirs show nothing but our socket."""
    how, details = {}, []
    for d in cfg.get("other_dirs", []):
        try:
            entries = set(os.listdir(d))
        except OSError as exc:
            how[d] = err_name(exc)
            continue
        how[d] = "only own socket" if not entries - own_socket_path_names(d) else "ok"
        details.append(f"listdir {d}: {sorted(entries)[:10]}")
    return all(o != "ok" for o in how.values()), {"how": how, "listings": details}, how


def other_sockets(cfg):
    def connect(path):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            s.connect(path)
    return none_worked({p: outcome(lambda p=p: connect(p)) for p in cfg.get("other_sockets", [])})


# -- the kernel's API from inside --------------------------------------------


def frame_call(sock, opcode, payload, claimed_id=0):
    sock.sendall(HEADER.pack(MAGIC, claimed_id, opcode, len(payload)) + payload)
    _, agent_id, _, size = HEADER.unpack(escape_net.recv_exact(sock, HEADER.size))
    return agent_id, escape_net.recv_exact(sock, size)


def kernel_api(cfg, path):
    """Claiming to be the operator (agent_id 0) changes nothing: replies carry
    our id, LIST shows none of the other agents, KILL of another agent fails."""
    own = int(os.environ.get("AGENTOS_AGENT_ID", "-1"))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        id_noop, _ = frame_call(s, 0x00, b"x", claimed_id=0)
        _, listed = frame_call(s, 0x12, json.dumps({"all": True}).encode(), claimed_id=0)
        victim = cfg.get("victim_name", "victim")
        _, killed = frame_call(s, 0x11, json.dumps({"name": victim}).encode(), claimed_id=0)
    names = [a.get("name") for a in json.loads(listed)]
    kill_reply = json.loads(killed)
    how = {"reply carries": "own id" if id_noop == own else f"id {id_noop}",
           "LIST all": "victim not listed" if victim not in names else "ok",
           "KILL victim": "not killed" if kill_reply.get("killed") is False else "ok"}
    blocked = all(o != "ok" and not o.startswith("id ") for o in how.values())
    return blocked, {"own_id": own, "reply_agent_id": id_noop, "list_all_names": names,
                     "kill_victim": kill_reply}, how


# -- processes and privileges ---------------------------------------------------


def host_processes(cfg):
    pids = sorted(int(d) for d in os.listdir("/proc") if d.isdigit())
    kernel_pid = cfg.get("kernel_pid")
    hidden = len(pids) <= 10 and kernel_pid not in pids
    return hidden, f"pids in /proc: {pids[:40]}", "not visible" if hidden else "ok"


def signal_kernel(cfg):
    kernel_pid = cfg.get("kernel_pid")
    if not kernel_pid:
        return None, "no kernel_pid given", None
    return single(lambda: os.kill(kernel_pid, 0), f"kill({kernel_pid}, 0)")


def sethostname():
    before = socket.gethostname()
    blocked, detail, how = single(lambda: socket.sethostname("pwned"), "sethostname")
    return blocked, f"{detail}; hostname {before!r} -> {socket.gethostname()!r}", how


def proc1_root(cfg):
    """Host files through the init's root or the kernel's: the ptrace check
    closes /proc/1/root to us, and the kernel's pid does not exist here."""
    paths = ["/proc/1/root/etc/shadow"]
    paths += ["/proc/1/root" + p for p in cfg.get("repo_files", [])]
    if cfg.get("kernel_pid"):
        paths.append(f"/proc/{cfg['kernel_pid']}/root/etc/shadow")
    return try_reads(paths)


def status_fields():
    with open("/proc/self/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def capabilities():
    st = status_fields()
    caps = {k: int(st.get(k, "f"), 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    facts = {**{k: hex(v) for k, v in caps.items()}, "NoNewPrivs": st.get("NoNewPrivs"),
             "Seccomp": st.get("Seccomp"), "Uid": st.get("Uid"), "Gid": st.get("Gid"),
             "Groups": st.get("Groups")}
    ok = (not any(caps.values()) and st.get("NoNewPrivs") == "1" and st.get("Seccomp") == "2"
          and os.getuid() != 0 and os.geteuid() != 0)
    return ok, facts, "none" if ok else "ok"


def euid_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[2])
    except OSError:
        return None
    return None


def run_setuid(argv):
    """Outcome of running a setuid program: "not root" unless it became root."""
    if not os.path.exists(argv[0]):
        return "ENOENT", f"{argv[0]}: absent"
    try:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    except OSError as exc:
        return err_name(exc), f"{argv[0]}: exec {err_name(exc)}"
    euid = euid_of(p.pid)  # Popen returns after execve: this is the setuid image's euid
    try:
        out, _ = p.communicate(b"\n", timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    root = euid == 0 or p.returncode == 0 or b"\n0\n" in b"\n" + out
    return ("ok" if root else "not root"), (f"{argv[0]}: euid while running {euid}, "
                                            f"exit {p.returncode}, output {out[:120]!r}")


def setuid_binaries():
    """With no_new_privs (and nosuid binds) the setuid bit makes nothing root."""
    how, details = {}, []
    for argv in (["/usr/bin/su", "root", "-c", "id -u"], ["/bin/mount", "-t", "tmpfs", "none", "/tmp"]):
        how[argv[0]], detail = run_setuid(argv)
        details.append(detail)
    return all(o != "ok" for o in how.values()), details, how


def extra_fds():
    return not INHERITED_FDS, {str(k): v for k, v in INHERITED_FDS.items()}, (
        "none" if not INHERITED_FDS else "ok")


def huge_argv():
    argv = ["/bin/true"] + ["x" * 63] * 200_000  # 12.8 MB, far over ARG_MAX
    return single(lambda: subprocess.run(argv, check=False).returncode, "exec with 12.8 MB argv")


# -- driver ---------------------------------------------------------------------


def file_attempts(cfg, script_dir):
    return [
        ("read_etc_shadow", lambda: single(lambda: read_file("/etc/shadow"), "read /etc/shadow")),
        ("list_root_home", lambda: try_list_empty("/root")),
        ("list_home", lambda: try_list_empty("/home")),
        ("read_repo_files", lambda: try_reads(cfg.get("repo_files", []))),
        ("list_repo_root", lambda: repo_listing(cfg)),
        ("read_other_agent_files", lambda: try_reads(cfg.get("other_files", []))),
        ("list_kernel_dirs", lambda: other_dirs(cfg)),
        ("connect_other_agent_socket", lambda: other_sockets(cfg)),
        ("kernel_api_as_operator", lambda: kernel_api(cfg, sys.argv[1])),
        ("write_usr", lambda: try_create("/usr")),
        ("write_usr_bin", lambda: try_create("/usr/bin")),
        ("write_etc", lambda: try_create("/etc")),
        ("append_etc_passwd", lambda: single(lambda: open("/etc/passwd", "ab").close(),
                                             "append /etc/passwd")),
        ("write_root_dir", lambda: try_create("/")),
        ("write_script_dir", lambda: try_create(script_dir)),
        ("write_tmp", write_tmp),
        ("proc1_root_escape", lambda: proc1_root(cfg)),
    ]


def process_attempts(cfg):
    return [
        ("see_host_processes", lambda: host_processes(cfg)),
        ("signal_kernel", lambda: signal_kernel(cfg)),
        ("sethostname", sethostname),
        ("capabilities", capabilities),
        ("setuid_binary", setuid_binaries),
        ("inherited_fds", extra_fds),
        ("huge_argv", huge_argv),
    ]


def attempts(cfg):
    script = os.path.abspath(__file__)
    return (file_attempts(cfg, os.path.dirname(script)) + escape_fs.attempts(cfg, script)
            + process_attempts(cfg) + escape_sys.attempts() + escape_net.attempts(cfg, sys.argv[1]))


def run_attempt(name, fn):
    """Runs fn() in a forked child; returns the report line as a dict."""
    if PRIVILEGED and name in HOST_CHANGING:
        return {"attempt": name, "blocked": False, "how": "not attempted",
                "detail": "not attempted: the probe runs with euid 0 or capabilities, so it is "
                          "not contained, and this attempt would change the host"}
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            blocked, detail, how = fn()
        except BaseException as exc:  # noqa: BLE001 - a bug in the probe, reported as such
            blocked, detail, how = None, f"probe error: {type(exc).__name__}: {exc}", None
        os.write(w, json.dumps({"blocked": blocked, "detail": detail, "how": how}, default=str).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if data:
        result = json.loads(data)
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        result = {"blocked": True, "detail": f"attempt killed by signal {sig}", "how": f"signal {sig}"}
    else:
        result = {"blocked": None, "detail": f"attempt ended with status {status} and no report",
                  "how": None}
    return {"attempt": name, **result}


def main(argv):
    cfg = json.loads(argv[2]) if len(argv) > 2 else {}
    todo = attempts(cfg)
    for name, fn in todo:
        print(json.dumps(run_attempt(name, fn), default=str), flush=True)
    print(json.dumps({"done": len(todo)}), flush=True)


if __name__ == "__main__":
    main(sys.argv)
