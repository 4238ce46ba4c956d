"""The hostile probe's network attempts: socket families that no namespace
confines, netlink changes to the (sandbox's own) network, TCP past
Landlock, abstract unix sockets of the host, the operator's socket path.
Each returns (blocked, detail, how); see probe_util for outcomes.

Never connects anything but AF_UNIX and AF_INET: an AF_VSOCK connect would
reach the hypervisor, which is no part of this test.
"""

import errno
import json
import os
import socket
import struct

from probe_util import err_name, none_worked, outcome

NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_GETLINK, RTM_SETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 18, 19, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 1, 4, 0x200, 0x400, 0x300
IFLA_IFNAME, IFLA_LINKINFO, IFLA_INFO_KIND = 3, 18, 1
IPPROTO_MPTCP, IPPROTO_SCTP = 262, 132
HEADER = struct.Struct("<IIBQ")
MAGIC = 0x41474E54


def try_socket(family, kind, proto=0):
    return outcome(lambda: socket.socket(family, kind, proto).close())


def socket_families():
    """Only AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK sockets can be made.
    AF_VSOCK talks to the hypervisor and no network namespace confines it;
    the others (crypto API, TIPC, CAN, ...) are kernel attack surface an
    agent has no use for (EAFNOSUPPORT, as if the kernel lacked them). MPTCP
    and SCTP are EPROTONOSUPPORT: Landlock's TCP rules do not cover them. Of
    netlink only NETLINK_ROUTE is left (uevents would tell host events)."""
    families = {"AF_VSOCK": 40, "AF_ALG": 38, "AF_TIPC": 30, "AF_CAN": 29, "AF_BLUETOOTH": 31,
                "AF_XDP": 44, "AF_KCM": 41, "AF_RDS": 21, "AF_PACKET dgram": 17, "AF_APPLETALK": 5,
                "AF_X25": 9, "AF_AX25": 3, "AF_IPX": 4, "AF_LLC": 26, "AF_PPPOX": 24, "AF_SMC": 43,
                "AF_NFC": 39, "AF_QIPCRTR": 42, "AF_MCTP": 45, "AF_KEY": 15, "family 46": 46,
                "family 1000": 1000}
    outcomes = {n: try_socket(f, socket.SOCK_DGRAM if "dgram" in n else socket.SOCK_STREAM)
                for n, f in families.items()}
    outcomes["AF_VSOCK dgram"] = try_socket(40, socket.SOCK_DGRAM)
    outcomes["socketpair AF_VSOCK"] = outcome(lambda: socket.socketpair(40))
    outcomes["MPTCP v4"] = try_socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    outcomes["MPTCP v6"] = try_socket(socket.AF_INET6, socket.SOCK_STREAM, IPPROTO_MPTCP)
    outcomes["SCTP"] = try_socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP)
    outcomes["seqpacket (SCTP's default)"] = try_socket(socket.AF_INET, socket.SOCK_SEQPACKET)
    outcomes["SOCK_DCCP"] = try_socket(socket.AF_INET, 6)
    outcomes["tcp nonblock cloexec (control)"] = try_socket(
        socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    outcomes["udp v6 (control)"] = try_socket(socket.AF_INET6, socket.SOCK_DGRAM)
    outcomes["netlink uevent"] = try_socket(socket.AF_NETLINK, socket.SOCK_RAW, 15)
    outcomes["netlink sock_diag"] = try_socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)
    outcomes["netlink route (control)"] = try_socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    outcomes["unix (control)"] = try_socket(socket.AF_UNIX, socket.SOCK_STREAM)
    outcomes["tcp (control)"] = try_socket(socket.AF_INET, socket.SOCK_STREAM)
    return none_worked(outcomes, controls={n for n in outcomes if n.endswith("(control)")})


def raw_sockets():
    """Raw and packet sockets need CAP_NET_RAW (EPERM), or are not offered."""
    outcomes = {"AF_INET SOCK_RAW": try_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
                "AF_INET6 SOCK_RAW": try_socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
                "AF_PACKET": try_socket(socket.AF_PACKET, socket.SOCK_RAW, 0)}
    return none_worked(outcomes)


def rtattr(kind, data):
    size = 4 + len(data)
    return struct.pack("=HH", size, kind) + data + b"\0" * ((4 - size % 4) % 4)


def nl_call(sock, msg_type, flags, body, seq):
    """Sends one netlink request asking for an ack; returns its outcome."""
    sock.send(struct.pack("=IHHII", 16 + len(body), msg_type, flags | NLM_F_REQUEST | NLM_F_ACK, seq, 0)
              + body)
    data = sock.recv(65536)
    _, kind = struct.unpack_from("=IH", data)
    if kind != NLMSG_ERROR:
        return f"unexpected reply type {kind}"
    code = struct.unpack_from("=i", data, 16)[0]
    return "ok" if code == 0 else errno.errorcode.get(-code, str(code))


