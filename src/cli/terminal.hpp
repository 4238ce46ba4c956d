// The interactive screen of `agentos top`: the alternate screen, a hidden
// cursor and raw keyboard input, all undone when the object goes.
#pragma once

#include <termios.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>

#include "util/result.hpp"

namespace agentos::cli {

class TerminalScreen {
 public:
  /// Switches `out_fd` (a terminal) to the alternate screen; when `in_fd` is
  /// a terminal too, puts it in raw mode so single keys arrive at once.
  static Result<std::unique_ptr<TerminalScreen>> enter(int in_fd, int out_fd);
  TerminalScreen(const TerminalScreen&) = delete;
  TerminalScreen& operator=(const TerminalScreen&) = delete;
  /// Restores the saved terminal mode and the normal screen.
  ~TerminalScreen();

  /// Replaces what the screen shows with `frame` ('\n'-separated lines),
  /// cut to the screen's height.
  Result<void> draw(std::string_view frame);

  /// Waits up to `timeout` for a key. nullopt when the time is up or a
  /// signal arrived (the caller checks its signal flags).
  Result<std::optional<char>> read_key(std::chrono::milliseconds timeout);

  /// Columns and rows; 80x24 when the terminal does not say.
  [[nodiscard]] std::pair<size_t, size_t> size() const;

 private:
  TerminalScreen(int in_fd, int out_fd) : in_fd_(in_fd), out_fd_(out_fd) {}

  int in_fd_;
  int out_fd_;
  std::optional<termios> saved_;  // set while the keyboard is in raw mode
};

/// Writes all of `bytes` to `fd`, retrying short writes and EINTR.
Result<void> write_all(int fd, std::string_view bytes);

}  // namespace agentos::cli
