#!/usr/bin/env python3
"""Reports the agent's open fds as the first thing it does, before it opens
anything itself: one JSON line
    {"fds": {fd: {"target": readlink, "dev": st_dev, "ino": st_ino}}, "python_fds": [...]}
then exits 0. "python_fds" are the fds the interpreter holds for itself at
start-up (read from a fresh `python3 -c` under the same interpreter, so the
test can tell them from inherited ones). Also reports whether the
namespace's init shows its fds to us ("init_fds": list, or errno name).

    list_fds.py <socket> [--stay]

With --stay it then sleeps until killed, so the test can look at the kernel's
side of the fds while they are open.
"""

import os

# Before any import that could open something.
_FDS = {}
for _name in os.listdir("/proc/self/fd"):
    try:
        _st = os.stat(int(_name))
        _FDS[int(_name)] = {"target": os.readlink(f"/proc/self/fd/{_name}"), "dev": _st.st_dev,
                            "ino": _st.st_ino}
    except OSError:
        pass  # the directory fd listdir used, closed by now

import errno  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

# In a fresh interpreter: its fds above 2 that are still open after listdir
# closed its own directory fd.
SNIPPET = """import json, os
names = os.listdir("/proc/self/fd")
print(json.dumps([int(n) for n in names if int(n) > 2 and os.path.lexists(f"/proc/self/fd/{n}")]))"""


def python_fds():
    """Fds a bare interpreter holds for itself at start-up (none expected)."""
    out = subprocess.run([sys.executable, "-c", SNIPPET], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def init_fds():
    if os.getpid() == 1 or not os.path.exists("/proc/1"):
        return "no init"
    try:
        return sorted(os.listdir("/proc/1/fd"))
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))


def main():
    print(json.dumps({"fds": _FDS, "python_fds": python_fds(), "init_fds": init_fds(),
                      "pid": os.getpid()}), flush=True)
    while "--stay" in sys.argv:
        time.sleep(60)


if __name__ == "__main__":
    main()
