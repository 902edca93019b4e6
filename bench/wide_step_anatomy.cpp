// Where the wide-layer training step (BM_WideCouplingTrainStep: one 784-pixel affine coupling, s
// and t nets 392 -> 1024 -> 1024 -> 392, batch 256) spends what its products do not:
//
//   build/bench/wide_step_anatomy [--steps N]
//
// 1. The step by phase (forward, backward, Adam), medians over N steps, one thread.
// 2. The step against its products measured in the same loop (the budget's ratio, steadier on a
//    machine whose speed drifts between processes), and the rate at which one core reads memory
//    around that loop, with the time Adam's state takes to read at that rate.
// 3. Each of the step's product shapes (and the forward the other way round) and the packing of
//    its transposed weight, hot (the same operands again, as bench/wide_step_budget.py's
//    stand-alone budget) and cold (after a sweep over 256 MB, more than the L3 of any CPU this
//    project has run on, as inside a step after Adam has streamed the optimizer state).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "flowgrad/autodiff/detail/mlp_forward.hpp"
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

// The step as BM_WideCouplingTrainStep runs it, timed by phase.
struct WideStep {
  static constexpr Index dim = 784, hidden = 1024, batch = 256;
  Generator gen{0};
  DensityFlow<float> model{coupling(gen)};
  TensorF x = gen.normal<float>(Shape{batch, dim});
  Adam<float> adam{model.parameters(), {.lr = 1e-3}};
  Tape<float> tape;

  static std::unique_ptr<Composition<float>> coupling(Generator& gen) {
    auto chain = std::make_unique<Composition<float>>(dim);
    chain->add(std::make_unique<AffineCoupling<float>>(AffineCoupling<float>::half_mask(dim, 0),
                                                       CouplingConfig{hidden, 2, Activation::relu},
                                                       gen));
    return chain;
  }

  // Milliseconds of forward, backward and Adam; fused: Adam inside the backward pass
  // (Adam::backward_step), timed with it.
  std::array<double, 3> run(bool fused = false) {
    auto t0 = Clock::now();
    tape.reset();
    adam.clear_grad();
    const auto loss = -mean(model.log_prob(tape.constant(x)));
    const double f = ms_since(t0);
    t0 = Clock::now();
    if (fused) {
      adam.backward_step(loss);
      return {f, ms_since(t0), 0.0};
    }
    tape.backward(loss);
    const double b = ms_since(t0);
    t0 = Clock::now();
    adam.step();
    return {f, b, ms_since(t0)};
  }
};

// The operands of one net's products: for each layer, its forward, its weight gradient and, but
// for the first layer (the coupling's input is data), its input gradient.
struct LayerOperands {
  Index k, n;
  bool first;  // the net's first layer: its input is the coupling's data, with no gradient
  TensorF a, w, dz, y, yt, dx, dw;
  LayerOperands(Index k_, Index n_, bool first_, Generator& gen)
      : k(k_),
        n(n_),
        first(first_),
        a(gen.normal<float>(Shape{WideStep::batch, k})),
        w(gen.normal<float>(Shape{n, k})),
        dz(gen.normal<float>(Shape{WideStep::batch, n})),
        y(Shape{WideStep::batch, n}),
        yt(Shape{n, WideStep::batch}),
        dx(Shape{WideStep::batch, k}),
        dw(Shape{n, k}) {}
  void forward() {
    gemm<float>(WideStep::batch, n, k, a.data(), k, w.data(), k, y.data(), n, {false, true, false});
  }
  // The same product the other way round, y^T = W x^T: the weight is then A, read in place and
  // never packed, and the small x is the packed operand.
  void forward_transposed() {
    gemm<float>(n, WideStep::batch, k, w.data(), k, a.data(), k, yt.data(), WideStep::batch,
                {false, true, false});
  }
  void input_gradient() {
    gemm<float>(WideStep::batch, k, n, dz.data(), n, w.data(), k, dx.data(), k,
                {false, false, false});
  }
  void weight_gradient() {
    gemm<float>(n, k, WideStep::batch, dz.data(), n, a.data(), k, dw.data(), k,
                {true, false, false});
  }
};

std::vector<LayerOperands> net_operands() {
  Generator gen(1);
  std::vector<LayerOperands> layers;
  for (const auto& [k, n] : {std::pair<Index, Index>{392, 1024}, {1024, 1024}, {1024, 392}})
    layers.emplace_back(k, n, layers.empty(), gen);
  return layers;
}

