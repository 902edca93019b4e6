// Training steps and inference of the benchmark protocol (docs/design.md §5): RealNVP with d = 2,
// 8 couplings, s and t MLPs 1 -> H -> H -> 1 with ReLU (tanh on s), batch norm between couplings,
// Adam at lr 1e-3; the planar VI step (32 layers, batch 512, reverse KL on U1); NSF and MAF.
// Names are fixed: scripts filter on them. "/threads:2" variants run the ops on two threads; read
// real_time (wall clock) for those, as bench/compare_pytorch.py does.
#include <benchmark/benchmark.h>
#include <fstream>
#include <string>

#include "energies.hpp"
#include "flowgrad/autodiff/optim.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/tensor/isa.hpp"
#include "flowgrad/tensor/threads.hpp"
#include "image_models.hpp"

using namespace flowgrad;

namespace {

RealNVPConfig protocol(Index hidden) {
  RealNVPConfig c;
  c.dim = 2;
  c.couplings = 8;
  c.coupling = {hidden, 2, Activation::relu};
  c.batch_norm = true;
  return c;
}

// Multiply-add FLOPs of one pass of every coupling network over a batch.
double forward_matmul_flops(Index hidden, Index batch) {
  const double per_net =
      2.0 * static_cast<double>(batch) * (1.0 * hidden + hidden * hidden + hidden * 1.0);
  return 8 * 2 * per_net;  // 8 couplings, s and t
}

// Peak resident memory since the last reset_peak_rss(), so that each benchmark of an interleaved
// run reports its own peak rather than the largest of any run before it (getrusage's ru_maxrss
// only grows). Linux resets the high-water mark when "5" is written to clear_refs.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // in kB
  return 0;
}

// One untimed call first: it sizes the tape's buffers and the kernels' scratch (page faults on
// first touch), which every later step reuses; the loop then times steady-state steps.
template <class Step>
void run_steps(benchmark::State& state, Step&& step) {
  step();
  for (auto _ : state) step();
}

