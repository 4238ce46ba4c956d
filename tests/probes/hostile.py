#!/usr/bin/env python3
"""Hostile agent: tries, one by one, what a malicious agent would try to get
out of the AgentOS sandbox (DESIGN.md §4), and reports each attempt.

    hostile.py <socket> CONFIG_JSON

CONFIG_JSON (all optional): {"port": TCP port of a listener on the host,
"kernel_pid": host pid of the kernel, "repo_root": the repository,
"repo_files": host files outside the exposed dirs, "other_files": another
agent's log and script, files in the kernel's temp dir, "other_dirs": the
kernel's state and runtime dirs, "victim_name": another agent's name}.

Output: one JSON line per attempt,
    {"attempt": name, "blocked": true|false|null, "detail": ...}
(null means the probe itself failed), then {"done": n_attempts}. Every
attempt runs in a forked child, so a seccomp kill or a crash ends only that
attempt (reported as blocked, with the signal). Exit status 0.

Never run it as root outside a sandbox: with euid 0 or any capability it
skips the attempts that would change the host (HOST_CHANGING) and reports
them as not blocked.
"""

import ctypes
import errno
import json
import os
import platform
import signal
import socket
import struct
import subprocess
import sys
import time

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
    "sethostname", "mount", "ptrace_attach_pid1", "keyctl", "kexec_load", "init_module",
    "pivot_root", "write_sys", "write_proc_sys", "devices", "setuid_binary",
}

HEADER = struct.Struct("<IIBQ")
MAGIC = 0x41474E54
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
SYSCALLS = {  # name: (x86_64, aarch64)
    "ptrace": (101, 117), "unshare": (272, 97), "setns": (308, 268), "bpf": (321, 280),
    "keyctl": (250, 219), "add_key": (248, 217), "personality": (135, 92),
    "io_uring_setup": (425, 425), "clone3": (435, 435), "clone": (56, 220),
    "perf_event_open": (298, 241), "userfaultfd": (323, 282), "kexec_load": (246, 104),
    "init_module": (175, 105), "pivot_root": (155, 41),
}
ARCH = 0 if platform.machine() == "x86_64" else 1
LIBC = ctypes.CDLL(None, use_errno=True)
MARK = f".agentos-probe-{os.getpid()}-{int(time.time() * 1000)}"


def sys_call(name, *args):
    """Raw syscall; returns (result, errno name or None)."""
    argv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    ctypes.set_errno(0)
    res = LIBC.syscall(ctypes.c_long(SYSCALLS[name][ARCH]), *argv)
    err = ctypes.get_errno()
    return res, (errno.errorcode.get(err, str(err)) if res == -1 else None)


def err_name(exc):
    return errno.errorcode.get(getattr(exc, "errno", None) or 0, type(exc).__name__)


def blocked_if_raises(fn, what):
    try:
        result = fn()
    except OSError as exc:
        return True, f"{what}: {err_name(exc)}"
    return False, f"{what}: succeeded: {result!r}"[:300]


def syscall_blocked(name, *args, on_success=None):
    res, err = sys_call(name, *args)
    if res == -1:
        return True, f"{name}: -1 {err}"
    if on_success:
        on_success(res)
    return False, f"{name}: returned {res}"


# -- files -------------------------------------------------------------------


def read_file(path):
    with open(path, "rb") as f:
        return f"read {len(f.read(4096))} bytes"


def try_reads(paths):
    """Blocked when none of `paths` can be read."""
    results = {p: blocked_if_raises(lambda p=p: read_file(p), "read") for p in paths}
    return all(b for b, _ in results.values()), {p: d for p, (b, d) in results.items()}


def try_list_empty(path):
    try:
        entries = os.listdir(path)
    except OSError as exc:
        return True, f"listdir {path}: {err_name(exc)}"
    return not entries, f"listdir {path}: {sorted(entries)[:20]}"


def try_create(directory):
    path = os.path.join(directory, MARK)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        return True, f"create {path}: {err_name(exc)}"
    os.close(fd)
    os.unlink(path)  # leave nothing behind even when not blocked
    return False, f"created {path}"


def try_append(path):
    return blocked_if_raises(lambda: open(path, "ab").close(), f"open {path} for append")


def write_tmp():
    path = os.path.join("/tmp", MARK)
    try:
        with open(path, "w") as f:
            f.write("scratch")
        with open(path) as f:
            ok = f.read() == "scratch"
        os.unlink(path)
    except OSError as exc:
        return True, f"write {path}: {err_name(exc)}"
    return (not ok), f"wrote and read back {path}: {ok}"


