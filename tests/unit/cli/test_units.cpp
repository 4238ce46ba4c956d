#include "cli/units.hpp"

#include <gtest/gtest.h>

namespace agentos::cli {
namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;

TEST(ParseMemory, PlainBytes) {
  EXPECT_EQ(parse_memory("512").value(), 512u);
  EXPECT_EQ(parse_memory("67108864").value(), 64 * MiB);
  EXPECT_EQ(parse_memory("100b").value(), 100u);
}

TEST(ParseMemory, BinaryUnitsAsDockerReadsThem) {
  EXPECT_EQ(parse_memory("512K").value(), 512 * KiB);
  EXPECT_EQ(parse_memory("64M").value(), 64 * MiB);
  EXPECT_EQ(parse_memory("64m").value(), 64 * MiB);
  EXPECT_EQ(parse_memory("64MB").value(), 64 * MiB);
  EXPECT_EQ(parse_memory("64MiB").value(), 64 * MiB);
  EXPECT_EQ(parse_memory("64mib").value(), 64 * MiB);
  EXPECT_EQ(parse_memory("1G").value(), GiB);
  EXPECT_EQ(parse_memory("2t").value(), 2048 * GiB);
  EXPECT_EQ(parse_memory(" 256 M ").value(), 256 * MiB);
}

TEST(ParseMemory, Fractions) {
  EXPECT_EQ(parse_memory("1.5G").value(), GiB + GiB / 2);
  EXPECT_EQ(parse_memory("0.5k").value(), 512u);
  EXPECT_EQ(parse_memory("1.25M").value(), MiB + MiB / 4);
}

TEST(ParseMemory, RefusesJunkZeroAndOverflow) {
  for (const char* bad : {"", "M", "-1", "-64M", "12Q", "1.2.3M", "12.", ".5M", "64 MiBs", "1e6",
                          "0x10", "12i", "12ib", "64M extra"}) {
    auto r = parse_memory(bad);
    ASSERT_FALSE(r) << "'" << bad << "' parsed as " << *r;
    EXPECT_NE(r.error().context.find("invalid size"), std::string::npos) << r.error().context;
  }
  EXPECT_FALSE(parse_memory("0"));
  EXPECT_FALSE(parse_memory("0.0001K"));  // rounds down to 0 bytes
  EXPECT_FALSE(
      parse_memory("16P"
                   "0000"));
  EXPECT_FALSE(parse_memory("99999999999999999999999999999999999999999"));
  EXPECT_EQ(parse_memory("18446744073709551615").value(), UINT64_MAX);
  EXPECT_FALSE(parse_memory("18446744073709551616"));
}

TEST(ParseCpu, PercentagesAndCpus) {
  EXPECT_EQ(parse_cpu("50%").value(), 50000u);
  EXPECT_EQ(parse_cpu("150%").value(), 150000u);
  EXPECT_EQ(parse_cpu("100%").value(), 100000u);
  EXPECT_EQ(parse_cpu("12.5%").value(), 12500u);
  EXPECT_EQ(parse_cpu("1%").value(), 1000u);
  EXPECT_EQ(parse_cpu("0.5").value(), 50000u);
  EXPECT_EQ(parse_cpu("1.5").value(), 150000u);
  EXPECT_EQ(parse_cpu("2").value(), 200000u);
  EXPECT_EQ(parse_cpu(" 0.25 ").value(), 25000u);
}

TEST(ParseCpu, RefusesBelowTheKernelMinimumAndJunk) {
  for (const char* bad :
       {"", "%", "0%", "0.5%", "0", "0.001", "-50%", "fifty", "50%%", "1,5", "2000"}) {
    EXPECT_FALSE(parse_cpu(bad)) << "'" << bad << "'";
  }
  EXPECT_NE(parse_cpu("0.5%").error().context.find("minimum is 1%"), std::string::npos);
}

TEST(FormatBytes, DockerStyle) {
  EXPECT_EQ(format_bytes(0), "0B");
  EXPECT_EQ(format_bytes(512), "512B");
  EXPECT_EQ(format_bytes(1536), "1.5KiB");
  EXPECT_EQ(format_bytes(64 * MiB), "64MiB");
  EXPECT_EQ(format_bytes(12345678), "11.77MiB");
  EXPECT_EQ(format_bytes(GiB + GiB / 2), "1.5GiB");
}

TEST(FormatDuration, TwoUnitsAtMost) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(999), "0s");
  EXPECT_EQ(format_duration(45'000), "45s");
  EXPECT_EQ(format_duration(192'000), "3m12s");
  EXPECT_EQ(format_duration(2 * 3600'000 + 5 * 60'000 + 59'000), "2h05m");
  EXPECT_EQ(format_duration(3 * 86400'000ull + 4 * 3600'000), "3d04h");
}

TEST(FormatCount, CompactAboveTenThousand) {
  EXPECT_EQ(format_count(0), "0");
  EXPECT_EQ(format_count(9999), "9999");
  EXPECT_EQ(format_count(12345), "12.3k");
  EXPECT_EQ(format_count(4'560'000), "4.56M");
  EXPECT_EQ(format_percent(12.345), "12.3%");
}

}  // namespace
}  // namespace agentos::cli
