#include "flowgrad/flows/models.hpp"

#include <stdexcept>

#include "flowgrad/flows/batch_norm.hpp"
#include "flowgrad/flows/planar.hpp"
#include "flowgrad/flows/radial.hpp"

namespace flowgrad {

template <Scalar T>
void FlowModel<T>::check_context_given(bool given) const {
  const Index c = context_dim();
  if (c > 0 && !given)
    throw std::invalid_argument("the model is conditional: it needs a context of " +
                                std::to_string(c) + " columns");
  if (c == 0 && given)
    throw std::invalid_argument("the model is unconditional: it takes no context");
}

template <Scalar T>
Var<T> DensityFlow<T>::log_prob(const Var<T>& x, const Var<T>& context) {
  this->check_context_given(context.defined());
  const FlowResult<T> r = transform_->forward(x, context);
  return base_.log_prob(r.out) + r.log_det;
}

template <Scalar T>
Tensor<T> DensityFlow<T>::log_prob(const Tensor<T>& x) {
  Tape<T>& tape = this->eval_tape();
  NoGradGuard<T> guard(tape);
  return log_prob(tape.constant(x)).value();
}

template <Scalar T>
Tensor<T> DensityFlow<T>::log_prob(const Tensor<T>& x, const Tensor<T>& context) {
  Tape<T>& tape = this->eval_tape();
  NoGradGuard<T> guard(tape);
  return log_prob(tape.constant(x), tape.constant(context)).value();
}

template <Scalar T>
std::pair<Tensor<T>, Tensor<T>> DensityFlow<T>::draw(Index n, const Tensor<T>* context,
                                                     Generator& gen) {
  this->check_context_given(context != nullptr);
  Tape<T>& tape = this->eval_tape();
  NoGradGuard<T> guard(tape);
  const Var<T> z = tape.constant(base_.sample(n, gen));
  const FlowResult<T> r = transform_->inverse(z, this->constant_or_none(tape, context));
  // r.log_det is log|det dx/dz|: log p(x) = log N(z) + log|det dz/dx| = log N(z) - r.log_det.
  return {r.out.value(), (base_.log_prob(z) - r.log_det).value()};
}

template <Scalar T>
std::pair<Tensor<T>, Tensor<T>> DensityFlow<T>::sample_and_log_prob(Index n, Generator& gen) {
  return draw(n, nullptr, gen);
}

template <Scalar T>
std::pair<Tensor<T>, Tensor<T>> DensityFlow<T>::sample_and_log_prob(const Tensor<T>& context,
                                                                    Generator& gen) {
  if (context.shape().rank() != 2)
    throw std::invalid_argument("sample: the context must be [n, " +
                                std::to_string(this->context_dim()) + "], got " +
                                context.shape().str());
  return draw(context.rows(), &context, gen);
}

template <Scalar T>
Tensor<T> DensityFlow<T>::sample(Index n, Generator& gen) {
  return sample_and_log_prob(n, gen).first;
}

template <Scalar T>
Tensor<T> DensityFlow<T>::sample(const Tensor<T>& context, Generator& gen) {
  return sample_and_log_prob(context, gen).first;
}

template <Scalar T>
void DensityFlow<T>::set_statistics(const Tensor<T>& data, const Tensor<T>* context) {
  this->check_context_given(context != nullptr);
  const bool was_training = this->training();
  this->train(false);
  Tape<T>& tape = this->eval_tape();
  NoGradGuard<T> guard(tape);
  Var<T> h = tape.constant(data);
  const Var<T> c = this->constant_or_none(tape, context);
  for (std::size_t i = 0; i < transform_->size(); ++i) {
    Bijector<T>& layer = (*transform_)[i];
    if (auto* bn = dynamic_cast<BatchNorm<T>*>(&layer)) bn->set_statistics(h.value());
    h = layer.forward(h, c).out;
  }
  this->train(was_training);
}

template <Scalar T>
void DensityFlow<T>::set_batch_norm_statistics(const Tensor<T>& data) {
  set_statistics(data, nullptr);
}

template <Scalar T>
void DensityFlow<T>::set_batch_norm_statistics(const Tensor<T>& data, const Tensor<T>& context) {
  set_statistics(data, &context);
}

template <Scalar T>
VariationalSample<T> VariationalFlow<T>::sample_and_log_prob(Tape<T>& tape, Index n, Generator& gen,
                                                             const Var<T>& context) {
  this->check_context_given(context.defined());
  const Var<T> z0 = tape.constant(base_.sample(n, gen));
  const FlowResult<T> r = transform_->forward(z0, context);
  return {r.out, base_.log_prob(z0) - r.log_det};
}

template <Scalar T>
Tensor<T> VariationalFlow<T>::evaluate(const Tensor<T>& x, const Tensor<T>* context) {
  this->check_context_given(context != nullptr);
  Tape<T>& tape = this->eval_tape();
  NoGradGuard<T> guard(tape);
  const FlowResult<T> r =
      transform_->inverse(tape.constant(x), this->constant_or_none(tape, context));
  // z0 = f^-1(x); log q(x) = log N(z0) + log|det dz0/dx|.
  return (base_.log_prob(r.out) + r.log_det).value();
}

template <Scalar T>
Tensor<T> VariationalFlow<T>::log_prob(const Tensor<T>& x) {
  return evaluate(x, nullptr);
}

template <Scalar T>
Tensor<T> VariationalFlow<T>::log_prob(const Tensor<T>& x, const Tensor<T>& context) {
  return evaluate(x, &context);
}

template <Scalar T>
std::unique_ptr<Composition<T>> make_realnvp(const RealNVPConfig& config, Generator& gen) {
  if (config.couplings < 1) throw std::invalid_argument("realnvp: needs at least one coupling");
  auto flow = std::make_unique<Composition<T>>(config.dim);
  for (int i = 0; i < config.couplings; ++i) {
    flow->add(std::make_unique<AffineCoupling<T>>(AffineCoupling<T>::half_mask(config.dim, i % 2),
                                                  config.coupling, gen));
    if (config.batch_norm && i + 1 < config.couplings)
      flow->add(std::make_unique<BatchNorm<T>>(config.dim));
  }
  return flow;
}

template <Scalar T>
std::unique_ptr<Composition<T>> make_nsf(const NSFConfig& config, Generator& gen) {
  if (config.couplings < 1) throw std::invalid_argument("nsf: needs at least one coupling");
  auto flow = std::make_unique<Composition<T>>(config.dim);
  for (int i = 0; i < config.couplings; ++i)
    flow->add(std::make_unique<SplineCoupling<T>>(AffineCoupling<T>::half_mask(config.dim, i % 2),
                                                  config.coupling, gen));
  return flow;
}

template <Scalar T>
std::unique_ptr<Composition<T>> make_maf(const MAFConfig& config, Generator& gen) {
  if (config.layers < 1) throw std::invalid_argument("maf: needs at least one layer");
  auto flow = std::make_unique<Composition<T>>(config.dim);
  for (int i = 0; i < config.layers; ++i) {
    if (i > 0) flow->add(std::make_unique<Permutation<T>>(config.dim, config.permutation, gen));
    flow->add(std::make_unique<MaskedAffineAutoregressive<T>>(config.dim, config.layer, gen));
  }
  return flow;
}

template <Scalar T>
std::unique_ptr<Composition<T>> make_nsf_ar(const NSFARConfig& config, Generator& gen) {
  if (config.layers < 1) throw std::invalid_argument("nsf-ar: needs at least one layer");
  auto flow = std::make_unique<Composition<T>>(config.dim);
  for (int i = 0; i < config.layers; ++i) {
    if (i > 0) flow->add(std::make_unique<Permutation<T>>(config.dim, config.permutation, gen));
    flow->add(std::make_unique<MaskedSplineAutoregressive<T>>(config.dim, config.layer, gen));
  }
  return flow;
}

template <Scalar T>
std::unique_ptr<Composition<T>> make_planar_stack(Index dim, int layers, Generator& gen) {
  if (layers < 1) throw std::invalid_argument("planar stack: needs at least one layer");
  auto flow = std::make_unique<Composition<T>>(dim);
  for (int i = 0; i < layers; ++i) flow->add(std::make_unique<Planar<T>>(dim, gen));
  return flow;
}

template <Scalar T>
std::unique_ptr<Composition<T>> make_radial_stack(Index dim, int layers, Generator& gen) {
  if (layers < 1) throw std::invalid_argument("radial stack: needs at least one layer");
  auto flow = std::make_unique<Composition<T>>(dim);
  for (int i = 0; i < layers; ++i) flow->add(std::make_unique<Radial<T>>(dim, gen));
  return flow;
}

template class FlowModel<float>;
template class FlowModel<double>;
template class DensityFlow<float>;
template class DensityFlow<double>;
template class VariationalFlow<float>;
template class VariationalFlow<double>;
#define FLOWGRAD_INSTANTIATE(T)                                                            \
  template std::unique_ptr<Composition<T>> make_realnvp(const RealNVPConfig&, Generator&); \
  template std::unique_ptr<Composition<T>> make_nsf(const NSFConfig&, Generator&);         \
  template std::unique_ptr<Composition<T>> make_maf(const MAFConfig&, Generator&);         \
  template std::unique_ptr<Composition<T>> make_nsf_ar(const NSFARConfig&, Generator&);    \
  template std::unique_ptr<Composition<T>> make_planar_stack(Index, int, Generator&);      \
  template std::unique_ptr<Composition<T>> make_radial_stack(Index, int, Generator&);
FLOWGRAD_INSTANTIATE(float)
FLOWGRAD_INSTANTIATE(double)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