void step_phases(int steps) {
  WideStep step;
  std::vector<double> fwd, bwd, opt, fused_fwd, fused_bwd;
  for (int s = 0; s < steps + 3; ++s) {  // the first steps allocate
    const auto [f, b, a] = step.run();
    const auto [ff, fb, fa] = step.run(true);
    if (s >= 3)
      fwd.push_back(f), bwd.push_back(b), opt.push_back(a), fused_fwd.push_back(ff),
          fused_bwd.push_back(fb);
  }
  std::printf("step by phase (median of %d): forward %.2f ms, backward %.2f ms, Adam %.2f ms\n",
              steps, median(fwd), median(bwd), median(opt));
  std::printf("with Adam in the backward pass: forward %.2f ms, backward with Adam %.2f ms\n",
              median(fused_fwd), median(fused_bwd));
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

// One core's rate of reading memory, in GB/s (median of 5 reads of the sweep buffer, a cache line
// at a time): what the step's memory traffic runs at, which other tenants of a shared machine
// take their share of.
double memory_read_rate() {
  const std::vector<float>& b = sweep_buffer();
  std::vector<double> rates;
  float sum = 0;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < b.size(); i += 16) sum += b[i];
    rates.push_back(static_cast<double>(b.size() * sizeof(float)) / ms_since(t0) / 1e6);
  }
  if (sum < 0) std::printf("%g\n", static_cast<double>(sum));  // keeps the reads
  return median(rates);
}

// The step / budget ratio of bench/wide_step_budget.py, with both sides measured in one loop: a
// step, then each of its products run twice and timed the second time (hot, as stand-alone), so
// that the machine's drift between processes does not enter the ratio.
void step_against_products(int steps) {
  WideStep step;
  std::vector<LayerOperands> layers = net_operands();
  // The forward product the way the MLP node runs it at this batch.
  const Index widths[] = {392, WideStep::hidden, WideStep::hidden, 392};
  const bool by_layer = detail::mlp_forward_by_layer(widths, WideStep::batch);
  auto hot_ms = [](auto&& product) {
    product();
    const auto t0 = Clock::now();
    product();
    return ms_since(t0);
  };
  std::vector<double> step_ms, fused_ms, product_ms;
  const double rate_before = memory_read_rate();
  for (int s = 0; s < steps + 3; ++s) {
    const auto [f, b, a] = step.run();
    const auto [ff, fb, fa] = step.run(true);
    double products = 0;
    for (LayerOperands& l : layers) {
      products += hot_ms([&] { by_layer ? l.forward_transposed() : l.forward(); }) +
                  hot_ms([&] { l.weight_gradient(); });
      if (!l.first) products += hot_ms([&] { l.input_gradient(); });
    }
    if (s >= 3) {
      step_ms.push_back(f + b + a);
      fused_ms.push_back(ff + fb + fa);
      product_ms.push_back(2 * products);  // s and t nets
    }
  }
  const double products = median(product_ms);
  std::printf(
      "step %.2f ms against its products %.2f ms (forward as %s), interleaved (median of %d): "
      "%.3fx\n",
      median(step_ms), products, by_layer ? "W x^T" : "x W^T", steps, median(step_ms) / products);
  std::printf("step with Adam in the backward pass %.2f ms: %.3fx\n", median(fused_ms),
              median(fused_ms) / products);
  // Adam reads each parameter and its two moments once a step, and writes them back, and no
  // cache holds them from one step to the next: traffic the products never meet.
  Index params = 0;
  for (const Parameter<float>* p : step.model.parameters()) params += p->value.numel();
  const double state_mb = 3.0 * static_cast<double>(params) * sizeof(float) / 1e6;
  const double rate = std::min(rate_before, memory_read_rate());
  std::printf(
      "one core read memory at %.1f GB/s around this loop (the lower of before and after); "
      "reading Adam's %.0f MB (%ld parameters and both moments) once takes %.2f ms at that rate, "
      "%.1f%% of the products, before writing them back\n",
      rate, state_mb, static_cast<long>(params), state_mb / rate, 100 * state_mb / rate / products);
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
  std::printf("| layer | product | hot ms | cold ms |\n|---|---|---:|---:|\n");
  for (LayerOperands& l : net_operands()) {
    PackedB<float> packed;
    std::vector<std::pair<const char*, std::function<void()>>> runs = {
        {"forward x W^T", [&] { l.forward(); }},
        {"forward as W x^T", [&] { l.forward_transposed(); }},
        {"pack W^T", [&] { packed.pack(l.k, l.n, l.w.data(), l.k, true); }},
        {"weight gradient dz^T x", [&] { l.weight_gradient(); }},
    };
    if (!l.first)
      runs.insert(runs.begin() + 2, {"input gradient dz W", [&] { l.input_gradient(); }});
    for (const auto& [name, run] : runs)
      std::printf("| %ld -> %ld | %s | %.3f | %.3f |\n", static_cast<long>(l.k),
                  static_cast<long>(l.n), name, time_ms(run, false, reps),
                  time_ms(run, true, reps));
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
  step_against_products(steps);
  products_hot_and_cold(steps);
}
