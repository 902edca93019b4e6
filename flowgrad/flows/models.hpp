#pragma once
// Flow models (docs/design.md §4) and builders.
//
// DensityFlow maps data to latent: log p(x) = log N(f(x)) + sum of the layers' forward log-dets;
// samples come from inverting the layers in reverse order.
// VariationalFlow maps base samples to the target: x = f(z0), log q(x) = log N(z0) - sum of forward
// log-dets, differentiable for reverse-KL fitting.
#include <memory>
#include <utility>

#include "flowgrad/flows/autoregressive.hpp"
#include "flowgrad/flows/composition.hpp"
#include "flowgrad/flows/coupling.hpp"
#include "flowgrad/flows/normal.hpp"
#include "flowgrad/flows/permutation.hpp"
#include "flowgrad/flows/spline_coupling.hpp"

namespace flowgrad {

// What both models are: a chain of bijectors and a standard-normal base; the module's parameters,
// buffers and mode are the chain's.
template <Scalar T>
class FlowModel : public Module<T> {
 public:
  explicit FlowModel(std::unique_ptr<Composition<T>> transform)
      : transform_(std::move(transform)), base_(transform_->dim()) {}
  Index dim() const { return transform_->dim(); }
  // The width of the context c of a conditional model p(x | c); 0 for an unconditional one.
  Index context_dim() const { return transform_->context_dim(); }
  Composition<T>& transform() { return *transform_; }

  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override {
    transform_->named_parameters(prefix, out);
  }
  void named_buffers(const std::string& prefix, std::vector<NamedBuffer<T>>& out) override {
    transform_->named_buffers(prefix, out);
  }
  using Module<T>::named_parameters;
  using Module<T>::named_buffers;
  void train(bool on = true) override {
    Module<T>::train(on);
    transform_->train(on);
  }

 protected:
  // The values-only methods (log_prob of a tensor, sampling) run on this tape, emptied per call:
  // it keeps its buffers, so repeated calls do not allocate (and page-fault) fresh ones.
  Tape<T>& eval_tape() {
    eval_tape_->reset();
    return *eval_tape_;
  }
  // A context is given exactly when the model is conditional; throws std::invalid_argument if
  // not (the shape is checked by the layers).
  void check_context_given(bool given) const;
  // The context as a constant on `tape`, or an undefined Var for none.
  static Var<T> constant_or_none(Tape<T>& tape, const Tensor<T>* context) {
    return context ? tape.constant(*context) : Var<T>{};
  }

  std::unique_ptr<Composition<T>> transform_;
  StandardNormal<T> base_;

 private:
  std::unique_ptr<Tape<T>> eval_tape_ = std::make_unique<Tape<T>>();  // a Tape does not move
};

template <Scalar T>
class DensityFlow : public FlowModel<T> {
 public:
  using FlowModel<T>::FlowModel;

  // log p(x) per sample, [batch, 1], on x's tape; differentiable. A conditional model takes
  // log p(x | c) with the context c [batch, context_dim()] on the same tape (differentiable in c
  // too); an unconditional one takes no context.
  Var<T> log_prob(const Var<T>& x, const Var<T>& context = {});
  // The same, values only, for plain tensors (in whichever mode the model is).
  Tensor<T> log_prob(const Tensor<T>& x);
  Tensor<T> log_prob(const Tensor<T>& x, const Tensor<T>& context);
  // n samples, by inverting the layers (eval-mode batch norm needs statistics); for a conditional
  // model, one sample per row of `context`.
  Tensor<T> sample(Index n, Generator& gen);
  Tensor<T> sample(const Tensor<T>& context, Generator& gen);
  // Samples and their log-density, values only.
  std::pair<Tensor<T>, Tensor<T>> sample_and_log_prob(Index n, Generator& gen);
  std::pair<Tensor<T>, Tensor<T>> sample_and_log_prob(const Tensor<T>& context, Generator& gen);
  // Sets every batch-norm layer's running statistics from one pass of `data` (with its context,
  // for a conditional model) through the flow, in order, each layer seeing what the layers
  // before it (with their new statistics) produce.
  void set_batch_norm_statistics(const Tensor<T>& data);
  void set_batch_norm_statistics(const Tensor<T>& data, const Tensor<T>& context);

