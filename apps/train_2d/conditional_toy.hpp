#pragma once
// A conditional toy set with a known answer, for p(x | c): "rotating". The context c is uniform on
// [-1, 1]; given c, x is a Gaussian of scales 1 and 0.3 rotated by theta = pi c / 2 and centred at
// (1.5 c, 0): x = (1.5 c, 0) + R(theta) diag(1, 0.3) z, z ~ N(0, I). Its conditional entropy is
// log(2 pi e 0.3) = 1.6339 nats, and log p(x | c) is known in closed form.
#include <string>

#include "flowgrad/tensor/random.hpp"

namespace train2d {

inline constexpr const char* kRotating = "rotating";

// n rows of (x0, x1, c), float32.
flowgrad::TensorF sample_rotating(flowgrad::Index n, flowgrad::Generator& gen);
// n points x [n, 2] drawn at one context value.
flowgrad::TensorF sample_rotating_at(double c, flowgrad::Index n, flowgrad::Generator& gen);
// log p(x | c) of each row (x0, x1, c), in double.
double rotating_log_density(double x0, double x1, double c);
// Mean -log p(x | c) over rows (x0, x1, c): the NLL of the true model on those points.
double rotating_nll(const flowgrad::TensorF& rows);

}  // namespace train2d
