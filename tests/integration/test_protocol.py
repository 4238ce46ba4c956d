"""The wire protocol of the operator socket (DESIGN.md §2), over raw sockets."""

import json
import os
import random
import signal
import socket
import threading

import pytest

from kernel_harness import (ASAN_QUARANTINE, MAGIC, MAX_PAYLOAD, SANITIZED, ConnectionClosed,
                            Kernel, pack_frame, run_kernel_once, wait_for)

NOOP, THINK, LIST, HELLO, EXIT = 0x00, 0x01, 0x12, 0xFE, 0xFF
GiB = 1 << 30
MiB = 1 << 20


def assert_error_frame(frame, opcode):
    assert frame.magic == MAGIC
    assert frame.opcode == opcode, f"error reply carries opcode {frame.opcode:#x}, not {opcode:#x}"
    body = json.loads(frame.payload)
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    return body


def noop_works(k, payload=b"still served"):
    with k.raw() as conn:
        return conn.call(NOOP, payload).payload == payload


# -- NOOP ------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"\x00", b"a\x00b\x00\x00", bytes(range(256)),
                                     "héllo wörld ✓".encode()],
                         ids=["empty", "nul", "embedded-nuls", "all-bytes", "utf8"])
def test_noop_echoes_payload(kernel, payload):
    with kernel.raw() as conn:
        frame = conn.call(NOOP, payload)
    assert frame == (MAGIC, 0, NOOP, payload)


def test_noop_echoes_exactly_one_mib(kernel):
    payload = os.urandom(MAX_PAYLOAD)
    with kernel.raw() as conn:
        frame = conn.call(NOOP, payload)
        assert frame.opcode == NOOP and len(frame.payload) == MAX_PAYLOAD
        assert frame.payload == payload
        assert conn.call(NOOP, b"after").payload == b"after"  # connection still open


# -- framing violations -----------------------------------------------------


@pytest.mark.parametrize("opcode,size", [(NOOP, MAX_PAYLOAD + 1), (THINK, MAX_PAYLOAD + 1),
                                         (LIST, 2**64 - 1)], ids=["noop", "think", "huge"])
def test_oversize_payload_gets_one_error_then_close(kernel, opcode, size):
    with kernel.raw() as conn:
        # Only the header: the kernel must answer without waiting for a body.
        conn.send_frame(opcode, size=size)
        body = assert_error_frame(conn.recv_frame(), opcode)
        assert conn.is_closed_by_peer()
    assert "error" in body
    assert noop_works(kernel)


def test_oversize_payload_rest_is_not_read(kernel):
    with kernel.raw() as conn:
        try:
            conn.send_frame(NOOP, b"\x01" * 65536, size=MAX_PAYLOAD + 1)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the kernel closed while we were still writing: what we want
        assert_error_frame(conn.recv_frame(), NOOP)
        assert conn.is_closed_by_peer()
    assert noop_works(kernel)


@pytest.mark.parametrize("magic", [0, 0xDEADBEEF, 0x544E4741], ids=["zero", "deadbeef", "byteswapped"])
@pytest.mark.parametrize("opcode", [NOOP, LIST])
def test_bad_magic_gets_one_error_then_close(kernel, magic, opcode):
    with kernel.raw() as conn:
        conn.send_frame(opcode, b"hello", magic=magic)
        assert_error_frame(conn.recv_frame(), opcode)
        assert conn.is_closed_by_peer()
    assert noop_works(kernel)


def test_unknown_opcode_keeps_connection_open(kernel):
    with kernel.raw() as conn:
        frame = conn.call(0x42, b"whatever")
        body = assert_error_frame(frame, 0x42)
        assert body["error"] == "unknown opcode 0x42"
        assert frame.agent_id == 0
        assert conn.call(NOOP, b"next").payload == b"next"


# -- EXIT ------------------------------------------------------------------


