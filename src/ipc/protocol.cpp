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

constexpr size_t kShrinkAbove = 256 * 1024;

}  // namespace

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

char* FrameDecoder::prepare(size_t n) {
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
    // Give back the memory of a large frame once it is consumed, so an idle
    // connection does not keep a 1 MiB buffer.
    if (buf_.size() > kShrinkAbove) std::string().swap(buf_);
  } else if (pos_ >= filled_ - pos_) {
    std::memmove(buf_.data(), buf_.data() + pos_, filled_ - pos_);
    filled_ -= pos_;
    pos_ = 0;
  }
}

FrameDecoder::Item FrameDecoder::next() {
  const size_t avail = filled_ - pos_;
  if (avail < kHeaderSize) return std::monostate{};
  const Header h = decode_header(reinterpret_cast<const std::byte*>(buf_.data() + pos_));
  if (h.magic != kMagic) {
    return FrameError{h.opcode, fmt::format("bad magic 0x{:08x} (expected 0x{:08x})", h.magic, kMagic)};
  }
  if (h.payload_size > kMaxPayload) {
    return FrameError{h.opcode, fmt::format("payload_size {} exceeds the limit of {} bytes",
                                            h.payload_size, kMaxPayload)};
  }
  if (avail < kHeaderSize + h.payload_size) return std::monostate{};
  Frame f{h.agent_id, h.opcode,
          std::string_view(buf_.data() + pos_ + kHeaderSize, h.payload_size)};
  pos_ += kHeaderSize + h.payload_size;
  return f;
}

}  // namespace agentos::ipc
