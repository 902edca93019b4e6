#pragma once
// Whole-file writes that never leave a half-written file in place: the bytes go to a temporary
// file in the same directory, are flushed to disk, and the temporary is renamed over the target.
#include <string>
#include <string_view>

namespace train2d {

// Throws std::runtime_error naming `path` and the reason; the temporary file is removed then.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Creates a directory and its parents, or throws std::runtime_error naming it.
void make_output_dir(const std::string& dir);

}  // namespace train2d
