#pragma once
// A user's data set read from a CSV file.
#include <string>
#include <vector>

#include "flowgrad/tensor/tensor.hpp"

namespace train2d {

using flowgrad::TensorF;

// A CSV of two or more numeric, comma-separated columns, header optional: the first non-blank line
// is a header when one of its fields is a word (not empty and not a number). Blank lines are
// skipped, fields trimmed of spaces and tabs, a trailing '\r' and a UTF-8 byte-order mark ignored.
// Errors (std::runtime_error, "<path>: line L, column C: ...", both 1-based) name the file, the
// line and the column: a missing value, a word, NaN or inf, a value beyond float32, a line with a
// different number of columns, an empty file or one without data rows, fewer than 2 columns, a
// file that cannot be read.
struct CsvData {
  TensorF points;                    // [rows, columns]
  std::vector<std::string> columns;  // header names, or "x0", "x1", ...
};
CsvData load_csv(const std::string& path);

}  // namespace train2d
