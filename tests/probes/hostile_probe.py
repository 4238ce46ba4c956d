#!/usr/bin/env python3
"""What a hostile agent would try inside the sandbox.

Usage: hostile_probe.py <repo file> <host pid> <socket path>

Prints one JSON object: for every attempt, {"blocked": bool, "detail": str}
("blocked" false means the attempt worked), plus plain facts (uid, hostname,
open fds, visible pids). Never raises: the test reads the verdicts.
Standard library only (ctypes for the raw syscalls); x86_64 syscall numbers.
"""
import ctypes
import errno
import json
import os
import socket
import stat
import subprocess
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
results = {}

SYS_personality, SYS_ptrace, SYS_clone, SYS_keyctl = 135, 101, 56, 250
SYS_bpf, SYS_perf_event_open, SYS_userfaultfd = 321, 298, 323
SYS_io_uring_setup, SYS_clone3 = 425, 435
CLONE_NEWUSER, CLONE_NEWNS, SIGCHLD = 0x10000000, 0x00020000, 17


def attempt(name, fn):
    """Runs fn; an exception means the attempt was blocked."""
    try:
        detail = fn()
        results[name] = {"blocked": False, "detail": str(detail)[:200]}
    except Exception as e:  # noqa: BLE001 - every failure is a verdict
        results[name] = {"blocked": True, "detail": f"{type(e).__name__}: {e}"[:200]}


def raw(name, nr, *args):
    """A raw syscall: blocked when it returns -1 (with its errno)."""
    def fn():
        ctypes.set_errno(0)
        rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
        if rc == 0 and nr == SYS_clone:
            os._exit(0)  # a clone that worked: the copy must not report twice
        if rc < 0:
            err = ctypes.get_errno()
            raise OSError(err, errno.errorcode.get(err, str(err)))
        return rc
    attempt(name, fn)


def write_file(path):
    with open(path, "w") as f:
        f.write("x")
    return path


def open_fds():
    fds = []
    for fd in range(0, 256):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            pass
    return fds


def proc_status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return None


def tcp(action):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if action == "connect":
            s.connect(("127.0.0.1", 9))
        else:
            s.bind(("127.0.0.1", 0))
        return "ok"
    finally:
        s.close()


def unix_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return "connected"
    finally:
        s.close()


def main():
    repo_file, host_pid, sock_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    facts = {
        "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "hostname": socket.gethostname(), "pid": os.getpid(),
        "fds": open_fds(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "cap_eff": proc_status("CapEff"), "cap_bnd": proc_status("CapBnd"),
        "no_new_privs": proc_status("NoNewPrivs"), "seccomp": proc_status("Seccomp"),
        "root_entries": sorted(os.listdir("/")),
        # Setuid programs cannot raise privileges: no_new_privs, nosuid /usr,
        # and no capability left to gain (bounding set empty).
        "usr_nosuid": bool(os.statvfs("/usr").f_flag & os.ST_NOSUID),
        "setuid_programs_visible": [p for p in ("/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount")
                                    if os.path.exists(p) and os.stat(p).st_mode & stat.S_ISUID],
    }

    attempt("read_etc_shadow", lambda: open("/etc/shadow").read())
    attempt("list_root_home", lambda: os.listdir("/root"))
    attempt("list_home", lambda: os.listdir("/home"))
    attempt("read_repo_file", lambda: open(repo_file).read(100))
    attempt("write_usr", lambda: write_file("/usr/agentos-probe"))
    attempt("write_etc", lambda: write_file("/etc/agentos-probe"))
    attempt("write_root", lambda: write_file("/agentos-probe"))
    attempt("write_tmp", lambda: write_file("/tmp/agentos-probe"))  # must work
    attempt("write_dev_null", lambda: write_file("/dev/null"))     # must work
    attempt("mknod_tmp", lambda: os.mknod("/tmp/null2", stat.S_IFCHR | 0o666, os.makedev(1, 3)))
    attempt("write_proc_sys", lambda: write_file("/proc/sys/kernel/hostname"))
    attempt("tcp_connect", lambda: tcp("connect"))
    attempt("tcp_bind", lambda: tcp("bind"))
    attempt("unix_socket_connect", lambda: unix_connect(sock_path))  # must work
    attempt("signal_host_process", lambda: os.kill(host_pid, 0))
    attempt("signal_init", lambda: os.kill(1, 0))  # 0: permission check only
    attempt("sethostname", lambda: socket.sethostname("evil"))
    attempt("chroot", lambda: os.chroot("/tmp"))
    attempt("mount", lambda: raw_mount())
    raw("ptrace_traceme", SYS_ptrace, 0, 0, 0, 0)
    raw("unshare_user", 272, CLONE_NEWUSER)
    raw("clone_newns", SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0)
    raw("clone3", SYS_clone3, 0, 0)
    raw("bpf", SYS_bpf, 0, 0, 0)
    raw("keyctl", SYS_keyctl, 0, -3, 0)
    raw("perf_event_open", SYS_perf_event_open, 0, 0, -1, -1, 0)
    raw("userfaultfd", SYS_userfaultfd, 0)
    raw("io_uring_setup", SYS_io_uring_setup, 1, 0)
    raw("personality_no_aslr", SYS_personality, 0x0040000)
    raw("personality_query", SYS_personality, 0xffffffff)  # must work
    attempt("fork_works", lambda: subprocess.run(["/bin/true"], check=True).returncode)  # must work
    print(json.dumps({"facts": facts, "attempts": results}), flush=True)


def raw_mount():
    ctypes.set_errno(0)
    if libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return "mounted"


if __name__ == "__main__":
    main()
