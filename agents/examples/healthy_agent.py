#!/usr/bin/env python3
"""Healthy agent: a well-behaved neighbour. Every 0.5 s it does an echo round
trip through the kernel and prints a heartbeat, showing that it keeps being
served while other agents misbehave.

argv[1] is the socket (when spawned by the kernel; else $AGENTOS_SOCKET or
/tmp/agentos.sock); argv[2] is how many seconds to run (default: forever).
Exits 0 when the time is up, 1 if the kernel stops answering.
"""

import os
import sys
import time

import _common

INTERVAL_S = 0.5


def main(argv):
    socket_path = _common.spawned_socket(argv)
    seconds = float(argv[2]) if len(argv) > 2 else None
    name = os.environ.get("AGENTOS_AGENT_NAME", "healthy")
    try:
        client = _common.spawned_client(socket_path)
    except Exception as exc:  # noqa: BLE001 - SDK or MiniClient errors alike
        print(f"[{name}] cannot reach the kernel at {socket_path}: {exc}", file=sys.stderr, flush=True)
        return 1
    start = time.monotonic()
    beat = 0
    try:
        while seconds is None or time.monotonic() - start < seconds:
            beat += 1
            sent = time.monotonic()
            if client.echo(f"heartbeat {beat}") != f"heartbeat {beat}":
                print(f"[{name}] echo mismatch at heartbeat {beat}", file=sys.stderr, flush=True)
                return 1
            rtt_ms = (time.monotonic() - sent) * 1000
            print(f"[{name}] heartbeat {beat}: echo ok in {rtt_ms:.2f} ms", flush=True)
            time.sleep(max(0.0, INTERVAL_S - (time.monotonic() - sent)))
    except Exception as exc:  # noqa: BLE001
        print(f"[{name}] kernel stopped answering: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        client.disconnect()
    print(f"[{name}] done after {beat} heartbeats", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        sys.exit(130)
