// Replays every file of fuzz/corpus/<target>/ and fuzz/regressions/<target>/ through its target's
// entry function, without libFuzzer, so that the normal test suite (and its sanitizer build) runs
// each input that once crashed a reader. A crash, a sanitizer report or an escaping exception
// fails the test; the file being replayed is printed first.
//   fuzz_replay FUZZ_DIR [TARGET...]
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "targets.hpp"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fuzz_replay FUZZ_DIR [TARGET...]\n");
    return 2;
  }
  const fs::path root = argv[1];
  const std::vector<std::string> only(argv + 2, argv + argc);
  int files = 0;
  for (const auto& target : flowgrad::fuzz::targets) {
    if (!only.empty() && std::find(only.begin(), only.end(), target.name) == only.end()) continue;
    for (const char* kind : {"corpus", "regressions"}) {
      const fs::path dir = root / kind / target.name;
      if (!fs::is_directory(dir)) continue;
      std::vector<fs::path> inputs;
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file()) inputs.push_back(e.path());
      std::sort(inputs.begin(), inputs.end());
      for (const auto& p : inputs) {
        std::fprintf(stderr, "%s: %s\n", target.name, p.string().c_str());
        std::ifstream in(p, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
        target.run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
        ++files;
      }
    }
  }
  std::printf("replayed %d inputs\n", files);
  return files > 0 ? 0 : 1;
}