def repo_listing(cfg):
    """The repository root shows at most the paths leading to exposed dirs."""
    root = cfg.get("repo_root")
    if not root:
        return None, "no repo_root given"
    exposed = [os.path.dirname(os.path.abspath(__file__))]
    exposed += [p for p in (os.environ.get("PYTHONPATH") or "").split(":") if p]
    allowed = {os.path.relpath(p, root).split(os.sep)[0] for p in exposed
               if os.path.abspath(p).startswith(root.rstrip("/") + "/")}
    try:
        entries = set(os.listdir(root))
    except OSError as exc:
        return True, f"listdir {root}: {err_name(exc)}"
    return entries <= allowed, f"listdir {root}: {sorted(entries)} (allowed: {sorted(allowed)})"


def own_socket_path_names(d):
    """Entries of `d` that only lead to our own socket (argv[1]), which the
    sandbox may place at the operator socket's path, inside the kernel's dirs."""
    own = os.path.abspath(sys.argv[1])
    if not own.startswith(d.rstrip("/") + "/"):
        return set()
    return {os.path.relpath(own, d).split(os.sep)[0]}


def other_dirs(cfg):
    """The kernel's temp, state and runtime dirs show nothing but our socket."""
    details, blocked = [], True
    for d in cfg.get("other_dirs", []):
        try:
            entries = set(os.listdir(d))
        except OSError as exc:
            details.append(f"listdir {d}: {err_name(exc)}")
            continue
        exposed = entries - own_socket_path_names(d)
        blocked = blocked and not exposed
        details.append(f"listdir {d}: {sorted(entries)[:10]}")
    return blocked, details


def other_sockets(cfg):
    details, blocked = [], True
    for path in cfg.get("other_sockets", []):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(3)
                s.connect(path)
            details.append(f"connect {path}: connected")
            blocked = False
        except OSError as exc:
            details.append(f"connect {path}: {err_name(exc)}")
    return blocked, details


# -- the kernel's API from inside --------------------------------------------


def frame_call(sock, opcode, payload, claimed_id=0):
    sock.sendall(HEADER.pack(MAGIC, claimed_id, opcode, len(payload)) + payload)
    _, agent_id, _, size = HEADER.unpack(recv_exact(sock, HEADER.size))
    return agent_id, recv_exact(sock, size)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


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
    blocked = id_noop == own and victim not in names and kill_reply.get("killed") is False
    return blocked, {"own_id": own, "reply_agent_id": id_noop, "list_all_names": names,
                     "kill_victim": kill_reply}


# -- network -------------------------------------------------------------------


def tcp_connect(host, port):
    def go():
        with socket.create_connection((host, port), timeout=3):
            return "connected"
    return blocked_if_raises(go, f"tcp connect {host}:{port}")


def udp_send(host, port):
    def go():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            return s.sendto(b"\0" * 12, (host, port))
    return blocked_if_raises(go, f"udp sendto {host}:{port}")


def raw_sockets():
    results = [blocked_if_raises(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW,
                                                       socket.IPPROTO_ICMP).close(), "AF_INET SOCK_RAW"),
               blocked_if_raises(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close(),
                                 "AF_PACKET")]
    return all(b for b, _ in results), [d for _, d in results]


# -- processes and privileges ---------------------------------------------------


def host_processes(cfg):
    pids = sorted(int(d) for d in os.listdir("/proc") if d.isdigit())
    kernel_pid = cfg.get("kernel_pid")
    return len(pids) <= 10 and kernel_pid not in pids, f"pids in /proc: {pids[:40]}"


def signal_kernel(cfg):
    kernel_pid = cfg.get("kernel_pid")
    if not kernel_pid:
        return None, "no kernel_pid given"
    return blocked_if_raises(lambda: os.kill(kernel_pid, 0), f"kill({kernel_pid}, 0)")


def sethostname():
    before = socket.gethostname()
    res = LIBC.sethostname(b"pwned", 5)
    err = errno.errorcode.get(ctypes.get_errno(), "?")
    return res == -1, f"sethostname: {res} {err if res else ''}; hostname {before!r} -> {socket.gethostname()!r}"


def mount_tmpfs():
    os.makedirs("/tmp/mnt-" + MARK, exist_ok=True)
    res = LIBC.mount(b"none", ("/tmp/mnt-" + MARK).encode(), b"tmpfs", ctypes.c_ulong(0), None)
    err = errno.errorcode.get(ctypes.get_errno(), "?")
    return res == -1, f"mount tmpfs: {res} {err if res else ''}"


def clone_child_exit(res):
    if res == 0:
        os._exit(0)  # we are the clone: leave at once
    os.waitpid(res, 0)


def clone_newuser():
    return syscall_blocked("clone", CLONE_NEWUSER | signal.SIGCHLD, 0, 0, 0, 0,
                           on_success=clone_child_exit)


