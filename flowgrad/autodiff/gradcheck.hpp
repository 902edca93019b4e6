#pragma once
// gradcheck: the tape's gradient of a scalar function against float64 central differences.
// Anyone adding an op checks it with this, as the tests do for every op.
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "flowgrad/autodiff/tape.hpp"

namespace flowgrad {

struct GradcheckOptions {
  double eps = 1e-6;   // central-difference step
  double atol = 1e-6;  // an element passes when |analytic - numeric| <= atol + rtol |numeric|
  double rtol = 1e-5;
};

struct GradcheckResult {
  bool ok = true;
  // The worst element, by error over its tolerance.
  double worst_ratio = 0;
  int input = -1;    // which input (or parameter)
  Index index = -1;  // which element of it, row-major
  double analytic = 0, numeric = 0;
  std::string message;  // says all of the above in words
  explicit operator bool() const { return ok; }
};

using GradcheckFn = std::function<Var<double>(Tape<double>&, std::span<const Var<double>>)>;

// f maps Vars made from `inputs` (in order) to a one-element Var.
GradcheckResult gradcheck(const GradcheckFn& f, std::vector<Tensor<double>> inputs,
                          GradcheckOptions opt = {});

// f builds a one-element loss from modules that own `params`; each parameter is perturbed in place
// and restored.
GradcheckResult gradcheck(const std::function<Var<double>(Tape<double>&)>& f,
                          const std::vector<Parameter<double>*>& params, GradcheckOptions opt = {});

}  // namespace flowgrad
