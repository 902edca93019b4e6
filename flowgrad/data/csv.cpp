// Reading a CSV file into a tensor, with errors that point at the line and column.
//
// Speed: the file is read in one piece, and every data line after the first goes through a fast
// path that parses fields in place with std::from_chars, with no per-line or per-field allocation.
// Any line the fast path does not accept is parsed again by the slow path below, which is the
// reference for what is accepted and produces every error message, so the two cannot disagree on
// an error's wording or on which of a line's problems is reported.
#include "flowgrad/data/csv.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace flowgrad {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
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

template <Scalar T>
bool within_range(double v) {
  return std::abs(v) <= static_cast<double>(std::numeric_limits<T>::max());
}

// Parses a whole trimmed field as a double (std::from_chars, general format; a leading '+' is
// accepted as well). NaN and inf (which from_chars accepts) are reported as such.
template <Scalar T>
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
  if (!within_range<T>(out)) return FieldKind::out_of_range;
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

// The file's bytes: a regular file read with read(2) straight into a buffer of its size that is
// never zero-filled (through a stream into a zero-filled string, 100 MB took a third of load_csv's
// time); anything else (a pipe, a device) through a stream. Not mmap: a file truncated by another
// process while mapped would kill this one with SIGBUS.
class FileText {
 public:
  explicit FileText(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) csv_error(path, "is a directory, not a CSV file");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (!std::filesystem::exists(path, ec)) csv_error(path, "cannot open: no such file");
      csv_error(path, "cannot open for reading");
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
      const auto size = static_cast<std::size_t>(st.st_size);
      buffer_ = std::make_unique_for_overwrite<char[]>(size);
      std::size_t done = 0;
      bool read_error = false;
      while (done < size) {
        const ::ssize_t got = ::read(fd, buffer_.get() + done, size - done);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) read_error = true;
        if (got <= 0) break;  // an error, or a file that shrank meanwhile: what was read counts
        done += static_cast<std::size_t>(got);
      }
      ::close(fd);
      if (read_error) csv_error(path, "error while reading the file");
      text_ = std::string_view(buffer_.get(), done);
      return;
    }
    ::close(fd);
    std::ifstream in(path, std::ios::binary);
    if (!in) csv_error(path, "cannot open for reading");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) csv_error(path, "error while reading the file");
    owned_ = std::move(ss).str();
    text_ = owned_;
  }
  FileText(const FileText&) = delete;
  FileText& operator=(const FileText&) = delete;
  std::string_view text() const { return text_; }

 private:
  std::unique_ptr<char[]> buffer_;
  std::string owned_;
  std::string_view text_;
};

template <Scalar T>
constexpr const char* range_name() {
  return std::is_same_v<T, float> ? "float32" : "float64";
}

// The fast path: appends the line's `columns` values to `out` and returns true, or returns false
// (having appended some values, which the caller drops) when the line has a different number of
// fields or any field that is not a plain number within range.
template <Scalar T>
bool parse_line_fast(const char* p, const char* end, std::size_t columns, std::vector<T>& out) {
  for (std::size_t c = 0; c < columns; ++c) {
    while (p != end && is_space(*p)) ++p;
    if (p != end && *p == '+') {
      ++p;
      if (p != end && (*p == '-' || *p == '+')) return false;
    }
    double v;
    const auto [ptr, ec] = std::from_chars(p, end, v);
    if (ec != std::errc() || !std::isfinite(v) || !within_range<T>(v)) return false;
    p = ptr;
    while (p != end && is_space(*p)) ++p;
    if (c + 1 < columns) {
      if (p == end || *p != ',') return false;
      ++p;
    } else if (p != end) {
      return false;
    }
    out.push_back(static_cast<T>(v));
  }
  return true;
}

}  // namespace

template <Scalar T>
CsvTable<T> load_csv_as(const std::string& path) {
  const FileText file(path);
  const std::string_view text = file.text();
  std::string_view rest = text;
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);  // a UTF-8 byte-order mark

  CsvTable<T> result;
  std::vector<T> values;
  std::size_t columns = 0;       // fixed by the header or the first data line
  std::size_t columns_line = 0;  // the line that fixed it
  bool from_header = false;
  bool seen_content = false;  // a non-blank line has been read
  std::size_t rows = 0;

  for (std::size_t line_no = 1; !rest.empty(); ++line_no) {
    const void* nl_ptr = std::memchr(rest.data(), '\n', rest.size());
    const std::size_t nl =
        nl_ptr ? static_cast<std::size_t>(static_cast<const char*>(nl_ptr) - rest.data())
               : std::string_view::npos;
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    if (columns != 0) {
      const std::size_t before = values.size();
      if (parse_line_fast(line.data(), line.data() + line.size(), columns, values)) {
        ++rows;
        continue;
      }
      values.resize(before);  // the slow path below reports the problem, or skips a blank line
    }

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
        if (parse_field<T>(f, v) == FieldKind::not_number) word = true;
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
      switch (parse_field<T>(fields[c], v)) {
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
                              .append("' is out of the ")
                              .append(range_name<T>())
                              .append(" range"));
      }
      values.push_back(static_cast<T>(v));
    }
    ++rows;
    // Once the width is known, the rest of the file is likely to hold lines of about this one's
    // length: reserving for them spares the vector's repeated doubling on a large file.
    if (rows == 1) values.reserve(columns * (text.size() / (line.size() + 1) + 16));
  }

  if (rows == 0) {
    if (!seen_content) csv_error(path, "no data rows (the file is empty)");
    csv_error(path, "no data rows (only the header on line " + std::to_string(columns_line) + ")");
  }
  if (result.columns.empty())
    for (std::size_t c = 0; c < columns; ++c) result.columns.push_back(header_name("", c));
  result.points = Tensor<T>(Shape{static_cast<Index>(rows), static_cast<Index>(columns)}, values);
  return result;
}

CsvData load_csv(const std::string& path) { return load_csv_as<float>(path); }

template CsvTable<float> load_csv_as<float>(const std::string&);
template CsvTable<double> load_csv_as<double>(const std::string&);

}  // namespace flowgrad