# Payloads no opcode can take: not JSON, cut short, invalid UTF-8, a JSON
# value of the wrong type, a number out of range, nesting a megabyte deep.
BAD_PAYLOADS = [b"{", b"\xff\xfe", b"\x00", b"[1]", b'"text"', b"null", b"1e999", b"true",
                b'{"name": ' + b"9" * 4000 + b"}", b"[" * (MAX_PAYLOAD // 2), b'{"a":' * 100000]


def test_every_opcode_answers_bad_payloads_at_once(kernel):
    """Each opcode the kernel dispatches (HELLO lists them, so opcodes added
    later are covered) and each value it does not: every bad payload gets its
    reply in order, pipelined on one connection, and the connection goes on
    (the NOOP after them is answered)."""
    with kernel.raw() as conn:
        opcodes = json.loads(conn.call(HELLO).payload)["opcodes"]
    assert opcodes["SPAWN"] == 0x10 and opcodes["EXIT"] == EXIT, opcodes
    for op in range(256):
        if op == EXIT:
            continue  # answers "goodbye" and closes, whatever the payload: below
        with kernel.raw() as conn:
            # Sent from a thread: NOOP's echoes fill the kernel's output limit
            # before the last frame is written, so it must be read meanwhile.
            sender = threading.Thread(target=conn.send_raw, daemon=True, args=(
                b"".join(pack_frame(op, p) for p in BAD_PAYLOADS) + pack_frame(NOOP, b"ping"),))
            sender.start()
            for payload in BAD_PAYLOADS:
                frame = conn.recv_frame()
                assert frame.opcode == op
                if op == NOOP:
                    assert frame.payload == payload  # NOOP echoes anything
                    continue
                body = json.loads(frame.payload)
                if op == HELLO:
                    assert body["protocol"] == 1  # HELLO takes no payload and ignores one
                elif op in opcodes.values():
                    assert isinstance(body.get("error"), str) and body["error"], (hex(op), payload[:20], body)
                else:
                    assert body == {"error": f"unknown opcode {op:#04x}"}, body
            assert conn.recv_frame().payload == b"ping", hex(op)
            sender.join()
    with kernel.raw() as conn:
        conn.send_frame(EXIT, b"\xff{not json")
        assert conn.recv_frame().payload == b"goodbye"
        assert conn.is_closed_by_peer()


def test_exit_says_goodbye_and_closes(kernel):
    with kernel.raw() as conn:
        assert conn.call(EXIT) == (MAGIC, 0, EXIT, b"goodbye")
        assert conn.is_closed_by_peer()
    assert noop_works(kernel)  # EXIT ends the connection, never the kernel


def test_requests_pipelined_after_exit_get_no_reply(kernel):
    with kernel.raw() as conn:
        conn.send_raw(pack_frame(NOOP, b"before") + pack_frame(EXIT) +
                      pack_frame(NOOP, b"after") + pack_frame(HELLO))
        assert conn.recv_frame().payload == b"before"
        assert conn.recv_frame() == (MAGIC, 0, EXIT, b"goodbye")
        assert conn.is_closed_by_peer()


# -- HELLO, THINK, LIST ------------------------------------------------------


def test_hello_reports_protocol_version_and_features(kernel):
    with kernel.raw() as conn:
        conn.send_frame(HELLO)
        frame, body = conn.recv_json()
    assert frame.opcode == HELLO and frame.agent_id == 0
    assert body["protocol"] == 1
    assert isinstance(body["kernel"], str) and body["kernel"]
    assert isinstance(body["features"], list)
    assert all(isinstance(f, str) for f in body["features"])


@pytest.mark.parametrize("payload", [b"What is 2+2?",
                                     json.dumps({"prompt": "What is 2+2?"}).encode(),
                                     json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()],
                         ids=["plain", "prompt", "messages"])
def test_think_without_llm_says_not_configured(kernel, payload):
    with kernel.raw() as conn:
        conn.send_frame(THINK, payload)
        frame, body = conn.recv_json()
        assert frame.opcode == THINK
        assert body["content"] == ""
        assert body["error"].startswith("LLM not configured"), body
        assert conn.call(NOOP, b"open").payload == b"open"


@pytest.mark.parametrize("payload", [b"", b'{"all": true}'], ids=["running", "all"])
def test_list_is_empty_on_a_fresh_kernel(kernel, payload):
    with kernel.raw() as conn:
        conn.send_frame(LIST, payload)
        frame, body = conn.recv_json()
    assert frame.opcode == LIST
    assert body == []


@pytest.mark.parametrize("opcode,payload", [(NOOP, b"x"), (HELLO, b""), (LIST, b""), (THINK, b"q"),
                                            (0x42, b"")])
def test_operator_replies_carry_agent_id_zero(kernel, opcode, payload):
    with kernel.raw() as conn:
        assert conn.call(opcode, payload, agent_id=7).agent_id == 0


# -- streams: pipelining and partial frames ------------------------------------


def test_ten_thousand_pipelined_noops_answered_in_order(kernel):
    count = 10_000
    data = b"".join(pack_frame(NOOP, str(i).encode()) for i in range(count))
    with kernel.raw() as conn:
        # Send from a thread: the kernel stops reading from a client that does
        # not read its replies, so writing everything first could deadlock.
        errors = []
        sender = threading.Thread(target=lambda: _send_catching(conn, data, errors))
        sender.start()
        try:
            for i in range(count):
                frame = conn.recv_frame()
                assert (frame.opcode, frame.payload) == (NOOP, str(i).encode()), f"reply #{i}"
        finally:
            sender.join()
    assert not errors


def _send_catching(conn, data, errors):
    try:
        conn.send_raw(data)
    except OSError as exc:
        errors.append(exc)


def _send_with_sync(kernel, conn, data):
    """Sends `data` one byte at a time; after each byte but the last, a
    round trip on another connection lets the kernel run, and no reply may
    have arrived for the incomplete frame."""
    with kernel.raw() as other:
        for i, byte in enumerate(data):
            conn.send_raw(bytes([byte]))
            if i + 1 < len(data):
                assert other.call(NOOP, b"sync").payload == b"sync"
                assert conn.pending() == b"", f"reply before the frame was complete (byte {i})"


@pytest.mark.parametrize("opcode,payload", [(NOOP, b"byte\x00by byte"), (HELLO, b"")], ids=["noop", "hello"])
def test_frame_sent_one_byte_at_a_time(kernel, opcode, payload):
    with kernel.raw() as conn:
        _send_with_sync(kernel, conn, pack_frame(opcode, payload))
        frame = conn.recv_frame()
        assert frame.opcode == opcode
        if opcode == NOOP:
            assert frame.payload == payload


def test_several_frames_in_one_write(kernel):
    requests = [(NOOP, b"one"), (HELLO, b""), (LIST, b""), (0x42, b""), (NOOP, b""), (NOOP, b"last")]
    with kernel.raw() as conn:
        conn.send_raw(b"".join(pack_frame(op, p) for op, p in requests))
        replies = [conn.recv_frame() for _ in requests]
    assert [r.opcode for r in replies] == [op for op, _ in requests]
    assert (replies[0].payload, replies[4].payload, replies[5].payload) == (b"one", b"", b"last")
    assert json.loads(replies[2].payload) == []
    assert json.loads(replies[3].payload)["error"] == "unknown opcode 0x42"


def test_frames_split_at_arbitrary_boundaries(kernel):
    rng = random.Random(1234)
    payloads = [rng.randbytes(rng.choice([0, 1, 16, 17, 300, 5000])) for _ in range(60)]
    data = b"".join(pack_frame(NOOP, p) for p in payloads)
    with kernel.raw() as conn:
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 40)
            conn.send_raw(data[pos:pos + step])
            pos += step
        for i, p in enumerate(payloads):
            assert conn.recv_frame().payload == p, f"reply #{i}"


# -- many clients ----------------------------------------------------------------


def test_500_concurrent_connections(kernel):
    fds_before = kernel.open_fds()
    conns = [kernel.raw() for _ in range(500)]
    try:
        for i, conn in enumerate(conns):
            conn.send_frame(NOOP, f"conn {i}".encode())
        for i, conn in enumerate(conns):
            assert conn.recv_frame().payload == f"conn {i}".encode()
    finally:
        for conn in conns:
            conn.close()
    # Every connection's fd is released once the kernel has seen the EOFs.
    wait_for(lambda: kernel.open_fds() <= fds_before, 10, what=f"kernel fds back to {fds_before}")
    assert noop_works(kernel)


RSS_BOUND = 200 * MiB
STALL_S = 3.0  # a send blocked this long means the kernel stopped reading


def test_client_that_never_reads_is_throttled(kernel):
    frame = pack_frame(NOOP, b"\xab" * MAX_PAYLOAD)
    pushed = 0
    stalled = False
    # Under ASan freed frames sit in its quarantine, so RSS grows by up to
    # its size whatever the kernel does; the stall is the test there.
    runaway = 2 * RSS_BOUND + (ASAN_QUARANTINE if SANITIZED else 0)
    rss_before = kernel.rss_bytes()
    with kernel.raw(timeout=STALL_S) as hog:
        try:
            while pushed < GiB:
                hog.send_raw(frame)
                pushed += len(frame)
                # Stop early rather than let a kernel without back-pressure eat the machine.
                if pushed % (32 * len(frame)) == 0 and kernel.rss_bytes() - rss_before > runaway:
                    break
        except socket.timeout:
            stalled = True
        rss = kernel.rss_bytes()
        assert noop_works(kernel, b"another client is served")
        if not SANITIZED:
            assert rss < RSS_BOUND, f"kernel RSS {rss / MiB:.0f} MiB after {pushed / MiB:.0f} MiB pushed"
        assert stalled and pushed < GiB, f"kernel kept reading ({pushed / MiB:.0f} MiB accepted)"
    assert noop_works(kernel)


def test_garbage_on_100_connections_does_not_disturb_others(kernel):
    rng = random.Random(99)
    random_conns = []
    framed_conns = []
    with kernel.raw() as good:
        for i in range(100):
            conn = kernel.raw()
            if i % 2 == 0:  # pure noise: the magic is wrong
                noise = rng.randbytes(rng.randint(17, 4096))
                if noise[:4] == MAGIC.to_bytes(4, "little"):
                    noise = b"\x00" + noise[1:]
                random_conns.append(conn)
            else:  # a valid magic followed by random header fields and bytes
                noise = MAGIC.to_bytes(4, "little") + rng.randbytes(rng.randint(13, 4096))
                framed_conns.append(conn)
            try:
                conn.send_raw(noise)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the kernel may already have rejected and closed it
            assert good.call(NOOP, f"good {i}".encode()).payload == f"good {i}".encode()
        for conn in random_conns:
            frame = conn.recv_frame()
            assert frame.magic == MAGIC and "error" in json.loads(frame.payload)
            assert conn.is_closed_by_peer()
        for conn in random_conns + framed_conns:
            conn.close()
        assert good.call(HELLO).opcode == HELLO
    assert kernel.running()


# -- start-up and shutdown --------------------------------------------------------


def test_second_kernel_on_same_socket_refuses(kernel):
    second = Kernel(socket_path=kernel.socket_path)
    try:
        code, output = second.run_until_exit()
    finally:
        second.cleanup()
    assert code != 0
    assert "already running" in output.lower(), output
    assert kernel.socket_path.is_socket()
    assert noop_works(kernel)


def test_stale_socket_and_lock_are_replaced(kernel_factory):
    k = kernel_factory(start=False)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(k.socket_path))
    stale.close()  # the file stays, nobody listens: what a crashed kernel leaves
    k.lock_path.write_text("12345\n")
    assert k.socket_path.is_socket()
    k.start()
    assert noop_works(k)


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_path_that_is_not_a_socket_is_refused_and_kept(kernel_factory, kind):
    k = kernel_factory(start=False)
    if kind == "file":
        k.socket_path.write_bytes(b"precious data")
    else:
        k.socket_path.mkdir()
        (k.socket_path / "inside").write_bytes(b"precious data")
    code, output = k.run_until_exit()
    assert code != 0
    assert "not a socket" in output.lower(), output
    if kind == "file":
        assert k.socket_path.read_bytes() == b"precious data"
    else:
        assert (k.socket_path / "inside").read_bytes() == b"precious data"


