#include "runtime/event_log.hpp"

#include <gtest/gtest.h>

namespace agentos::runtime {
namespace {

using nlohmann::json;

EventLog::Filter of(uint32_t id) {
  return [id](const Event& e) { return e.agent_id == id; };
}

void add(EventLog& log, uint32_t id, const std::string& type) {
  log.record(id, "a" + std::to_string(id), type, json{{"k", 1}}, Clock::now(), std::chrono::system_clock::now());
}

TEST(EventLog, QueryFromSequenceWithFilterAndLimit) {
  EventLog log;
  for (uint32_t i = 0; i < 10; ++i) add(log, i % 2, "spawned");
  auto all = log.query(0, nullptr, 100);
  ASSERT_EQ(all["events"].size(), 10u);
  EXPECT_EQ(all["events"][0]["seq"], 1);
  EXPECT_EQ(all["events"][0]["k"], 1);
  EXPECT_EQ(all["events"][0]["type"], "spawned");
  EXPECT_EQ(all["next"], 11);

  auto odd = log.query(0, of(1), 2);
  ASSERT_EQ(odd["events"].size(), 2u);
  EXPECT_EQ(odd["events"][0]["seq"], 2);
  EXPECT_EQ(odd["events"][1]["seq"], 4);
  EXPECT_EQ(odd["next"], 5);
  auto rest = log.query(odd["next"].get<uint64_t>(), of(1), 100);
  ASSERT_EQ(rest["events"].size(), 3u);
  EXPECT_EQ(rest["events"][0]["seq"], 6);
  EXPECT_EQ(rest["next"], 11);
  EXPECT_TRUE(log.query(11, nullptr, 10)["events"].empty());
  EXPECT_TRUE(log.has_since(10, nullptr));
  EXPECT_FALSE(log.has_since(11, nullptr));
  EXPECT_FALSE(log.has_since(10, of(0)));
}

TEST(EventLog, RingKeepsTheNewest) {
  EventLog log(3);
  for (uint32_t i = 0; i < 5; ++i) add(log, 1, "exited");
  auto q = log.query(0, nullptr, 100);
  ASSERT_EQ(q["events"].size(), 3u);
  EXPECT_EQ(q["events"][0]["seq"], 3);
  EXPECT_EQ(q["next"], 6);
  EXPECT_EQ(log.query(2, nullptr, 100)["events"][0]["seq"], 3);
}

TEST(EventLog, TimestampFormat) {
  using namespace std::chrono;
  const auto t = system_clock::time_point(seconds(1795000000) + microseconds(123456));
  EXPECT_EQ(iso8601_utc(t), "2026-11-18T11:06:40.123456Z");
}

}  // namespace
}  // namespace agentos::runtime
