#include "ipc/protocol.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace agentos::ipc {
namespace {

struct Decoded {
  uint32_t agent_id;
  uint8_t opcode;
  std::string payload;
};

// Feeds `stream` split at `cuts` and collects every frame (payload copied).
std::vector<Decoded> decode_all(const std::string& stream, const std::vector<size_t>& cuts,
                                std::string* error = nullptr) {
  FrameDecoder d;
  std::vector<Decoded> out;
  size_t at = 0;
  auto drain = [&] {
    for (;;) {
      auto item = d.next();
      if (auto* f = std::get_if<Frame>(&item)) {
        out.push_back({f->agent_id, f->opcode, std::string(f->payload)});
      } else if (auto* e = std::get_if<FrameError>(&item)) {
        if (error) *error = e->message;
        return false;
      } else {
        return true;
      }
    }
  };
  for (size_t cut : cuts) {
    d.feed(std::string_view(stream).substr(at, cut - at));
    at = cut;
    if (!drain()) return out;
  }
  d.feed(std::string_view(stream).substr(at));
  drain();
  return out;
}

TEST(Protocol, HeaderIsSeventeenLittleEndianBytes) {
  std::string out;
  append_frame(out, 0x01020304, 0x10, "xy");
  ASSERT_EQ(out.size(), kHeaderSize + 2);
  const unsigned char expected[] = {0x54, 0x4E, 0x47, 0x41, 0x04, 0x03, 0x02, 0x01, 0x10,
                                    0x02, 0, 0, 0, 0, 0, 0, 0, 'x', 'y'};
  EXPECT_EQ(out, std::string(reinterpret_cast<const char*>(expected), sizeof expected));
}

TEST(Protocol, HeaderRoundTrip) {
  Header h{kMagic, 42, 0xFE, 0x123456789ull};
  std::byte buf[kHeaderSize];
  encode_header(h, buf);
  Header back = decode_header(buf);
  EXPECT_EQ(back.magic, kMagic);
  EXPECT_EQ(back.agent_id, 42u);
  EXPECT_EQ(back.opcode, 0xFE);
  EXPECT_EQ(back.payload_size, 0x123456789ull);
}

TEST(Protocol, FrameWithNulBytesAndEmptyPayload) {
  std::string stream;
  append_frame(stream, 1, 0, std::string("a\0b", 3));
  append_frame(stream, 2, 0xFF, "");
  auto frames = decode_all(stream, {});
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].payload, std::string("a\0b", 3));
  EXPECT_EQ(frames[1].opcode, 0xFF);
  EXPECT_TRUE(frames[1].payload.empty());
}

TEST(Protocol, EverySplitPointOfSeveralMessages) {
  std::string stream;
  append_frame(stream, 7, 0x00, "hello");
  append_frame(stream, 8, 0x01, "");
  append_frame(stream, 9, 0x12, std::string(300, 'z'));
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    for (size_t cut2 = cut; cut2 <= stream.size(); cut2 += 7) {
      auto frames = decode_all(stream, {cut, cut2});
      ASSERT_EQ(frames.size(), 3u) << "cuts " << cut << "," << cut2;
      EXPECT_EQ(frames[0].payload, "hello");
      EXPECT_EQ(frames[1].agent_id, 8u);
      EXPECT_EQ(frames[2].payload, std::string(300, 'z'));
    }
  }
}