def clone3_newuser():
    args = ctypes.create_string_buffer(struct.pack("<8Q", CLONE_NEWUSER, 0, 0, 0, signal.SIGCHLD,
                                                   0, 0, 0), 64)
    res, err = sys_call("clone3", ctypes.cast(args, ctypes.c_void_p), 64)
    if res != -1:
        clone_child_exit(res)
        return False, f"clone3(CLONE_NEWUSER): returned {res}"
    return err == "ENOSYS", f"clone3(CLONE_NEWUSER): -1 {err} (ENOSYS expected)"


def bpf_map_create():
    attr = ctypes.create_string_buffer(struct.pack("<4I", 2, 4, 4, 1), 128)  # BPF_MAP_TYPE_ARRAY
    return syscall_blocked("bpf", 0, ctypes.cast(attr, ctypes.c_void_p), 128, on_success=os.close)


def keyctl_calls():
    a = syscall_blocked("keyctl", 0, -3, 1)  # KEYCTL_GET_KEYRING_ID(session, create)
    b = syscall_blocked("add_key", ctypes.c_char_p(b"user"), ctypes.c_char_p(b"probe"),
                        ctypes.c_char_p(b"secret"), 6, -3)
    return a[0] and b[0], [a[1], b[1]]


def personality():
    def restore(old):
        sys_call("personality", old)
    return syscall_blocked("personality", 0x0040000, on_success=restore)


def io_uring_setup():
    params = ctypes.create_string_buffer(120)
    return syscall_blocked("io_uring_setup", 1, ctypes.cast(params, ctypes.c_void_p), on_success=os.close)


def perf_event_open():
    flags = (1 << 0) | (1 << 5) | (1 << 6)  # disabled, exclude_kernel, exclude_hv
    attr = ctypes.create_string_buffer(struct.pack("<IIQQQQQ", 1, 128, 0, 0, 0, 0, flags), 128)
    return syscall_blocked("perf_event_open", ctypes.cast(attr, ctypes.c_void_p), 0, -1, -1, 0,
                           on_success=os.close)


def userfaultfd():
    return syscall_blocked("userfaultfd", os.O_CLOEXEC | 1, on_success=os.close)  # UFFD_USER_MODE_ONLY


def setns_own_net():
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        return syscall_blocked("setns", fd, 0)
    finally:
        os.close(fd)


def ptrace_attach_init():
    def detach(_):
        sys_call("ptrace", 17, 1, 0, 0)  # PTRACE_DETACH
    return syscall_blocked("ptrace", 16, 1, 0, 0, on_success=detach)  # PTRACE_ATTACH


def proc1_root(cfg):
    paths = ["/proc/1/root/etc/shadow"]
    paths += ["/proc/1/root" + p for p in cfg.get("repo_files", [])]
    if cfg.get("kernel_pid"):
        paths.append(f"/proc/{cfg['kernel_pid']}/root/etc/shadow")
    return try_reads(paths)


def write_sys():
    targets = ["/sys/kernel/mm/transparent_hugepage/enabled", "/sys/fs/cgroup/memory/cgroup.procs",
               "/sys/fs/cgroup/pids/cgroup.procs", "/sys/fs/cgroup/cgroup.procs",
               "/sys/kernel/uevent_helper"]
    results = [try_append(t) for t in targets]
    results.append(blocked_if_raises(lambda: os.mkdir("/sys/fs/cgroup/memory/" + MARK), "mkdir cgroup"))
    return all(b for b, _ in results), [d for _, d in results]


def write_proc_sys():
    results = [try_append(p) for p in ("/proc/sys/kernel/hostname", "/proc/sysrq-trigger",
                                       "/proc/sys/kernel/core_pattern")]
    return all(b for b, _ in results), [d for _, d in results]


def devices():
    results = [blocked_if_raises(lambda p=p: read_file(p), p)
               for p in ("/dev/mem", "/dev/kmem", "/dev/kmsg", "/dev/sda", "/dev/vda", "/dev/nvme0n1")]
    return all(b for b, _ in results), {"dev": sorted(os.listdir("/dev")), "tries": [d for _, d in results]}


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
    return ok, facts


def euid_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[2])
    except OSError:
        return None
    return None