 private:
  using FlowModel<T>::transform_;
  using FlowModel<T>::base_;
  std::pair<Tensor<T>, Tensor<T>> draw(Index n, const Tensor<T>* context, Generator& gen);
  void set_statistics(const Tensor<T>& data, const Tensor<T>* context);
};

template <Scalar T>
struct VariationalSample {
  Var<T> x;      // [n, dim]
  Var<T> log_q;  // [n, 1]
};

template <Scalar T>
class VariationalFlow : public FlowModel<T> {
 public:
  using FlowModel<T>::FlowModel;

  // Draws n base samples and pushes them through the flow on `tape`; differentiable. A
  // conditional flow takes the context of each sample ([n, context_dim()] on the same tape).
  VariationalSample<T> sample_and_log_prob(Tape<T>& tape, Index n, Generator& gen,
                                           const Var<T>& context = {});
  // log q(x) (or log q(x | c)) for given points, by inverting the flow (values only).
  Tensor<T> log_prob(const Tensor<T>& x);
  Tensor<T> log_prob(const Tensor<T>& x, const Tensor<T>& context);

 private:
  using FlowModel<T>::transform_;
  using FlowModel<T>::base_;
  Tensor<T> evaluate(const Tensor<T>& x, const Tensor<T>* context);
};

struct RealNVPConfig {
  Index dim = 2;
  int couplings = 8;
  CouplingConfig coupling;  // s and t networks
  bool batch_norm = true;   // after every coupling but the last
};

template <Scalar T>
std::unique_ptr<Composition<T>> make_realnvp(const RealNVPConfig& config, Generator& gen);
// Neural spline flow with coupling layers (NSF-C, Durkan et al. 2019): rational-quadratic spline
// couplings whose masks alternate, as make_realnvp's do. The defaults (8 couplings, 8 bins on
// [-4, 4], conditioner |x1| -> 64 -> 64 -> |x2| (3K - 1) with ReLU, its last layer zero at start)
// are the configuration measured in PyTorch close to the 2-D toy sets' true entropies.
struct NSFConfig {
  Index dim = 2;
  int couplings = 8;
  SplineCouplingConfig coupling;
};

template <Scalar T>
std::unique_ptr<Composition<T>> make_nsf(const NSFConfig& config, Generator& gen);

// Masked autoregressive flow (Papamakarios et al. 2017) with the sbi package's defaults: 5 masked
// affine autoregressive layers, MADE 50 x 2 with tanh, a seeded random permutation between
// consecutive layers. As a DensityFlow it is a MAF; as a VariationalFlow, an IAF.
struct MAFConfig {
  Index dim = 2;
  int layers = 5;
  MaskedAffineConfig layer;
  PermutationMode permutation = PermutationMode::random;
};

template <Scalar T>
std::unique_ptr<Composition<T>> make_maf(const MAFConfig& config, Generator& gen);

// Autoregressive neural spline flow (NSF-AR): masked spline autoregressive layers with a
// permutation between consecutive layers (reverse by default, so that in 2-D the two coordinates
// take turns, as the couplings of make_nsf do); the spline settings default to make_nsf's.
struct NSFARConfig {
  Index dim = 2;
  int layers = 8;
  SplineCouplingConfig layer;
  PermutationMode permutation = PermutationMode::reverse;
};

template <Scalar T>
std::unique_ptr<Composition<T>> make_nsf_ar(const NSFARConfig& config, Generator& gen);

template <Scalar T>
std::unique_ptr<Composition<T>> make_planar_stack(Index dim, int layers, Generator& gen);
template <Scalar T>
std::unique_ptr<Composition<T>> make_radial_stack(Index dim, int layers, Generator& gen);

extern template class FlowModel<float>;
extern template class FlowModel<double>;
extern template class DensityFlow<float>;
extern template class DensityFlow<double>;
extern template class VariationalFlow<float>;
extern template class VariationalFlow<double>;

}  // namespace flowgrad
