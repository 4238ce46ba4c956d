"""The Python SDK (agents/python_sdk/agentos.py): against the real kernel, and
against a scripted fake kernel for what the real one cannot be made to do."""

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import zipfile

import pytest

import agentos
from agentos import AgentOSClient, SyscallOp
from kernel_harness import HEADER, MAGIC, pack_frame


# -- constants and types --------------------------------------------------------


def test_protocol_constants():
    assert agentos.MAGIC_BYTES == 0x41474E54
    assert agentos.HEADER_SIZE == 17 == struct.calcsize("<IIBQ")
    assert agentos.MAX_PAYLOAD_SIZE == 1048576
    assert {op.name: op.value for op in SyscallOp} == {
        "NOOP": 0x00, "THINK": 0x01, "SPAWN": 0x10, "KILL": 0x11, "LIST": 0x12,
        "LOGS": 0x13, "STATS": 0x14, "PAUSE": 0x15, "RESUME": 0x16, "WAIT": 0x17, "EVENTS": 0x18,
        "HELLO": 0xFE, "EXIT": 0xFF}


def test_message_helpers():
    msg = agentos.Message(3, SyscallOp.LIST, b'[{"name": "w"}]')
    assert (msg.agent_id, msg.opcode, msg.payload) == (3, 0x12, b'[{"name": "w"}]')
    assert msg.json() == [{"name": "w"}]
    assert msg.text() == '[{"name": "w"}]'
    assert msg.pack() == pack_frame(0x12, b'[{"name": "w"}]', agent_id=3)
    with pytest.raises(agentos.ProtocolError):
        agentos.Message(0, 0, b"not json").json()


# -- against the real kernel --------------------------------------------------------


@pytest.mark.parametrize("text", ["Hello!", "", "unicode ✓ ünïcödé", "x" * 100_000])
def test_echo(kernel, text):
    with kernel.client() as client:
        assert client.echo(text) == text
        assert client.agent_id == 0


def test_call_returns_message(kernel):
    with kernel.client() as client:
        assert client.call(SyscallOp.NOOP, b"\x00\x01") == agentos.Message(0, 0, b"\x00\x01")


def test_hello(kernel):
    with kernel.client() as client:
        hello = client.hello()
    assert hello["protocol"] == 1
    assert isinstance(hello["kernel"], str) and hello["kernel"]
    assert isinstance(hello["features"], list)


@pytest.mark.parametrize("kwargs", [{}, {"system": "Be brief.", "max_tokens": 16, "temperature": 0.5}],
                         ids=["plain", "structured"])
def test_think_without_llm_returns_error_dict(kernel, kwargs):
    with kernel.client() as client:
        reply = client.think("What is 2+2?", **kwargs)
    assert reply["content"] == ""
    assert reply["error"].startswith("LLM not configured")


def test_think_raise_errors_raises_kernel_error(kernel):
    with kernel.client(raise_errors=True) as client:
        with pytest.raises(agentos.KernelError) as info:
            client.think("What is 2+2?")
        assert client.echo("still connected") == "still connected"
    err = info.value
    assert isinstance(err, agentos.AgentOSError)
    assert str(err).startswith("LLM not configured")
    assert err.reply["content"] == "" and err.opcode == SyscallOp.THINK


def test_list_agents_empty(kernel):
    with kernel.client() as client:
        assert client.list_agents() == []
        assert client.list_agents(all=True) == []


def test_kill_unknown_agent(kernel):
    with kernel.client() as client:
        if "kill" not in client.hello().get("features", []):
            pytest.skip("kernel does not offer KILL yet (HELLO features)")
        assert client.kill(name="no-such-agent").get("killed") is False
        assert client.kill(agent_id=987654).get("killed") is False
        with pytest.raises(ValueError):
            client.kill()


def test_context_manager_connects_and_disconnects(kernel):
    client = AgentOSClient(str(kernel.socket_path))
    assert not client.connected
    with client as c:
        assert c is client and c.connected
        assert c.echo("in context") == "in context"
    assert not client.connected