def setuid_binaries():
    """With no_new_privs the setuid bit must not make anything root."""
    details, blocked = [], True
    for argv in (["/usr/bin/su", "root", "-c", "id -u"], ["/bin/mount", "-t", "tmpfs", "none", "/tmp"]):
        if not os.path.exists(argv[0]):
            details.append(f"{argv[0]}: absent")
            continue
        try:
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
        except OSError as exc:
            details.append(f"{argv[0]}: exec {err_name(exc)}")
            continue
        euid = euid_of(p.pid)  # Popen returns after execve: this is the setuid image's euid
        try:
            out, _ = p.communicate(b"\n", timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        root = euid == 0 or p.returncode == 0 or b"\n0\n" in b"\n" + out
        blocked = blocked and not root
        details.append(f"{argv[0]}: euid while running {euid}, exit {p.returncode}, "
                       f"output {out[:120]!r}")
    return blocked, details


def setuid_root():
    return blocked_if_raises(lambda: os.setuid(0), "setuid(0)")


def extra_fds():
    return not INHERITED_FDS, {str(k): v for k, v in INHERITED_FDS.items()}


def huge_argv():
    argv = ["/bin/true"] + ["x" * 63] * 200_000  # 12.8 MB, far over ARG_MAX
    return blocked_if_raises(lambda: subprocess.run(argv, check=False).returncode, "exec with 12.8 MB argv")


# -- driver ---------------------------------------------------------------------


def attempts(cfg):
    script_dir = os.path.dirname(os.path.abspath(__file__))
    port = cfg.get("port")
    return [
        ("read_etc_shadow", lambda: blocked_if_raises(lambda: read_file("/etc/shadow"), "read /etc/shadow")),
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
        ("append_etc_passwd", lambda: try_append("/etc/passwd")),
        ("write_root_dir", lambda: try_create("/")),
        ("write_script_dir", lambda: try_create(script_dir)),
        ("write_tmp", write_tmp),
        ("tcp_host_listener", lambda: tcp_connect("127.0.0.1", port) if port else (None, "no port")),
        ("tcp_internet", lambda: tcp_connect("1.1.1.1", 53)),
        ("udp_internet", lambda: udp_send("1.1.1.1", 53)),
        ("raw_socket", raw_sockets),
        ("see_host_processes", lambda: host_processes(cfg)),
        ("signal_kernel", lambda: signal_kernel(cfg)),
        ("sethostname", sethostname),
        ("mount", mount_tmpfs),
        ("ptrace_traceme", lambda: syscall_blocked("ptrace", 0, 0, 0, 0)),
        ("ptrace_attach_pid1", ptrace_attach_init),
        ("unshare_user", lambda: syscall_blocked("unshare", CLONE_NEWUSER)),
        ("unshare_net", lambda: syscall_blocked("unshare", CLONE_NEWNET)),
        ("unshare_mount", lambda: syscall_blocked("unshare", CLONE_NEWNS)),
        ("setns", setns_own_net),
        ("clone_newuser", clone_newuser),
        ("clone3_newuser", clone3_newuser),
        ("bpf", bpf_map_create),
        ("keyctl", keyctl_calls),
        ("personality", personality),
        ("io_uring_setup", io_uring_setup),
        ("perf_event_open", perf_event_open),
        ("userfaultfd", userfaultfd),
        ("kexec_load", lambda: syscall_blocked("kexec_load", 0, 0, 0, 0)),
        ("init_module", lambda: syscall_blocked("init_module", 0, 0, ctypes.c_char_p(b""))),
        ("pivot_root", lambda: syscall_blocked("pivot_root", ctypes.c_char_p(b"/tmp"),
                                               ctypes.c_char_p(b"/tmp"))),
        ("proc1_root_escape", lambda: proc1_root(cfg)),
        ("write_sys", write_sys),
        ("write_proc_sys", write_proc_sys),
        ("devices", devices),
        ("capabilities", capabilities),
        ("setuid_binary", setuid_binaries),
        ("setuid_root", setuid_root),
        ("inherited_fds", extra_fds),
        ("huge_argv", huge_argv),
    ]


def run_attempt(name, fn):
    """Runs fn() in a forked child; returns the report line as a dict."""
    if PRIVILEGED and name in HOST_CHANGING:
        return {"attempt": name, "blocked": False,
                "detail": "not attempted: the probe runs with euid 0 or capabilities, so it is "
                          "not contained, and this attempt would change the host"}
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            blocked, detail = fn()
        except BaseException as exc:  # noqa: BLE001 - a bug in the probe, reported as such
            blocked, detail = None, f"probe error: {type(exc).__name__}: {exc}"
        os.write(w, json.dumps({"blocked": blocked, "detail": detail}, default=str).encode())
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
        result = {"blocked": True, "detail": f"attempt killed by signal {os.WTERMSIG(status)}"}
    else:
        result = {"blocked": None, "detail": f"attempt ended with status {status} and no report"}
    return {"attempt": name, **result}


def main(argv):
    cfg = json.loads(argv[2]) if len(argv) > 2 else {}
    todo = attempts(cfg)
    for name, fn in todo:
        print(json.dumps(run_attempt(name, fn), default=str), flush=True)
    print(json.dumps({"done": len(todo)}), flush=True)


if __name__ == "__main__":
    main(sys.argv)
