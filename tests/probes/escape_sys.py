"""The hostile probe's system-call attempts: personas, kernel interfaces with
a record of exploits, tracing the init or a sibling, mounts, namespaces,
file handles, ids and capabilities, terminal injection.
Each returns (blocked, detail, how); see probe_util for outcomes.
"""

import ctypes
import os
import signal
import struct

from probe_util import clone_child_exit, close_fd, none_worked, outcome, sc, sys_call

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x2000000, 0x4000000, 0x8000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWTIME = 0x10000000, 0x20000000, 0x40000000, 0x80
NAMESPACES = {"mnt": CLONE_NEWNS, "cgroup": CLONE_NEWCGROUP, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC,
              "user": CLONE_NEWUSER, "pid": CLONE_NEWPID, "net": CLONE_NEWNET}
AT_FDCWD = -100
TIOCSTI, TIOCLINUX = 0x5412, 0x541C


def ptr(buf):
    return ctypes.cast(buf, ctypes.c_void_p)


def personas():
    """personality() may only keep the default persona: ADDR_NO_RANDOMIZE
    would switch ASLR off for what we exec, READ_IMPLIES_EXEC makes every
    readable mapping executable, MMAP_PAGE_ZERO maps page 0 (a null
    dereference in the kernel becomes exploitable). The filter reads only
    the low 32 bits, as the kernel does, so garbage above cannot hide a flag."""
    def restore(old):
        sys_call("personality", old)
    tries = {"ADDR_NO_RANDOMIZE": 0x0040000, "READ_IMPLIES_EXEC": 0x0400000,
             "ADDR_COMPAT_LAYOUT": 0x0200000, "MMAP_PAGE_ZERO": 0x0100000,
             "ADDR_LIMIT_3GB": 0x8000000, "PER_BSD": 0x0006, "SHORT_INODE": 0x1000000,
             "READ_IMPLIES_EXEC | 1<<32": (1 << 32) | 0x0400000}
    outcomes = {name: sc("personality", value, cleanup=restore) for name, value in tries.items()}
    outcomes["query (control)"] = sc("personality", 0xffffffff)
    return none_worked(outcomes, controls={"query (control)"})


def exploit_surfaces():
    """Kernel interfaces with a long record of exploits, all denied by
    seccomp with EPERM (not ENOSYS: a library then reports 'not permitted'
    instead of concluding the kernel is too old and trying something odd)."""
    uring_params = ctypes.create_string_buffer(120)
    perf = ctypes.create_string_buffer(struct.pack("<IIQQQQQ", 1, 128, 0, 0, 0, 0, 0b1100001), 128)
    bpf_map = ctypes.create_string_buffer(struct.pack("<4I", 2, 4, 4, 1), 128)
    bpf_prog = ctypes.create_string_buffer(128)
    outcomes = {
        "io_uring_setup": sc("io_uring_setup", 1, ptr(uring_params), cleanup=close_fd),
        "userfaultfd": sc("userfaultfd", os.O_CLOEXEC, cleanup=close_fd),
        "userfaultfd user-mode only": sc("userfaultfd", os.O_CLOEXEC | 1, cleanup=close_fd),
        "perf_event_open": sc("perf_event_open", ptr(perf), 0, -1, -1, 0, cleanup=close_fd),
        "bpf map create": sc("bpf", 0, ptr(bpf_map), 128, cleanup=close_fd),
        "bpf prog load": sc("bpf", 5, ptr(bpf_prog), 128, cleanup=close_fd),
        "keyctl get session keyring": sc("keyctl", 0, -3, 1),
        "keyctl join session keyring": sc("keyctl", 1, 0),
        "add_key": sc("add_key", ctypes.c_char_p(b"user"), ctypes.c_char_p(b"probe"),
                      ctypes.c_char_p(b"secret"), 6, -3),
        "request_key": sc("request_key", ctypes.c_char_p(b"user"), ctypes.c_char_p(b"probe"), 0, 0),
    }
    return none_worked(outcomes)


