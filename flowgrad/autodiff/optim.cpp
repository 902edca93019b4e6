#include "flowgrad/autodiff/optim.hpp"

#include <cmath>
#include <stdexcept>

#include "flowgrad/autodiff/detail/fused_update.hpp"
#include "flowgrad/tensor/detail/adam_update.hpp"
#include "flowgrad/tensor/detail/simd.hpp"

namespace flowgrad {

namespace {
template <Scalar T>
std::vector<Tensor<T>> zeros_like(const std::vector<Parameter<T>*>& params) {
  std::vector<Tensor<T>> out;
  out.reserve(params.size());
  for (auto* p : params) out.emplace_back(p->value.shape());
  return out;
}

template <Scalar T>
void check_grad(const Parameter<T>& p) {
  if (!(p.grad.shape() == p.value.shape()))
    throw std::logic_error("optimizer: a parameter's gradient has shape " + p.grad.shape().str() +
                           ", its value " + p.value.shape().str() +
                           " (clear_grad() empties it until the next backward())");
}
}  // namespace

template <Scalar T>
SGD<T>::SGD(std::vector<Parameter<T>*> params, T lr, T momentum)
    : Optimizer<T>(std::move(params)),
      lr_(lr),
      momentum_(momentum),
      velocity_(zeros_like(this->params_)) {}

template <Scalar T>
void SGD<T>::step() {
  for (std::size_t k = 0; k < this->params_.size(); ++k) {
    Parameter<T>& p = *this->params_[k];
    check_grad(p);
    Tensor<T>& v = velocity_[k];
    for (Index i = 0; i < p.value.numel(); ++i) {
      v[i] = momentum_ * v[i] + p.grad[i];
      p.value[i] -= lr_ * v[i];
    }
  }
}

namespace {
void check_options(const AdamOptions& opt) {
  if (!(opt.lr >= 0) || !(opt.beta1 >= 0 && opt.beta1 < 1) || !(opt.beta2 >= 0 && opt.beta2 < 1) ||
      !(opt.eps > 0))
    throw std::invalid_argument("Adam: need lr >= 0, betas in [0, 1), eps > 0");
}
}  // namespace

template <Scalar T>
Adam<T>::Adam(std::vector<Parameter<T>*> params, AdamOptions opt)
    : Optimizer<T>(std::move(params)),
      opt_(opt),
      m_(zeros_like(this->params_)),
      v_(zeros_like(this->params_)) {
  check_options(opt);
}

template <Scalar T>
void Adam<T>::set_state(AdamState<T> state) {
  check_options(state.options);
  if (state.steps < 0) throw std::invalid_argument("Adam::set_state: negative step count");
  const std::size_t n = this->params_.size();
  if (state.exp_avg.size() != n || state.exp_avg_sq.size() != n)
    throw std::invalid_argument("Adam::set_state: " + std::to_string(state.exp_avg.size()) +
                                " and " + std::to_string(state.exp_avg_sq.size()) +
                                " moments for " + std::to_string(n) + " parameters");
  for (std::size_t k = 0; k < n; ++k) {
    const Shape& want = this->params_[k]->value.shape();
    if (!(state.exp_avg[k].shape() == want) || !(state.exp_avg_sq[k].shape() == want))
      throw std::invalid_argument("Adam::set_state: moments of parameter " + std::to_string(k) +
                                  " have shapes " + state.exp_avg[k].shape().str() + " and " +
                                  state.exp_avg_sq[k].shape().str() + ", the parameter " +
                                  want.str());
  }
  opt_ = state.options;
  t_ = state.steps;
  m_ = std::move(state.exp_avg);
  v_ = std::move(state.exp_avg_sq);
}

namespace {
AdamCoefficients coefficients(const AdamOptions& opt, long t) {
  const double c1 = 1.0 - std::pow(opt.beta1, static_cast<double>(t));
  const double c2 = 1.0 - std::pow(opt.beta2, static_cast<double>(t));
  return {opt.beta1, opt.beta2, opt.eps, opt.weight_decay, opt.lr / c1, 1.0 / std::sqrt(c2)};
}
}  // namespace

template <Scalar T>
void Adam<T>::step() {
  ++t_;
  update(nullptr);
}

// The updates that the backward rules claim, for the step about to be taken.
template <Scalar T>
class Adam<T>::Fused final : public detail::FusedUpdates<T> {
 public:
  Fused(Adam& adam, const AdamCoefficients& c) : adam_(adam), claimed_(adam.claimed_), c_(c) {
    claimed_.assign(adam.params_.size(), 0);
  }
  const AdamTarget<T>* claim(const Parameter<T>& param) override {
    const std::size_t k = find(param);
    if (k == npos || claimed_[k]) return nullptr;
    claimed_[k] = 1;
    Parameter<T>& p = *adam_.params_[k];
    target_ = {p.value.data(), adam_.m_[k].data(), adam_.v_[k].data(), p.value.numel(), c_};
    return &target_;
  }
  bool claimed(const Parameter<T>& param) const override {
    const std::size_t k = find(param);
    return k != npos && claimed_[k];
  }
  const std::vector<char>& claimed() const { return claimed_; }

