// Where the wide-layer training step (BM_WideCouplingTrainStep: one 784-pixel affine coupling, s
// and t nets 392 -> 1024 -> 1024 -> 392, batch 256) spends what its products do not:
//
//   build/bench/wide_step_anatomy [--steps N]
//
// 1. The step by phase (forward, backward, Adam), medians over N steps, one thread.
// 2. Each of the step's product shapes and the packing of its transposed weight, hot (the same
//    operands again, as bench/wide_step_budget.py's stand-alone budget) and cold (after a sweep
//    over 256 MB, more than the L3 of any CPU this project has run on, as inside a step after Adam
//    has streamed the optimizer state).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#include "flowgrad/autodiff/optim.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/tensor/detail/gemm.hpp"

using namespace flowgrad;

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void step_phases(int steps) {
  constexpr Index dim = 784, hidden = 1024, batch = 256;
  Generator gen(0);
  auto chain = std::make_unique<Composition<float>>(dim);
  chain->add(std::make_unique<AffineCoupling<float>>(
      AffineCoupling<float>::half_mask(dim, 0), CouplingConfig{hidden, 2, Activation::relu}, gen));
  DensityFlow<float> model(std::move(chain));
  const TensorF x = gen.normal<float>(Shape{batch, dim});
  Adam<float> adam(model.parameters(), {.lr = 1e-3});
  Tape<float> tape;
  std::vector<double> fwd, bwd, opt;
  for (int s = 0; s < steps + 3; ++s) {  // the first steps allocate
    auto t0 = Clock::now();
    tape.reset();
    adam.clear_grad();
    const auto loss = -mean(model.log_prob(tape.constant(x)));
    const double f = ms_since(t0);
    t0 = Clock::now();
    tape.backward(loss);
    const double b = ms_since(t0);
    t0 = Clock::now();
    adam.step();
    const double a = ms_since(t0);
    if (s >= 3) fwd.push_back(f), bwd.push_back(b), opt.push_back(a);
  }
  std::printf("step by phase (median of %d): forward %.2f ms, backward %.2f ms, Adam %.2f ms\n",
              steps, median(fwd), median(bwd), median(opt));
}

// Reading it evicts the operands from every cache level.
std::vector<float>& sweep_buffer() {
  static std::vector<float> buffer(std::size_t(64) << 20, 1.0f);
  return buffer;
}

void evict() {
  std::vector<float>& b = sweep_buffer();
  for (std::size_t i = 0; i < b.size(); i += 16) b[i] += 1.0f;
}

template <class F>
double time_ms(F&& f, bool cold, int reps) {
  std::vector<double> t;
  for (int i = 0; i < reps + 2; ++i) {
    if (cold) evict();
    const auto t0 = Clock::now();
    f();
    if (i >= 2) t.push_back(ms_since(t0));
  }
  return median(t);
}

void products_hot_and_cold(int reps) {
  constexpr Index m = 256;
  Generator gen(1);
  std::printf("| layer | product | hot ms | cold ms |\n|---|---|---:|---:|\n");
  for (const auto& [k, n] : {std::pair<Index, Index>{392, 1024}, {1024, 1024}, {1024, 392}}) {
    const TensorF a = gen.normal<float>(Shape{m, k}), w = gen.normal<float>(Shape{n, k});
    const TensorF dz = gen.normal<float>(Shape{m, n});
    TensorF y(Shape{m, n}), dx(Shape{m, k}), dw(Shape{n, k});
    PackedB<float> packed;
    const std::pair<const char*, std::function<void()>> runs[] = {
        {"forward x W^T",
         [&] {
           gemm<float>(m, n, k, a.data(), k, w.data(), k, y.data(), n, {false, true, false});
         }},
        {"pack W^T", [&] { packed.pack(k, n, w.data(), k, true); }},
        {"input gradient dz W",
         [&] {
           gemm<float>(m, k, n, dz.data(), n, w.data(), k, dx.data(), k, {false, false, false});
         }},
        {"weight gradient dz^T x",
         [&] {
           gemm<float>(n, k, m, dz.data(), n, a.data(), k, dw.data(), k, {true, false, false});
         }},
    };
    for (const auto& [name, run] : runs) {
      // The coupling's input is data: the first layer's input gradient is never formed.
      if (k == 392 && n == 1024 && std::strcmp(name, "input gradient dz W") == 0) continue;
      std::printf("| %ld -> %ld | %s | %.3f | %.3f |\n", static_cast<long>(k), static_cast<long>(n),
                  name, time_ms(run, false, reps), time_ms(run, true, reps));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 40;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--steps N]\n", argv[0]);
      return 2;
    }
  }
  if (steps < 1) {
    std::fprintf(stderr, "--steps must be at least 1\n");
    return 2;
  }
  step_phases(steps);
  products_hot_and_cold(steps);
}
