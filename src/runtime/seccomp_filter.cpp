#include "runtime/seccomp_filter.hpp"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
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

std::vector<sock_filter> personality_filter() {
  // Low 32 bits of args[0]: personality(2) takes an unsigned int, and a
  // caller may leave garbage in the upper half of the register.
  constexpr uint32_t arg0_low =
      offsetof(seccomp_data, args[0]) + (__BYTE_ORDER == __LITTLE_ENDIAN ? 0 : 4);
  // Allowed: PER_LINUX (0), PER_LINUX32 (8), UNAME26 (0x20000), both, and
  // 0xffffffff (query). Forbidden: ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...
  return {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, native_audit_arch(), 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),  // foreign arch: the deny list kills it
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg0_low),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0, 5, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x8, 4, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x20000, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x20008, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffff, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
}

bool load(const std::vector<sock_filter>& filter, const char* what, ChildError& err) {
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
                     {"bad_arch", "kill process"}};
  AOS_TRY_VOID(add_rules(ctx.get(), program.summary));
  program.deny_list = AOS_TRY(export_bpf(ctx.get()));
  program.personality = personality_filter();
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
  return load(program.personality, "personality filter", err) &&
         load(program.deny_list, "deny list", err);
}

}  // namespace agentos::runtime