def test_exit_says_goodbye_and_disconnects(kernel):
    client = kernel.client()
    assert client.exit() == "goodbye"
    assert not client.connected
    assert client.echo("reconnects on demand") == "reconnects on demand"
    client.disconnect()


def test_missing_socket_error_says_what_to_do(tmp_path):
    path = str(tmp_path / "absent.sock")
    with pytest.raises(agentos.AgentOSConnectionError) as info:
        AgentOSClient(path).connect()
    assert isinstance(info.value, agentos.AgentOSError)
    assert isinstance(info.value, ConnectionError)
    assert path in str(info.value)
    assert "is agentos_kernel running" in str(info.value)
    with pytest.raises(agentos.AgentOSError, match="is agentos_kernel running"):
        AgentOSClient(path).echo("connects on first use")


def test_default_socket_from_environment(kernel, monkeypatch):
    monkeypatch.setenv("AGENTOS_SOCKET", str(kernel.socket_path))
    client = AgentOSClient()
    assert client.socket_path == str(kernel.socket_path)
    with client:
        assert client.echo("via env") == "via env"
    with agentos.connect() as client2:
        assert client2.echo("module connect") == "module connect"


def test_default_socket_without_environment(monkeypatch):
    monkeypatch.delenv("AGENTOS_SOCKET", raising=False)
    assert AgentOSClient().socket_path == "/tmp/agentos.sock"
    assert AgentOSClient("/x.sock").socket_path == "/x.sock"


def test_oversized_payload_is_refused_before_sending(kernel):
    with kernel.client() as client:
        with pytest.raises(agentos.PayloadTooLargeError):
            client.send(SyscallOp.NOOP, b"x" * (agentos.MAX_PAYLOAD_SIZE + 1))
        assert isinstance(agentos.PayloadTooLargeError("x"), ValueError)
        assert client.echo("nothing was sent") == "nothing was sent"


# -- against a fake kernel ----------------------------------------------------------


class FakeKernel:
    """A scripted peer on a Unix socket: records each request frame and
    answers with respond(agent_id, opcode, payload) -> raw bytes, or None to
    close the connection, or ... (Ellipsis) to stay silent."""

    def __init__(self, path, respond):
        self.path = str(path)
        self.respond = respond
        self.requests = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            while True:
                header = self._read(conn, 17)
                if header is None:
                    return
                magic, agent_id, opcode, size = HEADER.unpack(header)
                payload = self._read(conn, size) if size else b""
                self.requests.append((magic, agent_id, opcode, payload))
                reply = self.respond(agent_id, opcode, payload)
                if reply is None:
                    return
                if reply is not Ellipsis:
                    conn.sendall(reply)

    @staticmethod
    def _read(conn, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = conn.recv(n - len(buf))
            except OSError:  # the client reset the connection
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def close(self):
        self.listener.close()


@pytest.fixture
def fake(tmp_path):
    made = []

    def make(respond):
        server = FakeKernel(tmp_path / f"fake{len(made)}.sock", respond)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def json_reply(body, agent_id=0):
    return lambda _aid, opcode, _payload: pack_frame(opcode, json.dumps(body).encode(), agent_id)


def test_client_adopts_agent_id_of_replies(fake):
    server = fake(lambda aid, op, payload: pack_frame(op, payload, agent_id=42))
    with AgentOSClient(server.path) as client:
        assert client.echo("first") == "first"
        assert client.agent_id == 42
        client.echo("second")
    assert [r[1] for r in server.requests] == [0, 42]
    assert all(r[0] == MAGIC for r in server.requests)


def test_spawn_request_payload(fake, tmp_path, monkeypatch):
    server = fake(json_reply({"id": 1, "name": "w", "pid": 99, "status": "running"}))
    script = tmp_path / "w.py"
    script.write_text("pass\n")
    monkeypatch.chdir(tmp_path)
    with AgentOSClient(server.path) as client:
        reply = client.spawn("w", "w.py", limits={"memory": 128 << 20}, args=["3"], env=None)
        client.spawn("v", "/abs/v.py", sandboxed=False, network=True, restart="on-failure")
    assert reply["status"] == "running"
    first, second = (json.loads(r[3]) for r in server.requests)
    assert first == {"name": "w", "script": str(script), "sandboxed": True, "network": False,
                     "limits": {"memory": 128 << 20}, "args": ["3"]}
    assert second == {"name": "v", "script": "/abs/v.py", "sandboxed": False, "network": True,
                      "restart": "on-failure"}
    assert [r[2] for r in server.requests] == [SyscallOp.SPAWN] * 2


def test_kill_and_list_request_payloads(fake):
    server = fake(json_reply({"killed": True}))
    with AgentOSClient(server.path) as client:
        client.kill(name="w")
        client.kill(agent_id=3)
        client.list_agents()
        client.list_agents(all=True)
    sent = [(r[2], r[3]) for r in server.requests]
    assert sent[0] == (SyscallOp.KILL, b'{"name": "w"}')
    assert json.loads(sent[1][1]) == {"id": 3}
    assert sent[2] == (SyscallOp.LIST, b"")
    assert json.loads(sent[3][1]) == {"all": True}


def test_think_request_payloads(fake):
    server = fake(json_reply({"content": "4", "tokens": 1, "error": ""}))
    with AgentOSClient(server.path, raise_errors=True) as client:
        assert client.think("What is 2+2?")["content"] == "4"
        client.think('{"prompt": "looks like JSON"}')
        client.think("q", system="s", max_tokens=5)
        client.think(messages=[{"role": "user", "content": "hi"}])
    payloads = [r[3] for r in server.requests]
    assert payloads[0] == b"What is 2+2?"  # plain text, like the original SDK
    assert json.loads(payloads[1]) == {"prompt": '{"prompt": "looks like JSON"}'}
    assert json.loads(payloads[2]) == {"prompt": "q", "system": "s", "max_tokens": 5}
    assert json.loads(payloads[3]) == {"messages": [{"role": "user", "content": "hi"}]}


def test_timeout_raises_and_disconnects(fake):
    server = fake(lambda *_: Ellipsis)
    client = AgentOSClient(server.path, timeout=0.2).connect()
    with pytest.raises(agentos.AgentOSTimeoutError) as info:
        client.echo("nobody answers")
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, agentos.AgentOSError)
    assert not client.connected  # a late reply must not be taken for the next one


