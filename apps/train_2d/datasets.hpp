#pragma once
// The 2-D toy datasets of FFJORD (docs/design.md §6), a user's CSV file, and held-out splits.
#include <string>
#include <vector>

#include "flowgrad/tensor/random.hpp"

namespace train2d {

using flowgrad::Generator;
using flowgrad::Index;
using flowgrad::TensorF;

// moons, 8gaussians, circles, rings, pinwheel, 2spirals, checkerboard, swissroll.
const std::vector<std::string>& toy_dataset_names();
bool is_toy_dataset(const std::string& name);
// Draws about n points ([m, 2], float32) of the named dataset; pinwheel and 2spirals give the
// multiple of 5 (of 2) at or below n, as their definitions do. Throws std::invalid_argument for an
// unknown name (listing the known ones) and for n < 1 (n < 5 for pinwheel, n < 2 for 2spirals,
// which would give no points). The order in which each draws from gen is stated in datasets.cpp.
TensorF sample_toy(const std::string& name, Index n, Generator& gen);

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

// Splits rows into train and test after a seeded shuffle; test gets round(test_fraction * rows),
// at least 1. Throws std::invalid_argument when test_fraction is not in (0, 1) or either part
// would be empty.
struct Split {
  TensorF train, test;
};
Split split_rows(const TensorF& data, double test_fraction, std::uint64_t seed);

// Rows of `data` picked uniformly at random (with replacement) into `out` ([n, cols]), reusing
// out's buffer. Throws std::invalid_argument when data has no rows or n < 0.
void sample_rows(const TensorF& data, Index n, Generator& gen, TensorF& out);

}  // namespace train2d
