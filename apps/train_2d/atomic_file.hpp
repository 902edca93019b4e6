#pragma once
// train_2d writes every output file with the library's write_file_atomic.
#include <string>

#include "flowgrad/autodiff/io/atomic_file.hpp"

namespace train2d {

using flowgrad::write_file_atomic;

// Creates a directory and its parents, or throws std::runtime_error naming it.
void make_output_dir(const std::string& dir);

}  // namespace train2d
