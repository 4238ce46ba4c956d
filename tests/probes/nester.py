#!/usr/bin/env python3
"""Probe agent that spawns one agent of its own, for nested cgroups
(DESIGN.md §3: an agent's agents live in its cgroup).

    nester.py <socket> CHILD_SPAWN_JSON [exit]

Spawns the child through its own socket and prints {"spawned": reply} on
one line; then exits 0 when the third argument is "exit", else sleeps
until it is killed.
"""

import json
import sys
import time

from agentos import AgentOSClient


def main(argv):
    with AgentOSClient(argv[1], timeout=30) as c:
        reply = c.spawn(**json.loads(argv[2]))
    print(json.dumps({"spawned": reply}), flush=True)
    if len(argv) > 3 and argv[3] == "exit":
        return
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv)
