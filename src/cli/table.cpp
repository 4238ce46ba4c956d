#include "cli/table.hpp"

#include <algorithm>

namespace agentos::cli {
namespace {

constexpr std::string_view kGap = "   ";

bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

size_t display_width(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return !is_continuation_byte(c); }));
}

std::string_view cut_to_width(std::string_view s, size_t width) {
  size_t columns = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (is_continuation_byte(s[i])) continue;
    if (columns == width) return s.substr(0, i);
    ++columns;
  }
  return s;
}

void Table::add_row(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  rows_.push_back(std::move(cells));
}

std::vector<size_t> Table::widths() const {
  std::vector<size_t> w;
  for (const auto& c : columns_) w.push_back(display_width(c.title));
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], display_width(row[i]));
  }
  return w;
}

std::string Table::render_line(const std::vector<std::string>& cells,
                               const std::vector<size_t>& widths) const {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    const size_t pad = widths[i] - display_width(cells[i]);
    const bool last = i + 1 == cells.size();
    if (i > 0) line += kGap;
    if (columns_[i].align == Align::kRight) line.append(pad, ' ');
    line += cells[i];
    if (columns_[i].align == Align::kLeft && !last) line.append(pad, ' ');
  }
  return line;
}

std::string Table::render(size_t max_width) const {
  const auto w = widths();
  std::vector<std::string> header;
  for (const auto& c : columns_) header.push_back(c.title);
  std::string out;
  auto emit = [&](const std::vector<std::string>& cells) {
    const std::string line = render_line(cells, w);
    std::string_view shown = max_width > 0 ? cut_to_width(line, max_width) : std::string_view(line);
    while (!shown.empty() && shown.back() == ' ') shown.remove_suffix(1);
    out += shown;
    out += '\n';
  };
  emit(header);
  for (const auto& row : rows_) emit(row);
  return out;
}

}  // namespace agentos::cli
