#!/usr/bin/env python3
"""Probe agent that writes numbered lines to stdout and stderr.

    chatter.py <socket> LINES [--stay]

Writes "out i" to stdout and "err i" to stderr for i in 0..LINES-1, then
"done"; with --stay it then sleeps until killed, else it exits 0.
"""

import sys
import time


def main(argv):
    n = int(argv[2])
    for i in range(n):
        print(f"out {i}", flush=True)
        print(f"err {i}", file=sys.stderr, flush=True)
    print("done", flush=True)
    if "--stay" in argv:
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv)