def link_names(sock):
    sock.send(struct.pack("=IHHII", 32, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + bytes(16))
    names = []
    while True:
        data, pos = sock.recv(65536), 0
        while pos < len(data):
            size, kind = struct.unpack_from("=IH", data, pos)
            if kind in (NLMSG_DONE, NLMSG_ERROR):
                return names
            names += [n for t, n in attrs(data[pos + 32:pos + size]) if t == IFLA_IFNAME]
            pos += (size + 3) & ~3


def attrs(buf):
    pos = 0
    while pos + 4 <= len(buf):
        size, kind = struct.unpack_from("=HH", buf, pos)
        if size < 4:
            break
        yield kind, buf[pos + 4:pos + size].rstrip(b"\0").decode(errors="replace")
        pos += (size + 3) & ~3


def netlink_route_change():
    """Reading the routing netlink works and shows our own namespace (only
    lo); changing anything needs CAP_NET_ADMIN over it: EPERM."""
    lo = socket.if_nametoindex("lo")
    new_dummy = struct.pack("=BxHiII", 0, 0, 0, 0, 0) + rtattr(IFLA_IFNAME, b"pwn0\0") + rtattr(
        IFLA_LINKINFO, rtattr(IFLA_INFO_KIND, b"dummy\0"))
    lo_down = struct.pack("=BxHiII", 0, 0, lo, 0, 1)  # IFF_UP cleared
    addr = struct.pack("=BBBBI", socket.AF_INET, 8, 0, 0, lo) + rtattr(2, socket.inet_aton("10.6.6.6"))
    route = struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, 254, 3, 0, 1, 0) + rtattr(
        4, struct.pack("=i", lo))
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as s:
        s.settimeout(5)
        names = link_names(s)
        outcomes = {
            "links visible": "ok" if names == ["lo"] else f"links {names}",
            "create dummy link": nl_call(s, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, new_dummy, 2),
            "set lo down": nl_call(s, RTM_SETLINK, 0, lo_down, 3),
            "add address": nl_call(s, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, addr, 4),
            "add default route": nl_call(s, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, route, 5),
        }
    return none_worked(outcomes, controls={"links visible"})


def tcp_landlock(cfg):
    """With network false, Landlock denies every TCP bind and connect
    (EACCES), even on the sandbox's own loopback; everything else is left to
    the empty network namespace, which has no route out (ENETUNREACH).

    Only loopback is ever connected to, and the route check is a UDP
    connect(), which sends nothing: should the sandbox fail, no packet
    leaves this machine."""
    def bind(family, host):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))

    def connect(host, port):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            s.connect((host, port))

    def route(family, host):
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
    outcomes = {"bind v4": outcome(lambda: bind(socket.AF_INET, "127.0.0.1")),
                "bind v6": outcome(lambda: bind(socket.AF_INET6, "::1")),
                "route out v4": outcome(lambda: route(socket.AF_INET, "192.0.2.1")),
                "route out v6": outcome(lambda: route(socket.AF_INET6, "2001:db8::1"))}
    if cfg.get("port"):
        outcomes["connect host listener"] = outcome(lambda: connect("127.0.0.1", cfg["port"]))
    return none_worked(outcomes)


def abstract_unix(cfg):
    """Abstract unix names live in the network namespace: the host's
    listener is not there (ECONNREFUSED), while one we make ourselves is
    (the control shows abstract sockets work at all)."""
    name = cfg.get("abstract_name")
    own = f"agentos-probe-own-{os.getpid()}"

    def connect(n):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            s.connect("\0" + n)

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind("\0" + own)
        srv.listen(1)
        outcomes = {"own abstract socket (control)": outcome(lambda: connect(own))}
    if name:
        outcomes["host abstract socket"] = outcome(lambda: connect(name))
    return none_worked(outcomes, controls={"own abstract socket (control)"})


def hello_agent_id(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(HEADER.pack(MAGIC, 0, 0xFE, 0))
        head = recv_exact(s, HEADER.size)
        _, agent_id, _, size = HEADER.unpack(head)
        reply = json.loads(recv_exact(s, size))
    return agent_id, reply.get("agent_id")


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def operator_socket_path(cfg, own_socket):
    """At the operator socket's path the sandbox shows our own socket (or
    nothing): HELLO there answers with our agent id, never 0."""
    own = int(os.environ.get("AGENTOS_AGENT_ID", "-1"))
    outcomes = {}
    for label, path in (("operator path", cfg.get("operator_socket")), ("argv socket", own_socket)):
        if not path:
            continue
        try:
            header_id, hello_id = hello_agent_id(path)
        except OSError as exc:
            outcomes[label] = err_name(exc)
            continue
        outcomes[label] = ("own socket" if header_id == hello_id == own
                           else f"agent ids {header_id}/{hello_id}")
    blocked = all(o in ("own socket", "ENOENT") for o in outcomes.values())
    return blocked, outcomes, outcomes


def attempts(cfg, own_socket):
    return [
        ("socket_families", socket_families),
        ("raw_sockets", raw_sockets),
        ("netlink_route_change", netlink_route_change),
        ("tcp_landlock", lambda: tcp_landlock(cfg)),
        ("abstract_unix_host", lambda: abstract_unix(cfg)),
        ("operator_socket_path", lambda: operator_socket_path(cfg, own_socket)),
    ]


# Run as root on the host, the netlink attempt would create a link and take lo down.
HOST_CHANGING = {"netlink_route_change", "socket_families"}
