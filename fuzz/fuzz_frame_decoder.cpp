// FrameDecoder against a byte stream cut into arbitrary chunks.
//
// Input: byte 0 seeds the chunking; the rest is the stream a client sent.
// Oracle: a straightforward reference decoder over the whole stream. Every
// frame the decoder returns must be the reference's next frame and must
// re-encode (append_frame) to exactly the bytes it came from; a FrameError
// must come where the reference finds bad magic or an oversized payload, and
// nothing after it; whatever is left must be a frame still incomplete.
// Payload views are checked only after the whole batch of next() calls, since
// they must stay valid until the next feed()/prepare()/borrow()/keep_rest().
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz_check.hpp"
#include "ipc/protocol.hpp"

namespace {

using agentos::ipc::Frame;
using agentos::ipc::FrameDecoder;
using agentos::ipc::FrameError;

// What a correct decoder must report at `offset`.
enum class Expect { frame, error, incomplete };

Expect reference_at(std::string_view stream, size_t offset, size_t* frame_size) {
  const size_t avail = stream.size() - offset;
  if (avail < agentos::ipc::kHeaderSize) return Expect::incomplete;
  const auto h = agentos::ipc::decode_header(reinterpret_cast<const std::byte*>(stream.data() + offset));
  if (h.magic != agentos::ipc::kMagic || h.payload_size > agentos::ipc::kMaxPayload) return Expect::error;
  if (avail - agentos::ipc::kHeaderSize < h.payload_size) return Expect::incomplete;
  *frame_size = agentos::ipc::kHeaderSize + h.payload_size;
  return Expect::frame;
}

// Tiny deterministic generator for chunk sizes, so one input byte gives many
// different cut patterns without eating stream bytes.
struct Chunker {
  uint32_t state;
  uint32_t next() {
    state = state * 1103515245u + 12345u;
    return state >> 8;
  }
  // Mostly small chunks (split headers), sometimes whole kilobytes.
  size_t size() { return next() % 4 == 0 ? 1 + next() % 4096 : 1 + next() % 24; }
};

struct Decoding {
  std::string_view stream;
  size_t offset = 0;  // bytes of the stream accounted for by returned frames
  bool failed = false;
};

// Drains the decoder; a FrameError sets s.failed (the stream cannot go on).
void drain(FrameDecoder& d, Decoding& s) {
  std::vector<std::pair<Frame, size_t>> batch;  // frame, offset it came from
  for (;;) {
    auto item = d.next();
    size_t frame_size = 0;
    const Expect expect = reference_at(s.stream, s.offset, &frame_size);
    if (auto* f = std::get_if<Frame>(&item)) {
      FUZZ_CHECK(expect == Expect::frame);
      FUZZ_CHECK(f->payload.size() + agentos::ipc::kHeaderSize == frame_size);
      batch.emplace_back(*f, s.offset);
      s.offset += frame_size;
      continue;
    }
    if (std::holds_alternative<FrameError>(item)) {
      FUZZ_CHECK(expect == Expect::error);
      FUZZ_CHECK(!std::get<FrameError>(item).message.empty());
      s.failed = true;
    }
    break;
  }
  for (const auto& [f, at] : batch) {
    std::string encoded;
    agentos::ipc::append_frame(encoded, f.agent_id, f.opcode, f.payload);
    FUZZ_CHECK(encoded == s.stream.substr(at, encoded.size()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Chunker chunker{data[0] * 2654435761u};
  Decoding s{agentos::fuzz::as_view(data + 1, size - 1)};
  FrameDecoder d;
  size_t fed = 0;
  bool grown = false;
  std::string scratch;  // the kernel's shared read buffer
  while (fed < s.stream.size() && !s.failed) {
    const size_t n = std::min(chunker.size(), s.stream.size() - fed);
    const uint32_t mode = chunker.next() % 3;
    if (mode == 0) {
      d.feed(s.stream.substr(fed, n));
    } else if (mode == 1) {
      // The kernel's path when no frame is incomplete: parse a read in
      // place, keep the rest, then the scratch buffer is overwritten by the
      // next read; a view still pointing into it would decode garbage.
      scratch.assign(s.stream.substr(fed, n));
      d.borrow(scratch);
      fed += n;
      FUZZ_CHECK(d.buffered() == fed - s.offset);
      drain(d, s);
      d.keep_rest();
      scratch.assign(scratch.size(), '\xA5');
      FUZZ_CHECK(d.buffered() == fed - s.offset);
      continue;
    } else {
      // The socket path: read into prepare()'s space, asking for more than
      // arrives (a short read). Once per input, ask for 512 KiB: that grows
      // the buffer past the size the decoder shrinks back from (only once,
      // since zeroing 512 KiB each time would slow the run down tenfold).
      const bool big = !grown && chunker.next() % 8 == 0;
      grown = grown || big;
      const size_t want = big ? 512 * 1024 : n + chunker.next() % 64;
      std::memcpy(d.prepare(want), s.stream.data() + fed, n);
      d.commit(n);
    }
    fed += n;
    FUZZ_CHECK(d.buffered() == fed - s.offset);
    drain(d, s);
  }
  if (!s.failed) {
    size_t unused = 0;
    FUZZ_CHECK(reference_at(s.stream, s.offset, &unused) == Expect::incomplete);
    FUZZ_CHECK(d.buffered() == s.stream.size() - s.offset);
  }
  return 0;
}
