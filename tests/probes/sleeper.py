#!/usr/bin/env python3
"""Probe agent that sleeps until it is killed.

    sleeper.py <socket> [--ignore-term] [--fork N]

--ignore-term  take SIGTERM, print "got SIGTERM (15), ignoring" and keep
               sleeping (so only SIGKILL ends it); its children ignore it too
--fork N       start N child processes that sleep too (a process tree that
               must die with the agent)
Prints "ready" once the handlers and children are in place.
"""

import os
import signal
import sys
import time


def main(argv):
    opts = argv[2:]
    ignore_term = "--ignore-term" in opts
    if ignore_term:
        # Blocked and taken with sigwait(), not caught by a handler: CPython
        # runs handlers between bytecodes, and one that lands just before
        # time.sleep() starts would wait for the sleep to end.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    children = int(opts[opts.index("--fork") + 1]) if "--fork" in opts else 0
    for _ in range(children):
        if os.fork() == 0:
            while True:
                time.sleep(3600)
    print(f"ready pid={os.getpid()} uid={os.getuid()} children={children}", flush=True)
    while True:
        if ignore_term:
            signo = signal.sigwait({signal.SIGTERM})
            print(f"got SIGTERM ({signo}), ignoring", flush=True)
        else:
            time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv)
