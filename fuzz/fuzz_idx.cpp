// The IDX reader on any bytes, plain or gzip (decode_idx is the whole reader but the file read).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "flowgrad/data/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const flowgrad::IdxArray a =
        flowgrad::decode_idx(std::string_view(reinterpret_cast<const char*>(data), size), "input");
    // What the reader promises: as many values as the dimensions' product.
    std::size_t n = 1;
    for (const auto d : a.dims) n *= static_cast<std::size_t>(d);
    if (n != a.values.size()) __builtin_trap();
  } catch (const std::runtime_error&) {
    // A clear error is the right answer to a bad file.
  }
  return 0;
}
