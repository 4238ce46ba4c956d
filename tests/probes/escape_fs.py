"""The hostile probe's filesystem attempts beyond plain reads and writes:
symlinks and /proc magic links that lead out of the sandbox's root, hard
links and metadata changes on the read-only binds, /sys and /proc knobs.
Each returns (blocked, detail, how); see probe_util for outcomes.
"""

import os
import stat

from probe_util import MARK, none_worked, outcome, read_file, remove_quietly, sc, tmp_path


def symlink_escape(cfg):
    """Symlinks in /tmp aimed at the host. A symlink is resolved in the
    reader's own root, so it can only lead where a plain path leads: /etc
    inside has no shadow, another pid's /proc/<pid>/root needs ptrace access
    (EACCES: the init is root, we are not), and host pids do not exist here."""
    targets = {"/proc/1/root/etc/shadow": "via init's root",
               "/proc/self/root/etc/shadow": "via own root",
               "/etc/shadow": "absolute"}
    for i, path in enumerate(cfg.get("repo_files", [])[:2]):
        targets[path] = f"host file {i}"
    if cfg.get("kernel_pid"):
        targets[f"/proc/{cfg['kernel_pid']}/root/etc/shadow"] = "via the kernel's root"
    outcomes = {}
    for target, label in targets.items():
        link = tmp_path(f"-link-{len(outcomes)}")
        os.symlink(target, link)
        try:
            outcomes[label] = outcome(lambda link=link: read_file(link))
        finally:
            remove_quietly(link)
    return none_worked(outcomes)


def proc_root_traversal():
    """/proc/self/root is our own root: '..' cannot climb above it, and the
    init's root (a magic link too) is closed to us by the ptrace check."""
    same = sorted(os.listdir("/proc/self/root")) == sorted(os.listdir("/"))
    outcomes = {
        "self root is /": "ok" if same else "differs",
        "self root ../../etc/shadow": outcome(lambda: read_file("/proc/self/root/../../../etc/shadow")),
        "self root/proc/1/root": outcome(lambda: os.listdir("/proc/self/root/proc/1/root/")),
        "init cwd": outcome(lambda: os.listdir("/proc/1/cwd/")),
        "init fd dir": outcome(lambda: os.listdir("/proc/1/fd")),
        "init environ": outcome(lambda: read_file("/proc/1/environ")),
        "init mem": outcome(lambda: read_file("/proc/1/mem")),
    }
    return none_worked(outcomes, controls={"self root is /"})


def kernel_pid_invisible(cfg):
    """The pid namespace shows only the sandbox: no /proc/<kernel's host pid>,
    no kernel threads (a process other than our init whose parent is 0)."""
    outcomes = {}
    kernel_pid = cfg.get("kernel_pid")
    if kernel_pid:
        outcomes["stat /proc/<kernel pid>"] = outcome(lambda: os.stat(f"/proc/{kernel_pid}"))
        outcomes["kernel root"] = outcome(lambda: os.listdir(f"/proc/{kernel_pid}/root/"))
    kthreads = []
    for name in os.listdir("/proc"):
        if name.isdigit() and name != "1" and parent_of(name) == 0:
            kthreads.append(name)
    outcomes["kernel threads"] = "not visible" if not kthreads else f"visible: {kthreads}"
    blocked = all(o != "ok" and not o.startswith("visible") for o in outcomes.values())
    return blocked, outcomes, outcomes


def parent_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def proc_fd_outside():
    """Our stdout is the log file on the host, outside our root. The fd
    itself works (writing is how we log), but /proc/self/fd/1 must not
    become a way into the host's tree: reopening it goes through Landlock
    (its path is under no rule), '..' of a file is not a directory, and a
    hard link made through it crosses mounts."""
    link = tmp_path("-fdlink")
    outcomes = {
        "reopen for reading": outcome(lambda: os.close(os.open("/proc/self/fd/1", os.O_RDONLY))),
        "reopen for appending": outcome(lambda: os.close(os.open("/proc/self/fd/1",
                                                                 os.O_WRONLY | os.O_APPEND))),
        "parent dir of the fd": outcome(lambda: os.listdir("/proc/self/fd/1/..")),
        "hard link into /tmp": outcome(lambda: os.link("/proc/self/fd/1", link, follow_symlinks=True)),
    }
    remove_quietly(link)
    return none_worked(outcomes)


def hardlink_into_ro(script_path):
    """Hard links cannot join the read-only binds to a writable place: link()
    never crosses a mount (EXDEV), and inside a read-only mount it is EROFS."""
    scratch = tmp_path("-scratch")
    with open(scratch, "w") as f:
        f.write("x")
    python = os.path.realpath("/usr/bin/python3")
    created = [tmp_path("-python"), f"/usr/bin/{MARK}", os.path.join(os.path.dirname(script_path), MARK),
               f"/etc/{MARK}", tmp_path("-passwd")]
    outcomes = {
        "/usr/bin/python3 -> /tmp": outcome(lambda: os.link(python, created[0])),
        "/tmp file -> /usr/bin": outcome(lambda: os.link(scratch, created[1])),
        "script -> its own dir": outcome(lambda: os.link(script_path, created[2])),
        "/etc/passwd -> /etc": outcome(lambda: os.link("/etc/passwd", created[3])),
        "/etc/passwd -> /tmp": outcome(lambda: os.link("/etc/passwd", created[4])),
    }
    for path in created + [scratch]:
        remove_quietly(path)
    return none_worked(outcomes)


