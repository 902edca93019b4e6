// Intra-op parallelism: each kernel at 1 and at 2 threads in the same process, on the shapes of a
// small flow's MLPs (gemm forward and backward, activations, their derivatives, bias add and bias
// gradient) and on a range of sizes around the split thresholds. Names pair up by everything
// before the final "/threads:N":
//   BM_Gemm/fwd/m:4096/n:64/k:64/ta:0/tb:1/threads:1  and  .../threads:2
// Run with --benchmark_repetitions=3 and compare medians: the machine is shared.
#include <benchmark/benchmark.h>

#include <array>
#include <string>
#include <vector>

#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/ops.hpp"
#include "flowgrad/tensor/random.hpp"
#include "flowgrad/tensor/threads.hpp"
#include "gemm_shapes.hpp"

namespace {

using flowgrad::GemmOptions;
using flowgrad::Index;
using flowgrad::Shape;
using flowgrad::Tensor;

using bench::GemmShape;

std::string gemm_name(const GemmShape& s) { return "BM_Gemm/" + bench::gemm_suffix(s); }

void bm_gemm(benchmark::State& state, GemmShape s) {
  flowgrad::set_num_threads(static_cast<int>(state.range(0)));
  flowgrad::Generator gen(42);
  const Tensor<float> a = gen.normal<float>(s.ta ? Shape{s.k, s.m} : Shape{s.m, s.k});
  const Tensor<float> b = gen.normal<float>(s.tb ? Shape{s.n, s.k} : Shape{s.k, s.n});
  Tensor<float> c(Shape{s.m, s.n});
  for (auto _ : state) {
    flowgrad::gemm<float>(s.m, s.n, s.k, a.data(), s.ta ? s.m : s.k, b.data(), s.tb ? s.k : s.n,
                          c.data(), s.n, GemmOptions{s.ta, s.tb, false});
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * static_cast<double>(s.m * s.n * s.k),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  flowgrad::set_num_threads(1);
}

// The elementwise and reduction kernels of an MLP layer over x [rows, cols].
enum class Kernel { tanh, relu, tanh_backward, relu_backward, bias_add, bias_grad, sum_all };

const char* kernel_name(Kernel k) {
  switch (k) {
    case Kernel::tanh:
      return "tanh";
    case Kernel::relu:
      return "relu";
    case Kernel::tanh_backward:
      return "tanh_backward";
    case Kernel::relu_backward:
      return "relu_backward";
    case Kernel::bias_add:
      return "bias_add";
    case Kernel::bias_grad:
      return "bias_grad";
    case Kernel::sum_all:
      return "sum_all";
  }
  return "?";
}

void bm_kernel(benchmark::State& state, Kernel kernel, Index rows, Index cols) {
  flowgrad::set_num_threads(static_cast<int>(state.range(0)));
  flowgrad::Generator gen(7);
  const Tensor<float> x = gen.normal<float>(Shape{rows, cols});
  const Tensor<float> gy = gen.normal<float>(Shape{rows, cols});
  const Tensor<float> bias = gen.normal<float>(Shape{1, cols});
  Tensor<float> y(x.shape()), gx(x.shape()), gb(Shape{1, cols}), s(Shape{1, 1});
  flowgrad::unary(flowgrad::Unary::tanh, x, y);
  for (auto _ : state) {
    switch (kernel) {
      case Kernel::tanh:
        flowgrad::unary(flowgrad::Unary::tanh, x, y);
        break;
      case Kernel::relu:
        flowgrad::unary(flowgrad::Unary::relu, x, y);
        break;
      case Kernel::tanh_backward:
        flowgrad::unary_backward(flowgrad::Unary::tanh, x, y, gy, gx);
        break;
      case Kernel::relu_backward:
        flowgrad::unary_backward(flowgrad::Unary::relu, x, y, gy, gx);
        break;
      case Kernel::bias_add:
        flowgrad::binary(flowgrad::Binary::add, x, bias, y);
        break;
      case Kernel::bias_grad:
        flowgrad::accumulate_reduced(gy, gb);
        break;
      case Kernel::sum_all:
        flowgrad::sum(x, s);
        break;
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(gx.data());
    benchmark::DoNotOptimize(gb.data());
    benchmark::DoNotOptimize(s.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * x.numel());
  flowgrad::set_num_threads(1);
}

bool register_all() {
  constexpr Index batches[] = {64, 256, 512, 1024, 2048, 4096};
  constexpr std::array<Index, 2> layers[] = {{64, 64}, {2, 64}, {64, 2},
                                             {1, 64},  {64, 1}, {256, 256}};
  for (const GemmShape& s : bench::mlp_shapes(batches, layers))
    benchmark::RegisterBenchmark(gemm_name(s).c_str(), bm_gemm, s)
        ->ArgName("threads")
        ->Arg(1)
        ->Arg(2)
        ->MinTime(0.1);
  for (const Kernel k : {Kernel::tanh, Kernel::relu, Kernel::tanh_backward, Kernel::relu_backward,
                         Kernel::bias_add, Kernel::bias_grad, Kernel::sum_all})
    for (const Index rows : {64, 256, 512, 1024, 2048, 4096, 16384})
      benchmark::RegisterBenchmark(
          (std::string("BM_") + kernel_name(k) + "/" + std::to_string(rows) + "x64").c_str(),
          bm_kernel, k, rows, Index(64))
          ->ArgName("threads")
          ->Arg(1)
          ->Arg(2)
          ->MinTime(0.1);
  return true;
}

const bool registered = register_all();

}  // namespace