void report(benchmark::State& state, Index batch, double flops_per_iteration,
            std::size_t tape_bytes) {
  const auto n = static_cast<double>(state.iterations());
  state.counters["samples/s"] =
      benchmark::Counter(n * static_cast<double>(batch), benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(n * flops_per_iteration * 1e-9, benchmark::Counter::kIsRate);
  state.counters["tape_MB"] = static_cast<double>(tape_bytes) / (1 << 20);
  state.counters["peak_RSS_MB"] = peak_rss_mb();
  // Which of the kernels' paths ran (flowgrad/tensor/isa.hpp; FLOWGRAD_ISA=avx2 forces AVX2).
  state.SetLabel(std::string("isa:") + to_string(active_isa()));
}

// The protocol's training step (forward, backward, Adam at lr 1e-3) on a fixed batch x, timed;
// returns the tape's bytes. fused: backward and Adam as one pass (Adam::backward_step).
std::size_t train_steps(benchmark::State& state, DensityFlow<float>& model, const TensorF& x,
                        bool fused = false) {
  Adam<float> adam(model.parameters(), {.lr = 1e-3});
  Tape<float> tape;
  run_steps(state, [&] {
    tape.reset();
    adam.clear_grad();
    const auto loss = -mean(model.log_prob(tape.constant(x)));
    if (fused) {
      adam.backward_step(loss);
    } else {
      tape.backward(loss);
      adam.step();
    }
    benchmark::DoNotOptimize(loss.item());
  });
  return tape.bytes_reserved();
}

void realnvp_train_step(benchmark::State& state, Index hidden, Index batch, int threads,
                        bool fused) {
  reset_peak_rss();
  set_num_threads(threads);
  Generator gen(0);
  DensityFlow<float> model(make_realnvp<float>(protocol(hidden), gen));
  const std::size_t tape_bytes =
      train_steps(state, model, gen.normal<float>(Shape{batch, 2}), fused);
  // Forward, then the gradients with respect to the layers' inputs and weights: three products.
  report(state, batch, 3 * forward_matmul_flops(hidden, batch), tape_bytes);
  set_num_threads(1);
}

// The wide-layer regime: one affine coupling of a d-dimensional flow (d = 784: an image's pixels)
// with s and t nets d/2 -> H -> H -> d/2, a training step (forward, backward, Adam) at `batch`.
void wide_coupling_train_step(benchmark::State& state, Index dim, Index hidden, Index batch,
                              int threads, bool fused) {
  reset_peak_rss();
  set_num_threads(threads);
  Generator gen(0);
  auto chain = std::make_unique<Composition<float>>(dim);
  chain->add(std::make_unique<AffineCoupling<float>>(
      AffineCoupling<float>::half_mask(dim, 0), CouplingConfig{hidden, 2, Activation::relu}, gen));
  DensityFlow<float> model(std::move(chain));
  const std::size_t tape_bytes =
      train_steps(state, model, gen.normal<float>(Shape{batch, dim}), fused);
  // Per row, each of s and t multiplies d/2 x H, H x H and H x d/2; training is three such passes
  // (forward, input gradients, weight gradients), as for RealNVP above.
  const double macs =
      2.0 * static_cast<double>(dim / 2 * hidden + hidden * hidden + hidden * (dim - dim / 2));
  report(state, batch, 3 * 2 * macs * static_cast<double>(batch), tape_bytes);
  set_num_threads(1);
}

// Modern flows at their builders' defaults (the same models in PyTorch:
// bench/reference_pytorch.py): NSF, 8 spline couplings (8 bins on [-4, 4], conditioner |x1| -> 64
// -> 64 -> |x2| 23, ReLU), and MAF, 5 masked affine autoregressive layers (MADE d -> 50 -> 50 ->
// 2d, tanh) with permutations. Their FLOP counters count the networks' products only (forward,
// input and weight gradients).
double nsf_flops(Index dim, Index batch) {
  const double x1 = static_cast<double>(dim / 2), x2 = static_cast<double>(dim - dim / 2);
  // Couplings alternate which half is fixed; for odd d the halves swap sizes.
  const double a = x1 * 64 + 64 * 64 + 64 * 23 * x2, b = x2 * 64 + 64 * 64 + 64 * 23 * x1;
  return 3 * 2 * static_cast<double>(batch) * 4 * (a + b);
}
double maf_forward_flops(Index dim, Index batch) {
  const double d = static_cast<double>(dim);
  return 2 * static_cast<double>(batch) * 5 * (d * 50 + 50 * 50 + 50 * 2 * d);
}

void nsf_train_step(benchmark::State& state, Index dim, Index batch, int threads) {
  reset_peak_rss();
  set_num_threads(threads);
  Generator gen(0);
  NSFConfig c;
  c.dim = dim;
  DensityFlow<float> model(make_nsf<float>(c, gen));
  const std::size_t tape_bytes = train_steps(state, model, gen.normal<float>(Shape{batch, dim}));
  report(state, batch, nsf_flops(dim, batch), tape_bytes);
  set_num_threads(1);
}

void maf_train_step(benchmark::State& state, Index dim, Index batch, int threads) {
  reset_peak_rss();
  set_num_threads(threads);
  Generator gen(0);
  MAFConfig c;
  c.dim = dim;
  DensityFlow<float> model(make_maf<float>(c, gen));
  const std::size_t tape_bytes = train_steps(state, model, gen.normal<float>(Shape{batch, dim}));
  report(state, batch, 3 * maf_forward_flops(dim, batch), tape_bytes);
  set_num_threads(1);
}

// MAF's two directions: log p in one MADE pass per layer, sampling in d passes per layer.
void maf_log_prob(benchmark::State& state, Index dim, Index n, int threads) {
  reset_peak_rss();
  set_num_threads(threads);
  Generator gen(0);
  MAFConfig c;
  c.dim = dim;
  DensityFlow<float> model(make_maf<float>(c, gen));
  const TensorF x = gen.normal<float>(Shape{n, dim});
  Tape<float> tape;
  run_steps(state, [&] {
    tape.reset();
    NoGradGuard<float> guard(tape);
    benchmark::DoNotOptimize(model.log_prob(tape.constant(x)).value().data());
  });
  report(state, n, maf_forward_flops(dim, n), tape.bytes_reserved());
  set_num_threads(1);
}

void maf_sample(benchmark::State& state, Index dim, Index n, int threads) {
  reset_peak_rss();
  set_num_threads(threads);
  Generator gen(0);
  MAFConfig c;
  c.dim = dim;
  DensityFlow<float> model(make_maf<float>(c, gen));
  run_steps(state, [&] { benchmark::DoNotOptimize(model.sample(n, gen).data()); });
  report(state, n, static_cast<double>(dim) * maf_forward_flops(dim, n), 0);
  set_num_threads(1);
}

// train_images' RealNVP at Fashion-MNIST's width (784 pixels): 6 x [permutation, affine coupling
// with s and t nets 392 -> H -> H -> 392, ActNorm], a training step at `batch` on fixed rows.
void image_flow_train_step(benchmark::State& state, Index hidden, Index batch, int threads) {
  reset_peak_rss();
  set_num_threads(threads);
  Generator gen(0);
  trainimg::ImageModelConfig c;
  c.hidden = hidden;
  DensityFlow<float> model(trainimg::build_image_flow(c, gen));
  const std::size_t tape_bytes = train_steps(state, model, gen.normal<float>(Shape{batch, 784}));
  const double macs = 2.0 * static_cast<double>(392 * hidden + hidden * hidden + hidden * 392);
  report(state, batch, 6 * 3 * 2 * macs * static_cast<double>(batch), tape_bytes);
  set_num_threads(1);
}

void realnvp_log_prob(benchmark::State& state, Index hidden, Index batch, int threads) {
  reset_peak_rss();
  set_num_threads(threads);
  Generator gen(0);
  DensityFlow<float> model(make_realnvp<float>(protocol(hidden), gen));
  model.set_batch_norm_statistics(gen.normal<float>(Shape{batch, 2}));
  model.eval();
  const TensorF x = gen.normal<float>(Shape{batch, 2});
  Tape<float> tape;
  run_steps(state, [&] {
    tape.reset();
    NoGradGuard<float> guard(tape);
    benchmark::DoNotOptimize(model.log_prob(tape.constant(x)).value().data());
  });
  report(state, batch, forward_matmul_flops(hidden, batch), tape.bytes_reserved());
  set_num_threads(1);
}

void realnvp_sample(benchmark::State& state, Index hidden, Index batch, int threads) {
  reset_peak_rss();
  set_num_threads(threads);
  Generator gen(0);
  DensityFlow<float> model(make_realnvp<float>(protocol(hidden), gen));
  model.set_batch_norm_statistics(gen.normal<float>(Shape{batch, 2}));
  model.eval();
  run_steps(state, [&] { benchmark::DoNotOptimize(model.sample(batch, gen).data()); });
  report(state, batch, forward_matmul_flops(hidden, batch), 0);
  set_num_threads(1);
}

void planar_vi_step(benchmark::State& state, int layers, Index batch, int threads) {
  reset_peak_rss();
  set_num_threads(threads);
  Generator gen(0);
  VariationalFlow<float> q(make_planar_stack<float>(2, layers, gen));
  Adam<float> adam(q.parameters(), {.lr = 1e-3});
  Tape<float> tape;
  run_steps(state, [&] {
    tape.reset();
    adam.clear_grad();
    const auto s = q.sample_and_log_prob(tape, batch, gen);
    const auto loss = mean(s.log_q + train2d::energy(1, s.x));
    tape.backward(loss);
    adam.step();
    benchmark::DoNotOptimize(loss.item());
  });
  // Each layer's w.x is a [batch, 2] x [2, 1] product: 3 products of 4 FLOPs per sample.
  report(state, batch, 3.0 * layers * 4.0 * static_cast<double>(batch), tape.bytes_reserved());
  set_num_threads(1);
}

// The machine's float32 multiply-add peak on one core, measured rather than taken from a data
// sheet, so that a step's GFLOP/s can be read as a share of it: 12 independent chains of
// full-width FMAs (enough to cover the FMA latency on two pipes), all in registers. V is the
// vector type: 8 lanes (AVX2) or 16 (AVX-512); the caller's target decides the instructions.
template <class V>
[[gnu::always_inline]] inline void fma_chains(benchmark::State& state) {
  constexpr int lanes = sizeof(V) / sizeof(float);
  constexpr int chains = 12;
  constexpr long rounds = 1 << 16;
  V acc[chains];
  for (int c = 0; c < chains; ++c) acc[c] = V{} + static_cast<float>(c) * 1e-3f;
  V mul = V{} + 0.999999f, add = V{} + 1e-7f;
  for (auto _ : state) {
    benchmark::DoNotOptimize(mul);
    benchmark::DoNotOptimize(add);
    for (long r = 0; r < rounds; ++r)
      for (int c = 0; c < chains; ++c) acc[c] = acc[c] * mul + add;
    for (int c = 0; c < chains; ++c) benchmark::DoNotOptimize(acc[c]);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * rounds * chains * lanes * 2 / 1e9,
      benchmark::Counter::kIsRate);
}

void fma_peak_avx2(benchmark::State& state) {
  fma_chains<float __attribute__((vector_size(32)))>(state);
  state.SetLabel("avx2");
}

// Compiled for AVX-512 whatever the build's -march, and run only where the CPU has it.
__attribute__((target("avx512f"))) void fma_peak_avx512(benchmark::State& state) {
  fma_chains<float __attribute__((vector_size(64)))>(state);
  state.SetLabel("avx512f");
}

// BM_FmaPeak is the widest FMA this CPU has (its label names it): the peak a kernel could reach,
// which is what "% of peak" must be measured against. The AVX2 figure stays as a reference.
const int fma_registered = [] {
  // The kernels' path, also in the JSON output's context (bench/compare_pytorch.py prints it).
  benchmark::AddCustomContext("flowgrad_isa", to_string(active_isa()));
  const bool avx512 = __builtin_cpu_supports("avx512f");
  benchmark::RegisterBenchmark("BM_FmaPeak", avx512 ? fma_peak_avx512 : fma_peak_avx2);
  benchmark::RegisterBenchmark("BM_FmaPeak/avx2", fma_peak_avx2);
  return 0;
}();

std::string suffix(int threads) {
  return threads == 1 ? "" : "/threads:" + std::to_string(threads);
}

const int registered = [] {
  for (int threads : {1, 2}) {
    for (Index h : {64, 256})
      for (Index b : {256, 1024, 4096}) {
        const std::string cfg =
            "/H:" + std::to_string(h) + "/B:" + std::to_string(b) + suffix(threads);
        benchmark::RegisterBenchmark(("BM_RealNVPTrainStep" + cfg).c_str(), realnvp_train_step, h,
                                     b, threads, false)
            ->Unit(benchmark::kMillisecond);
      }
    // The same steps with Adam inside the backward pass, where the wide layers gain from it.
    for (Index h : {64, 256})
      benchmark::RegisterBenchmark(
          ("BM_RealNVPTrainStep/H:" + std::to_string(h) + "/B:1024/fused" + suffix(threads))
              .c_str(),
          realnvp_train_step, h, Index{1024}, threads, true)
          ->Unit(benchmark::kMillisecond);
    for (Index h : {64, 256}) {
      const std::string cfg = "/H:" + std::to_string(h) + "/B:4096" + suffix(threads);
      benchmark::RegisterBenchmark(("BM_RealNVPLogProb" + cfg).c_str(), realnvp_log_prob, h,
                                   Index{4096}, threads)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("BM_RealNVPSample" + cfg).c_str(), realnvp_sample, h,
                                   Index{4096}, threads)
          ->Unit(benchmark::kMillisecond);
    }
    for (const bool fused : {false, true})
      benchmark::RegisterBenchmark(("BM_WideCouplingTrainStep/D:784/H:1024/B:256" +
                                    std::string(fused ? "/fused" : "") + suffix(threads))
                                       .c_str(),
                                   wide_coupling_train_step, Index{784}, Index{1024}, Index{256},
                                   threads, fused)
          ->Unit(benchmark::kMillisecond);
    for (Index d : {2, 8}) {
      const std::string cfg = "/D:" + std::to_string(d) + "/B:1024" + suffix(threads);
      benchmark::RegisterBenchmark(("BM_NSFTrainStep" + cfg).c_str(), nsf_train_step, d,
                                   Index{1024}, threads)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("BM_MAFTrainStep" + cfg).c_str(), maf_train_step, d,
                                   Index{1024}, threads)
          ->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark(("BM_ImageFlowTrainStep/H:1024/B:256" + suffix(threads)).c_str(),
                                 image_flow_train_step, Index{1024}, Index{256}, threads)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("BM_MAFLogProb/D:8/N:1024" + suffix(threads)).c_str(),
                                 maf_log_prob, Index{8}, Index{1024}, threads)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("BM_MAFSample/D:8/N:1024" + suffix(threads)).c_str(), maf_sample,
                                 Index{8}, Index{1024}, threads)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("BM_PlanarVIStep/K:32/B:512" + suffix(threads)).c_str(),
                                 planar_vi_step, 32, Index{512}, threads)
        ->Unit(benchmark::kMillisecond);
  }
  return 0;
}();

}  // namespace