def trace_init_or_sibling():
    """No tracing at all: ptrace, process_vm_readv/writev, kcmp and
    pidfd_getfd are EPERM by seccomp (the init is root, a sibling runs under
    our own uid: only the filter stops the sibling case)."""
    sibling = os.fork()
    if sibling == 0:
        signal.pause()
        os._exit(0)
    local = ctypes.create_string_buffer(64)
    iov_local = ctypes.create_string_buffer(struct.pack("<QQ", ctypes.addressof(local), 64))
    iov_remote = ctypes.create_string_buffer(struct.pack("<QQ", 0x400000, 64))
    pidfd_res, _ = sys_call("pidfd_open", 1, 0)

    def detach(pid):
        return lambda _: sys_call("ptrace", 17, pid, 0, 0)  # PTRACE_DETACH

    def vm(name, pid):
        return sc(name, pid, ptr(iov_local), 1, ptr(iov_remote), 1, 0)
    try:
        outcomes = {
            "ptrace attach init": sc("ptrace", 16, 1, 0, 0, cleanup=detach(1)),
            "ptrace seize init": sc("ptrace", 0x4206, 1, 0, 0, cleanup=detach(1)),
            "ptrace attach sibling": sc("ptrace", 16, sibling, 0, 0, cleanup=detach(sibling)),
            "ptrace traceme": sc("ptrace", 0, 0, 0, 0),
            "process_vm_readv init": vm("process_vm_readv", 1),
            "process_vm_readv sibling": vm("process_vm_readv", sibling),
            "process_vm_writev sibling": vm("process_vm_writev", sibling),
            "kcmp init": sc("kcmp", 1, os.getpid(), 0, 0, 0),
            "pidfd_getfd init": sc("pidfd_getfd", pidfd_res, 0, 0, cleanup=close_fd),
            "pidfd_send_signal init": sc("pidfd_send_signal", pidfd_res, signal.SIGKILL, 0, 0),
            "kill init": outcome(lambda: os.kill(1, signal.SIGKILL)),
        }
    finally:
        if pidfd_res >= 0:
            os.close(pidfd_res)
        os.kill(sibling, signal.SIGKILL)
        os.waitpid(sibling, 0)
    return none_worked(outcomes)


def mount_api():
    """Neither the old mount API nor the new one (fsopen, open_tree,
    move_mount, mount_setattr) may touch the mount tree: all EPERM by seccomp,
    which also keeps a root-inside (rootless) agent from remounting /usr rw."""
    attr = ctypes.create_string_buffer(struct.pack("<QQQQ", 0, 1, 0, 0), 32)  # clear RDONLY
    outcomes = {
        "mount tmpfs on /tmp": sc("mount", ctypes.c_char_p(b"none"), ctypes.c_char_p(b"/tmp"),
                                  ctypes.c_char_p(b"tmpfs"), 0, 0),
        "remount /usr rw": sc("mount", 0, ctypes.c_char_p(b"/usr"), 0, 0x20 | 0x1000, 0),
        "umount /proc": sc("umount2", ctypes.c_char_p(b"/proc"), 2),
        "umount /": sc("umount2", ctypes.c_char_p(b"/"), 2),
        "chroot /tmp": sc("chroot", ctypes.c_char_p(b"/tmp")),
        "pivot_root": sc("pivot_root", ctypes.c_char_p(b"/tmp"), ctypes.c_char_p(b"/tmp")),
        "fsopen tmpfs": sc("fsopen", ctypes.c_char_p(b"tmpfs"), 0, cleanup=close_fd),
        "open_tree clone /usr": sc("open_tree", AT_FDCWD, ctypes.c_char_p(b"/usr"), 1, cleanup=close_fd),
        "move_mount /tmp onto /usr": sc("move_mount", AT_FDCWD, ctypes.c_char_p(b"/tmp"), AT_FDCWD,
                                        ctypes.c_char_p(b"/usr"), 0),
        "mount_setattr /usr rw": sc("mount_setattr", AT_FDCWD, ctypes.c_char_p(b"/usr"), 0, ptr(attr), 32),
    }
    return none_worked(outcomes)


def namespaces():
    """No new namespace of any kind, and no joining one: unshare and setns
    are EPERM outright, clone with any CLONE_NEW* flag is EPERM (the filter
    masks only the flag bits, so garbage in the upper half changes nothing),
    and clone3 answers ENOSYS because a filter cannot read its flags."""
    outcomes = {f"unshare {n}": sc("unshare", flag) for n, flag in NAMESPACES.items()}
    outcomes["unshare time"] = sc("unshare", CLONE_NEWTIME)
    for n, flag in NAMESPACES.items():
        outcomes[f"clone {n}"] = sc("clone", flag | signal.SIGCHLD, 0, 0, 0, 0, cleanup=clone_child_exit)
    outcomes["clone user | 1<<32"] = sc("clone", (1 << 32) | CLONE_NEWUSER | signal.SIGCHLD, 0, 0, 0, 0,
                                        cleanup=clone_child_exit)
    for n in sorted(os.listdir("/proc/self/ns")):
        fd = os.open(f"/proc/self/ns/{n}", os.O_RDONLY)
        outcomes[f"setns {n}"] = sc("setns", fd, 0)
        os.close(fd)
    pidfd, _ = sys_call("pidfd_open", 1, 0)
    outcomes["setns pidfd of init"] = sc("setns", pidfd, CLONE_NEWNS)
    if pidfd >= 0:
        os.close(pidfd)
    clone_args = ctypes.create_string_buffer(struct.pack("<8Q", CLONE_NEWUSER, 0, 0, 0, signal.SIGCHLD,
                                                         0, 0, 0), 64)
    outcomes["clone3 user"] = sc("clone3", ptr(clone_args), 64, cleanup=clone_child_exit)
    plain = ctypes.create_string_buffer(struct.pack("<8Q", 0, 0, 0, 0, signal.SIGCHLD, 0, 0, 0), 64)
    outcomes["clone3 plain"] = sc("clone3", ptr(plain), 64, cleanup=clone_child_exit)
    return none_worked(outcomes)


