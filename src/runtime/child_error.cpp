#include "runtime/child_error.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace agentos::runtime {

void ChildError::append(std::string_view s) {
  size_t n = std::min(s.size(), sizeof(buf_) - len_);
  std::memcpy(buf_ + len_, s.data(), n);
  len_ += n;
}

void ChildError::append_errno(int err) {
  // strerrordesc_np reads a static table: no locale lookup, no allocation,
  // unlike strerror().
  const char* desc = strerrordesc_np(err);
  if (desc != nullptr) {
    append(desc);
    return;
  }
  char digits[16];
  size_t n = 0;
  for (unsigned v = static_cast<unsigned>(err); n == 0 || v != 0; v /= 10)
    digits[n++] = char('0' + v % 10);
  append("errno ");
  while (n > 0) append(std::string_view(&digits[--n], 1));
}

void ChildError::report_and_exit(int fd, int code) const {
  if (fd >= 0 && len_ > 0) {
    ssize_t ignored = ::write(fd, buf_, len_);
    (void)ignored;  // nothing left to tell anyone if even this fails
  }
  _exit(code);
}

}  // namespace agentos::runtime
