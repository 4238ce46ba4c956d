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

/// The opcode's name as DESIGN.md and HELLO spell it ("LOGS"); "?" for a
/// value that is not an Op.
std::string_view op_name(Op op);

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
/// several frames per read. Bytes come in one of two ways:
///  - owned: feed() copies, or prepare()/commit() reads straight into the
///    decoder's own buffer (used while a frame is incomplete);
///  - borrowed: borrow() parses a caller's buffer in place (a read into a
///    shared scratch buffer), so an idle connection owns no buffer at all.
///    Before that buffer is reused, keep_rest() copies whatever was not
///    returned as frames into the decoder.
/// Then call next() until it returns std::monostate (need more).
class FrameDecoder {
 public:
  using Item = std::variant<std::monostate, Frame, FrameError>;

  /// Gives the decoder bytes read from the socket (copied).
  void feed(std::string_view bytes);
  /// Space to read into directly: returns a buffer of at least `n` bytes at
  /// the end of the pending data; call commit(k) with the bytes written.
  char* prepare(size_t n);
  void commit(size_t n) { filled_ += n; }

  /// Parses `bytes` in place. Only valid while nothing is buffered
  /// (buffered() == 0); otherwise it copies, like feed().
  void borrow(std::string_view bytes);
  /// Copies the unreturned part of borrowed bytes into the decoder; call it
  /// before the borrowed buffer changes. A no-op when nothing is borrowed.
  void keep_rest();

  /// The next complete frame, an error, or monostate when more bytes are needed.
  /// The returned frame's payload stays valid until the next
  /// feed()/prepare()/borrow()/keep_rest() (and, when borrowed, as long as
  /// the borrowed buffer).
  Item next();

  /// Bytes buffered (owned or borrowed) but not yet returned as frames.
  [[nodiscard]] size_t buffered() const { return borrowed_ ? borrowed_->size() : filled_ - pos_; }
  /// Bytes of heap the decoder holds (for tests and accounting); 0 while
  /// the buffer fits in the string itself.
  [[nodiscard]] size_t capacity() const {
    return buf_.capacity() > std::string().capacity() ? buf_.capacity() : 0;
  }

 private:
  void compact();
  std::string buf_;
  size_t filled_ = 0;  // bytes of buf_ holding data (buf_ may be larger after prepare)
  size_t pos_ = 0;     // start of the first unreturned byte
  std::optional<std::string_view> borrowed_;  // unreturned borrowed bytes
};

}  // namespace agentos::ipc
