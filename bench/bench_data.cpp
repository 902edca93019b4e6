// Reading a large CSV: load_csv's throughput on a ~100 MB file of 4 float columns, written once
// into a temporary directory (removed at exit) before the timing starts.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "flowgrad/data/csv.hpp"
#include "flowgrad/tensor/random.hpp"

namespace {

struct BigCsv {
  std::filesystem::path dir, file;
  std::uintmax_t bytes = 0;
  BigCsv() {
    std::random_device rd;
    dir = std::filesystem::temp_directory_path() / ("flowgrad_bench_csv_" + std::to_string(rd()));
    std::filesystem::create_directories(dir);
    file = dir / "big.csv";
    // Values as a data set exported with 7 significant digits would hold them, mixed scales.
    flowgrad::Generator gen(1);
    std::string text = "x0,x1,x2,x3\n";
    text.reserve(std::size_t{105} << 20);
    char line[160];
    while (text.size() < std::size_t{100} << 20) {
      const double a = gen.normal(), b = 3 * gen.normal(), c = 0.01 * gen.normal(),
                   d = 100 * gen.uniform();
      std::snprintf(line, sizeof line, "%.7g,%.7g,%.7g,%.7g\n", a, b, c, d);
      text += line;
    }
    std::ofstream(file, std::ios::binary) << text;
    bytes = std::filesystem::file_size(file);
  }
  ~BigCsv() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

const BigCsv& big_csv() {
  static const BigCsv csv;
  return csv;
}

template <class T>
void BM_LoadCsv(benchmark::State& state) {
  const BigCsv& csv = big_csv();
  flowgrad::Index rows = 0;
  for (auto _ : state) {
    const auto data = flowgrad::load_csv_as<T>(csv.file.string());
    rows = data.points.rows();
    benchmark::DoNotOptimize(data.points.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(csv.bytes));
  state.counters["rows"] = static_cast<double>(rows);
  state.counters["MB"] = static_cast<double>(csv.bytes) / 1e6;
}
BENCHMARK(BM_LoadCsv<float>)->Name("BM_LoadCsv/float")->Unit(benchmark::kMillisecond)->MinTime(2);
BENCHMARK(BM_LoadCsv<double>)->Name("BM_LoadCsv/double")->Unit(benchmark::kMillisecond)->MinTime(2);

}  // namespace
