#pragma once
// Not installed: detail::activate<A>, detail::derivative_from_output<A> and
// detail::with_activation, which gemm's micro-kernels include from here, are defined with the other
// elementwise rules.
#include "flowgrad/tensor/detail/unary_rules.hpp"