 private:
  static constexpr std::size_t npos = ~std::size_t(0);
  std::size_t find(const Parameter<T>& param) const {
    const auto& params = adam_.params_;
    for (std::size_t k = 0; k < params.size(); ++k)
      if (params[k] == &param) return k;
    return npos;
  }
  Adam& adam_;
  std::vector<char>& claimed_;
  AdamCoefficients c_;
  AdamTarget<T> target_{};  // the last claim's: a rule uses it before it claims another
};

template <Scalar T>
void Adam<T>::backward_step(const Var<T>& loss) {
  Fused fused(*this, coefficients(opt_, t_ + 1));
  detail::FusedBackward<T>::run(loss, fused);
  ++t_;
  update(&fused.claimed());
  for (std::size_t k = 0; k < this->params_.size(); ++k)
    if (fused.claimed()[k]) this->params_[k]->clear_grad();
}

template <Scalar T>
void Adam<T>::update(const std::vector<char>* skip) {
  const AdamCoefficients c = coefficients(opt_, t_);
  const auto& params = this->params_;
  auto wanted = [skip](std::size_t k) { return !skip || !(*skip)[k]; };
  for (std::size_t k = 0; k < params.size(); ++k)
    if (wanted(k)) check_grad(*params[k]);
  // A parameter large enough for adam_update to split between threads is updated on its own; the
  // small ones (a 2-D flow's are all small) share one parallel region, chunk c updating those that
  // start in its share of their elements. Each element gets the same arithmetic either way.
  // Decided here, not inside the region, where threads_for() is always 1.
  const bool can_split = simd::threads_for(2 * adam_grain, adam_grain) > 1;
  auto splits_itself = [can_split](const Parameter<T>* p) {
    return can_split && p->value.numel() >= 2 * adam_grain;
  };
  Index small_total = 0;
  for (std::size_t k = 0; k < params.size(); ++k) {
    if (!wanted(k)) continue;
    if (splits_itself(params[k]))
      adam_update(params[k]->value, params[k]->grad, m_[k], v_[k], c);
    else
      small_total += params[k]->value.numel();
  }
  const int nt = simd::threads_for(small_total, adam_grain);
  simd::parallel_for_each(nt, nt, [&](Index chunk) {
    Index start = 0;
    for (std::size_t k = 0; k < params.size(); ++k) {
      if (!wanted(k) || splits_itself(params[k])) continue;
      if (start * nt >= chunk * small_total && start * nt < (chunk + 1) * small_total)
        adam_update(params[k]->value, params[k]->grad, m_[k], v_[k], c);
      start += params[k]->value.numel();
    }
  });
}

template <Scalar T>
T clip_grad_norm(const std::vector<Parameter<T>*>& params, T max_norm) {
  double sq = 0;
  for (auto* p : params)
    for (Index i = 0; i < p->grad.numel(); ++i) sq += static_cast<double>(p->grad[i]) * p->grad[i];
  const double norm = std::sqrt(sq);
  const double scale = static_cast<double>(max_norm) / (norm + 1e-6);
  if (scale < 1)
    for (auto* p : params)
      for (Index i = 0; i < p->grad.numel(); ++i) p->grad[i] = static_cast<T>(p->grad[i] * scale);
  return static_cast<T>(norm);
}

template class SGD<float>;
template class SGD<double>;
template class Adam<float>;
template class Adam<double>;
template float clip_grad_norm(const std::vector<Parameter<float>*>&, float);
template double clip_grad_norm(const std::vector<Parameter<double>*>&, double);

}  // namespace flowgrad
