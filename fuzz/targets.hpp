#pragma once
// The fuzz targets by name, for the replay driver and the corpus generator. In a libFuzzer build
// each target's source defines LLVMFuzzerTestOneInput; the replay build compiles each with that
// name defined to fuzz_<target> (fuzz/CMakeLists.txt), so all five link into one program.
#include <cstddef>
#include <cstdint>

extern "C" int fuzz_safetensors(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_architecture(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_csv(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_idx(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_model(const std::uint8_t* data, std::size_t size);

namespace flowgrad::fuzz {

struct Target {
  const char* name;  // the directory under fuzz/corpus/ and fuzz/regressions/
  int (*run)(const std::uint8_t*, std::size_t);
};

inline constexpr Target targets[] = {
    {"safetensors", &fuzz_safetensors}, {"architecture", &fuzz_architecture},
    {"csv", &fuzz_csv},                 {"idx", &fuzz_idx},
    {"model", &fuzz_model},
};

}  // namespace flowgrad::fuzz
