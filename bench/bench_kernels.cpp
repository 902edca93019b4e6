// Kernel benchmarks: gemm on the shapes of an MLP's forward and backward passes, each shape run by
// our gemm and by OpenBLAS's cblas_sgemm with identical arguments (single-threaded both), and
// elementwise throughput of the activations.
//
// Names pair up by everything after the first '/':
//   BM_Gemm_Ours/fwd/m:4096/n:64/k:2/ta:0/tb:1  and  BM_Gemm_OpenBLAS/fwd/m:4096/n:64/k:2/ta:0/tb:1
// bench/gemm_table.py turns a JSON run into a table of the pairs.
//
// OpenBLAS is pinned to one thread with openblas_set_num_threads(1); exporting
// OPENBLAS_NUM_THREADS=1 as well also keeps it from starting its thread pool at load time.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <array>
#include <string>
#include <vector>

#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/ops.hpp"
#include "flowgrad/tensor/random.hpp"
#include "gemm_shapes.hpp"

namespace {

using flowgrad::GemmOptions;
using flowgrad::Index;
using flowgrad::Shape;
using flowgrad::Tensor;

using bench::GemmShape;

// Row-major operands as the MLP stores them: A is m x k (k x m when transposed), B is k x n (n x k
// when transposed), C is m x n, all with minimal leading dimensions.
struct GemmOperands {
  Tensor<float> a, b, c;
  explicit GemmOperands(const GemmShape& s) {
    flowgrad::Generator gen(42);
    a = gen.normal<float>(s.ta ? Shape{s.k, s.m} : Shape{s.m, s.k});
    b = gen.normal<float>(s.tb ? Shape{s.n, s.k} : Shape{s.k, s.n});
    c = Tensor<float>(Shape{s.m, s.n});
  }
  Index lda(const GemmShape& s) const { return s.ta ? s.m : s.k; }
  Index ldb(const GemmShape& s) const { return s.tb ? s.k : s.n; }
};

void set_flops(benchmark::State& state, const GemmShape& s) {
  const double flops = 2.0 * static_cast<double>(s.m * s.n * s.k);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_gemm_ours(benchmark::State& state, GemmShape s) {
  GemmOperands x(s);
  for (auto _ : state) {
    flowgrad::gemm<float>(s.m, s.n, s.k, x.a.data(), x.lda(s), x.b.data(), x.ldb(s), x.c.data(),
                          s.n, GemmOptions{s.ta, s.tb, false});
    benchmark::DoNotOptimize(x.c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, s);
}

void bm_gemm_openblas(benchmark::State& state, GemmShape s) {
  openblas_set_num_threads(1);
  GemmOperands x(s);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                static_cast<int>(s.m), static_cast<int>(s.n), static_cast<int>(s.k), 1.0f,
                x.a.data(), static_cast<int>(x.lda(s)), x.b.data(), static_cast<int>(x.ldb(s)),
                0.0f, x.c.data(), static_cast<int>(s.n));
    benchmark::DoNotOptimize(x.c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, s);
}

void bm_unary(benchmark::State& state, flowgrad::Unary f) {
  flowgrad::Generator gen(7);
  const Tensor<float> x = gen.normal<float>(Shape{4096, 64});
  Tensor<float> y(x.shape());
  for (auto _ : state) {
    flowgrad::unary(f, x, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * x.numel());
}

bool register_all() {
  openblas_set_num_threads(1);
  constexpr Index batches[] = {256, 1024, 4096};
  constexpr std::array<Index, 2> layers[] = {{1, 64}, {2, 64}, {64, 64}, {256, 256},
                                             {64, 1}, {64, 2}, {256, 1}};
  // The coupling networks of a 784-dimensional flow (Fashion-MNIST's pixels), 392 -> 1024 -> 1024
  // -> 392, at batch 256: the wide-layer regime of BM_WideCouplingTrainStep in bench_flows.
  constexpr Index wide_batches[] = {256};
  constexpr std::array<Index, 2> wide_layers[] = {{392, 1024}, {1024, 1024}, {1024, 392}};
  std::vector<GemmShape> shapes = bench::mlp_shapes(batches, layers);
  for (const GemmShape& s : bench::mlp_shapes(wide_batches, wide_layers)) shapes.push_back(s);
  // At that batch the MLP node runs each forward product as y^T = W x^T (mlp_forward_by_layer).
  for (const Index b : wide_batches)
    for (const auto& [in, width] : wide_layers)
      shapes.push_back({"fwd_wxt", width, b, in, false, true});
  for (const GemmShape& s : shapes) {
    const std::string suffix = bench::gemm_suffix(s);
    benchmark::RegisterBenchmark(("BM_Gemm_Ours/" + suffix).c_str(), bm_gemm_ours, s)->MinTime(0.2);
    benchmark::RegisterBenchmark(("BM_Gemm_OpenBLAS/" + suffix).c_str(), bm_gemm_openblas, s)
        ->MinTime(0.2);
  }
  for (const flowgrad::Unary f :
       {flowgrad::Unary::exp, flowgrad::Unary::tanh, flowgrad::Unary::softplus}) {
    benchmark::RegisterBenchmark(
        (std::string("BM_Unary/") + flowgrad::to_string(f) + "/4096x64").c_str(), bm_unary, f)
        ->MinTime(0.2);
  }
  return true;
}

const bool registered = register_all();

}  // namespace
