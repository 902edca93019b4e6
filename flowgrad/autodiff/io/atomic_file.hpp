#pragma once
// Whole-file writes that never leave a half-written file in place: a reader (or a crash) sees
// either the old file or the new one.
#include <string>
#include <string_view>

namespace flowgrad {

// Writes `bytes` to a temporary file beside `path` (same directory, so the rename cannot cross
// file systems), "<path>.tmp-<pid>-XXXXXX", flushes it to disk and renames it over `path`. On any
// failure the temporary is removed, `path` is left as it was, and std::runtime_error names the
// path and the reason. A writer killed mid-write (SIGKILL) cannot remove its temporary: each write
// first removes the temporaries of the same `path` whose writer process no longer exists (on a
// local file system: the pid is this machine's).
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace flowgrad
