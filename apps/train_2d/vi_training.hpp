#pragma once
// Fitting a variational flow q to exp(-U) by reverse KL, and measuring the fit.
#include <memory>
#include <vector>

#include "commands.hpp"
#include "flowgrad/tensor/random.hpp"
#include "plots.hpp"
#include "training_loop.hpp"

namespace train2d {

using flowgrad::Generator;
using flowgrad::Index;
using flowgrad::TensorF;

struct ViRun : LoopResult {
  std::unique_ptr<flowgrad::VariationalFlow<float>> model;  // losses: mean(log q + beta_t U)
};

// Minimises E_q[log q(x) + beta_t (U(x) + W(x))] with Adam; beta_t = 1, or the paper's annealing
// min(1, 0.01 + t / 10000) with opt.anneal. Checkpoints as train_density does.
ViRun train_vi(const ViOptions& opt, int energy_index, const std::string& checkpoint,
               const Metadata& metadata);

struct KlEstimate {
  double kl = 0;         // E_q[log q + U + W] + log Z, nats
  double std_error = 0;  // Monte Carlo standard error of that mean
  double log_z = 0;
};
KlEstimate estimate_kl(flowgrad::VariationalFlow<float>& q, int energy_index, Index samples,
                       std::uint64_t seed);

// q's density and exp(-U - W) on the energy's box.
DensityGrid q_grid(flowgrad::VariationalFlow<float>& q, int energy_index, int n);
// The same on another extent (the gallery draws every panel on a square one).
DensityGrid q_grid(flowgrad::VariationalFlow<float>& q, const Extent& extent, int n);
// The energy's plotting box as an extent.
Extent energy_extent(int energy_index);
DensityGrid target_grid(int energy_index, int n);

}  // namespace train2d
