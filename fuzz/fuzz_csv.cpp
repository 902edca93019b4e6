// load_csv (float, through the fast path and the plain reader) and load_csv_as<double> on any
// bytes.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "flowgrad/data/csv.hpp"
#include "fuzz_file.hpp"

namespace {

template <flowgrad::Scalar T>
void read(const std::string& path) {
  try {
    const flowgrad::CsvTable<T> t = flowgrad::load_csv_as<T>(path);
    // What the reader promises: 2+ columns, a name for each, and finite values only.
    if (t.points.cols() < 2 || static_cast<flowgrad::Index>(t.columns.size()) != t.points.cols())
      __builtin_trap();
    for (flowgrad::Index i = 0; i < t.points.numel(); ++i)
      if (!std::isfinite(t.points[i])) __builtin_trap();
  } catch (const std::runtime_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static flowgrad::fuzz::ScratchFile file("csv");
  const std::string& path = file.write(data, size);
  read<float>(path);
  read<double>(path);
  return 0;
}
