#include "cli/table.hpp"

#include <gtest/gtest.h>

namespace agentos::cli {
namespace {

TEST(Table, PadsColumnsToTheWidestCellThreeSpacesApart) {
  Table t({{"ID", Align::kRight}, {"NAME"}, {"STATE"}});
  t.add_row({"1", "worker", "RUNNING"});
  t.add_row({"12", "w", "STOPPED"});
  EXPECT_EQ(t.render(),
            "ID   NAME     STATE\n"
            " 1   worker   RUNNING\n"
            "12   w        STOPPED\n");
}

TEST(Table, NoTrailingBlanksAndMissingCellsAreEmpty) {
  Table t({{"A"}, {"B"}, {"C"}});
  t.add_row({"x"});
  t.add_row({"long", "", ""});
  EXPECT_EQ(t.render(),
            "A      B   C\n"
            "x\n"
            "long\n");
  EXPECT_EQ(t.rows(), 2u);
}

TEST(Table, HeaderOnlyWhenEmpty) {
  Table t({{"ID", Align::kRight}, {"NAME"}});
  EXPECT_EQ(t.render(), "ID   NAME\n");
}

TEST(Table, CutsLinesToAWidth) {
  Table t({{"NAME"}, {"STATE"}});
  t.add_row({"abcdefgh", "RUNNING"});
  EXPECT_EQ(t.render(10),
            "NAME\n"  // cut inside the padding: no trailing blanks either
            "abcdefgh\n");
  EXPECT_EQ(t.render(12), "NAME       S\nabcdefgh   R\n");
}

TEST(Table, WidthCountsCodePointsNotBytes) {
  EXPECT_EQ(display_width("abc"), 3u);
  EXPECT_EQ(display_width("·"), 1u);  // two bytes in UTF-8
  EXPECT_EQ(display_width("naïve"), 5u);
  EXPECT_EQ(cut_to_width("a·b·c", 3), "a·b");
  EXPECT_EQ(cut_to_width("ab", 5), "ab");
  Table t({{"N"}, {"X"}});
  t.add_row({"é", "1"});
  t.add_row({"ab", "2"});
  EXPECT_EQ(t.render(), "N    X\né    1\nab   2\n");
}

}  // namespace
}  // namespace agentos::cli
