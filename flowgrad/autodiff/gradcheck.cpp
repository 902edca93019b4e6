#include "flowgrad/autodiff/gradcheck.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "flowgrad/autodiff/op_author.hpp"

namespace flowgrad {

namespace {

// Compares analytic[k] with central differences of eval() in each element of *xs[k].
GradcheckResult compare(const std::vector<Tensor<double>*>& xs,
                        const std::vector<Tensor<double>>& analytic,
                        const std::function<double()>& eval, const GradcheckOptions& opt) {
  GradcheckResult r;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    Tensor<double>& x = *xs[k];
    for (Index i = 0; i < x.numel(); ++i) {
      const double saved = x[i];
      x[i] = saved + opt.eps;
      const double up = eval();
      x[i] = saved - opt.eps;
      const double down = eval();
      x[i] = saved;
      const double numeric = (up - down) / (2 * opt.eps);
      const double a = analytic[k][i];
      double ratio = std::abs(a - numeric) / (opt.atol + opt.rtol * std::abs(numeric));
      if (std::isnan(ratio)) ratio = INFINITY;  // NaN on either side is a failure
      if (r.input < 0 || ratio > r.worst_ratio) {
        r.worst_ratio = ratio;
        r.input = static_cast<int>(k);
        r.index = i;
        r.analytic = a;
        r.numeric = numeric;
      }
    }
  }
  r.ok = r.worst_ratio <= 1.0;
  std::ostringstream msg;
  msg.precision(10);
  if (r.input < 0) {
    msg << "gradcheck: no elements to check";
  } else {
    msg << (r.ok ? "gradcheck passed; worst" : "gradcheck FAILED at") << " input " << r.input
        << ", element " << r.index << " (of shape "
        << xs[static_cast<std::size_t>(r.input)]->shape().str() << "): analytic " << r.analytic
        << " vs numeric " << r.numeric << " (error " << std::abs(r.analytic - r.numeric) << ", "
        << r.worst_ratio << " x tolerance)";
  }
  r.message = msg.str();
  return r;
}

double scalar_of(const Var<double>& v, const char* what) {
  if (v.value().numel() != 1)
    throw std::invalid_argument(std::string("gradcheck: ") + what + " returned shape " +
                                v.value().shape().str() + ", not a scalar");
  return v.value()[0];
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, std::vector<Tensor<double>> inputs,
                          GradcheckOptions opt) {
  Tape<double> tape;
  std::vector<Var<double>> vars;
  for (auto& x : inputs) vars.push_back(tape.constant(x, true));
  Var<double> out = f(tape, vars);
  scalar_of(out, "f");
  tape.backward(out);
  std::vector<Tensor<double>> analytic;
  for (auto& v : vars) {
    // An input the output does not depend on has a zero gradient, never reached by backward.
    const Node<double>& n = OpTape<double>(tape).node(v.index());
    analytic.push_back(n.has_grad ? n.grad : Tensor<double>(n.value.shape()));
  }
  std::vector<Tensor<double>*> xs;
  for (auto& x : inputs) xs.push_back(&x);
  auto eval = [&] {
    Tape<double> t;
    NoGradGuard<double> guard(t);
    std::vector<Var<double>> vs;
    for (auto& x : inputs) vs.push_back(t.constant(x));
    return scalar_of(f(t, vs), "f");
  };
  return compare(xs, analytic, eval, opt);
}

GradcheckResult gradcheck(const std::function<Var<double>(Tape<double>&)>& f,
                          const std::vector<Parameter<double>*>& params, GradcheckOptions opt) {
  for (auto* p : params) p->zero_grad();
  {
    Tape<double> tape;
    Var<double> out = f(tape);
    scalar_of(out, "f");
    tape.backward(out);
  }
  std::vector<Tensor<double>> analytic;
  std::vector<Tensor<double>*> xs;
  for (auto* p : params) {
    analytic.push_back(p->grad);
    xs.push_back(&p->value);
  }
  auto eval = [&] {
    Tape<double> t;
    NoGradGuard<double> guard(t);
    return scalar_of(f(t), "f");
  };
  return compare(xs, analytic, eval, opt);
}

}  // namespace flowgrad
