#!/usr/bin/env python3
"""Probe agent that sleeps until it is killed.

    sleeper.py <socket> [--ignore-term] [--fork N]

--ignore-term  catch SIGTERM, print "got SIGTERM, ignoring" and keep sleeping
               (so only SIGKILL ends it)
--fork N       start N child processes that sleep too (a process tree that
               must die with the agent)
Prints "ready" once the handlers and children are in place.
"""

import os
import signal
import sys
import time


def on_term(signo, _frame):
    print(f"got SIGTERM ({signo}), ignoring", flush=True)


def main(argv):
    opts = argv[2:]
    if "--ignore-term" in opts:
        signal.signal(signal.SIGTERM, on_term)
    children = int(opts[opts.index("--fork") + 1]) if "--fork" in opts else 0
    for _ in range(children):
        if os.fork() == 0:
            while True:
                time.sleep(3600)
    print(f"ready pid={os.getpid()} uid={os.getuid()} children={children}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv)
