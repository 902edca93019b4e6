#pragma once
// The CSV reader is the library's now (flowgrad/data/csv.hpp). This header only keeps
// eval_command.cpp's include and unqualified load_csv() working; it goes once that file includes
// the library header itself.
#include "flowgrad/data/csv.hpp"

namespace train2d {
using flowgrad::CsvData;
using flowgrad::load_csv;
}  // namespace train2d
