#pragma once
// Not installed: which of its two forward passes mlp() (autodiff/ops_mlp.cpp) takes, exposed so
// that tests can pick shapes that exercise each.
#include <span>

#include "flowgrad/tensor/shape.hpp"

namespace flowgrad::detail {

// True when mlp() runs each layer over the whole batch as W h^T, the weight read in place and the
// output transposed back with its bias and activation; false when it runs blocks of rows through
// every layer against W^T packed once a pass. widths[l] and widths[l + 1] are layer l's input and
// output widths; rows is the batch.
bool mlp_forward_by_layer(std::span<const Index> widths, Index rows);

}  // namespace flowgrad::detail
