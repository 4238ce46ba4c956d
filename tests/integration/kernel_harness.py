"""Runs the real agentos_kernel for integration tests, and talks to it.

    with Kernel() as k:                     # fresh temp dir, no LLM keys
        with k.client() as c:               # SDK client on k.socket_path
            assert c.echo("hi") == "hi"
        conn = k.raw()                      # RawConn: frames byte by byte
        conn.send_frame(0x00, b"x")
        assert conn.recv_frame().payload == b"x"
    # exit code in k.returncode; stderr of the kernel in k.log_path

The binary is $AGENTOS_KERNEL_BIN, else <repo>/build/agentos_kernel.
Set AGENTOS_KEEP_TMP=1 to keep each kernel's temp dir (socket, state, log).
"""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import namedtuple
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SDK_DIR = REPO_ROOT / "agents" / "python_sdk"
EXAMPLES_DIR = REPO_ROOT / "agents" / "examples"
if str(SDK_DIR) not in sys.path:
    sys.path.insert(0, str(SDK_DIR))

import agentos  # noqa: E402  (needs the path above)

MAGIC = 0x41474E54
HEADER = struct.Struct("<IIBQ")
HEADER_SIZE = HEADER.size
MAX_PAYLOAD = 1024 * 1024
# Under AddressSanitizer (`make sanitize` sets this) RSS measures ASan's
# quarantine of freed blocks (256 MiB by default) and its shadow memory, not
# the kernel's heap; LeakSanitizer checks for leaks when the kernel exits.
SANITIZED = os.environ.get("AGENTOS_SANITIZED") == "1"
ASAN_QUARANTINE = 256 * 1024 * 1024
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
IO_TIMEOUT_S = 10.0

# The developer's real LLM credentials must never reach a test kernel.
LLM_ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL",
                "AGENTOS_LLM_PROVIDER", "AGENTOS_LLM_BASE_URL")

Frame = namedtuple("Frame", "magic agent_id opcode payload")


def kernel_binary():
    """The kernel under test: $AGENTOS_KERNEL_BIN, else <repo>/build/agentos_kernel."""
    return Path(os.environ.get("AGENTOS_KERNEL_BIN") or REPO_ROOT / "build" / "agentos_kernel")


def pack_frame(opcode, payload=b"", agent_id=0, magic=MAGIC, size=None):
    """Bytes of one frame; `size` overrides the header's payload_size."""
    payload = payload.encode() if isinstance(payload, str) else bytes(payload)
    return HEADER.pack(magic, agent_id, opcode, len(payload) if size is None else size) + payload


def kernel_env(env=None):
    """os.environ without LLM credentials, updated with `env` (None removes a key)."""
    result = {k: v for k, v in os.environ.items() if k not in LLM_ENV_VARS}
    result.pop("AGENTOS_SOCKET", None)
    result.pop("AGENTOS_CONFIG", None)  # a developer's config file must not reach a test kernel
    for key, value in (env or {}).items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = str(value)
    return result


