#!/usr/bin/env python3
"""Probe agent that tries one connection and reports the outcome.

    net_connect.py <socket> HOST PORT     a TCP connection
    net_connect.py <socket> @NAME         an abstract unix socket (no leading NUL)

Prints one JSON line {"connected": bool, "detail": str, "errno": name or null}.
"""

import errno
import json
import socket
import sys


def connect(argv):
    if argv[2].startswith("@"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(5)
            conn.connect("\0" + argv[2][1:])
            conn.sendall(b"hello from an agent\n")
        return f"connected to {argv[2]}"
    host, port = argv[2], int(argv[3])
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(b"hello from an agent\n")
    return f"connected to {host}:{port}"


def main(argv):
    try:
        result = {"connected": True, "detail": connect(argv), "errno": None}
    except OSError as exc:
        result = {"connected": False, "detail": f"{type(exc).__name__}: {exc}",
                  "errno": errno.errorcode.get(exc.errno or 0)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
