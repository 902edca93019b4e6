#include "atomic_file.hpp"

#include <filesystem>
#include <stdexcept>

namespace train2d {

void make_output_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create output directory " + dir + ": " + ec.message());
}

}  // namespace train2d