def wait_for(predicate, timeout, interval=0.02, what="condition"):
    """Polls predicate() until it returns a truthy value; raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class ConnectionClosed(Exception):
    """The peer closed the connection (EOF or reset)."""


class RawConn:
    """A raw Unix-socket connection speaking frames, for protocol tests."""

    def __init__(self, path, timeout=IO_TIMEOUT_S):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(self.path)
        except OSError:
            self.sock.close()
            raise

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", agent_id=0, magic=MAGIC, size=None):
        self.sock.sendall(pack_frame(opcode, payload, agent_id, magic, size))

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except ConnectionResetError as exc:
                raise ConnectionClosed(f"reset after {len(buf)} of {n} bytes") from exc
            if not chunk:
                raise ConnectionClosed(f"EOF after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        """(magic, agent_id, opcode, payload); raises ConnectionClosed or socket.timeout."""
        magic, agent_id, opcode, size = HEADER.unpack(self.recv_exact(HEADER_SIZE))
        if size > MAX_PAYLOAD:
            raise AssertionError(f"kernel sent payload_size {size} > {MAX_PAYLOAD}")
        return Frame(magic, agent_id, opcode, self.recv_exact(size) if size else b"")

    def recv_json(self):
        frame = self.recv_frame()
        return frame, json.loads(frame.payload)

    def call(self, opcode, payload=b"", agent_id=0):
        self.send_frame(opcode, payload, agent_id)
        return self.recv_frame()

    def is_closed_by_peer(self, timeout=IO_TIMEOUT_S):
        """True once the peer has closed; raises AssertionError if it sends data
        instead, socket.timeout if it does neither within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True  # closed while our bytes were still unread on its side
        if data:
            raise AssertionError(f"expected the connection to be closed, got {data[:64]!r}")
        return True

    def pending(self):
        """Bytes already readable without waiting (b"" if none); never blocks."""
        # With a timeout set, Python waits on EAGAIN even under MSG_DONTWAIT.
        timeout = self.sock.gettimeout()
        self.sock.setblocking(False)
        try:
            return self.sock.recv(65536, socket.MSG_PEEK)
        except BlockingIOError:
            return b""
        finally:
            self.sock.settimeout(timeout)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Kernel:
    """One agentos_kernel process on a private temp dir.

    Args:
        extra_args: flags appended to the command line.
        env: environment changes (value None removes a variable). LLM keys of
            the caller's environment are always removed first.
        socket_path: defaults to <tmp>/agentos.sock.
        binary: defaults to kernel_binary().
    """

    def __init__(self, extra_args=(), env=None, socket_path=None, binary=None):
        self.binary = Path(binary) if binary else kernel_binary()
        self.extra_args = list(extra_args)
        self.env = kernel_env(env)
        self.tmpdir = Path(tempfile.mkdtemp(prefix="agentos-it-"))
        self.socket_path = Path(socket_path) if socket_path else self.tmpdir / "agentos.sock"
        self.state_dir = self.tmpdir / "state"
        self.runtime_dir = self.tmpdir / "run"
        self.log_path = self.tmpdir / "kernel.log"
        self.proc = None
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid

    @property
    def lock_path(self):
        return Path(str(self.socket_path) + ".lock")

    def command(self):
        return [str(self.binary), "--socket", str(self.socket_path),
                "--state-dir", str(self.state_dir), "--runtime-dir", str(self.runtime_dir),
                "--log-level", "debug", *self.extra_args]

    def start(self):
        if not self.binary.is_file():
            raise FileNotFoundError(
                f"kernel binary {self.binary} not found: build it with `cmake -S {REPO_ROOT} "
                f"-B {REPO_ROOT}/build && cmake --build {REPO_ROOT}/build --target agentos_kernel` "
                "or set AGENTOS_KERNEL_BIN")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=self.env, cwd=self.tmpdir)
        try:
            wait_for(self._ready, START_TIMEOUT_S, what=f"the kernel to accept on {self.socket_path}")
        except Exception:
            self.stop()
            raise RuntimeError(f"kernel did not start (exit code {self.returncode}):\n"
                               f"{self.log_tail()}") from None
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"kernel exited with {self.proc.returncode} during start-up")
        try:
            probe = RawConn(self.socket_path, timeout=2.0)
        except OSError:
            return False
        # Leave with EXIT so the kernel itself closes the probe: once we see
        # EOF it no longer counts against --max-connections.
        with probe:
            try:
                probe.send_frame(0xFF)
                probe.recv_frame()
                probe.is_closed_by_peer(timeout=2.0)
            except (OSError, ConnectionClosed, AssertionError):
                pass
        return True

    def run_until_exit(self, timeout=START_TIMEOUT_S):
        """Runs the kernel expecting it to refuse to start: returns
        (exit code, everything it printed). Kills it and raises if it keeps running."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=self.env, cwd=self.tmpdir)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(signal.SIGKILL)
            raise AssertionError(f"kernel kept running for {timeout} s instead of refusing:\n"
                                 f"{self.log_tail()}") from None
        return self.returncode, self.log_text()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S):
        """Sends `sig` to the kernel's pid, waits, returns the exit code.
        Falls back to SIGKILL (and raises) if it does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = self.proc.returncode
                raise RuntimeError(f"kernel ignored signal {sig} for {timeout} s; killed")
        self.returncode = self.proc.returncode
        return self.returncode

    def cleanup(self):
        """Stops the kernel if needed and removes its temp dir (unless AGENTOS_KEEP_TMP)."""
        try:
            if self.running():
                self.stop()
        finally:
            if not os.environ.get("AGENTOS_KEEP_TMP"):
                shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def rss_bytes(self):
        """The kernel's resident set size from /proc/<pid>/status (VmRSS)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("VmRSS missing from /proc status")

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def client(self, **kwargs):
        """A connected SDK client on this kernel (usable as a context manager)."""
        kwargs.setdefault("timeout", IO_TIMEOUT_S)
        return agentos.AgentOSClient(str(self.socket_path), **kwargs).connect()

    def raw(self, timeout=IO_TIMEOUT_S):
        return RawConn(self.socket_path, timeout)


def run_kernel_once(args, env=None, timeout=START_TIMEOUT_S):
    """Runs the binary with `args` to completion (for --version, refusals ...).
    Returns subprocess.CompletedProcess with text stdout/stderr."""
    return subprocess.run([str(kernel_binary()), *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=kernel_env(env), timeout=timeout)