TEST(Protocol, OneByteAtATime) {
  std::string stream;
  for (int i = 0; i < 50; ++i) append_frame(stream, 0, 0, std::to_string(i));
  std::vector<size_t> cuts;
  for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  auto frames = decode_all(stream, cuts);
  ASSERT_EQ(frames.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(frames[i].payload, std::to_string(i));
}

TEST(Protocol, TruncatedInputNeedsMore) {
  std::string stream;
  append_frame(stream, 0, 0, "abcdef");
  FrameDecoder d;
  d.feed(std::string_view(stream).substr(0, stream.size() - 1));
  EXPECT_TRUE(std::holds_alternative<std::monostate>(d.next()));
  EXPECT_EQ(d.buffered(), stream.size() - 1);
  d.feed(std::string_view(stream).substr(stream.size() - 1));
  EXPECT_TRUE(std::holds_alternative<Frame>(d.next()));
}

TEST(Protocol, BadMagicIsAnErrorCarryingTheOpcode) {
  std::string stream;
  append_frame(stream, 0, 0x11, "x");
  stream[0] = 'X';
  std::string error;
  auto frames = decode_all(stream, {}, &error);
  EXPECT_TRUE(frames.empty());
  EXPECT_NE(error.find("bad magic"), std::string::npos);
  FrameDecoder d;
  d.feed(stream);
  auto item = d.next();
  ASSERT_TRUE(std::holds_alternative<FrameError>(item));
  EXPECT_EQ(std::get<FrameError>(item).opcode, 0x11);
}

TEST(Protocol, OversizeIsRejectedFromTheHeaderAlone) {
  std::byte hdr[kHeaderSize];
  encode_header({kMagic, 0, 0x00, kMaxPayload + 1}, hdr);
  FrameDecoder d;
  d.feed(std::string_view(reinterpret_cast<const char*>(hdr), kHeaderSize));
  auto item = d.next();
  ASSERT_TRUE(std::holds_alternative<FrameError>(item));
  EXPECT_NE(std::get<FrameError>(item).message.find("exceeds"), std::string::npos);
}

TEST(Protocol, ExactlyMaxPayloadIsAccepted) {
  std::string stream;
  append_frame(stream, 0, 0, std::string(kMaxPayload, '\x01'));
  auto frames = decode_all(stream, {kHeaderSize, kHeaderSize + 1000});
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload.size(), kMaxPayload);
}

TEST(Protocol, PrepareCommitReadsInPlace) {
  std::string stream;
  append_frame(stream, 3, 0, "in place");
  FrameDecoder d;
  char* buf = d.prepare(4096);
  std::memcpy(buf, stream.data(), stream.size());
  d.commit(stream.size());
  auto item = d.next();
  ASSERT_TRUE(std::holds_alternative<Frame>(item));
  EXPECT_EQ(std::get<Frame>(item).payload, "in place");
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(Protocol, BorrowParsesInPlaceAndKeepsOnlyTheIncompleteTail) {
  std::string stream;
  append_frame(stream, 1, 0, "first");
  append_frame(stream, 2, 0, "second");
  const size_t whole = stream.size();
  append_frame(stream, 3, 0, "third, cut");
  const std::string scratch = stream.substr(0, whole + kHeaderSize + 4);

  FrameDecoder d;
  d.borrow(scratch);
  EXPECT_EQ(d.capacity(), 0u);
  auto a = d.next();
  ASSERT_TRUE(std::holds_alternative<Frame>(a));
  EXPECT_EQ(std::get<Frame>(a).payload, "first");
  // The payload points into the borrowed buffer: nothing was copied.
  EXPECT_GE(std::get<Frame>(a).payload.data(), scratch.data());
  EXPECT_LT(std::get<Frame>(a).payload.data(), scratch.data() + scratch.size());
  ASSERT_TRUE(std::holds_alternative<Frame>(d.next()));
  EXPECT_TRUE(std::holds_alternative<std::monostate>(d.next()));
  EXPECT_EQ(d.buffered(), kHeaderSize + 4);

  d.keep_rest();  // the scratch buffer is about to be reused
  EXPECT_EQ(d.buffered(), kHeaderSize + 4);
  d.feed(std::string_view(stream).substr(scratch.size()));
  auto c = d.next();
  ASSERT_TRUE(std::holds_alternative<Frame>(c));
  EXPECT_EQ(std::get<Frame>(c).agent_id, 3u);
  EXPECT_EQ(std::get<Frame>(c).payload, "third, cut");
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(Protocol, BorrowAfterBufferedBytesAppendsInOrder) {
  std::string stream;
  append_frame(stream, 7, 0, "split across two reads");
  FrameDecoder d;
  d.feed(std::string_view(stream).substr(0, 5));
  d.borrow(std::string_view(stream).substr(5));  // copies: bytes are already buffered
  auto f = d.next();
  ASSERT_TRUE(std::holds_alternative<Frame>(f));
  EXPECT_EQ(std::get<Frame>(f).payload, "split across two reads");
}

TEST(Protocol, ConsumedLargeBufferIsGivenBack) {
  std::string stream;
  append_frame(stream, 0, 0, std::string(200 * 1024, 'x'));
  FrameDecoder d;
  d.feed(stream);
  ASSERT_TRUE(std::holds_alternative<Frame>(d.next()));
  EXPECT_GE(d.capacity(), stream.size());
  d.borrow("");  // the next read: the consumed buffer is released first
  EXPECT_EQ(d.capacity(), 0u);
}

}  // namespace
}  // namespace agentos::ipc
