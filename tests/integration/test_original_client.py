"""An unmodified client of the ORIGINAL AgentOS must keep working.

OriginalStyleClient talks the way DESIGN.md §2 describes the original SDK:
struct.pack('<IIBQ', magic, agent_id, opcode, len), adopting the agent_id of
every response, json.loads on THINK/SPAWN/KILL/LIST replies, a bare
"goodbye" for EXIT, and `.get('status') == 'running'` checks after SPAWN and
on LIST entries. It deliberately uses none of our SDK.
"""

import json
import socket
import struct

import pytest

from kernel_harness import EXAMPLES_DIR, wait_for

MAGIC = 0x41474E54


class OriginalStyleClient:
    def __init__(self, socket_path):
        self.socket_path = socket_path
        self.agent_id = 0
        self.sock = None

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.socket_path)

    def disconnect(self):
        self.sock.close()
        self.sock = None

    def send(self, opcode, payload=b""):
        self.sock.sendall(struct.pack("<IIBQ", MAGIC, self.agent_id, opcode, len(payload)) + payload)

    def recv(self):
        header = self._exact(17)
        magic, agent_id, opcode, size = struct.unpack("<IIBQ", header)
        assert magic == MAGIC
        self.agent_id = agent_id
        return opcode, self._exact(size)

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data

    def echo(self, message):
        self.send(0x00, message.encode())
        return self.recv()[1].decode()

    def think(self, prompt):
        self.send(0x01, prompt.encode())
        return json.loads(self.recv()[1])

    def spawn(self, name, script, sandboxed=True, limits=None):
        config = {"name": name, "script": script, "sandboxed": sandboxed}
        if limits:
            config["limits"] = limits
        self.send(0x10, json.dumps(config).encode())
        return json.loads(self.recv()[1])

    def kill(self, name):
        self.send(0x11, json.dumps({"name": name}).encode())
        return json.loads(self.recv()[1])

    def list_agents(self):
        self.send(0x12, b"")
        return json.loads(self.recv()[1])

    def exit(self):
        self.send(0xFF, b"")
        return self.recv()[1].decode()


@pytest.fixture
def original(kernel):
    client = OriginalStyleClient(str(kernel.socket_path))
    client.connect()
    yield client
    if client.sock is not None:
        client.disconnect()


def kernel_features(kernel):
    with kernel.client() as c:
        return set(c.hello().get("features", []))


def test_original_echo_think_list_exit(original):
    assert original.echo("Hello!") == "Hello!"
    assert original.agent_id == 0

    result = original.think("What is 2+2?")
    assert set(result) >= {"content", "error"}
    assert result["content"] == "" and result["error"].startswith("LLM not configured")

    agents = original.list_agents()
    assert isinstance(agents, list)
    assert [a for a in agents if a.get("status") == "running"] == []

    assert original.exit() == "goodbye"


def test_original_spawn_list_kill(kernel, original):
    missing = {"spawn", "kill"} - kernel_features(kernel)
    if missing:
        pytest.skip(f"kernel does not offer {sorted(missing)} yet (HELLO features)")
    script = str(EXAMPLES_DIR / "healthy_agent.py")
    result = original.spawn("orig-healthy", script, sandboxed=True,
                            limits={"memory": 128 * 1024 * 1024})
    assert result.get("status") == "running", result
    assert isinstance(result.get("id"), int) and isinstance(result.get("pid"), int)

    running = [a for a in original.list_agents() if a.get("status") == "running"]
    assert "orig-healthy" in [a.get("name") for a in running]

    assert original.kill("orig-healthy").get("killed") is True
    wait_for(lambda: "orig-healthy" not in [a.get("name") for a in original.list_agents()
                                            if a.get("status") == "running"],
             10, what="the killed agent to leave LIST")
