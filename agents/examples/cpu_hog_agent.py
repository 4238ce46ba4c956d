#!/usr/bin/env python3
"""CPU hog: spins forever. Under a CPU quota the kernel throttles it, and
nothing else on the machine notices.

argv[1] (the socket, when spawned by the kernel) is accepted and ignored.
Prints a progress line every few seconds.
"""

import os
import sys
import time

REPORT_EVERY_S = 5.0


def main():
    name = os.environ.get("AGENTOS_AGENT_NAME", "cpu-hog")
    print(f"[{name}] pid {os.getpid()}: spinning forever", flush=True)
    x = 1
    spins = 0
    next_report = time.monotonic() + REPORT_EVERY_S
    while True:
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        spins += 100_000
        now = time.monotonic()
        if now >= next_report:
            print(f"[{name}] {spins:,} iterations", flush=True)
            next_report = now + REPORT_EVERY_S


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
