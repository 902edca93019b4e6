#include "flowgrad/flows/actnorm.hpp"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "flowgrad/parallel/collective.hpp"

namespace flowgrad {

template <Scalar T>
ActNorm<T>::ActNorm(Index dim)
    : Bijector<T>(dim),
      b(Tensor<T>(Shape{dim})),
      logs(Tensor<T>(Shape{dim})),
      initialized(Shape{1}) {}

template <Scalar T>
void ActNorm<T>::named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) {
  out.push_back({prefix + "b", &b});
  out.push_back({prefix + "logs", &logs});
}

template <Scalar T>
void ActNorm<T>::named_buffers(const std::string& prefix, std::vector<NamedBuffer<T>>& out) {
  out.push_back({prefix + "initialized", &initialized});
}

template <Scalar T>
void ActNorm<T>::initialize_from(const Tensor<T>& data) {
  if (data.cols() != this->dim() || data.rows() < 2)
    throw std::invalid_argument(this->label() + " initialisation: data of shape " +
                                data.shape().str() + ", expected [n >= 2, " +
                                std::to_string(this->dim()) + "]");
  // In data-parallel training the statistics are those of the global batch: sums over the ranks.
  Collective* ranks = batch_collective();
  const Index d = this->dim();
  std::vector<double> sums(static_cast<std::size_t>(d) + 1, 0.0);
  for (Index j = 0; j < d; ++j)
    for (Index i = 0; i < data.rows(); ++i) sums[static_cast<std::size_t>(j)] += data(i, j);
  sums[static_cast<std::size_t>(d)] = static_cast<double>(data.rows());
  if (ranks) ranks->sum(sums.data(), sums.size());
  const double n = sums[static_cast<std::size_t>(d)];
  std::vector<double> mean(sums.begin(), sums.end() - 1), squares(static_cast<std::size_t>(d), 0.0);
  for (Index j = 0; j < d; ++j) {
    const double m = mean[static_cast<std::size_t>(j)] /= n;
    for (Index i = 0; i < data.rows(); ++i)
      squares[static_cast<std::size_t>(j)] += (data(i, j) - m) * (data(i, j) - m);
  }
  if (ranks) ranks->sum(squares.data(), squares.size());
  for (Index j = 0; j < d; ++j) {
    b.value[j] = static_cast<T>(-mean[static_cast<std::size_t>(j)]);
    logs.value[j] =
        static_cast<T>(-std::log(std::sqrt(squares[static_cast<std::size_t>(j)] / n) + 1e-6));
  }
  initialized[0] = T(1);
}

template <Scalar T>
FlowResult<T> ActNorm<T>::forward_impl(const Var<T>& x, const Var<T>& /*context*/) {
  if (this->training() && !is_initialized()) {
    if (x.rows() < 2)
      throw std::invalid_argument(this->label() +
                                  " forward: the initialising batch needs 2 or more rows");
    initialize_from(x.value());
  }
  Tape<T>& t = x.tape();
  const Var<T> lv = t.parameter(logs);
  const Var<T> y = (x + t.parameter(b)) * exp(lv);
  return {y, this->per_sample(sum(lv), x.rows())};
}

template <Scalar T>
FlowResult<T> ActNorm<T>::inverse_impl(const Var<T>& y, const Var<T>& /*context*/) {
  Tape<T>& t = y.tape();
  const Var<T> lv = t.parameter(logs);
  const Var<T> x = y * exp(-lv) - t.parameter(b);
  return {x, this->per_sample(-sum(lv), y.rows())};
}

template class ActNorm<float>;
template class ActNorm<double>;

}  // namespace flowgrad
