// The sandbox's seccomp filter: a deny list over an allow-by-default policy
// (DESIGN §4 step 5).
//
// The filter is compiled by libseccomp in the parent, once per process, and
// exported as classic BPF; the child only loads the instructions with
// seccomp(2). So libseccomp never runs (and never allocates) in the child.
#pragma once

#include <linux/filter.h>

#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/child_error.hpp"
#include "util/result.hpp"

namespace agentos::runtime {

struct SeccompProgram {
  /// libseccomp's filter: EPERM for the denied syscalls, clone with any
  /// CLONE_NEW* flag and ioctl(TIOCSTI/TIOCLINUX); ENOSYS for clone3 (so libc
  /// falls back to clone, whose flags a filter can see); a foreign
  /// architecture (i386 int 0x80, x32) kills the process.
  std::vector<sock_filter> deny_list;
  /// Hand-written, for what libseccomp cannot express (it refuses two
  /// comparisons of one argument in a rule): personality() with anything but
  /// the default persona, PER_LINUX32, UNAME26 or a query answers EPERM;
  /// socket()/socketpair() outside AF_UNIX, AF_INET/AF_INET6 (TCP, UDP,
  /// UDP-Lite, ICMP, ICMPv6) and NETLINK_ROUTE answer EAFNOSUPPORT or
  /// EPROTONOSUPPORT (AF_VSOCK would bypass the network namespace, MPTCP and
  /// SCTP bypass Landlock's TCP rules).
  std::vector<sock_filter> arguments;
  nlohmann::json summary;
};

/// Compiles the program. Errors name the rule libseccomp refused.
Result<SeccompProgram> build_seccomp_program();

/// The program, compiled on first use and immutable afterwards.
Result<const SeccompProgram*> seccomp_program();

/// Child side: loads both filters. Needs no_new_privs or CAP_SYS_ADMIN.
bool install_seccomp(const SeccompProgram& program, ChildError& err);

}  // namespace agentos::runtime
