#!/usr/bin/env python3
"""Worker agent, meant to be spawned by the kernel.

argv[1] is the socket the kernel gave this agent; argv[2] is how many seconds
to work (default 3). It echoes through the kernel each round, does a little
CPU work in between, and exits 0 when the time is up (1 if the kernel stops
answering).
"""

import hashlib
import os
import sys
import time

import _common

ROUND_WORK_S = 0.2
ROUND_PAUSE_S = 0.3


def do_work(seed, seconds):
    """Hashes in a chain for about `seconds`; returns the final digest."""
    digest = seed.encode()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(1000):
            digest = hashlib.sha256(digest).digest()
    return digest.hex()


def main(argv):
    socket_path = _common.spawned_socket(argv)
    seconds = float(argv[2]) if len(argv) > 2 else 3.0
    name = os.environ.get("AGENTOS_AGENT_NAME", "worker")
    print(f"[{name}] pid {os.getpid()}, socket {socket_path}, working {seconds:g} s", flush=True)
    try:
        client = _common.spawned_client(socket_path)
    except Exception as exc:  # noqa: BLE001 - SDK or MiniClient errors alike
        print(f"[{name}] cannot reach the kernel: {exc}", file=sys.stderr, flush=True)
        return 1
    deadline = time.monotonic() + seconds
    rounds = 0
    try:
        while True:
            rounds += 1
            text = f"{name} round {rounds}"
            if client.echo(text) != text:
                print(f"[{name}] echo mismatch in round {rounds}", file=sys.stderr, flush=True)
                return 1
            digest = do_work(text, ROUND_WORK_S)
            print(f"[{name}] round {rounds}: echo ok (agent id {client.agent_id}), "
                  f"work {digest[:12]}", flush=True)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(ROUND_PAUSE_S, remaining))
    except Exception as exc:  # noqa: BLE001
        print(f"[{name}] kernel stopped answering: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        client.disconnect()
    print(f"[{name}] done after {rounds} rounds", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
