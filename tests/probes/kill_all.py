#!/usr/bin/env python3
"""Hostile agent: kill(-1, SIGKILL), "every process I may signal".

    kill_all.py <socket> N_CHILDREN

Prints {"ready": {"uid": ...}} and waits for SIGUSR1, so that the test can
start a host process under the same uid first (the pid namespace, not the
uid, is what must keep it safe). Then forks N_CHILDREN sleepers, calls
kill(-1, SIGKILL), reaps the sleepers and prints
{"kill_all": {"result": "ok" or errno name, "children_killed": n, "pids_seen": [...]}}.
kill(-1) spares the caller and the namespace's init, so the probe itself
survives to report. Exit status 0.
"""

import json
import os
import signal
import sys
import time


def sleeper():
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    while True:
        time.sleep(60)


def main(argv):
    n = int(argv[2]) if len(argv) > 2 else 3
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    print(json.dumps({"ready": {"uid": os.getuid(), "pid": os.getpid()}}), flush=True)
    signal.sigwait({signal.SIGUSR1})
    children = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            sleeper()
        children.append(pid)
    seen = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    try:
        os.kill(-1, signal.SIGKILL)
        result = "ok"
    except OSError as exc:
        result = f"errno {exc.errno}"
    killed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        killed += os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    print(json.dumps({"kill_all": {"result": result, "children_killed": killed, "pids_seen": seen}}),
          flush=True)


if __name__ == "__main__":
    main(sys.argv)
