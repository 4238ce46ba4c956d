#!/usr/bin/env python3
"""Probe agent that ends in a chosen way.

    exit_with.py <socket> code N     exit with status N (os._exit)
    exit_with.py <socket> signal N   send itself signal N (11 = SIGSEGV)
"""

import os
import sys


def main(argv):
    how, n = argv[2], int(argv[3])
    print(f"ending with {how} {n}", flush=True)
    if how == "code":
        os._exit(n)
    os.kill(os.getpid(), n)
    os._exit(100)  # only if the signal did not end us


if __name__ == "__main__":
    main(sys.argv)