def test_connection_limit(kernel_factory):
    k = kernel_factory(extra_args=["--max-connections", "8"])
    conns = [k.raw() for _ in range(8)]
    try:
        for i, conn in enumerate(conns):
            assert conn.call(NOOP, f"c{i}".encode()).payload == f"c{i}".encode()
        with k.raw() as ninth:
            frame = ninth.recv_frame()
            body = json.loads(frame.payload)
            assert "too many connections" in body["error"], body
            assert ninth.is_closed_by_peer()
        for i, conn in enumerate(conns):
            assert conn.call(NOOP, f"again {i}".encode()).payload == f"again {i}".encode()
        conns.pop().close()
        # The slot frees once the kernel has seen the EOF; poll for it.
        wait_for(lambda: _noop_accepted(k), 10, what="a freed connection slot")
    finally:
        for conn in conns:
            conn.close()


def _noop_accepted(k):
    with k.raw() as conn:
        conn.send_frame(NOOP, b"slot")
        try:
            return conn.recv_frame().payload == b"slot"
        except ConnectionClosed:
            return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero_and_removes_socket_and_lock(kernel_factory, sig):
    k = kernel_factory()
    assert k.socket_path.is_socket()
    assert k.lock_path.exists()
    idle = k.raw()  # a connected client must not keep the kernel alive
    try:
        assert idle.call(NOOP, b"x").payload == b"x"
        assert k.stop(sig) == 0, k.log_tail()
    finally:
        idle.close()
    assert not os.path.lexists(k.socket_path)
    assert not os.path.lexists(k.lock_path)


def test_version_flag_matches_hello(kernel):
    result = run_kernel_once(["--version"])
    assert result.returncode == 0, result.stderr
    with kernel.raw() as conn:
        conn.send_frame(HELLO)
        _, hello = conn.recv_json()
    assert hello["kernel"] in result.stdout + result.stderr
