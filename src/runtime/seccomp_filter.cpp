#include "runtime/seccomp_filter.hpp"

#include <linux/audit.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <memory>

#include "util/unique_fd.hpp"

namespace agentos::runtime {
namespace {

// Denied outright with EPERM: changing mounts or namespaces, tracing other
// processes, loading code into the kernel, administering the machine, and
// kernel interfaces with a long record of exploits (io_uring, userfaultfd,
// bpf, perf_event_open, open_by_handle_at).
constexpr const char* kDenied[] = {"mount",
                                   "umount2",
                                   "pivot_root",
                                   "chroot",
                                   "fsopen",
                                   "fsconfig",
                                   "fsmount",
                                   "fspick",
                                   "move_mount",
                                   "open_tree",
                                   "mount_setattr",
                                   "setns",
                                   "unshare",
                                   "ptrace",
                                   "process_vm_readv",
                                   "process_vm_writev",
                                   "kcmp",
                                   "pidfd_getfd",
                                   "kexec_load",
                                   "kexec_file_load",
                                   "init_module",
                                   "finit_module",
                                   "delete_module",
                                   "bpf",
                                   "perf_event_open",
                                   "keyctl",
                                   "add_key",
                                   "request_key",
                                   "reboot",
                                   "swapon",
                                   "swapoff",
                                   "acct",
                                   "quotactl",
                                   "quotactl_fd",
                                   "lookup_dcookie",
                                   "iopl",
                                   "ioperm",
                                   "syslog",
                                   "settimeofday",
                                   "clock_settime",
                                   "clock_adjtime",
                                   "adjtimex",
                                   "open_by_handle_at",
                                   "name_to_handle_at",
                                   "userfaultfd",
                                   "io_uring_setup",
                                   "io_uring_enter",
                                   "io_uring_register",
                                   "uselib",
                                   "nfsservctl",
                                   "_sysctl"};

constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

Result<void> check(int rc, const std::string& what) {
  if (rc < 0) return make_error("seccomp: " + what, -rc);
  return {};
}

Result<void> add_rules(scmp_filter_ctx ctx, nlohmann::json& summary) {
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (const char* name : kDenied) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
      summary["unknown_to_libseccomp"].push_back(name);
      continue;
    }
    AOS_TRY_VOID(check(seccomp_rule_add(ctx, eperm, nr, 0), std::string("deny ") + name));
    summary["denied"].push_back(name);
  }
  // One rule per flag: rules are OR-ed, the comparisons of a rule AND-ed.
  for (uint64_t flag : kNamespaceFlags) {
    AOS_TRY_VOID(check(
        seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)),
        "deny clone with namespace flags"));
  }
  AOS_TRY_VOID(check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0),
                     "clone3 -> ENOSYS"));
  // TIOCSTI pushes input into a terminal the agent may share with someone
  // else; TIOCLINUX does the same on a console (as bubblewrap denies them).
  // The request argument is an unsigned int: compare its low 32 bits only.
  for (unsigned long req : {TIOCSTI, TIOCLINUX}) {
    AOS_TRY_VOID(check(seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1,
                                        SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, req)),
                       "deny ioctl TIOCSTI/TIOCLINUX"));
  }
  return {};
}

Result<std::vector<sock_filter>> export_bpf(scmp_filter_ctx ctx) {
  UniqueFd mem(memfd_create("agentos-seccomp", MFD_CLOEXEC));
  if (!mem) return sys_error("seccomp: memfd_create");
  AOS_TRY_VOID(check(seccomp_export_bpf(ctx, mem.get()), "export BPF"));
  off_t size = lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
    return make_error("seccomp: exported BPF has an odd size");
  }
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(mem.get(), prog.data(), static_cast<size_t>(size), 0) != size)
    return sys_error("seccomp: read BPF");
  return prog;
}

constexpr uint32_t native_audit_arch() {
#if defined(__x86_64__)
  return AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  return AUDIT_ARCH_AARCH64;
#else
#error "add this architecture's AUDIT_ARCH_* to seccomp_filter.cpp"
#endif
}

// Where the kernel reads an int or unsigned int argument: the low half of its
// 64-bit slot. A caller may leave garbage in the upper half of the register,
// so comparing all 64 bits would let a flag hide behind it.
constexpr uint32_t arg_low(int n) {
  return static_cast<uint32_t>(offsetof(seccomp_data, args) + 8 * static_cast<size_t>(n)) +
         (__BYTE_ORDER == __LITTLE_ENDIAN ? 0 : 4);
}

constexpr sock_filter load(uint32_t offset) { return BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset); }
constexpr sock_filter jeq(uint32_t k, uint8_t jt, uint8_t jf = 0) {
  return BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf);
}
constexpr sock_filter ret(uint32_t action) { return BPF_STMT(BPF_RET | BPF_K, action); }
constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
constexpr uint32_t kEperm = SECCOMP_RET_ERRNO | EPERM;
constexpr uint32_t kNoFamily = SECCOMP_RET_ERRNO | EAFNOSUPPORT;
constexpr uint32_t kNoProtocol = SECCOMP_RET_ERRNO | EPROTONOSUPPORT;

