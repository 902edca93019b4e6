#include "vi_training.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "checkpoint.hpp"
#include "energies.hpp"
#include "flowgrad/autodiff/optim.hpp"
#include "ranks.hpp"

namespace train2d {

using flowgrad::Tape;
using flowgrad::VariationalFlow;

ViRun train_vi(const ViOptions& opt, int which, const std::string& checkpoint,
               const Metadata& metadata) {
  Generator gen(opt.seed);
  ViRun run;
  run.model = std::make_unique<VariationalFlow<float>>(build_transform(opt.model, gen));
  VariationalFlow<float>& q = *run.model;
  flowgrad::FitOptions fit;
  fit.steps = opt.steps;
  fit.batch = opt.batch;
  fit.adam.lr = opt.lr;
  fit.collective = ranks();
  // Computed in float as before the library took over the loop, so that runs repeat bit for bit.
  if (opt.anneal)
    fit.beta = [](long i) {
      return static_cast<double>(std::min(1.0f, 0.01f + static_cast<float>(i) / 10000.0f));
    };
  flowgrad::VariationalTrainer<float> trainer(
      q, [which](const flowgrad::Var<float>& x) { return -energy(which, x); }, fit);
  // Base samples continue the stream that initialised q; data-parallel ranks draw their own.
  if (!ranks()) trainer.generator() = gen;
  const LoopSettings settings =
      loop_settings(opt, "try a lower --lr", trainer, checkpoint, metadata);
  static_cast<LoopResult&>(run) = run_training_loop(settings, trainer);
  return run;
}

KlEstimate estimate_kl(VariationalFlow<float>& q, int which, Index samples, std::uint64_t seed) {
  Generator gen(seed);
  KlEstimate r;
  r.log_z = log_partition(which);
  double sum = 0, sum_sq = 0;
  constexpr Index chunk = 8192;
  for (Index done = 0; done < samples; done += chunk) {
    const Index m = std::min(chunk, samples - done);
    Tape<float> tape;
    flowgrad::NoGradGuard<float> guard(tape);
    const auto s = q.sample_and_log_prob(tape, m, gen);
    const auto& lq = s.log_q.value();
    // U in float64 at the float32 samples, so the estimate's error is the Monte Carlo error.
    Tape<double> t64;
    flowgrad::NoGradGuard<double> guard64(t64);
    const auto u = energy(which, t64.constant(s.x.value().cast<double>())).value();
    for (Index i = 0; i < m; ++i) {
      const double v = static_cast<double>(lq[i]) + u[i];
      sum += v;
      sum_sq += v * v;
    }
  }
  const double n = static_cast<double>(samples);
  const double mean = sum / n;
  r.kl = mean + r.log_z;
  r.std_error = std::sqrt(std::max(0.0, sum_sq / n - mean * mean) / n);
  return r;
}

Extent energy_extent(int which) {
  const Box b = energy_box(which);
  return {b.x0, b.x1, b.y0, b.y1};
}

DensityGrid q_grid(VariationalFlow<float>& q, int which, int n) {
  return q_grid(q, energy_extent(which), n);
}

DensityGrid q_grid(VariationalFlow<float>& q, const Extent& extent, int n) {
  auto log_density = [&](const TensorF& points) {
    const TensorF lp = q.log_prob(points);
    return std::vector<double>(lp.data(), lp.data() + lp.numel());
  };
  return evaluate_grid(log_density, extent, n, n);
}

DensityGrid target_grid(int which, int n) {
  auto log_density = [&](const TensorF& points) {
    Tape<double> t;
    flowgrad::NoGradGuard<double> guard(t);
    const auto u = energy(which, t.constant(points.cast<double>())).value();
    std::vector<double> out(static_cast<std::size_t>(u.numel()));
    for (Index i = 0; i < u.numel(); ++i) out[static_cast<std::size_t>(i)] = -u[i];
    return out;
  };
  return evaluate_grid(log_density, energy_extent(which), n, n);
}

}  // namespace train2d
