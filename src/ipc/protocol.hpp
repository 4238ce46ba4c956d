// The AgentOS wire protocol (DESIGN.md §2): a 17-byte packed little-endian
// header followed by the payload, in both directions. Pure code, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace agentos::ipc {

inline constexpr uint32_t kMagic = 0x41474E54;  // bytes on the wire: 54 4E 47 41
inline constexpr size_t kHeaderSize = 17;
inline constexpr uint64_t kMaxPayload = 1024 * 1024;
inline constexpr int kProtocolVersion = 1;

enum class Op : uint8_t {
  kNoop = 0x00,
  kThink = 0x01,
  kSpawn = 0x10,
  kKill = 0x11,
  kList = 0x12,
  kLogs = 0x13,
  kStats = 0x14,
  kPause = 0x15,
  kResume = 0x16,
  kWait = 0x17,
  kEvents = 0x18,
  kHello = 0xFE,
  kExit = 0xFF,
};

struct Header {
  uint32_t magic = kMagic;
  uint32_t agent_id = 0;
  uint8_t opcode = 0;
  uint64_t payload_size = 0;
};

/// Writes the 17 header bytes into `out`.
void encode_header(const Header& h, std::byte* out);
/// Reads 17 header bytes (no validation).
Header decode_header(const std::byte* in);

/// Appends a complete frame (header + payload) to `out`.
void append_frame(std::string& out, uint32_t agent_id, uint8_t opcode, std::string_view payload);

struct Frame {
  uint32_t agent_id = 0;
  uint8_t opcode = 0;
  std::string_view payload;  // points into the decoder's buffer; valid until the next feed()/consume()
};

/// A framing violation: the stream cannot continue after it.
struct FrameError {
  uint8_t opcode = 0;  // the opcode of the offending header, for the error reply
  std::string message;
};

/// Incremental decoder over a byte stream. Handles partial reads and
/// several frames per read. Usage: append bytes, then call next() until it
/// returns std::monostate (need more), and consume() each frame when done.
class FrameDecoder {
 public:
  using Item = std::variant<std::monostate, Frame, FrameError>;

  /// Gives the decoder bytes read from the socket.
  void feed(std::string_view bytes);
  /// Space to read into directly: returns a buffer of at least `n` bytes at
  /// the end of the pending data; call commit(k) with the bytes written.
  char* prepare(size_t n);
  void commit(size_t n) { filled_ += n; }

  /// The next complete frame, an error, or monostate when more bytes are needed.
  /// The returned frame's payload stays valid until the next feed()/prepare().
  Item next();

  /// Bytes buffered but not yet returned as frames.
  [[nodiscard]] size_t buffered() const { return filled_ - pos_; }

 private:
  void compact();
  std::string buf_;
  size_t filled_ = 0;  // bytes of buf_ holding data (buf_ may be larger after prepare)
  size_t pos_ = 0;     // start of the first unreturned byte
};

}  // namespace agentos::ipc
