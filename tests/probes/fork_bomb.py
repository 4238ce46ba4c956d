#!/usr/bin/env python3
"""Probe agent: a fork bomb. Every process forks as fast as it can; a refused
fork is retried after a short pause. Under a pids limit the tree stops
growing and the rest of the machine does not notice.

So that a kernel that fails to apply the limit cannot take the host down,
the bomb is bounded on its own: each process makes at most FANOUT children,
down to DEPTH generations (1 + 3 + 9 + 27 + 81 = 121 processes), and every
process exits after LIFETIME_S. Both bounds are far above the limits the
tests set (max_pids 16).

Prints "forked N" (the original process) and "fork refused: <errno> ..."
(the first refusal each process meets).
"""

import errno
import os
import sys
import time

FANOUT = 3
DEPTH = 4
LIFETIME_S = 120.0


def main():
    deadline = time.monotonic() + LIFETIME_S
    original = os.getpid()
    depth, children, refused = 0, 0, False
    while time.monotonic() < deadline:
        if depth >= DEPTH or children >= FANOUT:
            time.sleep(0.05)  # at our share: just stay alive, holding our pid
            continue
        try:
            pid = os.fork()
        except OSError as exc:
            if not refused:
                refused = True
                print(f"fork refused: {errno.errorcode.get(exc.errno, exc.errno)} at depth {depth} "
                      f"after {children} children", flush=True)
            time.sleep(0.01)
            continue
        if pid == 0:
            depth, children, refused = depth + 1, 0, False  # the child joins in
            continue
        children += 1
        if os.getpid() == original:
            print(f"forked {children}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