def file_handles():
    """name_to_handle_at/open_by_handle_at: a file handle opens an inode
    without a path (the 'shocker' escape from containers), so both are EPERM."""
    handle = ctypes.create_string_buffer(struct.pack("<Ii", 128, 0) + bytes(128))
    mount_id = ctypes.c_int(0)
    zero = ctypes.create_string_buffer(struct.pack("<Ii", 8, 1) + bytes(8))
    mount_id_ptr = ctypes.cast(ctypes.byref(mount_id), ctypes.c_void_p)
    root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        outcomes = {
            "name_to_handle_at /etc/passwd": sc("name_to_handle_at", AT_FDCWD,
                                                ctypes.c_char_p(b"/etc/passwd"), ptr(handle),
                                                mount_id_ptr, 0),
            "open_by_handle_at": sc("open_by_handle_at", root, ptr(zero), os.O_RDONLY, cleanup=close_fd),
        }
    finally:
        os.close(root)
    return none_worked(outcomes)


def ids_and_caps():
    """Nothing gives privileges back: no capability, so no setuid(0),
    setgroups, capset or securebits (EPERM), and no_new_privs cannot be
    cleared (EINVAL: the kernel accepts only 1)."""
    cap_header = ctypes.create_string_buffer(struct.pack("<Ii", 0x20080522, 0))
    cap_data = ctypes.create_string_buffer(struct.pack("<6I", *([0xFFFFFFFF] * 6)))
    outcomes = {
        "setuid 0": outcome(lambda: os.setuid(0)),
        "setgid 0": outcome(lambda: os.setgid(0)),
        "setresuid 0": sc("setresuid", 0, 0, 0),
        "setresgid 0": sc("setresgid", 0, 0, 0),
        "setgroups [0]": outcome(lambda: os.setgroups([0])),
        "capset all": sc("capset", ptr(cap_header), ptr(cap_data)),
        "securebits": sc("prctl", 28, 0x2F, 0, 0, 0),            # PR_SET_SECUREBITS
        "ambient raise": sc("prctl", 47, 2, 21, 0, 0),          # PR_CAP_AMBIENT_RAISE CAP_SYS_ADMIN
        "set mm start_code": sc("prctl", 35, 1, 0x400000, 0, 0),  # PR_SET_MM (CAP_SYS_RESOURCE)
        "clear no_new_privs": sc("prctl", 38, 0, 0, 0, 0),
    }
    return none_worked(outcomes)


def tty_injection():
    """TIOCSTI/TIOCLINUX push keystrokes into a terminal someone else reads.
    The agent has no terminal (setsid, stdin /dev/null, no /dev/ptmx), and
    the filter denies both requests on any fd before the driver sees them
    (EPERM, not ENOTTY), on all 64 bits of the request."""
    ch = ctypes.create_string_buffer(b"x")
    outcomes = {
        "TIOCSTI on stdin": sc("ioctl", 0, TIOCSTI, ptr(ch)),
        "TIOCSTI on stdout": sc("ioctl", 1, TIOCSTI, ptr(ch)),
        "TIOCSTI | 1<<32": sc("ioctl", 0, (1 << 32) | TIOCSTI, ptr(ch)),
        "TIOCLINUX": sc("ioctl", 0, TIOCLINUX, ptr(ctypes.create_string_buffer(b"\x0b"))),
        "open /dev/tty": outcome(lambda: os.close(os.open("/dev/tty", os.O_RDWR))),
        "openpty": outcome(lambda: [os.close(fd) for fd in os.openpty()]),
    }
    return none_worked(outcomes)


def attempts():
    return [
        ("personas", personas),
        ("exploit_surfaces", exploit_surfaces),
        ("trace_init_or_sibling", trace_init_or_sibling),
        ("mount_api", mount_api),
        ("namespaces", namespaces),
        ("file_handles", file_handles),
        ("ids_and_caps", ids_and_caps),
        ("tty_injection", tty_injection),
    ]


# Run as root outside a sandbox these would act on the host (trace its init,
# mount, unshare, inject keystrokes into the terminal).
HOST_CHANGING = {"trace_init_or_sibling", "mount_api", "namespaces", "ids_and_caps", "tty_injection",
                 "exploit_surfaces", "personas", "file_handles"}