// personality(): allowed are PER_LINUX (0), PER_LINUX32 (8), UNAME26
// (0x20000), both, and 0xffffffff (query). Forbidden: ADDR_NO_RANDOMIZE,
// READ_IMPLIES_EXEC, MMAP_PAGE_ZERO, ... Entered with A = the syscall
// number; any other syscall continues after the block with A unchanged.
void personality_block(std::vector<sock_filter>& f) {
  f.insert(f.end(), {
                        /*0*/ jeq(__NR_personality, 1, 0),
                        /*1*/ BPF_JUMP(BPF_JMP | BPF_JA, 8, 0, 0),  // to the next block (10)
                        /*2*/ load(arg_low(0)),
                        /*3*/ jeq(0x0, 5),
                        /*4*/ jeq(0x8, 4),
                        /*5*/ jeq(0x20000, 3),
                        /*6*/ jeq(0x20008, 2),
                        /*7*/ jeq(0xffffffff, 1),
                        /*8*/ ret(kEperm),
                        /*9*/ ret(kAllow),
                    });
}

// socket() and socketpair(): AF_UNIX; AF_INET and AF_INET6 for stream,
// datagram and raw sockets of TCP, UDP, UDP-Lite, ICMP (ping) and ICMPv6;
// AF_NETLINK for NETLINK_ROUTE. Nothing else, because:
//  - AF_VSOCK reaches the hypervisor's host, and no network namespace
//    confines it (network: false would mean nothing);
//  - MPTCP, SCTP (also SOCK_SEQPACKET with protocol 0) and DCCP (SOCK_DCCP)
//    make connections that Landlock's TCP rules do not cover;
//  - netlink other than routing tells host events (uevents) or sockets;
//  - the other families (crypto API, TIPC, CAN, ...) are attack surface no
//    agent needs, and opening them may load a module on the host.
// Errors say "not supported", as if the kernel lacked them, so libraries
// fall back (to TCP, for MPTCP). Entered with A = the syscall number.
void socket_block(std::vector<sock_filter>& f) {
  f.insert(f.end(), {
                        /* 0*/ jeq(__NR_socket, 1, 0),
                        /* 1*/ jeq(__NR_socketpair, 0, 21),  // neither: allow (23)
                        /* 2*/ load(arg_low(0)),             // family
                        /* 3*/ jeq(AF_UNIX, 19),
                        /* 4*/ jeq(AF_NETLINK, 3),
                        /* 5*/ jeq(AF_INET, 4),
                        /* 6*/ jeq(AF_INET6, 3),
                        /* 7*/ ret(kNoFamily),
                        /* 8*/ load(arg_low(2)),  // netlink protocol
                        /* 9*/ jeq(NETLINK_ROUTE, 13, 12),
                        /*10*/ load(arg_low(1)),  // type, with SOCK_NONBLOCK etc. above 0xf
                        /*11*/ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf),
                        /*12*/ jeq(SOCK_STREAM, 2),
                        /*13*/ jeq(SOCK_DGRAM, 1),
                        /*14*/ jeq(SOCK_RAW, 0, 7),
                        /*15*/ load(arg_low(2)),  // protocol
                        /*16*/ jeq(0, 6),
                        /*17*/ jeq(IPPROTO_TCP, 5),
                        /*18*/ jeq(IPPROTO_UDP, 4),
                        /*19*/ jeq(IPPROTO_UDPLITE, 3),
                        /*20*/ jeq(IPPROTO_ICMP, 2),
                        /*21*/ jeq(IPPROTO_ICMPV6, 1, 0),
                        /*22*/ ret(kNoProtocol),
                        /*23*/ ret(kAllow),
                    });
}

// The checks of arguments that libseccomp cannot express (it refuses two
// comparisons of one argument in a rule, and compares 64 bits).
std::vector<sock_filter> argument_filter() {
  std::vector<sock_filter> f = {
      load(offsetof(seccomp_data, arch)),
      jeq(native_audit_arch(), 1, 0),
      ret(kAllow),  // foreign arch: the deny list kills it
      load(offsetof(seccomp_data, nr)),
  };
  personality_block(f);
  socket_block(f);
  return f;
}

bool load_filter(const std::vector<sock_filter>& filter, const char* what, ChildError& err) {
  sock_fprog prog{static_cast<unsigned short>(filter.size()),
                  const_cast<sock_filter*>(filter.data())};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
    return err.set(errno, "seccomp: load ", what);
  return true;
}

}  // namespace

Result<SeccompProgram> build_seccomp_program() {
  Ctx ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return make_error("seccomp: seccomp_init failed");
  AOS_TRY_VOID(check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS),
                     "bad-architecture action"));
  SeccompProgram program;
  program.summary = {{"default", "allow"},
                     {"denied_errno", "EPERM"},
                     {"clone", "EPERM with any CLONE_NEW* flag"},
                     {"clone3", "ENOSYS (libc falls back to clone)"},
                     {"ioctl", {"TIOCSTI", "TIOCLINUX"}},
                     {"personality", "EPERM except 0, PER_LINUX32, UNAME26, 0xffffffff"},
                     {"socket",
                      "AF_UNIX; AF_INET/AF_INET6 stream, dgram, raw of TCP, UDP, UDP-Lite, "
                      "ICMP, ICMPv6; AF_NETLINK NETLINK_ROUTE; else EAFNOSUPPORT or "
                      "EPROTONOSUPPORT"},
                     {"bad_arch", "kill process"}};
  AOS_TRY_VOID(add_rules(ctx.get(), program.summary));
  program.deny_list = AOS_TRY(export_bpf(ctx.get()));
  program.arguments = argument_filter();
  return program;
}

Result<const SeccompProgram*> seccomp_program() {
  // Built on first use; the parent is single-threaded and the result never
  // changes, so every spawn shares it.
  static const Result<SeccompProgram> program = build_seccomp_program();
  if (!program) return std::unexpected(program.error());
  return &*program;
}

bool install_seccomp(const SeccompProgram& program, ChildError& err) {
  return load_filter(program.arguments, "argument filter", err) &&
         load_filter(program.deny_list, "deny list", err);
}

}  // namespace agentos::runtime