def test_per_call_timeout_overrides_client_timeout(fake):
    server = fake(lambda *_: Ellipsis)
    with AgentOSClient(server.path, timeout=None) as client:
        with pytest.raises(agentos.AgentOSTimeoutError):
            client.call(SyscallOp.NOOP, b"x", timeout=0.2)


def test_bad_magic_reply_is_a_protocol_error(fake):
    server = fake(lambda aid, op, payload: pack_frame(op, payload, magic=0xDEADBEEF))
    client = AgentOSClient(server.path).connect()
    with pytest.raises(agentos.ProtocolError, match="magic"):
        client.echo("x")
    assert not client.connected


def test_kernel_closing_connection_is_a_connection_error(fake):
    server = fake(lambda *_: None)
    client = AgentOSClient(server.path).connect()
    with pytest.raises(agentos.AgentOSConnectionError, match="closed"):
        client.echo("x")
    assert not client.connected


def test_error_reply_returned_by_default_raised_on_request(fake):
    server = fake(json_reply({"error": "name 'w' is taken", "code": "EEXIST"}))
    with AgentOSClient(server.path) as client:
        assert client.spawn("w", "/w.py") == {"error": "name 'w' is taken", "code": "EEXIST"}
        client.raise_errors = True
        with pytest.raises(agentos.KernelError, match="is taken") as info:
            client.spawn("w", "/w.py")
    assert info.value.reply["code"] == "EEXIST"
    assert info.value.opcode == SyscallOp.SPAWN


def test_sdk_installs_offline(tmp_path):
    """`pip install ./agents/python_sdk` needs no index (in-tree backend)."""
    sdk = os.path.dirname(os.path.abspath(agentos.__file__))
    out = tmp_path / "wheels"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index",
                             "-w", str(out), sdk], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PIP_NO_INDEX": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list(out.glob("agentos-*-py3-none-any.whl"))
    assert len(wheels) == 1
    assert "agentos.py" in zipfile.ZipFile(wheels[0]).namelist()
