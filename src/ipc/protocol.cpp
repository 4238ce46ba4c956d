#include "ipc/protocol.hpp"

#include <fmt/format.h>

#include <bit>
#include <cstring>

namespace agentos::ipc {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the wire format is little-endian; big-endian hosts need byte swaps here");

template <class T>
void put(std::byte*& p, T v) {
  std::memcpy(p, &v, sizeof v);
  p += sizeof v;
}

template <class T>
T get(const std::byte*& p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  p += sizeof v;
  return v;
}

// A consumed buffer larger than this is given back, so that a connection
// that once received a big frame does not keep its memory while idle.
constexpr size_t kShrinkAbove = 16 * 1024;

}  // namespace

std::string_view op_name(Op op) {
  switch (op) {
    case Op::kNoop: return "NOOP";
    case Op::kThink: return "THINK";
    case Op::kSpawn: return "SPAWN";
    case Op::kKill: return "KILL";
    case Op::kList: return "LIST";
    case Op::kLogs: return "LOGS";
    case Op::kStats: return "STATS";
    case Op::kPause: return "PAUSE";
    case Op::kResume: return "RESUME";
    case Op::kWait: return "WAIT";
    case Op::kEvents: return "EVENTS";
    case Op::kHello: return "HELLO";
    case Op::kExit: return "EXIT";
  }
  return "?";
}

void encode_header(const Header& h, std::byte* out) {
  put(out, h.magic);
  put(out, h.agent_id);
  put(out, h.opcode);
  put(out, h.payload_size);
}

Header decode_header(const std::byte* in) {
  Header h;
  h.magic = get<uint32_t>(in);
  h.agent_id = get<uint32_t>(in);
  h.opcode = get<uint8_t>(in);
  h.payload_size = get<uint64_t>(in);
  return h;
}

void append_frame(std::string& out, uint32_t agent_id, uint8_t opcode, std::string_view payload) {
  const size_t at = out.size();
  out.resize(at + kHeaderSize);
  encode_header({kMagic, agent_id, opcode, payload.size()},
                reinterpret_cast<std::byte*>(out.data() + at));
  out.append(payload);
}

void FrameDecoder::feed(std::string_view bytes) {
  std::memcpy(prepare(bytes.size()), bytes.data(), bytes.size());
  commit(bytes.size());
}

void FrameDecoder::borrow(std::string_view bytes) {
  if (buffered() != 0) {
    feed(bytes);
    return;
  }
  compact();
  borrowed_ = bytes;
}

void FrameDecoder::keep_rest() {
  if (!borrowed_) return;
  const std::string_view rest = *borrowed_;
  borrowed_.reset();
  if (!rest.empty()) feed(rest);
}

char* FrameDecoder::prepare(size_t n) {
  keep_rest();
  compact();
  if (buf_.size() < filled_ + n) buf_.resize(filled_ + n);
  return buf_.data() + filled_;
}

void FrameDecoder::compact() {
  if (pos_ == 0) return;
  // Move the unread tail to the front only when it is cheap or necessary:
  // always when everything was consumed, else when the dead prefix dominates.
  if (pos_ == filled_) {
    filled_ = pos_ = 0;
    if (buf_.size() > kShrinkAbove) std::string().swap(buf_);
  } else if (pos_ >= filled_ - pos_) {
    std::memmove(buf_.data(), buf_.data() + pos_, filled_ - pos_);
    filled_ -= pos_;
    pos_ = 0;
  }
}

FrameDecoder::Item FrameDecoder::next() {
  const char* data = borrowed_ ? borrowed_->data() : buf_.data() + pos_;
  const size_t avail = buffered();
  if (avail < kHeaderSize) return std::monostate{};
  const Header h = decode_header(reinterpret_cast<const std::byte*>(data));
  if (h.magic != kMagic) {
    return FrameError{h.opcode, fmt::format("bad magic 0x{:08x} (expected 0x{:08x})", h.magic, kMagic)};
  }
  if (h.payload_size > kMaxPayload) {
    return FrameError{h.opcode, fmt::format("payload_size {} exceeds the limit of {} bytes",
                                            h.payload_size, kMaxPayload)};
  }
  if (avail < kHeaderSize + h.payload_size) return std::monostate{};
  const size_t size = kHeaderSize + h.payload_size;
  Frame f{h.agent_id, h.opcode, std::string_view(data + kHeaderSize, h.payload_size)};
  if (borrowed_) {
    borrowed_->remove_prefix(size);
  } else {
    pos_ += size;
  }
  return f;
}

}  // namespace agentos::ipc
