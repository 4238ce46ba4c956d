// Column formatting for the CLI's tables (`agentos ps`, `agentos top`):
// a header row and cells padded to the widest entry, three spaces apart,
// the way `docker ps` lays them out. Pure code.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace agentos::cli {

enum class Align { kLeft, kRight };

struct Column {
  std::string title;
  Align align = Align::kLeft;
};

class Table {
 public:
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

  /// Adds a row; missing cells are empty, extra cells are dropped.
  void add_row(std::vector<std::string> cells);

  [[nodiscard]] size_t rows() const { return rows_.size(); }

  /// The header and the rows, each line ending in '\n', no trailing blanks.
  /// With max_width > 0 every line is cut to that many columns.
  [[nodiscard]] std::string render(size_t max_width = 0) const;

 private:
  std::vector<size_t> widths() const;
  std::string render_line(const std::vector<std::string>& cells,
                          const std::vector<size_t>& widths) const;

  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

/// Columns a UTF-8 string takes on a terminal (one per code point).
size_t display_width(std::string_view s);

/// The longest prefix of `s` that fits in `width` columns.
std::string_view cut_to_width(std::string_view s, size_t width);

}  // namespace agentos::cli
