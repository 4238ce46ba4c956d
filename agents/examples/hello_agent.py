#!/usr/bin/env python3
"""Hello agent: one NOOP round trip through the kernel.

Usage: hello_agent.py [--socket PATH] [MESSAGE ...]
Prints what it sent and what came back; exits 1 if they differ or the kernel
cannot be reached.
"""

import sys

import _common


def main():
    parser = _common.parser("Echo a message through the AgentOS kernel.")
    parser.add_argument("message", nargs="*", help="text to echo (default: a greeting)")
    args = parser.parse_args()
    message = " ".join(args.message) or "Hello from AgentOS!"

    with _common.client(args.socket) as client:
        print(f"connected to {client.socket_path}")
        print(f"sent:     {message!r}")
        received = client.echo(message)
        print(f"received: {received!r}")
        print(f"agent id: {client.agent_id}")
    if received != message:
        print("error: the echo does not match what was sent", file=sys.stderr)
        return 1
    print("echo OK")
    return 0


if __name__ == "__main__":
    _common.run(main)