def chmod_chown_ro(script_path):
    """Metadata of exposed files cannot change: the binds are read-only, so
    chmod/chown/utime answer EROFS before any ownership check. The device
    nodes are binds of the host's own inodes, so they are read-only too
    (writing to a device never needs a writable mount)."""
    python = os.path.realpath("/usr/bin/python3")
    outcomes = {
        "chmod python": outcome(lambda: os.chmod(python, 0o6777)),
        "chown python": outcome(lambda: os.chown(python, os.getuid(), os.getgid())),
        "chmod script": outcome(lambda: os.chmod(script_path, 0o777)),
        "chmod /etc/passwd": outcome(lambda: os.chmod("/etc/passwd", 0o666)),
        "chmod /": outcome(lambda: os.chmod("/", 0o777)),
        "utime python": outcome(lambda: os.utime(python)),
        "utime /dev/null": outcome(lambda: os.utime("/dev/null")),
        "chmod /dev/null": outcome(lambda: os.chmod("/dev/null", 0o777)),
        "write /dev/null": outcome(lambda: open("/dev/null", "w").write("x")),
    }
    return none_worked(outcomes, controls={"write /dev/null"})


def sys_absent():
    """/sys is not mounted at all (so nothing under it is writable), and the
    agent cannot mount a sysfs of its own (seccomp: mount is EPERM)."""
    mnt = tmp_path("-sysfs")
    os.mkdir(mnt)
    try:
        mounted = sc("mount", b"sysfs", mnt.encode(), b"sysfs", 0, 0)
    finally:
        os.rmdir(mnt)
    outcomes = {"list /sys": outcome(lambda: os.listdir("/sys")), "mount sysfs": mounted}
    for path in ("/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/memory/cgroup.procs",
                 "/sys/kernel/uevent_helper", "/sys/kernel/mm/transparent_hugepage/enabled",
                 "/sys/power/state"):
        outcomes[f"append {path}"] = outcome(lambda p=path: open(p, "ab").close())
    outcomes["mkdir cgroup"] = outcome(lambda: os.mkdir(f"/sys/fs/cgroup/memory/{MARK}"))
    return none_worked(outcomes)


def proc_knobs():
    """The kernel's knobs under /proc: /proc/sys and /proc/sysrq-trigger are
    bound read-only (EROFS even for root) and owned by root (EACCES for us,
    which the kernel checks first); /proc/kcore needs CAP_SYS_RAWIO."""
    outcomes = {}
    for path in ("/proc/sys/kernel/hostname", "/proc/sys/kernel/core_pattern",
                 "/proc/sys/vm/drop_caches", "/proc/sys/kernel/modprobe", "/proc/sysrq-trigger"):
        outcomes[f"append {path}"] = outcome(lambda p=path: open(p, "ab").close())
    outcomes["read /proc/kcore"] = outcome(lambda: read_file("/proc/kcore"))
    outcomes["read /proc/kmsg"] = outcome(lambda: read_file("/proc/kmsg"))
    return none_worked(outcomes)


def dev_nodes():
    """/dev holds null, zero, full, random, urandom, tty only; no way to make
    another node (mknod needs CAP_MKNOD, and /dev is read-only anyway)."""
    outcomes = {p: outcome(lambda p=p: read_file(p))
                for p in ("/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/sda", "/dev/vda",
                          "/dev/nvme0n1", "/dev/vsock", "/dev/userfaultfd", "/dev/net/tun")}
    node = tmp_path("-mem")
    outcomes["mknod /dev/mem in /tmp"] = outcome(
        lambda: os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(1, 1)))
    outcomes["mknod in /dev"] = outcome(
        lambda: os.mknod(f"/dev/{MARK}", stat.S_IFCHR | 0o600, os.makedev(1, 1)))
    remove_quietly(node)
    listing = sorted(os.listdir("/dev"))
    return none_worked(outcomes)[0], {"dev": listing, "tries": outcomes}, outcomes


def attempts(cfg, script_path):
    return [
        ("symlink_escape", lambda: symlink_escape(cfg)),
        ("proc_root_traversal", proc_root_traversal),
        ("kernel_pid_invisible", lambda: kernel_pid_invisible(cfg)),
        ("proc_fd_outside", proc_fd_outside),
        ("hardlink_into_ro", lambda: hardlink_into_ro(script_path)),
        ("chmod_chown_ro", lambda: chmod_chown_ro(script_path)),
        ("sys_absent", sys_absent),
        ("proc_knobs", proc_knobs),
        ("dev_nodes", dev_nodes),
    ]


HOST_CHANGING = {"symlink_escape", "proc_fd_outside", "hardlink_into_ro", "chmod_chown_ro",
                 "sys_absent", "proc_knobs", "dev_nodes"}
