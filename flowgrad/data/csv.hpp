#pragma once
// A data set read from a CSV file.
#include <string>
#include <vector>

#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

// A CSV of two or more numeric, comma-separated columns, header optional: the first non-blank line
// is a header when one of its fields is a word (not empty and not a number). Blank lines are
// skipped, fields trimmed of spaces and tabs, a trailing '\r' and a UTF-8 byte-order mark ignored.
// Values are parsed as double and then rounded to T.
// Errors (std::runtime_error, "<path>: line L, column C: ...", both 1-based) name the file, the
// line and the column: a missing value, a word, NaN or inf, a value beyond T's range, a line with a
// different number of columns, an empty file or one without data rows, fewer than 2 columns, a
// file that cannot be read.
// Resource bounds (issue 18): the file is read whole once (its size S) and parsed in one pass, so
// memory is S plus the values (8 bytes or fewer per value, each from at least 2 bytes of text) and
// time is linear in S; nothing a file claims is allocated ahead of the text that backs it.
template <Scalar T>
struct CsvTable {
  Tensor<T> points;                  // [rows, columns]
  std::vector<std::string> columns;  // header names, or "x0", "x1", ...
};
using CsvData = CsvTable<float>;

CsvData load_csv(const std::string& path);
// The same in another precision: load_csv_as<double>(path) keeps every digit a double holds.
template <Scalar T>
CsvTable<T> load_csv_as(const std::string& path);

extern template CsvTable<float> load_csv_as<float>(const std::string&);
extern template CsvTable<double> load_csv_as<double>(const std::string&);

}  // namespace flowgrad
