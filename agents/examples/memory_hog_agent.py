#!/usr/bin/env python3
"""Memory hog: allocates 10 MiB at a time, touching every page so the memory
is really used, and never frees it. Under a memory limit the kernel's OOM
killer ends it, and only it.

argv[1] (the socket, when spawned by the kernel) is accepted and ignored;
argv[2] is the pause between chunks in seconds (default 0.1).
"""

import os
import sys
import time

CHUNK = 10 * 1024 * 1024
PAGE = 4096


def main(argv):
    name = os.environ.get("AGENTOS_AGENT_NAME", "mem-hog")
    pause = float(argv[2]) if len(argv) > 2 else 0.1
    print(f"[{name}] pid {os.getpid()}: allocating {CHUNK // (1024 * 1024)} MiB chunks", flush=True)
    hoard = []
    while True:
        chunk = bytearray(CHUNK)
        # bytearray() memory comes zeroed from mmap and is not resident until
        # written: write one byte per page so it counts against the limit.
        chunk[::PAGE] = b"\x01" * (CHUNK // PAGE)
        hoard.append(chunk)
        print(f"[{name}] holding {len(hoard) * CHUNK // (1024 * 1024)} MiB", flush=True)
        time.sleep(pause)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except KeyboardInterrupt:
        sys.exit(130)
