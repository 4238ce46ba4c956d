"""Shared plumbing for the example agents: finding the SDK, the socket
argument, reading input unattended, and turning SDK errors into exit codes.

Importing this module puts ../python_sdk on sys.path, so every example runs
from any directory without installing the SDK.
"""

import argparse
import os
import socket
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_DIR = os.path.normpath(os.path.join(HERE, "..", "python_sdk"))
if SDK_DIR not in sys.path:
    sys.path.insert(0, SDK_DIR)

try:
    import agentos
except ImportError:  # a sandbox shows only the script's directory and the kernel's SDK dir
    agentos = None


def example_path(name):
    """Absolute path of a sibling example script (what SPAWN needs)."""
    return os.path.join(HERE, name)


def add_socket_arg(parser):
    """Adds --socket (default: $AGENTOS_SOCKET, else the SDK's default)."""
    parser.add_argument("--socket", default=os.environ.get("AGENTOS_SOCKET"),
                        help="kernel socket (default: $AGENTOS_SOCKET or /tmp/agentos.sock)")
    return parser


def parser(description):
    return add_socket_arg(argparse.ArgumentParser(description=description))


def read_text(words, prompt, default=None):
    """The input text: command-line words, else piped stdin, else `default`,
    else (only at a terminal) an interactive prompt."""
    if words:
        return " ".join(words).strip()
    if not sys.stdin.isatty():
        return sys.stdin.read().strip()
    if default is not None:
        return default
    return input(prompt).strip()


def run(main):
    """Runs main() and maps failures to exit codes: SDK and kernel errors
    print one clear line and exit 1; Ctrl-C exits 130."""
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:  # noqa: BLE001 - only SDK errors are expected here
        if agentos is None or not isinstance(exc, agentos.AgentOSError):
            raise
        label = "the kernel answered with an error" if isinstance(exc, agentos.KernelError) else "error"
        print(f"{label}: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code or 0)


def client(socket_path=None, **kwargs):
    """A connected SDK client that raises KernelError on {"error": ...} replies."""
    kwargs.setdefault("raise_errors", True)
    return agentos.AgentOSClient(socket_path, **kwargs).connect()


def think(client_, prompt):
    """THINK and return the content; a non-empty "error" raises KernelError
    (the client is made with raise_errors=True), which run() reports."""
    reply = client_.think(prompt)
    return (reply.get("content") or "").strip()


class MiniClient:
    """Echo-only client for spawned agents that cannot see the SDK.

    The kernel binds its SDK directory into every sandbox and puts it on
    PYTHONPATH, but a kernel that found no SDK (installed without
    agents/python_sdk, no sdk_dir configured) shows a sandboxed agent only
    its own script's directory. The agents the kernel spawns then fall back
    to this minimal implementation of the same framing (DESIGN.md §2).
    """

    _HEADER = struct.Struct("<IIBQ")
    _MAGIC = 0x41474E54

    def __init__(self, socket_path, timeout=30.0):
        self.socket_path = socket_path
        self.agent_id = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(socket_path)

    def echo(self, text):
        data = text.encode()
        self.sock.sendall(self._HEADER.pack(self._MAGIC, self.agent_id, 0, len(data)) + data)
        magic, self.agent_id, _, size = self._HEADER.unpack(self._recv(self._HEADER.size))
        if magic != self._MAGIC:
            raise ConnectionError(f"bad magic 0x{magic:08x} from {self.socket_path}")
        return self._recv(size).decode("utf-8", errors="replace")

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"kernel closed the connection on {self.socket_path}")
            buf += chunk
        return buf

    def disconnect(self):
        self.sock.close()


def spawned_client(socket_path):
    """A connected client for an agent started by the kernel: the SDK when
    importable, else MiniClient. Both offer echo(), disconnect() and agent_id."""
    if agentos is not None:
        return agentos.AgentOSClient(socket_path, timeout=30.0).connect()
    return MiniClient(socket_path)


def spawned_socket(argv):
    """The socket a spawned agent must use: argv[1], else $AGENTOS_SOCKET."""
    if len(argv) > 1 and argv[1]:
        return argv[1]
    return os.environ.get("AGENTOS_SOCKET") or "/tmp/agentos.sock"
