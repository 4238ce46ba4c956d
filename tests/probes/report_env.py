#!/usr/bin/env python3
"""Probe agent that reports what the kernel gave it and who the kernel thinks
it is, as one JSON line {"report": {...}}, then exits 0.

    report_env.py <socket> [args...]

Reported: argv, the AGENTOS_* variables, PYTHONPATH, uid/gid, hostname;
whether `from agentos import AgentOSClient` works; the agent_id in the
headers of replies on argv[1] (through the SDK, and for a raw NOOP that
claims a false agent_id); HELLO's agent_id.
"""

import json
import os
import socket
import struct
import sys

HEADER = struct.Struct("<IIBQ")
MAGIC = 0x41474E54


def raw_noop(path, claimed_id, payload=b"who am i"):
    """Header agent_id of the reply to a NOOP that claims `claimed_id`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(HEADER.pack(MAGIC, claimed_id, 0x00, len(payload)) + payload)
        buf = b""
        while len(buf) < HEADER.size + len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    _, agent_id, _, _ = HEADER.unpack(buf[:HEADER.size])
    return agent_id, buf[HEADER.size:] == payload


def sdk_facts(path):
    try:
        from agentos import AgentOSClient
    except ImportError as exc:
        return {"sdk_import": False, "sdk_error": str(exc)}
    with AgentOSClient(path, timeout=10) as client:
        echoed = client.echo("ping") == "ping"
        echo_id = client.agent_id
        hello = client.hello()
    return {"sdk_import": True, "echo_ok": echoed, "echo_agent_id": echo_id,
            "hello_agent_id": hello.get("agent_id")}


def main(argv):
    report = {
        "argv": argv,
        "env": {k: v for k, v in os.environ.items() if k.startswith("AGENTOS_")},
        "pythonpath": os.environ.get("PYTHONPATH"),
        "extra_env": {k: os.environ.get(k) for k in ("PROBE_VAR", "PROBE_EMPTY")},
        "uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(),
        "groups": os.getgroups(),
        "hostname": socket.gethostname(),
    }
    try:
        report.update(sdk_facts(argv[1]))
        report["raw_claim_0"], report["raw_echo_ok"] = raw_noop(argv[1], 0)
        report["raw_claim_4242"], _ = raw_noop(argv[1], 4242)
    except OSError as exc:
        report["socket_error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"report": report}), flush=True)


if __name__ == "__main__":
    main(sys.argv)
