"""Helpers shared by the hostile probe's attempt modules (hostile.py and
escape_*.py): raw system calls through ctypes, and outcomes.

An outcome says how one try ended: "ok" when it worked, else the name of the
errno it failed with ("EPERM", "ENOENT", ...), or a word such as
"not visible" where the try is an observation. An attempt made of several
tries reports {try: outcome}; the test compares each with what it expects.
"""

import ctypes
import errno
import os
import platform
import time

SYSCALLS = {  # name: (x86_64, aarch64)
    "ptrace": (101, 117), "unshare": (272, 97), "setns": (308, 268), "bpf": (321, 280),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "personality": (135, 92), "io_uring_setup": (425, 425), "clone3": (435, 435),
    "clone": (56, 220), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
    "kexec_load": (246, 104), "init_module": (175, 105), "pivot_root": (155, 41),
    "mount": (165, 40), "umount2": (166, 39), "chroot": (161, 51), "fsopen": (430, 430),
    "open_tree": (428, 428), "move_mount": (429, 429), "mount_setattr": (442, 442),
    "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "kcmp": (312, 272),
    "pidfd_open": (434, 434), "pidfd_getfd": (438, 438), "pidfd_send_signal": (424, 424),
    "name_to_handle_at": (303, 264), "open_by_handle_at": (304, 265), "capset": (126, 91),
    "setresuid": (117, 147), "setresgid": (119, 149), "setgroups": (116, 159),
    "ioctl": (16, 29), "prctl": (157, 167),
}
ARCH = 0 if platform.machine() == "x86_64" else 1
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long
MARK = f".agentos-probe-{os.getpid()}-{int(time.time() * 1000)}"


def sys_call(name, *args):
    """Raw syscall; returns (result, errno name or None)."""
    argv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    ctypes.set_errno(0)
    res = LIBC.syscall(ctypes.c_long(SYSCALLS[name][ARCH]), *argv)
    err = ctypes.get_errno()
    return res, (errno.errorcode.get(err, str(err)) if res == -1 else None)


def sc(name, *args, cleanup=None):
    """Outcome of a raw syscall; cleanup(result) undoes one that worked."""
    res, err = sys_call(name, *args)
    if res == -1:
        return err
    if cleanup:
        cleanup(res)
    return "ok"


def err_name(exc):
    return errno.errorcode.get(getattr(exc, "errno", None) or 0, type(exc).__name__)


def outcome(fn):
    """Outcome of fn(): "ok", or the errno name of the OSError it raised."""
    try:
        fn()
    except OSError as exc:
        return err_name(exc)
    return "ok"


def none_worked(outcomes, controls=()):
    """(blocked, detail, how) for an attempt of several tries: blocked when
    no try worked. `controls` name tries that must work (they show that the
    others failed for the sandbox's reason, not the probe's)."""
    blocked = all((o == "ok") == (name in controls) for name, o in outcomes.items())
    return blocked, outcomes, outcomes


def read_file(path):
    with open(path, "rb") as f:
        return f"read {len(f.read(4096))} bytes"


def close_fd(fd):
    os.close(fd)


def clone_child_exit(res):
    """After a clone that worked: the copy leaves at once, the original reaps it."""
    if res == 0:
        os._exit(0)
    os.waitpid(res, 0)


def tmp_path(suffix):
    return os.path.join("/tmp", MARK + suffix)


def remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass
