// Reading a user's CSV file into a tensor, with errors that point at the line and column.
#include "csv.hpp"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace train2d {

using flowgrad::Index;

namespace {

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    fields.push_back(trim(line.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return fields;
}

enum class FieldKind { number, empty, not_number, not_finite, out_of_range };

// Parses a whole trimmed field as a double (std::from_chars, general format; a leading '+' is
// accepted as well). NaN and inf (which from_chars accepts) are reported as such.
FieldKind parse_field(std::string_view f, double& out) {
  if (f.empty()) return FieldKind::empty;
  std::string_view body = f;
  if (body.front() == '+') {
    body.remove_prefix(1);
    if (body.empty() || body.front() == '-' || body.front() == '+') return FieldKind::not_number;
  }
  const char* end = body.data() + body.size();
  const auto [ptr, ec] = std::from_chars(body.data(), end, out);
  if (ptr != end) return FieldKind::not_number;
  if (ec == std::errc::result_out_of_range) return FieldKind::out_of_range;
  if (ec != std::errc()) return FieldKind::not_number;
  if (!std::isfinite(out)) return FieldKind::not_finite;
  if (std::abs(out) > static_cast<double>(std::numeric_limits<float>::max()))
    return FieldKind::out_of_range;
  return FieldKind::number;
}

// A header name: trimmed, one pair of surrounding double quotes removed.
std::string header_name(std::string_view f, std::size_t column) {
  if (f.size() >= 2 && f.front() == '"' && f.back() == '"') f = trim(f.substr(1, f.size() - 2));
  // Built by appending: g++ 12 at -O3 warns falsely (-Wrestrict) on "x" + std::string.
  if (f.empty()) {
    std::string name = "x";
    name += std::to_string(column);
    return name;
  }
  return std::string(f);
}

[[noreturn]] void csv_error(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

std::string where(std::size_t line, std::size_t column) {
  std::string s = "line ";
  s += std::to_string(line);
  s += ", column ";
  s += std::to_string(column);
  return s;
}

std::string read_whole_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) csv_error(path, "is a directory, not a CSV file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path, ec)) csv_error(path, "cannot open: no such file");
    csv_error(path, "cannot open for reading");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) csv_error(path, "error while reading the file");
  return std::move(ss).str();
}

}  // namespace

CsvData load_csv(const std::string& path) {
  const std::string text = read_whole_file(path);
  std::string_view rest = text;
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);  // a UTF-8 byte-order mark

  CsvData result;
  std::vector<float> values;
  std::size_t columns = 0;       // fixed by the header or the first data line
  std::size_t columns_line = 0;  // the line that fixed it
  bool from_header = false;
  bool seen_content = false;  // a non-blank line has been read
  std::size_t rows = 0;

  for (std::size_t line_no = 1; !rest.empty(); ++line_no) {
    const std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) continue;

    const std::vector<std::string_view> fields = split_fields(line);
    const bool first = !seen_content;
    seen_content = true;

    // The first non-blank line is a header when one of its fields is a word (not empty, not a
    // number, NaN or inf).
    if (first) {
      bool word = false;
      for (const auto f : fields) {
        double v;
        if (parse_field(f, v) == FieldKind::not_number) word = true;
      }
      if (word) {
        if (fields.size() < 2)
          csv_error(path, "line " + std::to_string(line_no) +
                              ": need at least 2 columns, the header has " +
                              std::to_string(fields.size()));
        for (std::size_t c = 0; c < fields.size(); ++c)
          result.columns.push_back(header_name(fields[c], c));
        columns = fields.size();
        columns_line = line_no;
        from_header = true;
        continue;
      }
    }

    if (columns == 0) {
      if (fields.size() < 2)
        csv_error(path, "line " + std::to_string(line_no) + ": need at least 2 columns, got " +
                            std::to_string(fields.size()));
      columns = fields.size();
      columns_line = line_no;
    } else if (fields.size() != columns) {
      csv_error(path, "line " + std::to_string(line_no) + ": expected " + std::to_string(columns) +
                          " columns (as " + (from_header ? "the header" : "the first data line") +
                          " on line " + std::to_string(columns_line) + "), got " +
                          std::to_string(fields.size()));
    }

    for (std::size_t c = 0; c < fields.size(); ++c) {
      double v = 0;
      switch (parse_field(fields[c], v)) {
        case FieldKind::number:
          break;
        case FieldKind::empty:
          csv_error(path, where(line_no, c + 1) + ": missing value");
        case FieldKind::not_number:
          csv_error(path,
                    where(line_no, c + 1) + ": '" + std::string(fields[c]) + "' is not a number");
        case FieldKind::not_finite:
          csv_error(path, where(line_no, c + 1) + ": NaN/inf is not allowed");
        case FieldKind::out_of_range:
          csv_error(path, where(line_no, c + 1)
                              .append(": '")
                              .append(fields[c])
                              .append("' is out of the float32 range"));
      }
      values.push_back(static_cast<float>(v));
    }
    ++rows;
  }

  if (rows == 0) {
    if (!seen_content) csv_error(path, "no data rows (the file is empty)");
    csv_error(path, "no data rows (only the header on line " + std::to_string(columns_line) + ")");
  }
  if (result.columns.empty())
    for (std::size_t c = 0; c < columns; ++c) result.columns.push_back(header_name("", c));
  result.points =
      TensorF(flowgrad::Shape{static_cast<Index>(rows), static_cast<Index>(columns)}, values);
  return result;
}

}  // namespace train2d
