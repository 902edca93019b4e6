#pragma once
// Everything a user of flowgrad needs, in one include.
#include "tensor/ops.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"
