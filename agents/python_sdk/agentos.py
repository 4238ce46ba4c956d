"""Python client for the AgentOS kernel (standard library only).

The kernel listens on a Unix domain socket. Every message, in both
directions, is a 17-byte little-endian header followed by a payload::

    struct.pack('<IIBQ', MAGIC_BYTES, agent_id, opcode, len(payload))

A response carries the request's opcode and the caller's agent id as the
kernel knows it; the client adopts that id.

Quick start::

    from agentos import AgentOSClient

    with AgentOSClient() as client:          # $AGENTOS_SOCKET or /tmp/agentos.sock
        print(client.echo("Hello!"))         # "Hello!"
        print(client.think("What is 2+2?")["content"])
        client.spawn(name="worker1", script="/path/to/worker.py",
                     limits={"memory": 256 * 1024 * 1024})
        print(client.list_agents())
        client.kill(name="worker1")

By default JSON replies are returned as they come, including
``{"error": ...}`` replies, exactly like the original SDK. Pass
``raise_errors=True`` to get a :class:`KernelError` instead.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Dict, List, Optional, Union

__all__ = [
    "AgentOSClient",
    "AgentOSConnectionError",
    "AgentOSError",
    "AgentOSTimeoutError",
    "DEFAULT_SOCKET_PATH",
    "DEFAULT_TIMEOUT",
    "HEADER_FORMAT",
    "HEADER_SIZE",
    "KernelError",
    "MAGIC_BYTES",
    "MAX_PAYLOAD_SIZE",
    "Message",
    "PayloadTooLargeError",
    "ProtocolError",
    "SyscallOp",
    "connect",
]

__version__ = "0.1.0"

MAGIC_BYTES = 0x41474E54  # "AGNT"; on the wire: 54 4E 47 41
HEADER_FORMAT = "<IIBQ"  # magic, agent_id, opcode, payload_size
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)  # 17
MAX_PAYLOAD_SIZE = 1024 * 1024
DEFAULT_SOCKET_PATH = "/tmp/agentos.sock"
DEFAULT_TIMEOUT = 60.0  # seconds; generous because THINK waits for an LLM

_HEADER = struct.Struct(HEADER_FORMAT)
_USE_DEFAULT = object()  # sentinel: "use the client's timeout"


class SyscallOp(IntEnum):
    """Opcodes understood by the kernel."""

    NOOP = 0x00
    THINK = 0x01
    SPAWN = 0x10
    KILL = 0x11
    LIST = 0x12
    LOGS = 0x13
    STATS = 0x14
    PAUSE = 0x15
    RESUME = 0x16
    WAIT = 0x17
    EVENTS = 0x18
    HELLO = 0xFE
    EXIT = 0xFF


class AgentOSError(Exception):
    """Base class of every error raised by this module."""


class AgentOSConnectionError(AgentOSError, ConnectionError):
    """The kernel cannot be reached, or it closed the connection."""


class AgentOSTimeoutError(AgentOSError, TimeoutError):
    """No reply arrived within the client's timeout.

    The connection is closed when this is raised: a late reply would
    otherwise be taken as the answer to the next request.
    """


class ProtocolError(AgentOSError):
    """The kernel sent something that is not a valid AgentOS message."""


class PayloadTooLargeError(AgentOSError, ValueError):
    """A request payload exceeds MAX_PAYLOAD_SIZE; nothing was sent."""


class KernelError(AgentOSError):
    """The kernel answered ``{"error": ...}`` (only with ``raise_errors=True``).

    Attributes:
        reply: the complete decoded reply, e.g. ``{"error": "...", "code": ...}``.
        opcode: the opcode of the request that failed.
    """

    def __init__(self, message: str, reply: Any = None, opcode: Optional[int] = None):
        super().__init__(message)
        self.reply = reply
        self.opcode = opcode


@dataclass(repr=False)
class Message:
    """One protocol message: agent_id, opcode and the raw payload bytes."""

    agent_id: int
    opcode: int
    payload: bytes = b""

    def json(self) -> Any:
        """The payload decoded as UTF-8 JSON; raises ProtocolError if it is not."""
        try:
            return json.loads(self.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ProtocolError(f"reply to opcode 0x{self.opcode:02x} is not JSON: "
                                f"{self.payload[:80]!r}") from exc

    def text(self) -> str:
        """The payload decoded as UTF-8 (undecodable bytes are replaced)."""
        return self.payload.decode("utf-8", errors="replace")

    def pack(self) -> bytes:
        """The message as it goes on the wire."""
        return _HEADER.pack(MAGIC_BYTES, self.agent_id, self.opcode, len(self.payload)) + self.payload

    def __repr__(self) -> str:
        try:
            op: Union[str, int] = SyscallOp(self.opcode).name
        except ValueError:
            op = f"0x{self.opcode:02x}"
        return f"Message(agent_id={self.agent_id}, opcode={op}, payload={self.payload[:60]!r})"


def _default_socket_path() -> str:
    return os.environ.get("AGENTOS_SOCKET") or DEFAULT_SOCKET_PATH


def _to_bytes(payload: Union[bytes, bytearray, memoryview, str, None]) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return bytes(payload)


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


class AgentOSClient:
    """A connection to the AgentOS kernel.

    Args:
        socket_path: the kernel's socket; default ``$AGENTOS_SOCKET``, else
            ``/tmp/agentos.sock``.
        timeout: seconds to wait for connecting and for each reply; ``None``
            waits forever. Individual calls can override it.
        raise_errors: when true, JSON replies of the form ``{"error": ...}``
            (with a non-empty error) raise :class:`KernelError` instead of
            being returned.

    One client may be shared between threads: requests are serialised.
    Calls connect on first use if :meth:`connect` was not called.
    """

    def __init__(self, socket_path: Optional[str] = None,
                 timeout: Optional[float] = DEFAULT_TIMEOUT,
                 raise_errors: bool = False):
        self.socket_path = socket_path or _default_socket_path()
        self.timeout = timeout
        self.raise_errors = raise_errors
        self.agent_id = 0
        self.sock: Optional[socket.socket] = None
        self._lock = threading.RLock()

    # -- connection -------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the client holds an open connection."""
        return self.sock is not None

    def connect(self) -> "AgentOSClient":
        """Opens the connection (no-op if already open) and returns self.

        Raises:
            AgentOSConnectionError: the socket does not exist or nobody listens.
        """
        with self._lock:
            if self.sock is not None:
                return self
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.socket_path)
            except socket.timeout as exc:
                sock.close()
                raise AgentOSTimeoutError(
                    f"timed out connecting to {self.socket_path}: is agentos_kernel running?"
                ) from exc
            except OSError as exc:
                sock.close()
                reason = exc.strerror or str(exc)
                raise AgentOSConnectionError(
                    f"cannot connect to {self.socket_path}: is agentos_kernel running? ({reason})"
                ) from exc
            self.sock = sock
            return self

    def disconnect(self) -> None:
        """Closes the connection. Safe to call more than once."""
        with self._lock:
            if self.sock is not None:
                try:
                    self.sock.close()
                finally:
                    self.sock = None

    close = disconnect

    def __enter__(self) -> "AgentOSClient":
        return self.connect()

    def __exit__(self, *exc_info: Any) -> None:
        self.disconnect()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"AgentOSClient({self.socket_path!r}, agent_id={self.agent_id}, {state})"

    # -- raw messages -----------------------------------------------------

    def send(self, opcode: int, payload: Union[bytes, str] = b"") -> None:
        """Sends one request. ``str`` payloads are encoded as UTF-8.

        Raises:
            PayloadTooLargeError: the payload exceeds MAX_PAYLOAD_SIZE.
            AgentOSConnectionError: the connection is gone.
        """
        data = _to_bytes(payload)
        if len(data) > MAX_PAYLOAD_SIZE:
            raise PayloadTooLargeError(
                f"payload of {len(data)} bytes exceeds the limit of {MAX_PAYLOAD_SIZE} bytes")
        frame = _HEADER.pack(MAGIC_BYTES, self.agent_id, int(opcode), len(data)) + data
        with self._lock:
            sock = self.connect().sock
            assert sock is not None
            try:
                sock.sendall(frame)
            except socket.timeout as exc:
                self.disconnect()
                raise AgentOSTimeoutError(
                    f"timed out sending to {self.socket_path}; connection closed") from exc
            except OSError as exc:
                self.disconnect()
                raise AgentOSConnectionError(
                    f"lost connection to {self.socket_path}: {exc.strerror or exc}") from exc

    def recv(self) -> Message:
        """Reads one message and adopts its agent_id.

        Raises:
            AgentOSTimeoutError: nothing arrived within the timeout.
            AgentOSConnectionError: the kernel closed the connection.
            ProtocolError: the bytes received are not an AgentOS message.
        """
        with self._lock:
            header = self._recv_exact(HEADER_SIZE)
            magic, agent_id, opcode, size = _HEADER.unpack(header)
            if magic != MAGIC_BYTES:
                self.disconnect()
                raise ProtocolError(f"bad magic 0x{magic:08x} in reply (expected 0x{MAGIC_BYTES:08x})")
            if size > MAX_PAYLOAD_SIZE:
                self.disconnect()
                raise ProtocolError(f"reply payload_size {size} exceeds {MAX_PAYLOAD_SIZE}")
            payload = self._recv_exact(size) if size else b""
            self.agent_id = agent_id
            return Message(agent_id, opcode, payload)

    def call(self, opcode: int, payload: Union[bytes, str] = b"",
             timeout: Any = _USE_DEFAULT) -> Message:
        """Sends a request and returns its reply.

        ``timeout`` overrides the client's timeout for this call only
        (seconds, or ``None`` to wait forever).
        """
        with self._lock:
            self.connect()
            assert self.sock is not None
            if timeout is not _USE_DEFAULT:
                self.sock.settimeout(timeout)
            try:
                self.send(opcode, payload)
                return self.recv()
            finally:
                if self.sock is not None and timeout is not _USE_DEFAULT:
                    self.sock.settimeout(self.timeout)

    def _recv_exact(self, n: int) -> bytes:
        sock = self.sock
        if sock is None:
            raise AgentOSConnectionError(f"not connected to {self.socket_path}")
        chunks = []
        remaining = n
        while remaining:
            try:
                chunk = sock.recv(min(remaining, 1 << 20))
            except socket.timeout as exc:
                self.disconnect()
                raise AgentOSTimeoutError(
                    f"no reply from {self.socket_path} within {sock.gettimeout()} s; "
                    "connection closed") from exc
            except OSError as exc:
                self.disconnect()
                raise AgentOSConnectionError(
                    f"lost connection to {self.socket_path}: {exc.strerror or exc}") from exc
            if not chunk:
                self.disconnect()
                raise AgentOSConnectionError(f"the kernel closed the connection on {self.socket_path}")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _call_json(self, opcode: int, payload: Union[bytes, str] = b"",
                   timeout: Any = _USE_DEFAULT) -> Any:
        reply = self.call(opcode, payload, timeout=timeout).json()
        if self.raise_errors and isinstance(reply, dict) and reply.get("error"):
            raise KernelError(str(reply["error"]), reply=reply, opcode=int(opcode))
        return reply

    # -- syscalls ---------------------------------------------------------

    def echo(self, message: Union[str, bytes]) -> str:
        """NOOP round trip: returns the text the kernel echoed back."""
        return self.call(SyscallOp.NOOP, message).text()

    def hello(self) -> Dict[str, Any]:
        """The kernel's HELLO reply: ``{"protocol", "kernel", "features"}``."""
        return self._call_json(SyscallOp.HELLO)

    def think(self, prompt: Union[str, bytes, None] = None, *,
              messages: Optional[List[Dict[str, str]]] = None, system: Optional[str] = None,
              model: Optional[str] = None,
              temperature: Optional[float] = None, max_tokens: Optional[int] = None,
              timeout: Any = _USE_DEFAULT) -> Dict[str, Any]:
        """Asks the kernel's LLM.

        With only ``prompt`` the text is sent as is (like the original SDK),
        unless it looks like a JSON object, in which case it is wrapped as
        ``{"prompt": ...}`` so the kernel cannot mistake it for a structured
        request. The keyword options always send a structured request.

        Returns:
            ``{"content", "tokens", "error", ...}``; ``error`` is empty on success.
        """
        if prompt is None and messages is None:
            raise ValueError("think() needs a prompt or messages")
        if isinstance(prompt, (bytes, bytearray)):
            prompt = bytes(prompt).decode("utf-8")
        options = {"messages": messages, "system": system, "model": model,
                   "temperature": temperature, "max_tokens": max_tokens}
        request = {k: v for k, v in options.items() if v is not None}
        if request or (prompt is not None and prompt.lstrip().startswith("{")):
            if prompt is not None:
                request["prompt"] = prompt
            payload = _json_bytes(request)
        else:
            payload = prompt.encode("utf-8")  # type: ignore[union-attr]
        return self._call_json(SyscallOp.THINK, payload, timeout=timeout)

    def spawn(self, name: str, script: str, sandboxed: bool = True, network: bool = False,
              limits: Optional[Dict[str, int]] = None, **options: Any) -> Dict[str, Any]:
        """Starts a new agent running ``script``.

        A relative ``script`` that exists from the caller's working directory
        is made absolute, since the kernel does not share that directory.
        Extra keyword options (``python``, ``args``, ``env``, ``restart``, ...)
        are passed through; ``None`` values are left out.

        Returns:
            ``{"id", "name", "pid", "status": "running", ...}`` or ``{"error": ...}``.
        """
        if not os.path.isabs(script) and os.path.exists(script):
            script = os.path.abspath(script)
        request: Dict[str, Any] = {"name": name, "script": script,
                                   "sandboxed": sandboxed, "network": network}
        if limits is not None:
            request["limits"] = limits
        request.update({k: v for k, v in options.items() if v is not None})
        return self._call_json(SyscallOp.SPAWN, _json_bytes(request))

    def kill(self, name: Optional[str] = None, agent_id: Optional[int] = None) -> Dict[str, Any]:
        """Kills an agent (and its whole tree) by name or by id: ``{"killed": bool}``."""
        if (name is None) == (agent_id is None):
            raise ValueError("kill() needs exactly one of name= or agent_id=")
        request = {"name": name} if name is not None else {"id": agent_id}
        return self._call_json(SyscallOp.KILL, _json_bytes(request))

    def list_agents(self, all: bool = False) -> List[Dict[str, Any]]:  # noqa: A002 - LIST's field
        """Agents that are running (with ``all=True``: ended ones too)."""
        payload = _json_bytes({"all": True}) if all else b""
        return self._call_json(SyscallOp.LIST, payload)

    def logs(self, name: Optional[str] = None, agent_id: Optional[int] = None, *,
             tail: Optional[int] = None, since: Optional[int] = None,
             max_bytes: Optional[int] = None, wait_ms: Optional[int] = None) -> Dict[str, Any]:
        """A page of an agent's captured output (docs/PROTOCOL.md, LOGS):
        ``{"lines": [{"ts", "stream", "text"}], "next", "running", ...}``.
        Pass ``next`` back as ``since`` (with ``wait_ms`` to wait for more)."""
        request = self._selector(name, agent_id, "logs")
        request.update({k: v for k, v in {"tail": tail, "since": since, "max_bytes": max_bytes,
                                          "wait_ms": wait_ms}.items() if v is not None})
        timeout = _USE_DEFAULT if not wait_ms else max(self.timeout or 0, wait_ms / 1000 + 10)
        return self._call_json(SyscallOp.LOGS, _json_bytes(request), timeout=timeout)

    def stats(self, name: Optional[str] = None, agent_id: Optional[int] = None) -> Dict[str, Any]:
        """Usage of every agent (or one) and of the kernel: ``{"agents", "kernel"}``."""
        request = {} if name is None and agent_id is None else self._selector(name, agent_id, "stats")
        return self._call_json(SyscallOp.STATS, _json_bytes(request))

    def pause(self, name: Optional[str] = None, agent_id: Optional[int] = None) -> Dict[str, Any]:
        """Freezes an agent's processes (cgroup freezer): ``{"paused": true}``."""
        return self._call_json(SyscallOp.PAUSE, _json_bytes(self._selector(name, agent_id, "pause")))

    def resume(self, name: Optional[str] = None, agent_id: Optional[int] = None) -> Dict[str, Any]:
        """Thaws a paused agent: ``{"resumed": true}``."""
        return self._call_json(SyscallOp.RESUME, _json_bytes(self._selector(name, agent_id, "resume")))

    def wait(self, name: Optional[str] = None, agent_id: Optional[int] = None, *,
             timeout_ms: int = 0) -> Dict[str, Any]:
        """Waits until the agent ended for good; returns its LIST entry.
        Without ``timeout_ms`` it waits as long as it takes."""
        request = self._selector(name, agent_id, "wait")
        if timeout_ms:
            request["timeout_ms"] = timeout_ms
        timeout = None if not timeout_ms else max(self.timeout or 0, timeout_ms / 1000 + 10)
        return self._call_json(SyscallOp.WAIT, _json_bytes(request), timeout=timeout)

    def events(self, since: int = 0, *, name: Optional[str] = None, limit: Optional[int] = None,
               wait_ms: Optional[int] = None) -> Dict[str, Any]:
        """Lifecycle events from sequence ``since`` on: ``{"events", "next"}``."""
        request: Dict[str, Any] = {"since": since}
        request.update({k: v for k, v in {"name": name, "limit": limit, "wait_ms": wait_ms}.items()
                        if v is not None})
        timeout = _USE_DEFAULT if not wait_ms else max(self.timeout or 0, wait_ms / 1000 + 10)
        return self._call_json(SyscallOp.EVENTS, _json_bytes(request), timeout=timeout)

    @staticmethod
    def _selector(name: Optional[str], agent_id: Optional[int], what: str) -> Dict[str, Any]:
        if (name is None) == (agent_id is None):
            raise ValueError(f"{what}() needs exactly one of name= or agent_id=")
        return {"name": name} if name is not None else {"id": agent_id}

    def exit(self) -> str:
        """Says goodbye: the kernel answers ``goodbye`` and closes this connection."""
        with self._lock:
            if self.sock is None:
                return ""
            try:
                return self.call(SyscallOp.EXIT).text()
            finally:
                self.disconnect()


def connect(socket_path: Optional[str] = None, **kwargs: Any) -> AgentOSClient:
    """Returns a connected :class:`AgentOSClient` (keyword args go to its constructor)."""
    return AgentOSClient(socket_path, **kwargs).connect()
