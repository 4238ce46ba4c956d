#!/usr/bin/env python3
"""Probe agent that tries one TCP connection and reports the outcome.

    net_connect.py <socket> HOST PORT

Prints one JSON line {"connected": bool, "detail": str}.
"""

import json
import socket
import sys


def main(argv):
    host, port = argv[2], int(argv[3])
    try:
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.sendall(b"hello from an agent\n")
        result = {"connected": True, "detail": f"connected to {host}:{port}"}
    except OSError as exc:
        result = {"connected": False, "detail": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
